//! The fault plan: which device operations fail with an injected `-EIO`, and at which write the
//! device loses power.
//!
//! A [`FaultPlan`] is plain data (the harness serializes it into `.repro` files). The counters
//! that make it fire live in a [`FaultState`] inside the device and restart from zero whenever
//! a plan is installed.
//!
//! # Rules
//!
//! Each rule sees every operation. An operation *matches* a rule when its kind is the rule's
//! [`FaultOp`], its effective zone is the rule's zone (if any), and for [`FaultWhen::Block`] its
//! block is that block. A flush has no block and no zone: a rule with a zone, a
//! [`FaultWhen::Block`] or a [`FaultWhen::FirstEach`] never matches a flush. A matching rule
//! *fires*:
//!
//! | `when` | not sticky | sticky |
//! |---|---|---|
//! | `Nth(n)` | on the n-th matching op (0-based) | on the n-th and every later matching op |
//! | `Block(b)` | on the first matching op | on every matching op |
//! | `Always` | on the first matching op | on every matching op |
//! | `FirstEach` | on the first matching op of each block | on every matching op |
//!
//! `FirstEach` is a flaky device whose retries succeed: every block fails once, the first
//! time it is touched (`ext4_find_shared()` meeting that on an indirect block is U2).
//!
//! The operation fails if any rule fires; a failed operation does not reach the device (no
//! change, not logged).
//!
//! # Crash point
//!
//! `crash_at_write: Some(w)`: the w-th write (0-based, FUA or not, failed ones included) issued
//! since the plan was installed never reaches the device, and the device is dead from then on:
//! that write and every later operation fail with "device crashed". The crash point is checked
//! before the rules.

use super::zone::Zone;
use crate::units::Pblk;
use std::collections::BTreeSet;

/// The kind of operation a rule targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultOp {
    /// Block reads.
    Read,
    /// Block writes, FUA or not.
    Write,
    /// Cache flushes.
    Flush,
}

/// Which matching operations a rule fails (see the module doc's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultWhen {
    /// The n-th matching operation (0-based) since the plan was installed.
    Nth(u64),
    /// Operations on this block.
    Block(Pblk),
    /// Any matching operation.
    Always,
    /// The first matching operation on each block.
    FirstEach,
}

/// One fault rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FaultRule {
    /// The kind of operation.
    pub op: FaultOp,
    /// Which matching operations fail.
    pub when: FaultWhen,
    /// Only operations in this zone match (`None`: any zone).
    pub zone: Option<Zone>,
    /// Whether the rule keeps firing after the first time.
    pub sticky: bool,
}

impl FaultRule {
    /// A one-shot rule in any zone.
    pub fn new(op: FaultOp, when: FaultWhen) -> FaultRule {
        FaultRule {
            op,
            when,
            zone: None,
            sticky: false,
        }
    }

    /// The same rule, restricted to `zone`.
    pub fn in_zone(self, zone: Zone) -> FaultRule {
        FaultRule {
            zone: Some(zone),
            ..self
        }
    }

    /// The same rule, sticky.
    pub fn sticky(self) -> FaultRule {
        FaultRule {
            sticky: true,
            ..self
        }
    }

    /// Whether an operation of kind `op` on `blk` (`None` for a flush) in `zone` matches.
    fn matches(&self, op: FaultOp, blk: Option<Pblk>, zone: Option<Zone>) -> bool {
        let zone_ok = match self.zone {
            None => true,
            Some(z) => zone == Some(z),
        };
        let block_ok = match self.when {
            FaultWhen::Block(b) => blk == Some(b),
            FaultWhen::FirstEach => blk.is_some(),
            FaultWhen::Nth(_) | FaultWhen::Always => true,
        };
        self.op == op && zone_ok && block_ok
    }
}

/// The faults to inject into one device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The rules, all evaluated on every operation.
    pub rules: Vec<FaultRule>,
    /// The write (0-based, since the plan was installed) at which the device loses power.
    pub crash_at_write: Option<u64>,
}

impl FaultPlan {
    /// No faults, no crash.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// Only a crash point at write `w`.
    pub fn crash_at_write(w: u64) -> FaultPlan {
        FaultPlan {
            rules: Vec::new(),
            crash_at_write: Some(w),
        }
    }

    /// The same plan with one more rule.
    pub fn with_rule(mut self, rule: FaultRule) -> FaultPlan {
        self.rules.push(rule);
        self
    }

    /// Whether the plan injects nothing.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.crash_at_write.is_none()
    }
}

/// What the plan decides for one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The operation proceeds.
    Pass,
    /// The operation fails with an injected error.
    Fail,
    /// The device loses power at this write.
    Crash,
}

/// An installed plan and its counters.
#[derive(Clone, Debug, Default)]
pub(crate) struct FaultState {
    plan: FaultPlan,
    /// Per rule: matching operations seen so far.
    matched: Vec<u64>,
    /// Per rule: whether it has fired.
    fired: Vec<bool>,
    /// Per rule: the blocks it failed, in order: for a [`FaultWhen::FirstEach`] rule each
    /// one, for the others the first operation's (none if that was a flush).
    failed: Vec<Vec<Pblk>>,
    /// Per [`FaultWhen::FirstEach`] rule: the blocks it has met.
    seen: Vec<BTreeSet<Pblk>>,
    /// Writes issued since the plan was installed.
    writes: u64,
}

impl FaultState {
    /// Install `plan` with fresh counters.
    pub(crate) fn new(plan: FaultPlan) -> FaultState {
        let n = plan.rules.len();
        FaultState {
            plan,
            matched: vec![0; n],
            fired: vec![false; n],
            failed: vec![Vec::new(); n],
            seen: vec![BTreeSet::new(); n],
            writes: 0,
        }
    }

    /// The installed plan.
    pub(crate) fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Per rule of the plan: the blocks it failed, in order (for a [`FaultWhen::FirstEach`]
    /// rule every one, else the first one).
    pub(crate) fn failed_blocks(&self) -> &[Vec<Pblk>] {
        &self.failed
    }

    /// Decide the fate of one operation and advance the counters. `blk` is `None` for a flush.
    pub(crate) fn check(&mut self, op: FaultOp, blk: Option<Pblk>, zone: Option<Zone>) -> Verdict {
        if op == FaultOp::Write {
            let index = self.writes;
            self.writes += 1;
            if self.plan.crash_at_write == Some(index) {
                return Verdict::Crash;
            }
        }
        let mut fail = false;
        for (i, rule) in self.plan.rules.iter().enumerate() {
            if !rule.matches(op, blk, zone) {
                continue;
            }
            let index = self.matched[i];
            self.matched[i] += 1;
            // A FirstEach rule's first operation on a block (always `None` for other rules).
            let mut fresh = None;
            let due = match rule.when {
                FaultWhen::Nth(n) => index == n || (rule.sticky && index > n),
                FaultWhen::Block(_) | FaultWhen::Always => true,
                FaultWhen::FirstEach => {
                    fresh = blk.filter(|&b| self.seen[i].insert(b));
                    rule.sticky || fresh.is_some()
                }
            };
            let again = rule.sticky || rule.when == FaultWhen::FirstEach;
            if due && (again || !self.fired[i]) {
                let first = if self.fired[i] { None } else { blk };
                self.failed[i].extend(fresh.or(first));
                self.fired[i] = true;
                fail = true;
            }
        }
        if fail {
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(plan: FaultPlan, ops: &[(FaultOp, Option<u64>, Option<Zone>)]) -> Vec<Verdict> {
        let mut st = FaultState::new(plan);
        ops.iter()
            .map(|&(op, b, z)| st.check(op, b.map(Pblk), z))
            .collect()
    }

    const W: FaultOp = FaultOp::Write;
    const R: FaultOp = FaultOp::Read;
    const F: FaultOp = FaultOp::Flush;
    use Verdict::{Crash, Fail, Pass};

    #[test]
    fn nth_counts_only_matching_ops() {
        let plan = FaultPlan::none().with_rule(FaultRule::new(W, FaultWhen::Nth(1)));
        let ops = [(R, Some(0), None), (W, Some(0), None), (R, Some(0), None)]
            .into_iter()
            .chain([(W, Some(1), None), (W, Some(2), None), (F, None, None)])
            .collect::<Vec<_>>();
        assert_eq!(run(plan, &ops), vec![Pass, Pass, Pass, Fail, Pass, Pass]);
    }

    #[test]
    fn sticky_nth_fails_from_n_on() {
        let plan = FaultPlan::none().with_rule(FaultRule::new(R, FaultWhen::Nth(1)).sticky());
        let ops = [(R, Some(5), None); 4];
        assert_eq!(run(plan, &ops), vec![Pass, Fail, Fail, Fail]);
    }

    #[test]
    fn block_rule_once_or_sticky() {
        let once = FaultPlan::none().with_rule(FaultRule::new(W, FaultWhen::Block(Pblk(9))));
        let ops = [(W, Some(8), None), (W, Some(9), None), (W, Some(9), None)];
        assert_eq!(run(once.clone(), &ops), vec![Pass, Fail, Pass]);
        let mut sticky = once;
        sticky.rules[0].sticky = true;
        assert_eq!(run(sticky, &ops), vec![Pass, Fail, Fail]);
    }

    #[test]
    fn first_each_fails_every_block_once() {
        let plan = FaultPlan::none().with_rule(FaultRule::new(R, FaultWhen::FirstEach));
        let ops = [
            (R, Some(7), None),
            (R, Some(7), None),
            (R, Some(8), None),
            (F, None, None),
            (R, Some(7), None),
            (R, Some(8), None),
            (R, Some(9), None),
        ];
        assert_eq!(
            run(plan.clone(), &ops),
            vec![Fail, Pass, Fail, Pass, Pass, Pass, Fail]
        );
        let mut st = FaultState::new(plan);
        for &(op, b, z) in &ops {
            st.check(op, b.map(Pblk), z);
        }
        assert_eq!(st.failed_blocks(), [vec![Pblk(7), Pblk(8), Pblk(9)]]);
        let mut sticky = FaultPlan::none().with_rule(FaultRule::new(R, FaultWhen::FirstEach));
        sticky.rules[0].sticky = true;
        assert_eq!(run(sticky.clone(), &ops[..3]), vec![Fail, Fail, Fail]);
        let mut st = FaultState::new(sticky);
        for &(op, b, z) in &ops {
            st.check(op, b.map(Pblk), z);
        }
        assert_eq!(st.failed_blocks(), [vec![Pblk(7), Pblk(8), Pblk(9)]]);
    }

    #[test]
    fn zone_filter_and_flushes() {
        let plan = FaultPlan::none()
            .with_rule(FaultRule::new(W, FaultWhen::Always).in_zone(Zone::Journal))
            .with_rule(FaultRule::new(F, FaultWhen::Always).in_zone(Zone::Data));
        let ops = [
            (W, Some(1), Some(Zone::Data)),
            (F, None, None),
            (W, Some(1), Some(Zone::Journal)),
            (W, Some(2), Some(Zone::Journal)),
        ];
        // The flush rule has a zone, so it never matches; the journal rule fires once.
        assert_eq!(run(plan, &ops), vec![Pass, Pass, Fail, Pass]);
        let flush = FaultPlan::none().with_rule(FaultRule::new(F, FaultWhen::Nth(0)));
        assert_eq!(
            run(flush, &[(F, None, None), (F, None, None)]),
            vec![Fail, Pass]
        );
    }

    #[test]
    fn crash_point_counts_all_writes_and_precedes_rules() {
        let plan = FaultPlan::crash_at_write(2).with_rule(FaultRule::new(W, FaultWhen::Nth(0)));
        let ops = [
            (W, Some(1), None),
            (R, Some(1), None),
            (W, Some(2), None),
            (W, Some(3), None),
        ];
        assert_eq!(run(plan, &ops), vec![Fail, Pass, Pass, Crash]);
    }

    #[test]
    fn every_rule_counts_every_op() {
        // Two rules fire on different ops; a rule that fires does not hide the op from others.
        let plan = FaultPlan::none()
            .with_rule(FaultRule::new(W, FaultWhen::Nth(0)))
            .with_rule(FaultRule::new(W, FaultWhen::Nth(1)));
        assert_eq!(run(plan, &[(W, Some(0), None); 3]), vec![Fail, Fail, Pass]);
        assert!(FaultPlan::none().is_empty());
        assert!(!FaultPlan::crash_at_write(0).is_empty());
    }
}
