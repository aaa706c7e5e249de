//! The decisions a batch hands to the relay (`docs/decisions.md`): each join it stored and each
//! member it saw leave, in the order they happened, with the inviter's counts right after each.
//! They are recorded in the batch's transaction, so each leaves exactly once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use invitrack_bus::proto::{self, decision::Kind};
use invitrack_model::time::now_millis;
use invitrack_model::{MemberKey, UserId};
use invitrack_storage::decisions::NewDecision;
use invitrack_storage::joins::{InviterKey, InviterTotals, NewJoin, WrittenJoins};
use prost::Message as _;

/// One decision of a batch, in the order the batch made it.
pub(crate) enum Outgoing {
    /// The join at this index of the batch's new joins, when it was stored.
    Join { index: usize, rejoin: bool },
    /// A membership that ended.
    Leave {
        member: MemberKey,
        joined_at: DateTime<Utc>,
        left_at: DateTime<Utc>,
        /// The join it ends is among this batch's new joins, at this index.
        new_join: Option<usize>,
    },
}

/// The batch's decisions so far.
#[derive(Default)]
pub(crate) struct DecisionLog {
    items: Vec<Outgoing>,
}

/// How one decision moved its inviter's counters.
#[derive(Clone, Copy, Default)]
struct Delta {
    joins: i64,
    fake: i64,
    leaves: i64,
}

impl DecisionLog {
    pub(crate) fn join(&mut self, index: usize, rejoin: bool) {
        self.items.push(Outgoing::Join { index, rejoin });
    }

    pub(crate) fn leave(
        &mut self,
        member: MemberKey,
        joined_at: DateTime<Utc>,
        left_at: DateTime<Utc>,
        new_join: Option<usize>,
    ) {
        self.items.push(Outgoing::Leave {
            member,
            joined_at,
            left_at,
            new_join,
        });
    }

    /// The bus messages of the decisions that took effect, once `joins` are written: a join
    /// replayed (already stored) is not decided again. Each carries its inviter's counts right
    /// after it: the counters after the batch, less what later decisions of the batch added.
    pub(crate) fn finish(self, joins: &[NewJoin], written: &WrittenJoins) -> Vec<NewDecision> {
        let decided_at_ms = now_millis();
        // Leaves of this batch's own joins, whose join row counted them already.
        let left_in_batch: Vec<usize> = self
            .items
            .iter()
            .filter_map(|item| match item {
                Outgoing::Leave { new_join, .. } => *new_join,
                Outgoing::Join { .. } => None,
            })
            .collect();
        let mut built: Vec<(MemberKey, Option<UserId>, Delta, proto::Decision)> = Vec::new();
        for item in self.items {
            match item {
                Outgoing::Join { index, rejoin } => {
                    let join = &joins[index];
                    if !written.inserted.contains(&(join.member, join.joined_at)) {
                        continue;
                    }
                    let fake = join.fake.is_fake();
                    let delta = Delta {
                        joins: 1,
                        fake: i64::from(fake),
                        // Left before it was decided: its row counted the leave at once.
                        leaves: i64::from(
                            join.left_at.is_some() && !fake && !left_in_batch.contains(&index),
                        ),
                    };
                    let kind = Kind::Join(proto::JoinDecided {
                        joined_at_ms: join.joined_at.timestamp_millis(),
                        source: join.source.as_str().to_owned(),
                        code: join
                            .invite_code
                            .as_ref()
                            .map(|c| c.as_str().to_owned())
                            .unwrap_or_default(),
                        inviter_id: join.inviter_id.map_or(0, UserId::get),
                        candidates: join
                            .candidates
                            .iter()
                            .map(|c| c.as_str().to_owned())
                            .collect(),
                        unknown_reason: join
                            .unknown_reason
                            .map(|r| r.as_str().to_owned())
                            .unwrap_or_default(),
                        fake_reasons: join.fake.names().map(str::to_owned).collect(),
                        rejoin,
                        inviter_counts: None,
                    });
                    built.push((
                        join.member,
                        join.inviter_id,
                        delta,
                        decision(join.member, decided_at_ms, kind),
                    ));
                }
                Outgoing::Leave {
                    member,
                    joined_at,
                    left_at,
                    new_join,
                } => {
                    let (inviter_id, counted) = match new_join {
                        Some(index) => {
                            let join = &joins[index];
                            if !written.inserted.contains(&(join.member, join.joined_at)) {
                                continue;
                            }
                            (join.inviter_id, !join.fake.is_fake())
                        }
                        // A join stored earlier, or one still undecided (no inviter yet).
                        None => written
                            .left
                            .get(&(member, joined_at))
                            .map_or((None, false), |left| (left.inviter_id, left.counted)),
                    };
                    let kind = Kind::Leave(proto::MemberLeft {
                        left_at_ms: left_at.timestamp_millis(),
                        joined_at_ms: joined_at.timestamp_millis(),
                        inviter_id: inviter_id.map_or(0, UserId::get),
                        inviter_counts: None,
                    });
                    let delta = Delta {
                        leaves: i64::from(counted),
                        ..Delta::default()
                    };
                    built.push((
                        member,
                        inviter_id,
                        delta,
                        decision(member, decided_at_ms, kind),
                    ));
                }
            }
        }
        let mut counts: HashMap<InviterKey, InviterTotals> = written.counts.clone();
        for (member, inviter_id, delta, message) in built.iter_mut().rev() {
            let Some(inviter) = *inviter_id else {
                continue;
            };
            let Some(now) = counts.get_mut(&(member.guild(), inviter)) else {
                continue;
            };
            let after = inviter_counts(*now);
            match &mut message.kind {
                Some(Kind::Join(join)) => join.inviter_counts = Some(after),
                Some(Kind::Leave(leave)) => leave.inviter_counts = Some(after),
                None => {}
            }
            now.joins -= delta.joins;
            now.fake -= delta.fake;
            now.leaves -= delta.leaves;
        }
        built
            .into_iter()
            .map(|(member, _, _, message)| NewDecision {
                guild: member.guild(),
                member_id: member.member_id,
                payload: message.encode_to_vec(),
            })
            .collect()
    }
}

fn decision(member: MemberKey, decided_at_ms: i64, kind: Kind) -> proto::Decision {
    proto::Decision {
        // The relay sets it from the row's id.
        id: 0,
        bot_id: member.bot_id.get(),
        guild_id: member.guild_id.get(),
        member_id: member.member_id.get(),
        decided_at_ms,
        kind: Some(kind),
    }
}

/// The counters as `GET /v1/invites/user` shows them (`docs/counting.md#inviter-counts`).
fn inviter_counts(totals: InviterTotals) -> proto::InviterCounts {
    let total = totals.joins + totals.bonus;
    proto::InviterCounts {
        total,
        fake: totals.fake,
        leaves: totals.leaves,
        bonus: totals.bonus,
        real: total - totals.fake - totals.leaves,
    }
}
