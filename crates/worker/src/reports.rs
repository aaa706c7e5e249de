//! Discord's reported join sources in a batch (`docs/attribution.md#discords-reported-source`):
//! each report is judged by the guild's engine against the join it is about, as stored, and
//! becomes a revision of that join and a line of the guild's tracking health.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use invitrack_attribution::{EngineConfig, GuildAttribution, Judgement, ReportedSource, Verdict};
use invitrack_model::time::time_to_millis;
use invitrack_model::{GuildKey, JoinSource, MemberKey, UnknownReason, UserId};
use invitrack_storage::join_reports::{
    self, Credit, DiscordReport, HealthTally, JoinRevision, StoredJoin,
};
use invitrack_storage::joins::{InviterKey, InviterTotals};
use invitrack_storage::{AsyncPgConnection, StorageError};

/// One member's report, as decoded from the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportedJoin {
    pub(crate) user_id: UserId,
    pub(crate) joined_at: DateTime<Utc>,
    pub(crate) report: ReportedSource,
}

/// How the reports of a batch were judged, for the worker's metrics: the labels, indexed by
/// [`Judged`].
pub const JUDGEMENTS: [&str; 5] = [
    "confirmed",
    "credited",
    "disagreed",
    "uninformative",
    "join_not_stored",
];

/// What became of a report, as an index into [`JUDGEMENTS`].
#[derive(Clone, Copy)]
enum Judged {
    Confirmed = 0,
    Credited = 1,
    Disagreed = 2,
    Uninformative = 3,
    JoinNotStored = 4,
}

/// The reports of one batch: the joins they are about, read up front, and what they change.
#[derive(Default)]
pub(crate) struct ReportEffects {
    stored: HashMap<(MemberKey, DateTime<Utc>), StoredJoin>,
    revisions: Vec<JoinRevision>,
    health: BTreeMap<GuildKey, HealthTally>,
}

impl ReportEffects {
    /// Reads the stored joins these reports are about: one statement.
    pub(crate) async fn read(
        conn: &mut AsyncPgConnection,
        keys: &[(MemberKey, DateTime<Utc>)],
    ) -> Result<Self, StorageError> {
        let stored = if keys.is_empty() {
            HashMap::new()
        } else {
            join_reports::stored_joins(conn, keys).await?
        };
        Ok(Self {
            stored,
            ..Self::default()
        })
    }

    /// Discord refused the search for the guild.
    pub(crate) fn refused(&mut self, guild: GuildKey, status: u16, detail: String) {
        self.health.entry(guild).or_default().refused = Some((status, detail));
    }

    /// Judges each report against its stored join with the guild's engine; returns how many
    /// were judged each way, in the order of [`JUDGEMENTS`].
    pub(crate) fn judge(
        &mut self,
        guild: GuildKey,
        engine: &GuildAttribution,
        config: &EngineConfig,
        reports: Vec<ReportedJoin>,
    ) -> [usize; JUDGEMENTS.len()] {
        let mut judged = [0; JUDGEMENTS.len()];
        let tally = self.health.entry(guild).or_default();
        tally.answered = true;
        tally.refused = None;
        for reported in reports {
            let member = guild.member(reported.user_id);
            let Some(stored) = self.stored.get(&(member, reported.joined_at)) else {
                // Not decided yet, or a join this worker never saw: nothing to revise.
                judged[Judged::JoinNotStored as usize] += 1;
                tracing::debug!(
                    guild_id = %guild.guild_id,
                    member_id = %reported.user_id,
                    "a reported join source for a join not stored: ignored"
                );
                continue;
            };
            let judgement = engine.judge_report(
                config,
                time_to_millis(reported.joined_at),
                &stored_verdict(stored),
                &reported.report,
            );
            tally.reports += 1;
            let (disagrees, credit) = match &judgement {
                Judgement::Confirms => {
                    tally.confirmed += 1;
                    judged[Judged::Confirmed as usize] += 1;
                    (false, None)
                }
                Judgement::Credits(verdict) => {
                    tally.credited += 1;
                    judged[Judged::Credited as usize] += 1;
                    (false, credit_of(verdict))
                }
                Judgement::Contradicts => {
                    tally.disagreements += 1;
                    judged[Judged::Disagreed as usize] += 1;
                    tracing::warn!(
                        guild_id = %guild.guild_id,
                        member_id = %reported.user_id,
                        stored = ?stored.source,
                        code = ?stored.invite_code,
                        reported = %reported.report.source,
                        reported_code = ?reported.report.code,
                        "Discord's reported join source contradicts the invite counters: the counters' decision stands"
                    );
                    (true, None)
                }
                Judgement::Uninformative => {
                    judged[Judged::Uninformative as usize] += 1;
                    (false, None)
                }
            };
            self.revisions.push(JoinRevision {
                join_id: stored.id,
                guild,
                report: DiscordReport {
                    source: reported.report.source,
                    code: reported.report.code,
                    inviter_id: reported.report.inviter_id,
                },
                disagrees,
                credit,
            });
        }
        judged
    }

    /// Writes the revisions and the guilds' health; returns the counters the credits moved.
    pub(crate) async fn write(
        &self,
        conn: &mut AsyncPgConnection,
    ) -> Result<HashMap<InviterKey, InviterTotals>, StorageError> {
        if !self.health.is_empty() {
            join_reports::record_health(conn, &self.health, Utc::now()).await?;
        }
        if self.revisions.is_empty() {
            return Ok(HashMap::new());
        }
        join_reports::revise_joins(conn, &self.revisions).await
    }
}

/// The engine's verdict a join row records.
fn stored_verdict(join: &StoredJoin) -> Verdict {
    match (join.source, &join.invite_code) {
        (JoinSource::Invite, Some(code)) => Verdict::Invite {
            code: code.clone(),
            inviter_id: join.inviter_id,
        },
        (JoinSource::Vanity, Some(code)) => Verdict::Vanity { code: code.clone() },
        (JoinSource::Ambiguous, _) => Verdict::Ambiguous {
            candidates: join.candidates.clone(),
            inviter_id: join.inviter_id,
        },
        _ => Verdict::Unknown {
            reason: join.unknown_reason.unwrap_or(UnknownReason::Untracked),
        },
    }
}

fn credit_of(verdict: &Verdict) -> Option<Credit> {
    match verdict {
        Verdict::Invite { code, inviter_id } => Some(Credit {
            source: JoinSource::Invite,
            code: code.clone(),
            inviter_id: *inviter_id,
        }),
        Verdict::Vanity { code } => Some(Credit {
            source: JoinSource::Vanity,
            code: code.clone(),
            inviter_id: None,
        }),
        Verdict::Ambiguous { .. } | Verdict::Unknown { .. } => None,
    }
}
