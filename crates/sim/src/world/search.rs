//! `POST /guilds/{id}/members-search`: Discord's undocumented member search, which tells how
//! each member joined (`docs/discord-members-search.md`). The world answers from its ground
//! truth, with the two delays the community reports: a guild is searchable only once indexed
//! (202 until then), and a member only some seconds after joining.

use actix_web::http::StatusCode;
use serde::{Deserialize, Serialize};
use twilight_model::id::{Id, marker::GuildMarker};

use super::model::State;
use super::specs::JoinPath;
use super::to_json;
use crate::WorldError;
use crate::search_form::{MembersSearch, SearchedMember};

/// How the member search behaves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MembersSearchOptions {
    /// How long a guild takes to be indexed, from its first search, ms (0: always indexed).
    pub index_ms: u64,
    /// How long after joining a member can be found, ms.
    pub lag_ms: u64,
    /// `retry_after` of the 202 answer while a guild is indexed, seconds.
    pub retry_after_secs: f64,
}

impl Default for MembersSearchOptions {
    /// A guild indexed 5 s after its first search; members found 20 s after joining (the one
    /// figure reported, `docs/discord-members-search.md#lag-between-a-join-and-its-appearance`).
    fn default() -> Self {
        Self {
            index_ms: 5_000,
            lag_ms: 20_000,
            retry_after_secs: 5.0,
        }
    }
}

/// `join_source_type` values (`docs/discord-members-search.md#join_source_type`).
fn join_source_type(path: JoinPath) -> u8 {
    match path {
        JoinPath::Untracked => 0,
        JoinPath::OAuth2 => 1,
        JoinPath::Invite => 5,
        JoinPath::Vanity => 6,
    }
}

#[derive(Serialize)]
struct NotIndexed {
    message: &'static str,
    code: u32,
    documents_indexed: usize,
    retry_after: f64,
}

#[derive(Serialize)]
struct Found {
    guild_id: String,
    members: Vec<FoundMember>,
    page_result_count: usize,
    total_result_count: usize,
}

#[derive(Serialize)]
struct FoundMember {
    member: serde_json::Value,
    join_source_type: u8,
    source_invite_code: Option<String>,
    inviter_id: Option<String>,
}

impl State {
    /// Sets how the member search behaves.
    pub(super) fn set_members_search(&mut self, options: MembersSearchOptions) {
        self.members_search = options;
    }

    /// The answer to a member search in `guild_id`.
    pub(crate) fn rest_members_search(
        &mut self,
        guild_id: Id<GuildMarker>,
        search: &MembersSearch,
    ) -> Result<(StatusCode, Option<String>), WorldError> {
        let now = self.now_ms();
        let options = self.members_search;
        let guild = self.guild(guild_id)?;
        if !guild.manage_guild {
            return Err(WorldError::MissingPermissions);
        }
        let lag = i64::try_from(options.lag_ms).unwrap_or(i64::MAX);
        let visible: Vec<SearchedMember> = guild
            .members
            .iter()
            .filter(|(_, member)| member.joined_at_ms.saturating_add(lag) <= now)
            .map(|(user_id, member)| {
                let truth = member.truth.and_then(|index| self.truth.get(index));
                SearchedMember {
                    user_id: user_id.get(),
                    joined_at_ms: member.joined_at_ms,
                    join_source_type: truth.map_or(0, |t| join_source_type(t.path)),
                    source_invite_code: truth.and_then(|t| t.code.clone()),
                    inviter_id: truth.and_then(|t| t.inviter_id).map(Id::get),
                }
            })
            .collect();
        let guild = self
            .guilds
            .get_mut(&guild_id)
            .ok_or(WorldError::UnknownGuild(guild_id))?;
        let started = *guild.search_index_started_ms.get_or_insert(now);
        let index = i64::try_from(options.index_ms).unwrap_or(i64::MAX);
        if now < started.saturating_add(index) {
            let body = NotIndexed {
                message: "Index not yet available. Try again later",
                code: 110_000,
                documents_indexed: 0,
                retry_after: options.retry_after_secs,
            };
            return Ok((StatusCode::ACCEPTED, Some(to_json(&body)?)));
        }
        let mut matching: Vec<SearchedMember> =
            visible.into_iter().filter(|m| search.matches(m)).collect();
        matching.sort_by_key(|m| search.key(m));
        let total = matching.len();
        let page: Vec<FoundMember> = matching
            .iter()
            .filter(|m| search.within_cursors(m))
            .take(search.limit)
            .map(|m| FoundMember {
                member: self.member_json(guild_id, m.user_id),
                join_source_type: m.join_source_type,
                source_invite_code: m.source_invite_code.clone(),
                inviter_id: m.inviter_id.map(|id| id.to_string()),
            })
            .collect();
        let body = Found {
            guild_id: guild_id.to_string(),
            page_result_count: page.len(),
            members: page,
            total_result_count: total,
        };
        Ok((StatusCode::OK, Some(to_json(&body)?)))
    }

    /// A member as the guild member object shows it (`null` if no longer a member: the
    /// search only lists current members).
    fn member_json(&self, guild_id: Id<GuildMarker>, user_id: u64) -> serde_json::Value {
        self.guilds
            .get(&guild_id)
            .and_then(|guild| self.guild_member(guild, Id::new(user_id)))
            .and_then(|member| serde_json::to_value(member).ok())
            .unwrap_or_default()
    }
}
