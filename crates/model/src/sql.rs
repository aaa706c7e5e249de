//! The vocabulary as PostgreSQL columns: ids are `BIGINT` (same bits), codes and names `TEXT`,
//! fake reasons `INTEGER`.

use std::io::Write as _;

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::{BigInt, Integer, Text};

use crate::{
    DecidedBy, DiscordJoinSource, FakeReasons, Id, InviteCode, JoinSource, UnknownReason,
    VanishedReason,
};

impl<M> ToSql<BigInt, Pg> for Id<M> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(&self.to_db().to_be_bytes())?;
        Ok(IsNull::No)
    }
}

impl<M> FromSql<BigInt, Pg> for Id<M> {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <i64 as FromSql<BigInt, Pg>>::from_sql(bytes).map(Self::from_db)
    }
}

impl ToSql<Text, Pg> for InviteCode {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
    }
}

impl FromSql<Text, Pg> for InviteCode {
    /// Codes in the database were parsed before they were written; a row that is not a code
    /// anymore is an error rather than a value that breaks a URL later.
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        let raw = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
        Ok(Self::parse(raw)?)
    }
}

macro_rules! text_enum {
    ($ty:ty) => {
        impl ToSql<Text, Pg> for $ty {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                out.write_all(self.as_str().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        impl FromSql<Text, Pg> for $ty {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
                Ok(std::str::from_utf8(bytes.as_bytes())?.parse::<$ty>()?)
            }
        }
    };
}
text_enum!(JoinSource);
text_enum!(UnknownReason);
text_enum!(VanishedReason);
text_enum!(DiscordJoinSource);
text_enum!(DecidedBy);

impl ToSql<Integer, Pg> for FakeReasons {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(&self.to_db().to_be_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<Integer, Pg> for FakeReasons {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <i32 as FromSql<Integer, Pg>>::from_sql(bytes).map(Self::from_db)
    }
}
