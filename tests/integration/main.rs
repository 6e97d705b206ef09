//! Integration tests: real PostgreSQL (a database per test, cloned from a migrated template),
//! fake portals over real HTTP on 127.0.0.1, and the real binary for the command line.

mod cli;
mod commands;
mod details;
mod engine;
mod failures;
mod guard;
mod hostile;
mod mappings;
mod misbehaving;
mod publish;
mod replay;
mod serve;
mod stats;
mod support;
mod sync_catalogue;
