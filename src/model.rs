//! The canonical procedure record every source is mapped into, and the schema that tells a
//! mapping file which fields exist and of what kind.
//!
//! The model is deliberately plain data (serde structs): mapping produces it, `sync::diff`
//! compares it, storage keeps it as JSON, publishing renders it.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::text;

/// One administrative procedure (thủ tục hành chính) as one source describes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Procedure {
    /// National code `X.NNNNNN`; the identity of the record within its source.
    pub code: String,
    /// The source's own code (e.g. `1.001612.000.00.00.H48`), kept as an alias.
    pub local_code: String,
    pub name: String,
    /// Loại thủ tục / who it is for, as the source labels it.
    pub kind: String,
    /// Cấp thực hiện: Cấp Bộ, Cấp Tỉnh, Cấp Xã...
    pub levels: Vec<String>,
    /// Canonical online mode; `None` when the source does not say (unknown is not "none").
    pub online_mode: Option<OnlineMode>,
    /// The online-service label exactly as the source gave it (`TOANTRINH`, `4`...).
    pub online_label: String,
    /// Ngành dọc (police, tax, social insurance...).
    pub vertical: Option<bool>,
    pub sectors: Vec<Sector>,
    pub agencies: Vec<Agency>,
    pub applicants: Vec<String>,
    pub channels: Vec<Channel>,
    pub documents: Vec<DocumentCase>,
    pub steps: Vec<StepCase>,
    pub legal_basis: Vec<LegalBasis>,
    pub conditions: String,
    pub results: Vec<String>,
    pub decision: Decision,
    pub online_url: String,
    pub status: String,
}

/// How a sync run stands: going, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Stopped by the safety guard: nothing applied.
    Held,
    /// Its process died before it finished: nothing from it was kept.
    Abandoned,
}

impl RunStatus {
    /// The name stored in `sync_runs.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Held => "held",
            RunStatus::Abandoned => "abandoned",
        }
    }
}

/// What happened to a procedure in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Modified,
    /// Absent from a complete result, within the removal grace.
    Missing,
    Removed,
    /// Seen again after being missing or removed.
    Restored,
}

impl ChangeKind {
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::Added,
        ChangeKind::Modified,
        ChangeKind::Missing,
        ChangeKind::Removed,
        ChangeKind::Restored,
    ];

    /// The name stored in `procedure_changes.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Missing => "missing",
            ChangeKind::Removed => "removed",
            ChangeKind::Restored => "restored",
        }
    }

    /// The kind a stored name stands for.
    pub fn parse(name: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The mark listings put before a changed procedure.
    pub fn mark(self) -> &'static str {
        match self {
            ChangeKind::Added => "+",
            ChangeKind::Modified => "~",
            ChangeKind::Missing => "?",
            ChangeKind::Removed => "-",
            ChangeKind::Restored => "↺",
        }
    }
}

/// How far a procedure can be done online (DOMAIN.md §4). Decree 42/2022's words, with Decree
/// 43/2011's levels as aliases: level 4 is toàn trình, level 3 is một phần.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OnlineMode {
    /// Stated by the source: no online submission (levels 1–2).
    #[serde(rename = "none")]
    NotOnline,
    /// Một phần (level 3): submitted online, finished in person.
    #[serde(rename = "partial")]
    Partial,
    /// Toàn trình (level 4): submitted, paid and received online.
    #[serde(rename = "full")]
    Full,
}

impl OnlineMode {
    /// The mode a source's label means, in either vocabulary (`TOANTRINH`, `Toàn trình`, `4`,
    /// `Mức độ 3`, `MOTPHAN`, `2`...); `None` when the label says nothing recognisable.
    pub fn from_label(label: &str) -> Option<OnlineMode> {
        let key = text::search_key(label).replace(' ', "");
        match key.as_str() {
            "4" | "muc4" | "mucdo4" | "toantrinh" | "full" | "dvctructuyentoantrinh" => {
                Some(OnlineMode::Full)
            }
            "3" | "muc3" | "mucdo3" | "motphan" | "partial" | "dvctructuyenmotphan" => {
                Some(OnlineMode::Partial)
            }
            "0" | "1" | "2" | "muc1" | "muc2" | "mucdo1" | "mucdo2" | "none" | "khong"
            | "khongtructuyen" => Some(OnlineMode::NotOnline),
            _ => None,
        }
    }

    /// What a record's mapped `online_mode` and `online_label` say together: the mode if it is
    /// recognisable, else the label's; unknown when neither says anything.
    pub fn from_source(mode: &str, label: &str) -> Option<OnlineMode> {
        OnlineMode::from_label(mode).or_else(|| OnlineMode::from_label(label))
    }

    /// Both vocabularies, as the commune's reports use them.
    pub fn label_vi(self) -> &'static str {
        match self {
            OnlineMode::NotOnline => "không trực tuyến",
            OnlineMode::Partial => "một phần (mức độ 3)",
            OnlineMode::Full => "toàn trình (mức độ 4)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sector {
    pub code: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Agency {
    pub code: String,
    pub name: String,
}

/// Cách thức thực hiện: one way to submit, with its own deadlines and fees.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Channel {
    /// `in_person`, `online` or `postal` (canonical), or the source's label when unknown.
    pub kind: String,
    pub deadlines: Vec<Deadline>,
    pub fees: Vec<Fee>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Deadline {
    #[serde(serialize_with = "whole_numbers_as_integers")]
    pub amount: Option<f64>,
    pub unit: String,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fee {
    pub code: String,
    /// In đồng.
    #[serde(serialize_with = "whole_numbers_as_integers")]
    pub amount: Option<f64>,
    pub unit: String,
    pub note: String,
}

/// Thành phần hồ sơ for one case (trường hợp).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentCase {
    pub case: String,
    pub items: Vec<Document>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Document {
    pub code: String,
    pub name: String,
    pub form_name: String,
    pub form_url: String,
    #[serde(serialize_with = "whole_numbers_as_integers")]
    pub originals: Option<f64>,
    #[serde(serialize_with = "whole_numbers_as_integers")]
    pub copies: Option<f64>,
}

/// Trình tự thực hiện for one case.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StepCase {
    pub case: String,
    pub steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LegalBasis {
    pub number: String,
    pub title: String,
    /// ISO date (`YYYY-MM-DD`) when the source gave one that could be read.
    pub date: String,
    pub issuer: String,
}

/// The publishing decision (quyết định công bố).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Decision {
    pub number: String,
    pub date: String,
}

/// Writes `30000.0` as `30000`: fees and counts read as people write them, in JSON and on pages.
fn whole_numbers_as_integers<S: serde::Serializer>(
    value: &Option<f64>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => serializer.serialize_some(&(*n as i64)),
        Some(n) => serializer.serialize_some(n),
        None => serializer.serialize_none(),
    }
}

/// What kind of value a field holds; the mapping layer converts extracted text accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Number,
    Bool,
    /// An ISO date (`YYYY-MM-DD`), converted from the source's format.
    Date,
    TextList,
    /// A list of sub-records described by the given schema.
    Records(&'static [FieldSchema]),
    /// A single nested record (e.g. the decision) described by the given schema.
    Record(&'static [FieldSchema]),
}

/// One field a mapping may fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSchema {
    pub name: &'static str,
    pub kind: FieldKind,
}

const fn field(name: &'static str, kind: FieldKind) -> FieldSchema {
    FieldSchema { name, kind }
}

use FieldKind::*;

const SECTOR: &[FieldSchema] = &[field("code", Text), field("name", Text)];
const AGENCY: &[FieldSchema] = &[field("code", Text), field("name", Text)];
const DEADLINE: &[FieldSchema] = &[
    field("amount", Number),
    field("unit", Text),
    field("note", Text),
];
const FEE: &[FieldSchema] = &[
    field("code", Text),
    field("amount", Number),
    field("unit", Text),
    field("note", Text),
];
const CHANNEL: &[FieldSchema] = &[
    field("kind", Text),
    field("deadlines", Records(DEADLINE)),
    field("fees", Records(FEE)),
];
const DOCUMENT: &[FieldSchema] = &[
    field("code", Text),
    field("name", Text),
    field("form_name", Text),
    field("form_url", Text),
    field("originals", Number),
    field("copies", Number),
];
const DOCUMENT_CASE: &[FieldSchema] = &[field("case", Text), field("items", Records(DOCUMENT))];
const STEP_CASE: &[FieldSchema] = &[field("case", Text), field("steps", TextList)];
const LEGAL_BASIS: &[FieldSchema] = &[
    field("number", Text),
    field("title", Text),
    field("date", Date),
    field("issuer", Text),
];
const DECISION: &[FieldSchema] = &[field("number", Text), field("date", Date)];

/// Every field of [`Procedure`] a mapping can fill, with its kind.
pub const PROCEDURE_SCHEMA: &[FieldSchema] = &[
    field("code", Text),
    field("local_code", Text),
    field("name", Text),
    field("kind", Text),
    field("levels", TextList),
    field("online_mode", Text),
    field("online_label", Text),
    field("vertical", Bool),
    field("sectors", Records(SECTOR)),
    field("agencies", Records(AGENCY)),
    field("applicants", TextList),
    field("channels", Records(CHANNEL)),
    field("documents", Records(DOCUMENT_CASE)),
    field("steps", Records(STEP_CASE)),
    field("legal_basis", Records(LEGAL_BASIS)),
    field("conditions", Text),
    field("results", TextList),
    field("decision", Record(DECISION)),
    field("online_url", Text),
    field("status", Text),
];

impl Procedure {
    /// The content hash: SHA-256 of the record's canonical JSON with every text replaced by its
    /// [`text::comparison_key`], so cosmetic differences upstream do not count as changes.
    /// Computed in one streaming pass, without building the comparable form.
    pub fn content_hash(&self) -> Digest {
        let mut writer = HashWriter(Sha256::new());
        let mut serializer =
            serde_json::Serializer::with_formatter(&mut writer, ComparableFormatter::default());
        // Serialising plain data into a hasher cannot fail.
        let _ = self.serialize(&mut serializer);
        Digest::from_hasher(writer.0)
    }

    /// The record as stored: JSON text of what the source said (cleaned).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// [`Procedure::to_json`] (as bytes: serde_json writes UTF-8, so nothing needs to check it
    /// again on its way to the database) and [`Procedure::content_hash`] in one serialisation
    /// pass.
    pub fn to_json_and_hash(&self) -> (Vec<u8>, Digest) {
        let mut hasher = HashWriter(Sha256::new());
        let mut json = Vec::with_capacity(4096);
        let formatter = TeeFormatter {
            hasher: &mut hasher,
            comparable: ComparableFormatter::default(),
        };
        let mut serializer = serde_json::Serializer::with_formatter(&mut json, formatter);
        // Serialising plain data into memory cannot fail.
        let _ = self.serialize(&mut serializer);
        (json, Digest::from_hasher(hasher.0))
    }
}

/// Writes compact JSON to the serialiser's writer and, at the same time, the comparable form
/// ([`ComparableFormatter`]) to a hasher.
struct TeeFormatter<'h> {
    hasher: &'h mut HashWriter,
    comparable: ComparableFormatter,
}

/// Forwards formatter calls to the compact JSON output and to the comparable form.
macro_rules! tee {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(
            fn $method<W: ?Sized + std::io::Write>(
                &mut self,
                writer: &mut W,
                $($arg: $ty),*
            ) -> std::io::Result<()> {
                serde_json::ser::CompactFormatter.$method(writer, $($arg),*)?;
                self.comparable.$method(&mut *self.hasher, $($arg),*)
            }
        )*
    };
}

impl serde_json::ser::Formatter for TeeFormatter<'_> {
    tee! {
        write_null();
        write_bool(value: bool);
        write_i8(value: i8);
        write_i16(value: i16);
        write_i32(value: i32);
        write_i64(value: i64);
        write_i128(value: i128);
        write_u8(value: u8);
        write_u16(value: u16);
        write_u32(value: u32);
        write_u64(value: u64);
        write_u128(value: u128);
        write_f32(value: f32);
        write_f64(value: f64);
        write_number_str(value: &str);
        begin_string();
        end_string();
        write_string_fragment(fragment: &str);
        write_byte_array(value: &[u8]);
        begin_array();
        end_array();
        begin_array_value(first: bool);
        end_array_value();
        begin_object();
        end_object();
        begin_object_key(first: bool);
        end_object_key();
        begin_object_value();
        end_object_value();
        write_raw_fragment(fragment: &str);
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        self.comparable.text.push(escaped_char(&escape));
        serde_json::ser::CompactFormatter.write_char_escape(writer, escape)
    }
}

/// An `io::Write` that feeds a SHA-256.
struct HashWriter(Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A JSON formatter writing each string as its comparison key (length-prefixed, so the output
/// stays unambiguous), for [`Procedure::content_hash`].
#[derive(Default)]
struct ComparableFormatter {
    text: String,
    key: String,
}

impl serde_json::ser::Formatter for ComparableFormatter {
    fn begin_string<W: ?Sized + std::io::Write>(&mut self, _writer: &mut W) -> std::io::Result<()> {
        self.text.clear();
        Ok(())
    }

    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        _writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        self.text.push_str(fragment);
        Ok(())
    }

    fn write_char_escape<W: ?Sized + std::io::Write>(
        &mut self,
        _writer: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> std::io::Result<()> {
        self.text.push(escaped_char(&escape));
        Ok(())
    }

    fn end_string<W: ?Sized + std::io::Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        let key = if is_url(&self.text) {
            &self.text
        } else {
            text::comparison_key_into(&self.text, &mut self.key);
            &self.key
        };
        writer.write_all(&(key.len() as u64).to_le_bytes())?;
        writer.write_all(key.as_bytes())
    }
}

/// The character a JSON escape stands for.
fn escaped_char(escape: &serde_json::ser::CharEscape) -> char {
    use serde_json::ser::CharEscape::*;
    match escape {
        Quote => '"',
        ReverseSolidus => '\\',
        Solidus => '/',
        Backspace => '\u{8}',
        FormFeed => '\u{c}',
        LineFeed => '\n',
        CarriageReturn => '\r',
        Tab => '\t',
        AsciiControl(byte) => *byte as char,
    }
}

/// URLs keep their case in comparisons.
fn is_url(text: &str) -> bool {
    text.starts_with("http://") || text.starts_with("https://")
}

/// The comparable form of one text: its comparison key, except URLs, whose case matters.
fn comparable_text(text: &str) -> std::borrow::Cow<'_, str> {
    if is_url(text) {
        std::borrow::Cow::Borrowed(text)
    } else {
        std::borrow::Cow::Owned(text::comparison_key(text))
    }
}

/// Replaces every string in a JSON value by its comparison key (URLs are kept as they are: their
/// case is significant).
pub fn comparable_form(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(comparable_text(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(comparable_form).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), comparable_form(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A SHA-256 digest. Kept as its 32 bytes in memory (a run's baseline holds two per stored
/// procedure), written as lowercase hex wherever it is stored or shown.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The digest of what a hasher was fed.
    pub fn from_hasher(hasher: Sha256) -> Digest {
        Digest(hasher.finalize().into())
    }

    /// Reads the hex form written by [`Digest`]'s `Display`; `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Digest> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut digest = [0u8; 32];
        for (out, pair) in digest.iter_mut().zip(bytes.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            *out = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Digest(digest))
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// Lower-case hexadecimal of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Why a procedure code cannot identify a procedure, if it cannot: codes are short runs of
/// ASCII letters, digits, dots, dashes and underscores with at least one digit ("1.001193",
/// "1.001193.000.00.00.H12").
pub fn code_problem(code: &str) -> Option<&'static str> {
    if code.is_empty() {
        Some("the record has no code")
    } else if code.len() > MAX_CODE_LEN {
        Some(CODE_TOO_LONG)
    } else if !code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        || !code.bytes().any(|b| b.is_ascii_digit())
    {
        Some("the code is malformed (expected letters, digits, dots and dashes, like 1.001193)")
    } else {
        None
    }
}

/// The longest national code, in bytes.
pub const MAX_CODE_LEN: usize = 64;
const CODE_TOO_LONG: &str = "the code is longer than 64 bytes";
const _: () = assert!(MAX_CODE_LEN == 64, "CODE_TOO_LONG states the limit");
/// The longest local code: stored in indexed columns, whose entries PostgreSQL limits to about
/// 2,700 bytes; real local codes are a few dozen characters.
pub const MAX_LOCAL_CODE_LEN: usize = 128;

/// Why a record's local code cannot be stored, if it cannot (it is an indexed identifier).
pub fn local_code_problem(local_code: &str) -> Option<String> {
    if local_code.len() > MAX_LOCAL_CODE_LEN {
        Some(format!(
            "the local code is {} bytes long, more than the {MAX_LOCAL_CODE_LEN} an identifier may have",
            local_code.len()
        ))
    } else if local_code.chars().any(|c| c.is_control()) {
        Some("the local code contains control characters".into())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Builds a JSON value with every schema field filled, so that a schema field the model lacks
    /// (or one of the wrong kind) makes deserialisation fail.
    fn sample_for(schema: &[FieldSchema]) -> Value {
        let mut map = serde_json::Map::new();
        for f in schema {
            let v = match f.kind {
                Text if f.name == "online_mode" => json!("full"),
                Text | Date => json!("x"),
                Number => json!(1.5),
                Bool => json!(true),
                TextList => json!(["a", "b"]),
                Records(sub) => Value::Array(vec![sample_for(sub)]),
                Record(sub) => sample_for(sub),
            };
            map.insert(f.name.to_string(), v);
        }
        Value::Object(map)
    }

    #[test]
    fn schema_matches_model_exactly() {
        let sample = sample_for(PROCEDURE_SCHEMA);
        let parsed: Procedure = serde_json::from_value(sample.clone()).expect("schema fits model");
        assert_eq!(serde_json::to_value(&parsed).unwrap(), sample);
    }

    #[test]
    fn fingerprint_ignores_cosmetic_differences() {
        let a = Procedure {
            code: "1.001193".into(),
            name: "Đăng ký khai sinh".into(),
            conditions: "hòa giải".into(),
            ..Default::default()
        };
        let b = Procedure {
            name: "Thủ tục đăng ký  khai sinh.".into(),
            conditions: "hoà giải".into(),
            ..a.clone()
        };
        assert_eq!(a.content_hash(), b.content_hash());
        let c = Procedure {
            conditions: "hóa giải".into(),
            ..a.clone()
        };
        assert_ne!(a.content_hash(), c.content_hash());
    }

    #[test]
    fn one_pass_json_and_hash_equal_the_separate_ones() {
        let mut sample = sample_for(PROCEDURE_SCHEMA);
        sample["name"] = json!("Đăng ký \"khai\" sinh\n\t\\ \u{1}</script>");
        sample["online_url"] = json!("https://DichVuCong.gov.vn/P?x=\"1\"");
        let procedure: Procedure = serde_json::from_value(sample).unwrap();
        let (json, hash) = procedure.to_json_and_hash();
        assert_eq!(String::from_utf8(json).unwrap(), procedure.to_json());
        assert_eq!(hash, procedure.content_hash());
    }

    #[test]
    fn digests_read_back_their_hex_form_and_nothing_else() {
        let procedure: Procedure = serde_json::from_value(sample_for(PROCEDURE_SCHEMA)).unwrap();
        let digest = procedure.content_hash();
        let hex_form = digest.to_string();
        assert_eq!(hex_form.len(), 64);
        assert_eq!(Digest::from_hex(&hex_form), Some(digest));
        for bad in [
            "",
            "abc",
            &hex_form[1..],
            &format!("{}g", &hex_form[1..]),
            &format!("{hex_form}0"),
        ] {
            assert_eq!(Digest::from_hex(bad), None, "{bad:?}");
        }
        assert_eq!(hex(&digest.0), hex_form);
    }

    #[test]
    fn codes_are_checked() {
        for good in ["1.001193", "3.000323", "1.001193.000.00.00.H12", "TTHC-01"] {
            assert_eq!(code_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "1.001 193",
            "<script>",
            "abc",
            "1.001193\u{0}",
            &"1".repeat(65),
        ] {
            assert!(code_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn online_mode_understands_both_vocabularies() {
        use OnlineMode::*;
        assert_eq!(OnlineMode::from_label("TOANTRINH"), Some(Full));
        assert_eq!(OnlineMode::from_label("Toàn trình"), Some(Full));
        assert_eq!(OnlineMode::from_label("4"), Some(Full));
        assert_eq!(OnlineMode::from_label("Mức độ 4"), Some(Full));
        assert_eq!(OnlineMode::from_label("Một phần"), Some(Partial));
        assert_eq!(OnlineMode::from_label("3"), Some(Partial));
        assert_eq!(OnlineMode::from_label("2"), Some(NotOnline));
        assert_eq!(OnlineMode::from_label("none"), Some(NotOnline));
    }

    #[test]
    fn an_unstated_online_mode_is_unknown_not_none() {
        assert_eq!(OnlineMode::from_source("", ""), None);
        assert_eq!(OnlineMode::from_source("", "Dịch vụ khác"), None);
        assert_eq!(
            OnlineMode::from_source("none", ""),
            Some(OnlineMode::NotOnline)
        );
        assert_eq!(
            OnlineMode::from_source("", "MOTPHAN"),
            Some(OnlineMode::Partial)
        );
        assert_eq!(OnlineMode::from_source("full", "3"), Some(OnlineMode::Full));
        let unknown = Procedure::default();
        assert_eq!(
            serde_json::to_value(&unknown).unwrap()["online_mode"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn change_kinds_read_back_their_names() {
        for kind in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::json!(kind.as_str())
            );
        }
        assert_eq!(ChangeKind::parse("bogus"), None);
        for status in [
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Held,
            RunStatus::Abandoned,
        ] {
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                serde_json::json!(status.as_str())
            );
        }
    }

    #[test]
    fn local_codes_are_bounded() {
        assert_eq!(local_code_problem("1.001612.000.00.00.H48"), None);
        assert_eq!(local_code_problem(""), None);
        assert!(
            local_code_problem(&"X".repeat(3000))
                .unwrap()
                .contains("3000 bytes")
        );
    }
}
