//! Who waits to be asked about, per guild, and what each answer does to the wait: plain data
//! and the caller's clock, so every rule is tested without Discord or NATS. `T` is what is
//! handed back once a member is done with (the decision to acknowledge).

use std::collections::HashMap;

use invitrack_model::{GuildId, UserId};

use crate::members_search::MAX_MEMBERS_PER_SEARCH;
use crate::snapshots::forbidden_wait_ms;

/// Longest wait between two attempts for a member not found yet.
const MAX_RETRY_WAIT_MS: i64 = 5 * 60_000;
/// Wait after a failure that may pass (429, 5xx, timeout).
const TRANSIENT_WAIT_MS: i64 = 5_000;

/// How long to wait, and how often to try.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AskPolicy {
    /// Before the first attempt, after the join; doubled for each later one.
    pub(crate) delay_ms: i64,
    pub(crate) attempts: u8,
    /// A refusing guild's first back-off, doubled at each refusal in a row.
    pub(crate) refused_wait_ms: i64,
}

/// One member waiting to be asked about.
#[derive(Debug)]
pub(crate) struct Wanted<T> {
    pub(crate) user_id: UserId,
    pub(crate) due_ms: i64,
    attempts: u8,
    pub(crate) token: T,
}

#[derive(Debug)]
struct GuildQueue<T> {
    waiting: Vec<Wanted<T>>,
    /// Nothing is asked of the guild before this (a 202's `retry_after`, a refusal's back-off).
    not_before_ms: i64,
    refusals: u32,
    in_flight: bool,
}

impl<T> Default for GuildQueue<T> {
    fn default() -> Self {
        Self {
            waiting: Vec::new(),
            not_before_ms: 0,
            refusals: 0,
            in_flight: false,
        }
    }
}

/// The members every guild waits for, and whether asking is on at all.
#[derive(Debug)]
pub(crate) struct AskQueue<T> {
    policy: AskPolicy,
    guilds: HashMap<GuildId, GuildQueue<T>>,
    /// Discord answered that the route no longer takes our request: nothing more is asked.
    route_refused: bool,
}

impl<T> AskQueue<T> {
    pub(crate) fn new(policy: AskPolicy) -> Self {
        Self {
            policy,
            guilds: HashMap::new(),
            route_refused: false,
        }
    }

    /// Members waiting.
    pub(crate) fn waiting(&self) -> usize {
        self.guilds.values().map(|q| q.waiting.len()).sum()
    }

    /// Queues a member who joined at `joined_at_ms`; gives the token back when nothing is
    /// asked (the route refused, or the guild refuses for now).
    pub(crate) fn push(
        &mut self,
        guild_id: GuildId,
        user_id: UserId,
        joined_at_ms: i64,
        now: i64,
        token: T,
    ) -> Option<T> {
        if self.route_refused {
            return Some(token);
        }
        let queue = self.guilds.entry(guild_id).or_default();
        if queue.refusals > 0 && queue.not_before_ms > now {
            return Some(token);
        }
        queue.waiting.push(Wanted {
            user_id,
            due_ms: joined_at_ms.saturating_add(self.policy.delay_ms),
            attempts: 0,
            token,
        });
        None
    }

    /// A member left: nobody can find them any more. Their waiting entries, done with.
    pub(crate) fn remove_member(&mut self, guild_id: GuildId, user_id: UserId) -> Vec<T> {
        let Some(queue) = self.guilds.get_mut(&guild_id) else {
            return Vec::new();
        };
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut queue.waiting)
            .into_iter()
            .partition(|w| w.user_id == user_id);
        queue.waiting = kept;
        gone.into_iter().map(|w| w.token).collect()
    }

    /// The next search: the guild whose oldest due member waited longest, with up to ten of
    /// its due members. The guild is in flight until [`AskQueue::answered`].
    pub(crate) fn next_batch(&mut self, now: i64) -> Option<(GuildId, Vec<Wanted<T>>)> {
        let (_, guild_id) = self
            .guilds
            .iter()
            .filter(|(_, q)| !q.in_flight && q.not_before_ms <= now)
            .filter_map(|(g, q)| q.waiting.iter().map(|w| w.due_ms).min().map(|d| (d, *g)))
            .filter(|(due, _)| *due <= now)
            .min()?;
        let queue = self.guilds.get_mut(&guild_id)?;
        queue.waiting.sort_by_key(|w| w.due_ms);
        let due = queue
            .waiting
            .iter()
            .take(MAX_MEMBERS_PER_SEARCH)
            .take_while(|w| w.due_ms <= now)
            .count();
        queue.in_flight = true;
        Some((guild_id, queue.waiting.drain(..due).collect()))
    }

    /// The search found `found` of the batch: the others are asked again later, each until
    /// its attempts run out. Returns the members done with.
    pub(crate) fn found(
        &mut self,
        guild_id: GuildId,
        batch: Vec<Wanted<T>>,
        found: &[UserId],
        now: i64,
    ) -> Answered<T> {
        let policy = self.policy;
        let queue = self.answered(guild_id);
        queue.refusals = 0;
        let mut answered = Answered::default();
        for mut wanted in batch {
            if found.contains(&wanted.user_id) {
                answered.done.push(wanted.token);
                continue;
            }
            wanted.attempts += 1;
            if wanted.attempts >= policy.attempts {
                answered.given_up += 1;
                answered.done.push(wanted.token);
            } else {
                wanted.due_ms = now + retry_wait_ms(policy.delay_ms, wanted.attempts);
                queue.waiting.push(wanted);
            }
        }
        answered
    }

    /// 202: the guild is being indexed. The batch waits with it until `until_ms`.
    pub(crate) fn indexing(&mut self, guild_id: GuildId, batch: Vec<Wanted<T>>, until_ms: i64) {
        let queue = self.answered(guild_id);
        queue.not_before_ms = until_ms;
        queue.waiting.extend(batch);
    }

    /// The guild refused: nothing more is asked of it for a doubling back-off, and everyone
    /// waiting for it is done with. Returns them and the back-off.
    pub(crate) fn refused(
        &mut self,
        guild_id: GuildId,
        batch: Vec<Wanted<T>>,
        now: i64,
    ) -> (Answered<T>, i64) {
        let first_wait = self.policy.refused_wait_ms;
        let queue = self.answered(guild_id);
        let wait_ms = forbidden_wait_ms(first_wait, queue.refusals);
        queue.refusals += 1;
        queue.not_before_ms = now.saturating_add(wait_ms);
        let done = batch
            .into_iter()
            .chain(queue.waiting.drain(..))
            .map(|w| w.token)
            .collect();
        (Answered { done, given_up: 0 }, wait_ms)
    }

    /// The route no longer takes our request: nothing more is asked, by anyone. Everyone
    /// waiting is done with; whether it was the first such answer.
    pub(crate) fn route_refused(&mut self, batch: Vec<Wanted<T>>) -> (Vec<T>, bool) {
        let first = !self.route_refused;
        self.route_refused = true;
        let mut done: Vec<T> = batch.into_iter().map(|w| w.token).collect();
        for queue in self.guilds.values_mut() {
            queue.in_flight = false;
            done.extend(queue.waiting.drain(..).map(|w| w.token));
        }
        (done, first)
    }

    /// The search failed in a way that may pass: each member is tried again a little later,
    /// until its attempts run out.
    pub(crate) fn failed(
        &mut self,
        guild_id: GuildId,
        batch: Vec<Wanted<T>>,
        now: i64,
    ) -> Answered<T> {
        let attempts = self.policy.attempts;
        let queue = self.answered(guild_id);
        let mut answered = Answered::default();
        for mut wanted in batch {
            wanted.attempts += 1;
            if wanted.attempts >= attempts {
                answered.given_up += 1;
                answered.done.push(wanted.token);
            } else {
                wanted.due_ms = now + TRANSIENT_WAIT_MS;
                queue.waiting.push(wanted);
            }
        }
        answered
    }

    /// Forgets guilds with nobody waiting and nothing to remember (a refusal's back-off).
    pub(crate) fn forget_idle(&mut self, now: i64) {
        self.guilds.retain(|_, q| {
            !q.waiting.is_empty() || q.in_flight || (q.refusals > 0 && q.not_before_ms > now)
        });
    }

    /// The guild's search is over: it may be asked again.
    fn answered(&mut self, guild_id: GuildId) -> &mut GuildQueue<T> {
        let queue = self.guilds.entry(guild_id).or_default();
        queue.in_flight = false;
        queue
    }
}

/// What an answer finished.
#[derive(Debug)]
pub(crate) struct Answered<T> {
    /// Members done with (found, refused or given up on).
    pub(crate) done: Vec<T>,
    /// Members given up on: never found, or failing, within the attempts.
    pub(crate) given_up: u64,
}

impl<T> Default for Answered<T> {
    fn default() -> Self {
        Self {
            done: Vec::new(),
            given_up: 0,
        }
    }
}

/// The wait before attempt `attempts + 1` for a member not found yet: the first delay again
/// (at least a second), doubled at each attempt, five minutes at most.
fn retry_wait_ms(delay_ms: i64, attempts: u8) -> i64 {
    delay_ms
        .max(1_000)
        .saturating_mul(1 << attempts.saturating_sub(1).min(10))
        .min(MAX_RETRY_WAIT_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: AskPolicy = AskPolicy {
        delay_ms: 30_000,
        attempts: 3,
        refused_wait_ms: 600_000,
    };
    const G1: GuildId = GuildId::new(1);
    const G2: GuildId = GuildId::new(2);

    fn user(n: u64) -> UserId {
        UserId::new(n)
    }

    #[test]
    fn members_are_asked_once_searchable_ten_at_a_time_oldest_guild_first() {
        let mut queue = AskQueue::new(POLICY);
        for n in 0..12 {
            assert!(queue.push(G1, user(n), 1_000 + n as i64, 0, n).is_none());
        }
        assert!(queue.push(G2, user(99), 500, 0, 99).is_none());
        // Nobody is searchable before their join plus the delay.
        assert!(queue.next_batch(30_499).is_none());
        let (guild, batch) = queue.next_batch(30_500).expect("G2's member is due");
        assert_eq!((guild, batch.len()), (G2, 1));
        // G1's twelve are due; a search takes ten.
        let (guild, batch) = queue.next_batch(40_000).expect("G1 due");
        assert_eq!((guild, batch.len()), (G1, 10));
        // G1 is in flight: its other two wait for the answer.
        assert!(queue.next_batch(40_000).is_none());
        let answered = queue.found(G1, batch, &[user(0), user(1)], 40_000);
        assert_eq!((answered.done, answered.given_up), (vec![0, 1], 0));
        assert_eq!(queue.waiting(), 10);
        // The two never asked come first; those not found wait the delay again.
        let (_, batch) = queue.next_batch(40_001).expect("the rest");
        let users: Vec<u64> = batch.iter().map(|w| w.user_id.get()).collect();
        assert_eq!(users, [10, 11]);
    }

    #[test]
    fn a_member_never_found_is_given_up_after_the_attempts() {
        let mut queue = AskQueue::new(POLICY);
        queue.push(G1, user(7), 0, 0, "decision");
        let mut now = 30_000;
        for attempt in 1..=POLICY.attempts {
            let (_, batch) = queue.next_batch(now).expect("due");
            let answered = queue.found(G1, batch, &[], now);
            if attempt < POLICY.attempts {
                assert!(answered.done.is_empty());
                // The wait doubles: 30 s, then 60 s.
                now += retry_wait_ms(POLICY.delay_ms, attempt);
                assert!(queue.next_batch(now - 1).is_none());
            } else {
                assert_eq!((answered.done, answered.given_up), (vec!["decision"], 1));
            }
        }
        assert_eq!(queue.waiting(), 0);
    }

    #[test]
    fn an_indexing_guild_waits_with_its_members() {
        let mut queue = AskQueue::new(POLICY);
        queue.push(G1, user(1), 0, 0, 1);
        let (_, batch) = queue.next_batch(30_000).expect("due");
        queue.indexing(G1, batch, 35_000);
        assert!(queue.next_batch(34_999).is_none());
        let (_, batch) = queue.next_batch(35_000).expect("indexed");
        assert_eq!(batch.len(), 1);
    }

    #[test]
    fn a_refusing_guild_is_left_alone_with_a_doubling_back_off() {
        let mut queue = AskQueue::new(POLICY);
        queue.push(G1, user(1), 0, 0, 1);
        queue.push(G1, user(2), 40_000, 0, 2);
        let (_, batch) = queue.next_batch(30_000).expect("due");
        let (answered, wait) = queue.refused(G1, batch, 30_000);
        // Everyone of the guild is done with, waiting or not.
        assert_eq!((answered.done.len(), wait), (2, 600_000));
        // New joins of the guild are not queued during the back-off.
        assert_eq!(queue.push(G1, user(3), 40_000, 100_000, 3), Some(3));
        assert!(queue.push(G1, user(4), 700_000, 630_000, 4).is_none());
        let (_, batch) = queue.next_batch(740_000).expect("after the back-off");
        let (_, wait) = queue.refused(G1, batch, 740_000);
        assert_eq!(wait, 1_200_000);
        // Other guilds are asked meanwhile.
        assert!(queue.push(G2, user(5), 740_000, 740_000, 5).is_none());
        queue.forget_idle(740_000);
        assert!(queue.next_batch(770_000).is_some());
    }

    #[test]
    fn a_refused_route_stops_all_asking() {
        let mut queue = AskQueue::new(POLICY);
        queue.push(G1, user(1), 0, 0, 1);
        queue.push(G2, user(2), 0, 0, 2);
        let (_, batch) = queue.next_batch(30_000).expect("due");
        let (done, first) = queue.route_refused(batch);
        assert_eq!((done.len(), first), (2, true));
        assert_eq!(queue.push(G1, user(3), 0, 0, 3), Some(3));
        assert!(queue.next_batch(100_000).is_none());
        assert!(!queue.route_refused(Vec::new()).1);
    }

    #[test]
    fn a_member_who_left_is_not_asked_about() {
        let mut queue = AskQueue::new(POLICY);
        queue.push(G1, user(1), 0, 0, 1);
        queue.push(G1, user(2), 0, 0, 2);
        assert_eq!(queue.remove_member(G1, user(1)), vec![1]);
        let (_, batch) = queue.next_batch(30_000).expect("due");
        assert_eq!(batch.len(), 1);
        let answered = queue.failed(G1, batch, 30_000);
        assert!(answered.done.is_empty());
        assert!(queue.next_batch(30_000 + TRANSIENT_WAIT_MS).is_some());
    }
}
