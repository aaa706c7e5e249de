//! Discord's reported join source as evidence (`docs/attribution.md#discords-reported-source`):
//! what a member search answer does to a join the counters already decided.
//!
//! The counters stay the basis. A report can only pick, among the explanations the counters
//! left open, the one Discord names; where the counters exclude it, the stored decision stands
//! and the disagreement is recorded, never silently overridden.

use invitrack_model::{DiscordJoinSource, InviteCode, Millis, UnknownReason, UserId};
use serde::{Deserialize, Serialize};

use crate::engine::{EngineConfig, GuildAttribution};
use crate::model::{Target, Verdict};

/// What Discord's member search says about how one member joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedSource {
    pub source: DiscordJoinSource,
    /// `source_invite_code`: the invite's code, or the vanity code.
    pub code: Option<InviteCode>,
    pub inviter_id: Option<UserId>,
}

impl ReportedSource {
    /// The explanation Discord names, when it names a code.
    fn target(&self) -> Option<Target> {
        let code = self.code.clone()?;
        match self.source {
            DiscordJoinSource::Invite => Some(Target::Invite {
                code,
                inviter_id: self.inviter_id,
            }),
            DiscordJoinSource::Vanity => Some(Target::Vanity { code }),
            _ => None,
        }
    }
}

/// What a report does to a decided join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Judgement {
    /// Discord names what the counters forced.
    Confirms,
    /// The counters allowed Discord's explanation without forcing it: the join is decided
    /// again with this verdict.
    Credits(Verdict),
    /// The counters exclude what Discord says: the decision stands, the disagreement is kept.
    Contradicts,
    /// Nothing to learn: Discord does not say, or says what the counters cannot check.
    Uninformative,
}

impl GuildAttribution {
    /// Judges Discord's `report` about the join at `joined_at` that was decided `stored`,
    /// against what this guild's counters showed.
    #[must_use]
    pub fn judge_report(
        &self,
        config: &EngineConfig,
        joined_at: Millis,
        stored: &Verdict,
        report: &ReportedSource,
    ) -> Judgement {
        if report.source == DiscordJoinSource::Unknown {
            return Judgement::Uninformative;
        }
        let named = report.target();
        match stored {
            Verdict::Invite { code, .. } | Verdict::Vanity { code } => {
                let same_kind = matches!(
                    (stored, report.source),
                    (Verdict::Invite { .. }, DiscordJoinSource::Invite)
                        | (Verdict::Vanity { .. }, DiscordJoinSource::Vanity)
                );
                match (&report.code, same_kind) {
                    (Some(reported), true) if reported == code => Judgement::Confirms,
                    // Through the right kind of link, without saying which.
                    (None, true) => Judgement::Uninformative,
                    _ => Judgement::Contradicts,
                }
            }
            Verdict::Ambiguous {
                candidates,
                inviter_id,
            } => match named {
                Some(target) if candidates.contains(target.code()) => {
                    Judgement::Credits(self.credit(target, *inviter_id))
                }
                // Not a candidate: excluded if the join certainly took one of the candidates'
                // uses, or if the counters watched the reported code over the join. Otherwise
                // the join may have come through something no counter showed, which cannot be
                // checked: the report is not taken, nor held against the counters.
                Some(target)
                    if inviter_id.is_some() || self.counters_cover(config, &target, joined_at) =>
                {
                    Judgement::Contradicts
                }
                Some(_) => Judgement::Uninformative,
                // The counters said "through an invite of this inviter"; Discord says otherwise.
                None if inviter_id.is_some() && !report.source.through_a_code() => {
                    Judgement::Contradicts
                }
                None => Judgement::Uninformative,
            },
            Verdict::Unknown { reason } => match named {
                None if report.source.through_a_code() => Judgement::Uninformative,
                None if *reason == UnknownReason::Untracked => Judgement::Confirms,
                None => Judgement::Uninformative,
                // No counter moved for this join: the code may still be one the counters
                // never saw move (created and used up between two reads, never read), but not
                // one they watched over the join.
                Some(target)
                    if *reason == UnknownReason::Untracked
                        && self.counters_cover(config, &target, joined_at) =>
                {
                    Judgement::Contradicts
                }
                Some(target) => Judgement::Credits(self.credit(target, None)),
            },
        }
    }

    /// The verdict crediting `target`, with the inviter the guild's invites name (which may
    /// be a member a bot-made invite is credited to), else the one already known, else
    /// Discord's.
    fn credit(&self, target: Target, known_inviter: Option<UserId>) -> Verdict {
        match target {
            Target::Vanity { code } => Verdict::Vanity { code },
            Target::Invite { code, inviter_id } => Verdict::Invite {
                inviter_id: known_inviter
                    .or_else(|| self.inviter_of(&code))
                    .or(inviter_id),
                code,
            },
        }
    }
}
