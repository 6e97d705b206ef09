//! The model's state enums as the database stores them (text columns): read through their
//! `parse`, so a stored name no variant has is an error naming the value, never a guess.

use diesel::deserialize::{self, FromSql, Queryable};
use diesel::pg::{Pg, PgValue};
use diesel::sql_types::Text;

use crate::model::{ChangeKind, RunStatus, Status, UnknownState};

/// Implements reading a state enum from a text column with the given parser.
macro_rules! stored_state {
    ($type:ty, $parse:expr) => {
        impl FromSql<Text, Pg> for $type {
            fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
                let name = <String as FromSql<Text, Pg>>::from_sql(value)?;
                let parse: fn(&str) -> Result<$type, UnknownState> = $parse;
                Ok(parse(&name)?)
            }
        }

        impl Queryable<Text, Pg> for $type {
            type Row = Self;
            fn build(row: Self) -> deserialize::Result<Self> {
                Ok(row)
            }
        }
    };
}

stored_state!(RunStatus, RunStatus::parse);
stored_state!(Status, Status::parse);
stored_state!(ChangeKind, |name| {
    ChangeKind::parse(name).ok_or_else(|| UnknownState {
        what: "change kind",
        value: name.to_string(),
    })
});
