//! The canonical records every source is mapped into (procedures today), the schemas that tell a
//! mapping file which fields exist, the record kinds the engine syncs, their content hashes,
//! and the stored states shared by the layers above.
//!
//! The model is deliberately plain data (serde structs): mapping produces it, `sync::diff`
//! compares it, storage keeps it as JSON, publishing renders it.

pub mod decision;
pub mod hash;
pub mod kind;
pub mod procedure;
pub mod schema;
pub mod state;
pub mod stats;

pub use decision::{Decisions, PublishingDecision};
pub use hash::{Digest, comparable_form, content_hash, hex, json_and_hash};
pub use kind::{Identity, Kind, PartialIdentity, Procedures, RecordKind, RequestValues};
pub use procedure::*;
pub use schema::{FieldKind, FieldSchema};
pub use state::{ChangeKind, RunStatus, Status, Stored, UnknownState, Validators};
pub use stats::{Stats, StatsRow};

#[cfg(test)]
mod tests {
    use super::FieldKind::*;
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
                Count => json!(2),
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
