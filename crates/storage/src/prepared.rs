//! Raw SQL that the connection prepares once and reuses.
//!
//! diesel's `sql_query` marks every statement unsafe to cache, as its text may be built at run
//! time, so diesel-async parsed and planned the worker's statements again on every batch. The
//! statements here are `&'static str`: the same text every time, so the connection's statement
//! cache (keyed by text and bind types) keeps them.

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

/// A statement of constant text whose placeholders `$1`, `$2`, … appear once each, in order.
#[derive(Debug, Clone)]
#[must_use = "a statement does nothing until it is run"]
pub(crate) struct Prepared<Binds> {
    sql: &'static str,
    binds: Binds,
}

/// One bound value, of SQL type `ST`.
#[derive(Debug, Clone)]
pub(crate) struct Bind<ST, V> {
    value: V,
    sql_type: std::marker::PhantomData<ST>,
}

/// The statement `sql`, with no value bound yet.
pub(crate) fn prepared(sql: &'static str) -> Prepared<()> {
    Prepared { sql, binds: () }
}

impl<Binds> Prepared<Binds> {
    /// Binds the next placeholder.
    pub(crate) fn bind<ST, V>(self, value: V) -> Prepared<(Binds, Bind<ST, V>)> {
        Prepared {
            sql: self.sql,
            binds: (
                self.binds,
                Bind {
                    value,
                    sql_type: std::marker::PhantomData,
                },
            ),
        }
    }
}

/// The bound values, pushed by position.
pub(crate) trait Binds {
    const LEN: usize;
    /// Pushes bind `index` (0-based).
    fn push<'b>(&'b self, index: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

impl Binds for () {
    const LEN: usize = 0;
    fn push<'b>(&'b self, _: usize, _: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        Err(malformed("a placeholder has no bound value".into()))
    }
}

/// A statement whose placeholders do not match its binds: a bug in the statement's code.
fn malformed(why: String) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(why.into())
}

impl<Earlier, ST, V> Binds for (Earlier, Bind<ST, V>)
where
    Earlier: Binds,
    Pg: HasSqlType<ST>,
    V: ToSql<ST, Pg>,
{
    const LEN: usize = Earlier::LEN + 1;
    fn push<'b>(&'b self, index: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if index + 1 == Self::LEN {
            out.push_bind_param::<ST, V>(&self.1.value)
        } else {
            self.0.push(index, out)
        }
    }
}

impl<B: Binds> QueryFragment<Pg> for Prepared<B> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Each `$n` is replaced by the bind itself, which writes `$n` again (the binds are
        // numbered in order) and, when binds are collected, collects its value.
        let mut rest = self.sql;
        let mut next = 0;
        while let Some(at) = rest.find('$') {
            out.push_sql(&rest[..at]);
            let after = &rest[at + 1..];
            let digits = after
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(after.len());
            if after[..digits].parse() != Ok(next + 1) {
                return Err(malformed(format!(
                    "placeholders must be $1, $2, … once each, in order: {}",
                    self.sql
                )));
            }
            B::push(&self.binds, next, &mut out)?;
            next += 1;
            rest = &after[digits..];
        }
        out.push_sql(rest);
        if next != B::LEN {
            return Err(malformed(format!(
                "{} values bound to {next} placeholders: {}",
                B::LEN,
                self.sql
            )));
        }
        Ok(())
    }
}

impl<B> QueryId for Prepared<B> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<B> Query for Prepared<B> {
    type SqlType = Untyped;
}
