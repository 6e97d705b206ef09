//! tthc-sync: keeps a commune website in step with the catalogue of administrative procedures.
//!
//! The pipeline (see `docs/ARCHITECTURE.md`): [`fetch`] pages from a portal as a [`mapping`]
//! describes, read them into the canonical [`model`], normalise text ([`text`]), diff against
//! what is stored ([`sync`]) and keep every version in PostgreSQL ([`db`]).

pub mod config;
pub mod db;
pub mod fetch;
pub mod mapping;
pub mod model;
pub mod search;
pub mod sync;
pub mod synthetic;
pub mod text;

/// Vietnam's UTC offset (+07:00, all year).
pub fn vietnam_offset() -> chrono::FixedOffset {
    use chrono::Offset;
    chrono::FixedOffset::east_opt(7 * 3600).unwrap_or_else(|| chrono::Utc.fix())
}

/// A time as shown to people: Vietnam time, to the minute.
pub fn local_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&vietnam_offset())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}
