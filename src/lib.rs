//! tthc-sync: keeps a commune website in step with the catalogue of administrative procedures.
//!
//! The pipeline (see `docs/ARCHITECTURE.md`): [`fetch`] pages from a portal as a [`mapping`]
//! describes, read them into the canonical [`model`] (one [`model::RecordKind`] per kind of
//! record), normalise text ([`text`]), diff against what is stored and decide what to write
//! ([`sync`]), and keep every version in PostgreSQL ([`db`]).
//!
//! Layers, from the top: `sync` → `config` → `mapping` → `fetch`, `db` → `model`, `search` →
//! `text`, `clock`. A module imports only from layers below its own (checked by the
//! `layering` test below).

pub mod clock;
pub mod config;
pub mod db;
pub mod fetch;
pub mod mapping;
pub mod model;
pub mod notify;
pub mod publish;
pub mod search;
pub mod serve;
pub mod sync;
#[cfg(any(test, feature = "synthetic"))]
pub mod synthetic;
pub mod text;

#[cfg(test)]
mod layering;
