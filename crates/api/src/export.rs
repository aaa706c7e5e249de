//! Exports of a guild's data, CSV or JSON, streamed a page at a time (`docs/dashboard.md#export`):
//! a million joins never sit in memory, and a database error mid-way aborts the response
//! instead of ending it as if complete.

use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::stream::{self, Stream};
use invitrack_model::{GuildKey, UserId};
use invitrack_storage::export::{self as pages, InviterRow, JoinCursor, JoinRow};
use serde::Serialize;

use crate::AppState;
use crate::auth::{Caller, GuildPath};
use crate::dashboard::Counts;
use crate::error::ApiError;
use crate::guilds::JoinEntry;
use crate::openapi_parts::{CommonErrors, ExportQuery, GuildParams};
use crate::params::Params;

/// Rows read per query.
const PAGE: i64 = 2_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

const FORMATS: [(&str, Format); 2] = [("csv", Format::Csv), ("json", Format::Json)];

impl Format {
    const fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Json => "application/json",
        }
    }

    const fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }
}

/// One exported inviter.
#[derive(Debug, Serialize)]
struct InviterLine {
    inviter_id: String,
    #[serde(flatten)]
    counts: Counts,
}

/// What a row becomes in a CSV file: its columns, in the header's order.
trait CsvRow: Serialize {
    const HEADER: &'static [&'static str];
    fn columns(&self) -> Vec<String>;
}

impl CsvRow for JoinEntry {
    const HEADER: &'static [&'static str] = &[
        "id",
        "member_id",
        "created_at",
        "decided_at",
        "source",
        "invite_code",
        "inviter_id",
        "candidates",
        "unknown_reason",
        "fake_reasons",
        "left_at",
        "cleared",
    ];

    fn columns(&self) -> Vec<String> {
        let j = &self.join;
        vec![
            self.id.to_string(),
            self.member_id.clone(),
            j.created_at.clone(),
            self.decided_at.clone(),
            j.source.clone(),
            j.invite_code.clone().unwrap_or_default(),
            j.inviter_id.clone().unwrap_or_default(),
            j.candidates.join(" "),
            j.unknown_reason.clone().unwrap_or_default(),
            j.fake_reasons.join(" "),
            j.left_at.clone().unwrap_or_default(),
            j.cleared.to_string(),
        ]
    }
}

impl CsvRow for InviterLine {
    const HEADER: &'static [&'static str] = &[
        "inviter_id",
        "total",
        "real",
        "fake",
        "leaves",
        "bonus",
        "joins",
    ];

    fn columns(&self) -> Vec<String> {
        let c = &self.counts;
        vec![
            self.inviter_id.clone(),
            c.total.to_string(),
            c.real.to_string(),
            c.fake.to_string(),
            c.leaves.to_string(),
            c.bonus.to_string(),
            c.joins.to_string(),
        ]
    }
}

/// Writes `rows` in `format`; `first` says whether they open the file (CSV header, JSON `[`).
fn encode<R: CsvRow>(format: Format, rows: &[R], first: bool) -> Result<Vec<u8>, ApiError> {
    let failed = |_| ApiError::Internal("an export row could not be written");
    match format {
        Format::Csv => {
            let mut out = csv::Writer::from_writer(Vec::new());
            if first {
                out.write_record(R::HEADER).map_err(failed)?;
            }
            for row in rows {
                out.write_record(row.columns()).map_err(failed)?;
            }
            out.into_inner()
                .map_err(|_| ApiError::Internal("an export page could not be written"))
        }
        Format::Json => {
            let mut out = Vec::new();
            for (i, row) in rows.iter().enumerate() {
                out.push(if first && i == 0 { b'[' } else { b',' });
                out.push(b'\n');
                serde_json::to_writer(&mut out, row)
                    .map_err(|_| ApiError::Internal("an export row could not be written"))?;
            }
            Ok(out)
        }
    }
}

/// The end of a file with rows.
fn closing(format: Format) -> &'static [u8] {
    match format {
        Format::Csv => b"",
        Format::Json => b"\n]\n",
    }
}

/// Where a streamed export is.
enum Step<C> {
    /// Reading pages after this cursor (`None`: the first page).
    Reading {
        after: Option<C>,
        written: bool,
    },
    Done,
}

/// Streams every row that `read` gives page by page, encoded.
fn stream_rows<C, R, F, Fut>(
    state: web::Data<AppState>,
    format: Format,
    header_when_empty: Vec<u8>,
    read: F,
) -> impl Stream<Item = Result<Bytes, ApiError>>
where
    C: Copy + 'static,
    R: CsvRow + 'static,
    F: Fn(web::Data<AppState>, Option<C>) -> Fut + Copy + 'static,
    Fut: Future<Output = Result<(Vec<R>, Option<C>), ApiError>>,
{
    stream::try_unfold(
        Step::Reading {
            after: None,
            written: false,
        },
        move |step| {
            let state = state.clone();
            let header_when_empty = header_when_empty.clone();
            async move {
                let Step::Reading { after, written } = step else {
                    return Ok(None);
                };
                let (rows, last) = read(state, after).await?;
                if rows.is_empty() {
                    let end = if written {
                        closing(format).to_vec()
                    } else {
                        header_when_empty
                    };
                    return Ok(Some((Bytes::from(end), Step::Done)));
                }
                let mut chunk = encode(format, &rows, !written)?;
                if i64::try_from(rows.len()).unwrap_or(0) < PAGE {
                    chunk.extend_from_slice(closing(format));
                    return Ok(Some((Bytes::from(chunk), Step::Done)));
                }
                Ok(Some((
                    Bytes::from(chunk),
                    Step::Reading {
                        after: last,
                        written: true,
                    },
                )))
            }
        },
    )
}

fn attachment(guild: GuildKey, what: &str, format: Format) -> ContentDisposition {
    ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::Filename(format!(
            "invitrack-{}-{what}.{}",
            guild.guild_id,
            format.extension()
        ))],
    }
}

async fn join_page(
    state: web::Data<AppState>,
    guild: GuildKey,
    after: Option<i64>,
) -> Result<(Vec<JoinEntry>, Option<i64>), ApiError> {
    let mut conn = state.connection().await?;
    let rows: Vec<JoinRow> = pages::joins_page(
        &mut conn,
        guild,
        None,
        JoinCursor::OldestAfter(after.unwrap_or(0)),
        PAGE,
    )
    .await?;
    let last = rows.last().map(|r| r.id);
    Ok((rows.into_iter().map(JoinEntry::from).collect(), last))
}

async fn inviter_page(
    state: web::Data<AppState>,
    guild: GuildKey,
    after: Option<UserId>,
) -> Result<(Vec<InviterLine>, Option<UserId>), ApiError> {
    let mut conn = state.connection().await?;
    let rows: Vec<InviterRow> = pages::inviters_page(&mut conn, guild, after, PAGE).await?;
    let last = rows.last().map(|r| r.inviter_id);
    Ok((
        rows.into_iter()
            .map(|r| InviterLine {
                inviter_id: r.inviter_id.to_string(),
                counts: r.counts.into(),
            })
            .collect(),
        last,
    ))
}

/// Every decided join of the guild, oldest first, as CSV or a JSON array; streamed.
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/export/joins",
    tag = "dashboard",
    params(GuildParams, ExportQuery),
    responses((status = 200, description = "the joins (text/csv or application/json)"), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn joins(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.read(&guild)?;
    let key = guild.key();
    download(&req, state, key, "joins", move |state, after| {
        join_page(state, key, after)
    })
}

/// Every inviter's counts in the guild, by inviter id, as CSV or a JSON array; streamed.
#[utoipa::path(
    get,
    path = "/v1/bots/{bot_id}/guilds/{guild_id}/export/inviters",
    tag = "dashboard",
    params(GuildParams, ExportQuery),
    responses((status = 200, description = "the inviters (text/csv or application/json)"), CommonErrors),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(guild_id = %guild.guild_id))]
pub async fn inviters(
    caller: Caller,
    guild: GuildPath,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.read(&guild)?;
    let key = guild.key();
    download(&req, state, key, "inviters", move |state, after| {
        inviter_page(state, key, after)
    })
}

/// The export of `what` in the format the request asks, its rows read by `read`.
fn download<C, R, F, Fut>(
    req: &HttpRequest,
    state: web::Data<AppState>,
    guild: GuildKey,
    what: &str,
    read: F,
) -> Result<HttpResponse, ApiError>
where
    C: Copy + 'static,
    R: CsvRow + 'static,
    F: Fn(web::Data<AppState>, Option<C>) -> Fut + Copy + 'static,
    Fut: Future<Output = Result<(Vec<R>, Option<C>), ApiError>> + 'static,
{
    let format = Params::from_query(req)?.choice("format", &FORMATS, Format::Csv)?;
    let empty = closing_of::<R>(format);
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header(attachment(guild, what, format))
        .streaming(stream_rows(state, format, empty, read)))
}

/// A file with no rows: the CSV header alone, or `[]`.
fn closing_of<R: CsvRow>(format: Format) -> Vec<u8> {
    match format {
        Format::Csv => encode::<R>(format, &[], true).unwrap_or_default(),
        Format::Json => b"[]\n".to_vec(),
    }
}
