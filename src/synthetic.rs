//! Synthetic catalogues in the provincial LGSP XML shape (DOMAIN.md §3), with realistic
//! Vietnamese text and full details, for the benchmark harness, the demo export and tests.
//!
//! Deterministic: record `i` of generation `g` is always the same text, so a benchmark can serve
//! generation 0, then generation 1 in which a chosen share of records changed.

use std::fmt::Write;

/// Real commune-level procedures (DOMAIN.md §7): the first records of every catalogue.
pub const COMMUNE_PROCEDURES: &[(&str, &str, &str)] = &[
    ("1.001193", "Đăng ký khai sinh", "Hộ tịch"),
    ("1.000656", "Đăng ký khai tử", "Hộ tịch"),
    ("1.000894", "Đăng ký kết hôn", "Hộ tịch"),
    (
        "1.004873",
        "Cấp Giấy xác nhận tình trạng hôn nhân",
        "Hộ tịch",
    ),
    ("1.001022", "Đăng ký nhận cha, mẹ, con", "Hộ tịch"),
    ("1.004884", "Đăng ký lại khai sinh", "Hộ tịch"),
    (
        "1.004859",
        "Thay đổi, cải chính, bổ sung thông tin hộ tịch",
        "Hộ tịch",
    ),
    ("2.000635", "Cấp bản sao trích lục hộ tịch", "Hộ tịch"),
    ("1.004837", "Đăng ký giám hộ", "Hộ tịch"),
    ("3.000323", "Đăng ký giám sát việc giám hộ", "Hộ tịch"),
    (
        "2.000815",
        "Chứng thực bản sao từ bản chính giấy tờ, văn bản",
        "Chứng thực",
    ),
    (
        "2.000884",
        "Chứng thực chữ ký trong các giấy tờ, văn bản",
        "Chứng thực",
    ),
    ("2.001019", "Chứng thực di chúc", "Chứng thực"),
    ("1.004222", "Đăng ký thường trú", "Cư trú"),
    ("1.004194", "Đăng ký tạm trú", "Cư trú"),
    ("1.003677", "Khai báo tạm vắng", "Cư trú"),
    (
        "1.001612",
        "Đăng ký thành lập hộ kinh doanh",
        "Thành lập và hoạt động của hộ kinh doanh",
    ),
    (
        "1.001776",
        "Thực hiện, điều chỉnh, thôi hưởng trợ cấp xã hội hàng tháng",
        "Bảo trợ xã hội",
    ),
    (
        "1.001731",
        "Hỗ trợ chi phí mai táng cho đối tượng bảo trợ xã hội",
        "Bảo trợ xã hội",
    ),
    (
        "1.010833",
        "Cấp giấy xác nhận thân nhân của người có công",
        "Người có công",
    ),
    (
        "2.002621",
        "Liên thông các thủ tục hành chính về đăng ký khai sinh, đăng ký thường trú, cấp thẻ bảo hiểm y tế cho trẻ em dưới 6 tuổi",
        "Hộ tịch",
    ),
    ("1.002211", "Công nhận hòa giải viên", "Hòa giải ở cơ sở"),
    (
        "2.001263",
        "Đăng ký nuôi con nuôi trong nước",
        "Nuôi con nuôi",
    ),
];

const VERBS: &[&str] = &[
    "Cấp",
    "Cấp lại",
    "Gia hạn",
    "Điều chỉnh",
    "Xác nhận",
    "Công nhận",
    "Thẩm định",
    "Phê duyệt",
    "Hỗ trợ",
    "Đăng ký thay đổi",
    "Thu hồi",
    "Chấp thuận",
];
const OBJECTS: &[&str] = &[
    "giấy phép kinh doanh dịch vụ lữ hành nội địa",
    "giấy chứng nhận quyền sử dụng đất",
    "giấy phép xây dựng nhà ở riêng lẻ",
    "giấy chứng nhận đủ điều kiện an toàn thực phẩm",
    "chứng chỉ hành nghề khám bệnh, chữa bệnh",
    "giấy phép hoạt động thủy lợi",
    "kinh phí hỗ trợ phát triển sản xuất nông nghiệp",
    "giấy xác nhận khai thác thủy sản",
    "hồ sơ đề nghị hưởng chế độ ưu đãi",
    "giấy phép khai thác khoáng sản",
    "thẻ bảo hiểm y tế cho người thuộc hộ nghèo",
    "quyết định giao đất, cho thuê đất",
];
const QUALIFIERS: &[&str] = &[
    "",
    " tại cấp xã",
    " thực hiện tại cấp tỉnh",
    " cho cá nhân, hộ gia đình",
    " đối với tổ chức",
    " có yếu tố nước ngoài",
    " trong trường hợp bị mất, hỏng",
];
const SECTORS: &[(&str, &str)] = &[
    ("G09-TP01", "Hộ tịch"),
    ("G09-TP02", "Chứng thực"),
    ("G01-CA05", "Cư trú"),
    ("G12-TN03", "Đất đai"),
    ("G13-XD01", "Hoạt động xây dựng"),
    ("G05-LĐ08", "Bảo trợ xã hội"),
    ("G11-NN04", "Thủy lợi"),
    ("G10-YT02", "An toàn thực phẩm"),
];
const LEGAL: &[(&str, &str, &str, &str)] = &[
    ("60/2014/QH13", "Luật Hộ tịch", "20-11-2014", "Quốc hội"),
    (
        "123/2015/NĐ-CP",
        "Nghị định quy định chi tiết một số điều và biện pháp thi hành Luật Hộ tịch",
        "15-11-2015",
        "Chính phủ",
    ),
    (
        "23/2015/NĐ-CP",
        "Nghị định về cấp bản sao từ sổ gốc, chứng thực bản sao từ bản chính, chứng thực chữ ký và chứng thực hợp đồng, giao dịch",
        "16-02-2015",
        "Chính phủ",
    ),
    (
        "42/2022/NĐ-CP",
        "Nghị định quy định về việc cung cấp thông tin và dịch vụ công trực tuyến của cơ quan nhà nước trên môi trường mạng",
        "24-06-2022",
        "Chính phủ",
    ),
    ("68/2020/QH14", "Luật Cư trú", "13-11-2020", "Quốc hội"),
    (
        "85/2019/TT-BTC",
        "Thông tư hướng dẫn về phí và lệ phí thuộc thẩm quyền quyết định của Hội đồng nhân dân tỉnh",
        "29-11-2019",
        "Bộ Tài chính",
    ),
];

/// A small deterministic hash for choosing texts and deciding which records change.
fn mix(a: u64, b: u64) -> u64 {
    let mut x = a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_add(0x632B_E59B_D9B4_E019);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^ (x >> 29)
}

fn pick<T: Copy>(items: &[T], i: u64, salt: u64) -> T {
    items[(mix(i, salt) % items.len() as u64) as usize]
}

/// Escapes text for XML element content.
pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The national code of record `i`.
pub fn code_of(i: u64) -> String {
    match COMMUNE_PROCEDURES.get(i as usize) {
        Some((code, _, _)) => code.to_string(),
        None => format!("{}.{:06}", 1 + i % 3, 100_000 + i),
    }
}

/// Whether record `i` differs in `generation` from generation 0 (`change_per_mille` of them do).
pub fn changed_in(i: u64, generation: u64, change_per_mille: u64) -> bool {
    generation > 0 && mix(i, generation.wrapping_mul(7919)) % 1000 < change_per_mille
}

/// Appends the `<ThuTuc>` element of record `i` to `out`. Long because it is one XML template
/// written top to bottom in the export's own element order (test and benchmark data only).
pub fn write_procedure(out: &mut String, i: u64, generation: u64, change_per_mille: u64) {
    let code = code_of(i);
    let (name, sector) = match COMMUNE_PROCEDURES.get(i as usize) {
        Some((_, name, sector)) => (
            name.to_string(),
            (format!("LV{:02}", i % 7), sector.to_string()),
        ),
        None => {
            let (sc, sn) = pick(SECTORS, i, 4);
            (
                format!(
                    "{} {}{}",
                    pick(VERBS, i, 1),
                    pick(OBJECTS, i, 2),
                    pick(QUALIFIERS, i, 3)
                ),
                (sc.to_string(), sn.to_string()),
            )
        }
    };
    let changed = changed_in(i, generation, change_per_mille);
    let fee = if changed {
        35_000 + 5_000 * (generation % 5)
    } else {
        [0, 8_000, 30_000, 50_000, 100_000][(mix(i, 9) % 5) as usize]
    };
    let days = 1 + mix(i, 10) % 20;
    let online = ["TOANTRINH", "MOTPHAN", ""][(mix(i, 11) % 3) as usize];
    let province = ["H24", "H26", "H29", "H48"][(mix(i, 12) % 4) as usize];
    let _ = write!(
        out,
        "<ThuTuc><MATTHC>{code}.000.00.00.{province}</MATTHC><MATTHCQG>{code}</MATTHCQG><TENTTHC>{}</TENTTHC>\
<CAPTHUCHIEN><CAP>Cấp Xã</CAP>{}</CAPTHUCHIEN>\
<LINHVUCTHUCHIEN><LINHVUC><MALINHVUC>{}</MALINHVUC><TENLINHVUC>{}</TENLINHVUC></LINHVUC></LINHVUCTHUCHIEN>\
<COQUANTHUCHIEN><COQUAN><MADONVI>000.{:02}.{:02}.{province}</MADONVI><TENDONVI>Ủy ban nhân dân xã</TENDONVI></COQUAN></COQUANTHUCHIEN>\
<DOITUONGTHUCHIEN><DOITUONG><TENDOITUONG>Công dân Việt Nam</TENDOITUONG></DOITUONG><DOITUONG><TENDOITUONG>Tổ chức</TENDOITUONG></DOITUONG></DOITUONGTHUCHIEN>\
<MUCDO>{online}</MUCDO>",
        xml_escape(&name),
        if i.is_multiple_of(4) {
            "<CAP>Cấp Tỉnh</CAP>"
        } else {
            ""
        },
        xml_escape(&sector.0),
        xml_escape(&sector.1),
        i % 100,
        i % 37,
    );
    out.push_str("<CACHTHUCTHUCHIEN>");
    for (kind, extra_days) in [("1", 0), ("2", 0), ("3", 2)] {
        let _ = write!(
            out,
            "<KENH MA=\"{kind}\"><THOIGIAN><THOIGIANGIAIQUYET>{}</THOIGIANGIAIQUYET><DONVITINH>Ngày làm việc</DONVITINH>\
<MOTA>{} ngày làm việc kể từ ngày nhận đủ hồ sơ hợp lệ; trường hợp cần xác minh thì không quá {} ngày làm việc.</MOTA></THOIGIAN>\
<PHILEPHI><MAPHILEPHI>LP{:04}</MAPHILEPHI><SOTIEN>{}</SOTIEN><DONVI>Đồng</DONVI><MOTA>Lệ phí: {} đồng/hồ sơ. Miễn lệ phí cho người thuộc hộ nghèo, người khuyết tật.</MOTA></PHILEPHI></KENH>",
            days + extra_days,
            days + extra_days,
            days + extra_days + 5,
            i % 10_000,
            format_vnd(fee),
            format_vnd(fee),
        );
    }
    out.push_str("</CACHTHUCTHUCHIEN><THANHPHANHOSO>");
    for (case, docs) in [
        ("Trường hợp nộp trực tiếp", 3u64),
        ("Trường hợp nộp trực tuyến", 2),
    ] {
        let _ = write!(out, "<TRUONGHOP><TENTRUONGHOP>{case}</TENTRUONGHOP>");
        for d in 0..docs {
            let _ = write!(
                out,
                "<GIAYTO><MAGIAYTO>GT{:05}{d}</MAGIAYTO><TENGIAYTO>{}</TENGIAYTO><TENMAUDON>Mẫu số {:02}/{}</TENMAUDON>\
<URL>https://csdl.dichvucong.gov.vn/web/jsp/download_file.jsp?ma={code}-{d}</URL><SOBANCHINH>1</SOBANCHINH><SOBANSAO>{}</SOBANSAO></GIAYTO>",
                i % 100_000,
                [
                    "Tờ khai theo mẫu quy định",
                    "Bản sao giấy tờ tùy thân (căn cước công dân hoặc hộ chiếu)",
                    "Giấy tờ chứng minh nơi cư trú",
                    "Văn bản ủy quyền được chứng thực (nếu nộp thay)"
                ][(d as usize + i as usize) % 4],
                d + 1,
                ["TP/HT-2020", "CT01", "BTXH", "XD"][(i % 4) as usize],
                d % 2,
            );
        }
        out.push_str("</TRUONGHOP>");
    }
    out.push_str(
        "</THANHPHANHOSO><TRINHTUTHUCHIEN><TRUONGHOP><TENTRUONGHOP>Chung</TENTRUONGHOP><TRINHTU>",
    );
    for step in [
        "Bước 1: Người yêu cầu nộp hồ sơ tại Bộ phận Một cửa của Ủy ban nhân dân cấp xã hoặc qua Cổng Dịch vụ công.",
        "Bước 2: Công chức tiếp nhận kiểm tra tính hợp lệ của hồ sơ; trường hợp hồ sơ chưa đầy đủ thì hướng dẫn bổ sung, hoàn thiện.",
        "Bước 3: Chủ tịch Ủy ban nhân dân cấp xã xem xét, quyết định và trả kết quả cho người yêu cầu.",
    ] {
        let _ = write!(out, "<TENTRINHTU>{step}</TENTRINHTU>");
    }
    out.push_str("</TRINHTU></TRUONGHOP></TRINHTUTHUCHIEN><CANCUPHAPLY>");
    for l in 0..3 {
        let (number, title, date, issuer) = pick(LEGAL, i + l, 20 + l);
        let _ = write!(
            out,
            "<VANBAN><SOVANBAN>{number}</SOVANBAN><TENVANBAN>{}</TENVANBAN><NGAYBANHANH>{date}</NGAYBANHANH><COQUANBANHANH>{issuer}</COQUANBANHANH></VANBAN>",
            xml_escape(title)
        );
    }
    let _ = write!(
        out,
        "</CANCUPHAPLY><YEUCAU>{}</YEUCAU><KETQUA>Giấy chứng nhận hoặc văn bản trả lời của cơ quan có thẩm quyền</KETQUA>\
<QUYETDINHCONGBO><SO>{}/QĐ-UBND</SO><NGAY>{:02}/{:02}/2025</NGAY></QUYETDINHCONGBO>\
<URLDVC>https://dichvucong.gov.vn/p/home/dvc-chi-tiet-thu-tuc-hanh-chinh.html?ma_thu_tuc={code}</URLDVC><TRANGTHAI>1</TRANGTHAI></ThuTuc>",
        if i.is_multiple_of(3) {
            "Không có yêu cầu điều kiện"
        } else {
            "Người yêu cầu phải có năng lực hành vi dân sự đầy đủ; hồ sơ phải được nộp trong thời hạn quy định."
        },
        1000 + i % 3000,
        1 + i % 28,
        1 + i % 12,
    );
}

/// `30000` → `30.000` (Vietnamese thousands separator).
fn format_vnd(amount: u64) -> String {
    crate::text::group_thousands(amount, '.')
}

/// One page (1-based) of a catalogue of `total` records, as the LGSP SOAP response.
pub fn lgsp_page(
    total: u64,
    page: u64,
    page_size: u64,
    generation: u64,
    change_per_mille: u64,
) -> String {
    let pages = total.div_ceil(page_size.max(1));
    let start = page.saturating_sub(1) * page_size;
    let end = (start + page_size).min(total);
    let mut out = String::with_capacity(((end.saturating_sub(start)) as usize) * 4_500 + 512);
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>\
<LayDanhSachTTHCResponse xmlns=\"http://lgsp.gov.vn/\"><KetQua><TongSo>{total}</TongSo><TrangHienTai>{page}</TrangHienTai><SoTrang>{pages}</SoTrang><DanhSach>"
    );
    for i in start..end {
        write_procedure(&mut out, i, generation, change_per_mille);
    }
    out.push_str("</DanhSach></KetQua></LayDanhSachTTHCResponse></soap:Body></soap:Envelope>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_the_catalogue_once() {
        let body = lgsp_page(250, 3, 100, 0, 0);
        assert_eq!(body.matches("<ThuTuc>").count(), 50);
        assert!(body.contains("<TongSo>250</TongSo>") && body.contains("<SoTrang>3</SoTrang>"));
        assert!(lgsp_page(23, 1, 100, 0, 0).contains("<MATTHCQG>1.001193</MATTHCQG>"));
    }

    #[test]
    fn changes_follow_the_requested_share() {
        let changed = (0..10_000).filter(|&i| changed_in(i, 1, 50)).count();
        assert!((400..600).contains(&changed), "{changed}");
        assert_eq!((0..1000).filter(|&i| changed_in(i, 0, 50)).count(), 0);
    }

    #[test]
    fn thousands_separator() {
        assert_eq!(format_vnd(0), "0");
        assert_eq!(format_vnd(30_000), "30.000");
        assert_eq!(format_vnd(1_500_000), "1.500.000");
    }
}
