//! Record kinds: the one seam through which the engine (mapping, page loop, seen-tracking,
//! guard, diff, write plan) learns what a kind of record is. [`Kind`], as mapping files name it,
//! gives its field schema and required fields (checked when a mapping loads); [`RecordKind`]
//! gives its typed record, identity, normalisation and comparison form. Adding a kind means a
//! model, a schema, a `Kind` variant, a `RecordKind` impl and tables; not another loop.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::hash::json_and_hash;
use super::procedure::{self, OnlineMode, PROCEDURE_SCHEMA, Procedure};
use super::stats::STATS_SCHEMA;
use super::{Digest, FieldSchema};

/// The values of the request a record answered, beyond the source's own (a unit, a month):
/// part of what identifies records of some kinds. Empty for a run's only request.
pub type RequestValues = std::collections::BTreeMap<String, String>;

/// The kinds of record a mapping file can declare (`kind = "procedures"`, the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Procedures,
    /// Dossier statistics per unit and month (`kind = "stats"`).
    Stats,
    /// Publishing decisions (`kind = "decisions"`).
    Decisions,
}

impl Kind {
    /// Every field a mapping of this kind may fill.
    pub fn schema(self) -> &'static [FieldSchema] {
        match self {
            Kind::Procedures => PROCEDURE_SCHEMA,
            Kind::Stats => STATS_SCHEMA.as_slice(),
            Kind::Decisions => super::decision::DECISION_SCHEMA,
        }
    }

    /// The fields every mapping of this kind must fill.
    pub fn required(self) -> &'static [&'static str] {
        match self {
            Kind::Procedures => &["code", "name"],
            // A row's unit may come from the request; its key is checked when it is read.
            Kind::Stats => &[],
            Kind::Decisions => &["id", "number"],
        }
    }
}

/// The identity of a record as far as its mapped fields show it, for a record that could not be
/// used: its key (a procedure's code) and its alias (a procedure's local code), when readable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PartialIdentity {
    pub key: Option<String>,
    pub alias: Option<String>,
}

/// A typed record's identity and label, taken apart once it has been hashed.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// What makes two records of a source the same record (a procedure's national code).
    pub key: String,
    /// Another identifier the source gives it (a procedure's local code); empty when none.
    pub alias: String,
    /// What people call it in reports (a procedure's name).
    pub label: String,
}

/// What the engine needs of a kind of record.
pub trait RecordKind: Send + Sync + 'static {
    /// The kind mapping files name.
    const KIND: Kind;
    /// The canonical record.
    type Record: Serialize + DeserializeOwned + Send + 'static;

    /// Normalises the mapped fields before they are typed (values the source states in several
    /// vocabularies settled into one; what the request itself says about the record).
    fn normalise(_fields: &mut Value, _request: &RequestValues) {}

    /// The identity readable from mapped fields (and the request), even when the record cannot
    /// be typed.
    fn partial_identity(fields: &Value, request: &RequestValues) -> PartialIdentity;

    /// The key and alias of a typed record.
    fn key_and_alias(record: &Self::Record) -> (&str, &str);

    /// Takes a typed record apart into its identity (after it was serialised and hashed).
    fn into_identity(record: Self::Record) -> Identity;

    /// Why a key cannot identify a record, if it cannot.
    fn key_problem(key: &str) -> Option<&'static str>;

    /// Why an alias cannot be stored, if it cannot.
    fn alias_problem(alias: &str) -> Option<String>;

    /// The stored JSON and the content hash over the comparison form, in one pass.
    fn json_and_hash(record: &Self::Record) -> (Vec<u8>, Digest) {
        json_and_hash(record)
    }

    /// What does not add up in a record (field, message): reported with the run and kept
    /// as it is, never corrected.
    fn problems(_record: &Self::Record) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Why a field's change is worth a problem in the run report (a closed month's number
    /// falling by half), if it is. `open_period` is the month the run was made in (`YYYY-MM`).
    fn revision_problem(
        _key: &str,
        _field: &str,
        _before: &Value,
        _after: &Value,
        _open_period: &str,
    ) -> Option<String> {
        None
    }

    /// The part of a stored record's key that says which requests answer for it (a row's
    /// month), for a kind whose runs each read only part of what is stored: a record is found
    /// absent only by a run that asked for its part. `None`: every run answers for every record.
    fn answered_by(_key: &str) -> Option<&str> {
        None
    }

    /// The part (see [`RecordKind::answered_by`]) a request asks for, when it says.
    fn part_requested(_values: &RequestValues) -> Option<String> {
        None
    }
}

/// Administrative procedures, identified by their national code.
pub struct Procedures;

impl RecordKind for Procedures {
    const KIND: Kind = Kind::Procedures;
    type Record = Procedure;

    /// Replaces the mapped `online_mode` text by the canonical mode it and `online_label` state
    /// together, or null when they state nothing (unknown is not "none").
    fn normalise(fields: &mut Value, _request: &RequestValues) {
        let text = |key: &str| {
            fields
                .get(key)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let mode = OnlineMode::from_source(&text("online_mode"), &text("online_label"));
        if let Some(map) = fields.as_object_mut() {
            map.insert(
                "online_mode".into(),
                serde_json::to_value(mode).unwrap_or_default(),
            );
        }
    }

    fn partial_identity(fields: &Value, _request: &RequestValues) -> PartialIdentity {
        let text_of = |key: &str| {
            fields
                .get(key)
                .and_then(|v| v.as_str())
                .filter(|c| !c.is_empty())
                .map(str::to_string)
        };
        PartialIdentity {
            key: text_of("code"),
            alias: text_of("local_code"),
        }
    }

    fn key_and_alias(record: &Procedure) -> (&str, &str) {
        (&record.code, &record.local_code)
    }

    fn into_identity(record: Procedure) -> Identity {
        Identity {
            key: record.code,
            alias: record.local_code,
            label: record.name,
        }
    }

    fn key_problem(key: &str) -> Option<&'static str> {
        procedure::code_problem(key)
    }

    fn alias_problem(alias: &str) -> Option<String> {
        procedure::local_code_problem(alias)
    }
}
