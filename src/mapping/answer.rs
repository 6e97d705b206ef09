//! Answers that are not data (pure): a login page (often reached through a redirect), an HTML
//! error or maintenance page served with status 200, a SOAP Fault. Recognised when a response
//! could not be read or held no records, so that the operator is told what the portal actually
//! said instead of "not valid JSON" or a guard hold advising `--allow-mass-removal`.

use quick_xml::Reader;
use quick_xml::events::Event;

/// What a response was instead of the data the mapping describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotData {
    /// A login form: credentials are missing, wrong or expired.
    LoginPage {
        /// Where the portal sent the request, when it redirected.
        redirected_to: Option<String>,
    },
    /// An HTML page (maintenance notice, error page, portal home page).
    HtmlPage { title: String },
    /// A SOAP Fault: the service's own error.
    SoapFault { code: String, message: String },
    /// Something without the place the records should be (an error object, a bare message, a
    /// different document): not an empty page, whatever it is.
    Unexpected {
        /// Where the mapping looks for the records.
        records: String,
        /// The start of what the answer says, as text.
        said: String,
    },
}

impl std::fmt::Display for NotData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotData::LoginPage {
                redirected_to: Some(url),
            } => write!(
                f,
                "the portal redirected to a login page ({url}) instead of answering with data"
            ),
            NotData::LoginPage {
                redirected_to: None,
            } => f.write_str("the portal answered with a login page instead of data"),
            NotData::HtmlPage { title } if title.is_empty() => {
                f.write_str("the portal answered with an HTML page instead of data")
            }
            NotData::HtmlPage { title } => write!(
                f,
                "the portal answered with an HTML page («{title}») instead of data"
            ),
            NotData::SoapFault { code, message } => {
                write!(
                    f,
                    "the portal answered with a SOAP Fault: {code}: {message}"
                )
            }
            NotData::Unexpected { records, said } if said.is_empty() => write!(
                f,
                "the answer does not hold the records where the mapping expects them (records.each = `{records}`), and says nothing"
            ),
            NotData::Unexpected { records, said } => write!(
                f,
                "the answer does not hold the records where the mapping expects them (records.each = `{records}`); it says «{said}»"
            ),
        }
    }
}

/// How much of a page is looked at to recognise it.
const HEAD: usize = 64 * 1024;

/// Recognises a response that is not data. `redirected_to` is the final URL when the portal
/// redirected the request elsewhere.
pub fn recognise(text: &str, redirected_to: Option<&str>) -> Option<NotData> {
    let head = prefix(text, HEAD);
    let lower = head.to_lowercase();
    let html = looks_like_html(&lower);
    let login_url = redirected_to.filter(|url| looks_like_login_url(url));
    if login_url.is_some() || (html && has_password_field(&lower)) {
        return Some(NotData::LoginPage {
            redirected_to: redirected_to.map(str::to_string),
        });
    }
    if html {
        return Some(NotData::HtmlPage {
            title: title_of(head, &lower),
        });
    }
    if lower.contains("fault") {
        return soap_fault(text);
    }
    None
}

/// An answer that lacks the records' place altogether, described by what it says.
pub fn unexpected(text: &str, records: &str) -> NotData {
    let head = prefix(text, 4096);
    NotData::Unexpected {
        records: records.to_string(),
        said: crate::text::shorten(&crate::text::html_to_text(head), 160).into_owned(),
    }
}

/// The first `max` bytes of `text` (fewer, to end on a character).
fn prefix(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn looks_like_html(lower: &str) -> bool {
    let start = lower.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n']);
    start.starts_with("<!doctype html")
        || start.starts_with("<html")
        || (start.starts_with('<') && lower.contains("<html") && lower.contains("<body"))
}

fn looks_like_login_url(url: &str) -> bool {
    let lower = url.to_lowercase();
    let path = lower
        .split_once("://")
        .map_or(lower.as_str(), |(_, rest)| rest);
    [
        "login",
        "signin",
        "sign-in",
        "dang-nhap",
        "dangnhap",
        "openid-connect/auth",
        "/sso",
        "/cas/",
    ]
    .iter()
    .any(|marker| path.contains(marker))
}

fn has_password_field(lower: &str) -> bool {
    lower.contains("type=\"password\"")
        || lower.contains("type='password'")
        || lower.contains("type=password")
}

/// The page's `<title>` (or first `<h1>`), as plain text, shortened.
fn title_of(head: &str, lower: &str) -> String {
    let inner = |tag: &str| {
        let open = lower.find(&format!("<{tag}"))?;
        let start = open + lower[open..].find('>')? + 1;
        let end = start + lower[start..].find(&format!("</{tag}"))?;
        head.get(start..end)
    };
    let raw = inner("title")
        .filter(|t| !t.trim().is_empty())
        .or_else(|| inner("h1"))
        .unwrap_or_default();
    crate::text::shorten(&crate::text::html_to_text(raw), 120).into_owned()
}

/// The code and message of a SOAP 1.1 (`faultcode`, `faultstring`) or 1.2 (`Code/Value`,
/// `Reason/Text`) Fault in the body of an envelope.
fn soap_fault(text: &str) -> Option<NotData> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut in_fault = false;
    let (mut code, mut message) = (String::new(), String::new());
    loop {
        match reader.read_event().ok()? {
            Event::Start(start) => {
                let name = start.local_name().as_ref().to_string();
                in_fault |= name == "Fault"
                    && stack.len() == 2
                    && stack[0] == "Envelope"
                    && stack[1] == "Body";
                stack.push(name);
            }
            Event::End(_) => {
                let closed = stack.pop();
                if in_fault && closed.as_deref() == Some("Fault") {
                    break;
                }
            }
            Event::Text(t) if in_fault => {
                let piece = t.xml10_content();
                let piece = piece.trim();
                match stack.last().map(String::as_str) {
                    Some("faultcode") | Some("Value") if code.is_empty() => {
                        code = piece.to_string()
                    }
                    Some("faultstring") | Some("Text") if message.is_empty() => {
                        message = piece.to_string()
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    in_fault.then(|| NotData::SoapFault {
        code: if code.is_empty() {
            "(no code)".into()
        } else {
            crate::text::clean(&code)
        },
        message: if message.is_empty() {
            "(no message)".into()
        } else {
            crate::text::clean(&message)
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soap_fault_is_recognised_with_its_code_and_message() {
        let fault = r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<soap:Fault><faultcode>soap:Server</faultcode><faultstring>Lỗi kết nối cơ sở dữ liệu</faultstring></soap:Fault>
</soap:Body></soap:Envelope>"#;
        assert_eq!(
            recognise(fault, None),
            Some(NotData::SoapFault {
                code: "soap:Server".into(),
                message: "Lỗi kết nối cơ sở dữ liệu".into()
            })
        );
        let soap12 = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault>
<env:Code><env:Value>env:Receiver</env:Value></env:Code><env:Reason><env:Text xml:lang="vi">Hệ thống bận</env:Text></env:Reason>
</env:Fault></env:Body></env:Envelope>"#;
        assert!(matches!(
            recognise(soap12, None),
            Some(NotData::SoapFault { code, message }) if code == "env:Receiver" && message == "Hệ thống bận"
        ));
        // A normal answer that happens to say "fault" is data.
        assert_eq!(
            recognise(
                "<Envelope><Body><KetQua>fault</KetQua></Body></Envelope>",
                None
            ),
            None
        );
    }

    #[test]
    fn html_pages_and_login_pages_are_told_apart() {
        let maintenance = "<!DOCTYPE html><html><head><title>Hệ thống đang bảo trì</title></head><body><h1>Xin lỗi</h1></body></html>";
        assert_eq!(
            recognise(maintenance, None),
            Some(NotData::HtmlPage {
                title: "Hệ thống đang bảo trì".into()
            })
        );
        let login = "<html><body><form><input name=\"u\"><input type=\"password\" name=\"p\"></form></body></html>";
        assert_eq!(
            recognise(login, None),
            Some(NotData::LoginPage {
                redirected_to: None
            })
        );
        let keycloak = "<html><head><title>Sign in</title></head><body></body></html>";
        let url = "https://sso.example.vn/auth/realms/x/protocol/openid-connect/auth?client_id=y";
        assert_eq!(
            recognise(keycloak, Some(url)),
            Some(NotData::LoginPage {
                redirected_to: Some(url.into())
            })
        );
        assert_eq!(recognise("[]", None), None);
        let said = unexpected(
            "<?xml version=\"1.0\"?><Error><Message>Phiên làm việc hết hạn</Message></Error>",
            "Envelope/Body/KetQua/DanhSach/ThuTuc",
        );
        assert!(
            said.to_string().contains("«Phiên làm việc hết hạn»")
                && said.to_string().contains("DanhSach/ThuTuc"),
            "{said}"
        );
        assert_eq!(recognise("{\"data\": []}", None), None);
    }
}
