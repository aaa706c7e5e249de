//! What every consistent explanation of a group of joins agrees on.
//!
//! A group is a set of joins and a set of *units*: each unit is one use that a counter certainly
//! gained (an invite's `uses` went up by one, an invite vanished at its last use, the vanity
//! counter moved). A unit can be explained by a join whose time falls inside the unit's window.
//! A consistent explanation assigns every unit to a distinct join; joins left over came through
//! no counter we can see. The engine may credit a join only with what *every* consistent
//! explanation gives it.
//!
//! With one maximum matching in hand, each question below is answered by one augmenting-path
//! search, so a raid of hundreds of joins stays cheap.

use std::collections::BTreeSet;

use invitrack_model::Millis;

/// Joins `0..joins`, units `0..unit_targets.len()`, edges unit -> joins that may explain it.
pub(crate) struct Group {
    pub joins: usize,
    pub unit_targets: Vec<usize>,
    pub unit_joins: Vec<Vec<usize>>,
}

/// What all consistent explanations say about one join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinEvidence {
    /// Some consistent explanation leaves this join unexplained.
    pub may_be_untracked: bool,
    /// The targets some consistent explanation gives this join.
    pub possible_targets: BTreeSet<usize>,
}

/// Returns `None` when no consistent explanation exists (more uses than joins could explain:
/// joins we never saw, or a clock assumption broken); the caller must then credit nobody.
pub(crate) fn analyse(group: &Group) -> Option<Vec<JoinEvidence>> {
    let base = Matching::maximum(group)?;
    let mut join_units: Vec<Vec<usize>> = vec![Vec::new(); group.joins];
    for (unit, joins) in group.unit_joins.iter().enumerate() {
        for &join in joins {
            join_units[join].push(unit);
        }
    }
    let evidence = (0..group.joins)
        .map(|join| {
            let may_be_untracked = match base.unit_of_join[join] {
                None => true,
                Some(unit) => {
                    let mut m = base.clone();
                    m.unassign(unit);
                    m.augment_without(group, unit, join)
                }
            };
            let mut possible_targets = BTreeSet::new();
            for &unit in &join_units[join] {
                let target = group.unit_targets[unit];
                if possible_targets.contains(&target) {
                    continue;
                }
                if base.can_force(group, join, unit) {
                    possible_targets.insert(target);
                }
            }
            JoinEvidence {
                may_be_untracked,
                possible_targets,
            }
        })
        .collect();
    Some(evidence)
}

/// What the order of reads adds to a group. Every counter of one invite list is read at one
/// instant, and the lists are read one after the other, so the joins a read counts are all those
/// whose counters moved before that instant: if join `a` certainly moved its counter before join
/// `b`, `b` cannot be in an earlier read than `a`. Independent unit windows forget this, and
/// a join made while a fetch was in flight is then often left ambiguous for nothing.
pub(crate) struct ReadOrder {
    /// `joined_at` of each join of the group.
    pub join_times: Vec<Millis>,
    /// For each unit, the sequence number of the invite-list read that revealed it; `None` for
    /// units not pinned to such a read (vanity counter, INVITE_DELETE, overlapping fetches).
    pub unit_reads: Vec<Option<u64>>,
    /// Joins at least this far apart certainly moved their counters in `joined_at` order.
    pub certain_gap: Millis,
}

/// Like [`analyse`], taking the order of reads into account by enumerating every consistent
/// explanation. `None` when the group is too large to enumerate within `budget` steps or when
/// no explanation respects the order (a clock assumption was broken): the caller then keeps
/// [`analyse`]'s answer, which only ever allows more.
pub(crate) fn analyse_ordered(
    group: &Group,
    order: &ReadOrder,
    budget: usize,
) -> Option<Vec<JoinEvidence>> {
    let mut search = OrderedSearch::new(group, order, budget);
    search.explore(0)?;
    if !search.found_any {
        return None;
    }
    Some(
        search
            .evidence
            .into_iter()
            .map(|(may_be_untracked, possible_targets)| JoinEvidence {
                may_be_untracked,
                possible_targets,
            })
            .collect(),
    )
}

struct OrderedSearch<'a> {
    group: &'a Group,
    order: &'a ReadOrder,
    /// Units in the order they are assigned: the most constrained first, twins adjacent.
    units: Vec<usize>,
    /// `twin_of_previous[i]`: `units[i]` is interchangeable with `units[i - 1]`, so only
    /// explanations giving it a later join are tried (the others are the same explanation).
    twin_of_previous: Vec<bool>,
    join_of_unit: Vec<Option<usize>>,
    unit_of_join: Vec<Option<usize>>,
    steps_left: usize,
    found_any: bool,
    evidence: Vec<(bool, BTreeSet<usize>)>,
}

impl<'a> OrderedSearch<'a> {
    fn new(group: &'a Group, order: &'a ReadOrder, budget: usize) -> Self {
        let mut units: Vec<usize> = (0..group.unit_targets.len()).collect();
        let key = |u: &usize| {
            (
                group.unit_joins[*u].len(),
                group.unit_targets[*u],
                order.unit_reads[*u],
                group.unit_joins[*u].clone(),
            )
        };
        units.sort_by_key(key);
        let twin_of_previous = (0..units.len())
            .map(|i| i > 0 && key(&units[i]) == key(&units[i - 1]))
            .collect();
        Self {
            group,
            order,
            units,
            twin_of_previous,
            join_of_unit: vec![None; group.unit_targets.len()],
            unit_of_join: vec![None; group.joins],
            steps_left: budget,
            found_any: false,
            evidence: vec![(false, BTreeSet::new()); group.joins],
        }
    }

    /// Assigns `units[depth..]`; `None` when the budget ran out.
    fn explore(&mut self, depth: usize) -> Option<()> {
        self.steps_left = self.steps_left.checked_sub(1)?;
        let Some(&unit) = self.units.get(depth) else {
            self.record();
            return Some(());
        };
        let lowest = if self.twin_of_previous[depth] {
            self.join_of_unit[self.units[depth - 1]].map_or(0, |j| j + 1)
        } else {
            0
        };
        for &join in &self.group.unit_joins[unit] {
            if join < lowest
                || self.unit_of_join[join].is_some()
                || !self.respects_order(unit, join)
            {
                continue;
            }
            self.join_of_unit[unit] = Some(join);
            self.unit_of_join[join] = Some(unit);
            self.explore(depth + 1)?;
            self.join_of_unit[unit] = None;
            self.unit_of_join[join] = None;
        }
        Some(())
    }

    fn respects_order(&self, unit: usize, join: usize) -> bool {
        let Some(read) = self.order.unit_reads[unit] else {
            return true;
        };
        let time = self.order.join_times[join];
        let gap = self.order.certain_gap;
        self.unit_of_join
            .iter()
            .enumerate()
            .all(|(other, assigned)| {
                let Some(other_read) = assigned.and_then(|u| self.order.unit_reads[u]) else {
                    return true;
                };
                let other_time = self.order.join_times[other];
                if other_time + gap <= time {
                    other_read <= read
                } else if time + gap <= other_time {
                    read <= other_read
                } else {
                    true
                }
            })
    }

    fn record(&mut self) {
        self.found_any = true;
        for (join, unit) in self.unit_of_join.iter().enumerate() {
            match unit {
                Some(unit) => {
                    self.evidence[join].1.insert(self.group.unit_targets[*unit]);
                }
                None => self.evidence[join].0 = true,
            }
        }
    }
}

#[derive(Clone)]
struct Matching {
    join_of_unit: Vec<Option<usize>>,
    unit_of_join: Vec<Option<usize>>,
}

impl Matching {
    /// A matching that explains every unit, if one exists.
    fn maximum(group: &Group) -> Option<Self> {
        let mut m = Self {
            join_of_unit: vec![None; group.unit_targets.len()],
            unit_of_join: vec![None; group.joins],
        };
        for unit in 0..group.unit_targets.len() {
            if !m.augment(group, unit, None) {
                return None;
            }
        }
        Some(m)
    }

    fn unassign(&mut self, unit: usize) {
        if let Some(join) = self.join_of_unit[unit].take() {
            self.unit_of_join[join] = None;
        }
    }

    fn assign(&mut self, unit: usize, join: usize) {
        self.join_of_unit[unit] = Some(join);
        self.unit_of_join[join] = Some(unit);
    }

    /// Re-explains `unit` without ever using `banned` join.
    fn augment_without(&mut self, group: &Group, unit: usize, banned: usize) -> bool {
        self.augment(group, unit, Some(banned))
    }

    /// Is there a consistent explanation in which `join` explains `unit`?
    fn can_force(&self, group: &Group, join: usize, unit: usize) -> bool {
        if self.join_of_unit[unit] == Some(join) {
            return true;
        }
        let mut m = self.clone();
        let previous_unit = m.unit_of_join[join];
        if let Some(previous) = previous_unit {
            m.unassign(previous);
        }
        m.unassign(unit);
        m.assign(unit, join);
        match previous_unit {
            None => true,
            Some(previous) => m.augment_without(group, previous, join),
        }
    }

    /// Kuhn's augmenting path from `unit`, iterative so that large raids cannot overflow the
    /// stack.
    fn augment(&mut self, group: &Group, unit: usize, banned: Option<usize>) -> bool {
        let mut visited = vec![false; group.joins];
        if let Some(b) = banned {
            visited[b] = true;
        }
        // Stack of (unit, index of next edge to try); parent join links rebuild the path.
        let mut stack: Vec<(usize, usize)> = vec![(unit, 0)];
        let mut via_join: Vec<usize> = Vec::new();
        while let Some(top) = stack.last_mut() {
            let edges = &group.unit_joins[top.0];
            if top.1 >= edges.len() {
                stack.pop();
                via_join.pop();
                continue;
            }
            let join = edges[top.1];
            top.1 += 1;
            if visited[join] {
                continue;
            }
            visited[join] = true;
            match self.unit_of_join[join] {
                None => {
                    // Flip the path: every unit on the stack takes the join that led onward.
                    via_join.push(join);
                    for (depth, &(u, _)) in stack.iter().enumerate() {
                        let j = via_join[depth];
                        self.assign(u, j);
                    }
                    return true;
                }
                Some(owner) => {
                    via_join.push(join);
                    stack.push((owner, 0));
                }
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(joins: usize, units: &[(usize, &[usize])]) -> Group {
        Group {
            joins,
            unit_targets: units.iter().map(|(t, _)| *t).collect(),
            unit_joins: units.iter().map(|(_, j)| j.to_vec()).collect(),
        }
    }

    #[test]
    fn one_join_one_unit_is_forced() {
        let e = analyse(&group(1, &[(7, &[0])])).expect("consistent");
        assert!(!e[0].may_be_untracked);
        assert_eq!(e[0].possible_targets, BTreeSet::from([7]));
    }

    #[test]
    fn two_joins_one_unit_neither_forced() {
        let e = analyse(&group(2, &[(7, &[0, 1])])).expect("consistent");
        for j in &e {
            assert!(j.may_be_untracked);
            assert_eq!(j.possible_targets, BTreeSet::from([7]));
        }
    }

    #[test]
    fn two_joins_two_units_swap() {
        let e = analyse(&group(2, &[(1, &[0, 1]), (2, &[0, 1])])).expect("consistent");
        for j in &e {
            assert!(!j.may_be_untracked);
            assert_eq!(j.possible_targets, BTreeSet::from([1, 2]));
        }
    }

    #[test]
    fn window_pins_one_join() {
        // Unit of target 1 can only be join 0; unit of target 2 either join.
        let e = analyse(&group(2, &[(1, &[0]), (2, &[0, 1])])).expect("consistent");
        assert_eq!(e[0].possible_targets, BTreeSet::from([1]));
        assert!(!e[0].may_be_untracked);
        assert_eq!(e[1].possible_targets, BTreeSet::from([2]));
        assert!(!e[1].may_be_untracked);
    }

    #[test]
    fn read_order_separates_joins_made_during_a_fetch() {
        // Join 0 then join 1, 500 ms apart; both could be either read's use by their windows,
        // but read 1 happened before read 2, so it counted join 0 first.
        let g = group(2, &[(1, &[0, 1]), (2, &[0, 1])]);
        let order = ReadOrder {
            join_times: vec![0, 500],
            unit_reads: vec![Some(1), Some(2)],
            certain_gap: 201,
        };
        let e = analyse_ordered(&g, &order, 1_000).expect("consistent");
        assert_eq!(e[0].possible_targets, BTreeSet::from([1]));
        assert_eq!(e[1].possible_targets, BTreeSet::from([2]));
        assert!(!e[0].may_be_untracked && !e[1].may_be_untracked);
    }

    #[test]
    fn read_order_cannot_separate_joins_closer_than_the_clock_allows() {
        let g = group(2, &[(1, &[0, 1]), (2, &[0, 1])]);
        let order = ReadOrder {
            join_times: vec![0, 150],
            unit_reads: vec![Some(1), Some(2)],
            certain_gap: 201,
        };
        let e = analyse_ordered(&g, &order, 1_000).expect("consistent");
        assert!(
            e.iter()
                .all(|j| j.possible_targets == BTreeSet::from([1, 2]))
        );
    }

    #[test]
    fn read_order_gives_up_beyond_its_budget() {
        let joins = 40;
        let all: Vec<usize> = (0..joins).collect();
        let g = Group {
            joins,
            unit_targets: (0..joins).map(|i| i % 7).collect(),
            unit_joins: (0..joins).map(|_| all.clone()).collect(),
        };
        let order = ReadOrder {
            join_times: (0..joins).map(|j| j as Millis).collect(),
            unit_reads: (0..joins).map(|u| Some(u as u64 % 2)).collect(),
            certain_gap: 1_000,
        };
        assert!(analyse_ordered(&g, &order, 10_000).is_none());
    }

    #[test]
    fn more_units_than_joins_is_inconsistent() {
        assert!(analyse(&group(1, &[(1, &[0]), (2, &[0])])).is_none());
    }

    #[test]
    fn large_raid_is_fast_enough_and_symmetric() {
        let joins = 300;
        let all: Vec<usize> = (0..joins).collect();
        let g = Group {
            joins,
            unit_targets: (0..joins).map(|i| i % 3).collect(),
            unit_joins: (0..joins).map(|_| all.clone()).collect(),
        };
        let e = analyse(&g).expect("consistent");
        assert!(
            e.iter()
                .all(|j| !j.may_be_untracked && j.possible_targets.len() == 3)
        );
    }
}
