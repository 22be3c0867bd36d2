//! The one retry policy: which failures are worth another attempt, how long to wait before
//! it, and when to give up. Pure arithmetic: the elapsed time and the jitter come in, the
//! executor in `drplan-retry` sleeps and draws the random numbers.
//!
//! Every provider and the S3 state backend retry through it, in one layer (each request),
//! so retries never stack: a persistently throttled call fails after
//! [`RetryPolicy::DEFAULT`]'s `max_attempts` (5) attempts, at most 3 s of backoff,, and no retry starts later than
//! its `budget` (20 s) after the first attempt did.

use std::time::Duration;

use crate::provider::{ErrorClass, ProviderError};

/// What a failed attempt says about trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// Rate limited: back off and retry.
    Throttled,
    /// A server error or a connection lost after it was made: back off and retry.
    Transient,
    /// No connection could be made (refused, connect timeout): the region may be lost, and
    /// each retry costs another connect timeout; see [`RetryPolicy::unconnected_attempts`].
    Unconnected,
    /// The answer will not change: not found, denied, invalid, conflict.
    Final,
}

impl Failure {
    /// How `e` bears on retrying the request that failed with it.
    pub fn of(e: &ProviderError) -> Failure {
        match e.class {
            ErrorClass::Throttled => Failure::Throttled,
            _ if e.transient => Failure::Transient,
            ErrorClass::Unreachable => Failure::Unconnected,
            _ => Failure::Final,
        }
    }
}

/// Where a request is sent from, for the one setting that differs: a refresh must not wait
/// on a lost region, while a change in a region that answered its refresh deserves a few
/// tries before it counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Phase {
    /// Reading: a refresh, a health gate's poll, the state backend.
    #[default]
    Refresh,
    /// Carrying out one change of a plan.
    Apply,
}

/// How requests are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// No retry starts later than this after the first attempt started.
    pub budget: Duration,
    /// Attempts in all, the first included, for throttled and transient failures.
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry; it doubles with each further one.
    pub first_backoff: Duration,
    /// The ceiling the doubling stops at.
    pub max_backoff: Duration,
    /// Attempts in all for a connection that could not be made, during a refresh: one, so
    /// a lost region costs a single connect timeout.
    pub unconnected_at_refresh: u32,
    /// The same during an apply: the region answered its refresh moments ago.
    pub unconnected_at_apply: u32,
    /// The fixed pause between those attempts.
    pub unconnected_pause: Duration,
}

impl RetryPolicy {
    /// The policy of every regional API and of the state backend.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        budget: Duration::from_secs(20),
        max_attempts: 5,
        first_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(5),
        unconnected_at_refresh: 1,
        unconnected_at_apply: 3,
        unconnected_pause: Duration::from_secs(1),
    };

    /// A global API (Route 53): no lost region stands behind it, and a failover cannot move
    /// DNS without it, so a refused connection gets the apply-time tries in every phase.
    pub const GLOBAL: RetryPolicy = RetryPolicy { unconnected_at_refresh: 3, ..RetryPolicy::DEFAULT };

    /// Attempts in all for a connection that could not be made, in `phase`.
    pub fn unconnected_attempts(&self, phase: Phase) -> u32 {
        match phase {
            Phase::Refresh => self.unconnected_at_refresh,
            Phase::Apply => self.unconnected_at_apply,
        }
    }

    /// The longest a call can spend in backoff before failing for good: the sum of the
    /// ceilings, capped by the budget.
    pub fn worst_backoff(&self) -> Duration {
        let sum: Duration = (1..self.max_attempts).map(|n| self.ceiling(n)).sum();
        sum.min(self.budget)
    }

    /// The backoff ceiling after `attempt` attempts: `first_backoff · 2^(attempt-1)`, at
    /// most `max_backoff`.
    fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.first_backoff.saturating_mul(1 << doublings).min(self.max_backoff)
    }

    /// How long to wait before attempt `attempt + 1`, after `attempt` attempts (the first
    /// is 1) that took `elapsed` in all, the last failing with `failure`; `None` to give up.
    ///
    /// Backoff uses full jitter (a uniform draw below the doubling ceiling, `jitter` in
    /// `[0, 1)`), which spreads concurrent callers apart better than a fixed schedule. A
    /// connection that could not be made is retried after a fixed pause, as often as
    /// [`RetryPolicy::unconnected_attempts`] says for `phase`. No retry is scheduled to
    /// start after the budget.
    pub fn next_delay(
        &self,
        phase: Phase,
        attempt: u32,
        elapsed: Duration,
        failure: Failure,
        jitter: f64,
    ) -> Option<Duration> {
        let delay = match failure {
            Failure::Final => return None,
            Failure::Unconnected if attempt >= self.unconnected_attempts(phase) => return None,
            Failure::Unconnected => self.unconnected_pause,
            Failure::Throttled | Failure::Transient if attempt >= self.max_attempts => return None,
            Failure::Throttled | Failure::Transient => {
                let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
                self.ceiling(attempt).mul_f64(jitter)
            }
        };
        (elapsed + delay <= self.budget).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: RetryPolicy = RetryPolicy::DEFAULT;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_doubles_under_full_jitter_up_to_the_ceiling() {
        for (attempt, ceiling) in [(1, 200), (2, 400), (3, 800), (4, 1_600)] {
            let most = P.next_delay(Phase::Refresh, attempt, Duration::ZERO, Failure::Throttled, 0.999_999).unwrap();
            assert!(most <= MS(ceiling) && most >= MS(ceiling) * 99 / 100, "attempt {attempt}: {most:?}");
            assert_eq!(P.next_delay(Phase::Refresh, attempt, Duration::ZERO, Failure::Transient, 0.0), Some(MS(0)));
            let half = P.next_delay(Phase::Apply, attempt, Duration::ZERO, Failure::Throttled, 0.5).unwrap();
            assert_eq!(half, MS(ceiling / 2));
        }
        let long = RetryPolicy { max_attempts: 40, budget: Duration::from_secs(3600), ..P };
        assert_eq!(long.next_delay(Phase::Refresh, 35, Duration::ZERO, Failure::Throttled, 0.999), Some(MS(4_995)));
    }

    #[test]
    fn jitter_stays_within_range_whatever_is_passed() {
        for jitter in [-1.0, 0.0, 0.25, 0.75, 1.0, 7.0, f64::NAN, f64::INFINITY] {
            let d = P.next_delay(Phase::Refresh, 3, Duration::ZERO, Failure::Throttled, jitter).unwrap();
            assert!(d <= MS(800), "{jitter}: {d:?}");
        }
    }

    #[test]
    fn attempts_stop_at_the_maximum() {
        assert!(P.next_delay(Phase::Refresh, 4, Duration::ZERO, Failure::Throttled, 0.5).is_some());
        assert_eq!(P.next_delay(Phase::Refresh, 5, Duration::ZERO, Failure::Throttled, 0.5), None);
        assert_eq!(P.next_delay(Phase::Apply, 5, Duration::ZERO, Failure::Transient, 0.5), None);
    }

    #[test]
    fn no_retry_starts_after_the_budget() {
        let at = |elapsed| P.next_delay(Phase::Refresh, 2, elapsed, Failure::Throttled, 0.5);
        assert_eq!(at(Duration::from_secs(19)), Some(MS(200)));
        assert_eq!(at(MS(19_800)), Some(MS(200)));
        assert_eq!(at(MS(19_801)), None);
        assert_eq!(at(Duration::from_secs(25)), None);
        assert!(P.worst_backoff() <= P.budget);
        assert_eq!(P.worst_backoff(), MS(200 + 400 + 800 + 1_600));
    }

    #[test]
    fn classes_decide_what_is_retried() {
        let e = |class| ProviderError::new(class, "m");
        assert_eq!(Failure::of(&e(ErrorClass::Throttled)), Failure::Throttled);
        assert_eq!(Failure::of(&e(ErrorClass::Unreachable)), Failure::Unconnected);
        assert_eq!(Failure::of(&e(ErrorClass::Unreachable).transient()), Failure::Transient);
        assert_eq!(Failure::of(&e(ErrorClass::Failed).transient()), Failure::Transient);
        for class in [ErrorClass::NotFound, ErrorClass::Denied, ErrorClass::Invalid, ErrorClass::Conflict] {
            assert_eq!(Failure::of(&e(class)), Failure::Final);
            assert_eq!(P.next_delay(Phase::Apply, 1, Duration::ZERO, Failure::of(&e(class)), 0.5), None);
        }
        assert_eq!(Failure::of(&e(ErrorClass::Failed)), Failure::Final);
    }

    /// A lost region costs one connect attempt at refresh; a change in a region that
    /// answered gets three, a second apart; a global API gets three everywhere.
    #[test]
    fn a_connection_not_made_is_cheap_at_refresh_and_retried_at_apply() {
        let u = Failure::Unconnected;
        assert_eq!(P.next_delay(Phase::Refresh, 1, Duration::ZERO, u, 0.5), None);
        assert_eq!(P.next_delay(Phase::Apply, 1, Duration::ZERO, u, 0.5), Some(Duration::from_secs(1)));
        assert_eq!(P.next_delay(Phase::Apply, 2, Duration::ZERO, u, 0.0), Some(Duration::from_secs(1)));
        assert_eq!(P.next_delay(Phase::Apply, 3, Duration::ZERO, u, 0.5), None);
        let g = RetryPolicy::GLOBAL;
        assert_eq!(g.next_delay(Phase::Refresh, 2, Duration::ZERO, u, 0.5), Some(Duration::from_secs(1)));
        assert_eq!(g.next_delay(Phase::Refresh, 3, Duration::ZERO, u, 0.5), None);
    }
}
