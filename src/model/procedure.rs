//! The procedure record kind: the canonical `Procedure` every catalogue source is mapped into,
//! its schema, and what identifies one (its national code; its local code as an alias).

use serde::{Deserialize, Serialize};

use super::Digest;
use super::hash::{content_hash, json_and_hash};
use super::schema::{FieldKind, FieldSchema, field};
use crate::text;

/// One administrative procedure (thủ tục hành chính) as one source describes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Procedure {
    /// National code `X.NNNNNN`; the identity of the record within its source.
    pub code: String,
    /// The source's own code (e.g. `1.001612.000.00.00.H48`), kept as an alias.
    pub local_code: String,
    /// The portal's own id of the procedure (the national portal's `ID_TTHC`), by which its
    /// publishing decisions name it; left out of the stored form when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub portal_id: String,
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
    /// Cơ quan thực hiện: where the dossier is handled.
    pub agencies: Vec<Agency>,
    /// Cơ quan có thẩm quyền: who decides (left out of the stored form when empty, so records of
    /// sources that never give it keep their hashes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub competent_agencies: Vec<Agency>,
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
    field("portal_id", Text),
    field("name", Text),
    field("kind", Text),
    field("levels", TextList),
    field("online_mode", Text),
    field("online_label", Text),
    field("vertical", Bool),
    field("sectors", Records(SECTOR)),
    field("agencies", Records(AGENCY)),
    field("competent_agencies", Records(AGENCY)),
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
    /// The content hash (see [`content_hash`]).
    pub fn content_hash(&self) -> Digest {
        content_hash(self)
    }

    /// The record as stored: JSON text of what the source said (cleaned).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// [`Procedure::to_json`] as bytes and [`Procedure::content_hash`] in one pass.
    pub fn to_json_and_hash(&self) -> (Vec<u8>, Digest) {
        json_and_hash(self)
    }
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
