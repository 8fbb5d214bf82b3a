//! Health-check state, as Route 53 defines it; pure (no probes, no clock of its own).
//!
//! ```text
//!   probe result (ok / failed + reason, at time t)
//!        │  inverted? flip it
//!        ▼
//!   CheckState::observe ── failure_threshold consecutive results against the current status
//!        │                 flip it (either direction)
//!        ▼
//!   status ──> policy engine (policy::Health) ──> answers and XDP maps
//! ```
//!
//! A new check is healthy until it has data; a new inverted check starts unhealthy; a disabled
//! check is always healthy. A calculated check is healthy iff at least `threshold` of its
//! children are (a disabled child counts as healthy; 0 = always healthy, more than the children
//! = always unhealthy).
//!
//! Around it: [`spec`] (definitions, validated), [`targets`] (which addresses may be probed),
//! [`probe`] (one observation over the network),
//! [`monitor`] (scheduling, the owner of all check states, change notification).

pub mod monitor;
pub mod probe;
pub mod spec;
pub mod targets;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::SystemTime;

/// Route 53's rule for many checkers: healthy when more than `fraction` of the checkers that
/// report (`votes`) say healthy; with none reporting, the `last` status stays.
pub fn combined(votes: impl Iterator<Item = bool>, fraction: f64, last: bool) -> bool {
    let (mut healthy, mut all) = (0usize, 0usize);
    for vote in votes {
        all += 1;
        healthy += usize::from(vote);
    }
    if all == 0 {
        return last;
    }
    healthy as f64 / all as f64 > fraction
}

/// Observations kept per check (like GetHealthCheckStatus's per-checker results).
pub const KEPT_OBSERVATIONS: usize = 16;

/// Route 53's FailureThreshold range.
pub const FAILURE_THRESHOLDS: std::ops::RangeInclusive<u8> = 1..=10;

/// What one probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub at: SystemTime,
    /// The probe's own verdict, before inversion.
    pub ok: bool,
    /// Why it failed (GetHealthCheckLastFailureReason), or what it saw.
    pub detail: String,
}

/// The running state of one (non-calculated) check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckState {
    healthy: bool,
    /// Consecutive results that disagree with `healthy`.
    against: u8,
    observations: VecDeque<Observation>,
}

/// A status change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub healthy: bool,
}

impl CheckState {
    /// A new check: healthy until it has data, unhealthy if inverted.
    pub fn new(inverted: bool) -> Self {
        Self {
            healthy: !inverted,
            against: 0,
            observations: VecDeque::new(),
        }
    }

    /// The status (ignoring `disabled`; see [`effective`](Self::effective)).
    pub fn healthy(&self) -> bool {
        self.healthy
    }

    /// The status the policy engine uses: a disabled check is always healthy.
    pub fn effective(&self, disabled: bool) -> bool {
        disabled || self.healthy
    }

    /// The last observations, oldest first.
    pub fn observations(&self) -> impl DoubleEndedIterator<Item = &Observation> {
        self.observations.iter()
    }

    /// The most recent failed observation.
    pub fn last_failure(&self) -> Option<&Observation> {
        self.observations.iter().rev().find(|o| !o.ok)
    }

    /// Records an observation that does not count towards the threshold (a metric check's
    /// insufficient data under LastKnownStatus).
    pub fn note(&mut self, observation: Observation) {
        if self.observations.len() == KEPT_OBSERVATIONS {
            self.observations.pop_front();
        }
        self.observations.push_back(observation);
    }

    /// Records one probe result. The status flips after `failure_threshold` consecutive
    /// results against it, in either direction.
    pub fn observe(
        &mut self,
        observation: Observation,
        failure_threshold: u8,
        inverted: bool,
    ) -> Option<Transition> {
        let says_healthy = observation.ok != inverted;
        self.note(observation);
        if says_healthy == self.healthy {
            self.against = 0;
            return None;
        }
        self.against += 1;
        if self.against < failure_threshold.max(1) {
            return None;
        }
        self.healthy = says_healthy;
        self.against = 0;
        Some(Transition {
            healthy: self.healthy,
        })
    }
}

/// A calculated check's status from its children's effective statuses.
pub fn calculated(children: &[bool], threshold: u16, inverted: bool) -> bool {
    let healthy = children.iter().filter(|h| **h).count() >= usize::from(threshold);
    healthy != inverted
}

/// Effective health by check id, for the policy engine.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthState(pub HashMap<String, bool>);

impl HealthState {
    /// The checks whose status differs from `before` (a check a state does not know counts
    /// as healthy, as the policy engine reads it).
    pub fn changed_from(&self, before: &HealthState) -> HashSet<String> {
        use crate::policy::Health;
        self.0
            .keys()
            .chain(before.0.keys())
            .filter(|id| self.is_healthy(id) != before.is_healthy(id))
            .cloned()
            .collect()
    }
}

impl crate::policy::Health for HealthState {
    fn is_healthy(&self, check_id: &str) -> bool {
        // A check this state does not know is new: healthy until it has data.
        self.0.get(check_id).copied().unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_checkers_combine_by_route53s_fraction() {
        // One of three healthy is 33% > 18%: healthy; at 50% it is not.
        assert!(combined([true, false, false].into_iter(), 0.18, false));
        assert!(!combined([true, false, false].into_iter(), 0.5, true));
        assert!(!combined([false, false, false].into_iter(), 0.18, true));
        // Exactly the fraction is not more than it.
        assert!(!combined([true, false].into_iter(), 0.5, true));
        // Nobody reports: the last status stays.
        assert!(combined(std::iter::empty(), 0.18, true));
        assert!(!combined(std::iter::empty(), 0.18, false));
    }

    fn obs(ok: bool) -> Observation {
        Observation {
            at: SystemTime::UNIX_EPOCH,
            ok,
            detail: if ok {
                "HTTP 200".into()
            } else {
                "connection refused".into()
            },
        }
    }

    #[test]
    fn a_new_check_is_healthy_and_a_new_inverted_check_unhealthy() {
        assert!(CheckState::new(false).healthy());
        assert!(!CheckState::new(true).healthy());
        let unknown = HealthState::default();
        assert!(crate::policy::Health::is_healthy(&unknown, "never-seen"));
    }

    #[test]
    fn the_threshold_counts_consecutive_results_in_both_directions() {
        let mut s = CheckState::new(false);
        assert_eq!(s.observe(obs(false), 3, false), None);
        assert_eq!(s.observe(obs(false), 3, false), None);
        assert_eq!(
            s.observe(obs(true), 3, false),
            None,
            "a success resets the count"
        );
        assert_eq!(s.observe(obs(false), 3, false), None);
        assert_eq!(s.observe(obs(false), 3, false), None);
        assert_eq!(
            s.observe(obs(false), 3, false),
            Some(Transition { healthy: false })
        );
        assert!(!s.healthy());
        // Recovery needs the same number of consecutive successes.
        assert_eq!(s.observe(obs(true), 3, false), None);
        assert_eq!(s.observe(obs(true), 3, false), None);
        assert_eq!(
            s.observe(obs(true), 3, false),
            Some(Transition { healthy: true })
        );
    }

    #[test]
    fn threshold_one_flips_at_once() {
        let mut s = CheckState::new(false);
        assert_eq!(
            s.observe(obs(false), 1, false),
            Some(Transition { healthy: false })
        );
        assert_eq!(
            s.observe(obs(true), 1, false),
            Some(Transition { healthy: true })
        );
    }

    #[test]
    fn inverted_flips_the_result() {
        let mut s = CheckState::new(true);
        assert_eq!(
            s.observe(obs(false), 2, true),
            None,
            "a failure is healthy when inverted"
        );
        assert_eq!(
            s.observe(obs(false), 2, true),
            Some(Transition { healthy: true })
        );
        assert_eq!(
            s.observe(obs(true), 1, true),
            Some(Transition { healthy: false })
        );
    }

    #[test]
    fn disabled_is_always_healthy() {
        let mut s = CheckState::new(false);
        s.observe(obs(false), 1, false);
        assert!(!s.healthy());
        assert!(s.effective(true));
        assert!(!s.effective(false));
    }

    #[test]
    fn calculated_threshold_rules() {
        assert!(calculated(&[true, false, true], 2, false));
        assert!(!calculated(&[true, false, false], 2, false));
        assert!(calculated(&[false, false], 0, false), "0 = always healthy");
        assert!(
            !calculated(&[true, true], 3, false),
            "more than the children = always unhealthy"
        );
        assert!(!calculated(&[true, true], 1, true), "inverted");
    }

    #[test]
    fn observations_keep_the_latest_and_the_last_failure() {
        let mut s = CheckState::new(false);
        s.observe(obs(false), 5, false);
        for _ in 0..KEPT_OBSERVATIONS {
            s.observe(obs(true), 5, false);
        }
        assert_eq!(s.observations().count(), KEPT_OBSERVATIONS);
        assert!(s.last_failure().is_none(), "the old failure rolled out");
        s.observe(obs(false), 5, false);
        assert_eq!(s.last_failure().unwrap().detail, "connection refused");
    }
}
