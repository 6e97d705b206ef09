//! Field schemas: which fields a record kind has and of what kind, so that a mapping file can be
//! checked against them and its extracted text converted accordingly.

/// What kind of value a field holds; the mapping layer converts extracted text accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Number,
    /// A whole number (a count of dossiers); a fraction is refused with a warning.
    Count,
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

/// A schema entry (for the `const` schemas of each record kind).
pub const fn field(name: &'static str, kind: FieldKind) -> FieldSchema {
    FieldSchema { name, kind }
}
