//! Pacing for APIs with an account-wide request rate: at most N requests in any window,
//! shared by every caller in the process, so parallel actions cannot add up past the limit.

use std::collections::VecDeque;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Route 53 accepts five API requests per second per AWS account and answers
/// `Throttling: Rate exceeded` above that ("Quotas on API requests", Route 53 Developer Guide).
pub const ROUTE53_REQUESTS: usize = 5;
/// The window those five are counted over: a second, plus room for a request that leaves a
/// little after its turn (scheduling, signing), because Route 53 counts when requests arrive.
pub const ROUTE53_WINDOW: Duration = Duration::from_millis(1_200);

static ROUTE53: LazyLock<Arc<Pace>> = LazyLock::new(|| Arc::new(Pace::new(ROUTE53_REQUESTS, ROUTE53_WINDOW)));

/// Hands out turns so that no `window` holds more than `requests` of them. The first
/// `requests` go at once (a burst); after that each waits until the one `requests` turns
/// before it has left the window. Turns are first come, first served.
#[derive(Debug)]
pub struct Pace {
    requests: usize,
    window: Duration,
    /// The most recent `requests` turns given, in order.
    turns: Mutex<VecDeque<Instant>>,
}

impl Pace {
    pub fn new(requests: usize, window: Duration) -> Pace {
        let requests = requests.max(1);
        Pace { requests, window, turns: Mutex::new(VecDeque::with_capacity(requests + 1)) }
    }

    /// The one limiter every Route 53 request of this process goes through: the limit is
    /// per account, so two clients with their own limiters could exceed it together.
    pub fn route53() -> Arc<Pace> {
        Arc::clone(&ROUTE53)
    }

    /// Waits for the next turn and returns it. A caller that gives up while waiting still
    /// used its turn, which only makes the pace more conservative.
    pub async fn wait(&self) -> Instant {
        let turn = self.turn(Instant::now());
        tokio::time::sleep_until(turn).await;
        turn
    }

    /// Takes the next turn for a request ready at `now`.
    pub fn turn(&self, now: Instant) -> Instant {
        // The deque is valid whatever panicked while it was held: every update is one push
        // and pops.
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        let mut turn = match turns.back() {
            Some(last) => now.max(*last),
            None => now,
        };
        if turns.len() >= self.requests {
            turn = turn.max(turns[turns.len() - self.requests] + self.window);
        }
        turns.push_back(turn);
        while turns.len() > self.requests {
            turns.pop_front();
        }
        turn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No half-open window of `window` holds more than `requests` of the sorted `turns`.
    fn within_limit(turns: &[Instant], requests: usize, window: Duration) -> bool {
        turns.windows(requests + 1).all(|w| w[requests] - w[0] >= window)
    }

    #[test]
    fn a_burst_goes_at_once_then_one_turn_per_leaving_turn() {
        let pace = Pace::new(3, Duration::from_secs(1));
        let t0 = Instant::now();
        let turns: Vec<Instant> = (0..7).map(|_| pace.turn(t0)).collect();
        let offsets: Vec<u64> = turns.iter().map(|t| (*t - t0).as_millis() as u64).collect();
        assert_eq!(offsets, [0, 0, 0, 1000, 1000, 1000, 2000]);
        assert!(within_limit(&turns, 3, Duration::from_secs(1)));
    }

    #[test]
    fn requests_already_spread_out_do_not_wait() {
        let pace = Pace::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        for s in 0..5 {
            let at = t0 + Duration::from_millis(600 * s);
            assert_eq!(pace.turn(at), at, "request {s} was paced without need");
        }
    }

    #[test]
    fn turns_are_first_come_first_served_and_never_break_the_window() {
        let pace = Pace::new(5, Duration::from_millis(1_200));
        let t0 = Instant::now();
        // Arrivals in bunches and gaps, some reported with an older clock reading than a
        // request already queued.
        let arrivals =
            [0, 0, 10, 10, 10, 10, 50, 900, 905, 2_000, 2_001, 1_990, 6_000, 6_000, 6_000, 6_000, 6_000, 6_000];
        let mut turns = Vec::new();
        for ms in arrivals {
            let at = t0 + Duration::from_millis(ms);
            let turn = pace.turn(at);
            assert!(turn >= at, "a turn before its request was ready");
            turns.push(turn);
        }
        assert!(turns.windows(2).all(|w| w[0] <= w[1]), "out of order: {turns:?}");
        assert!(within_limit(&turns, 5, Duration::from_millis(1_200)), "{turns:?}");
    }

    #[test]
    fn route53_is_one_limiter_for_the_process() {
        assert!(Arc::ptr_eq(&Pace::route53(), &Pace::route53()));
        assert_eq!((ROUTE53_REQUESTS, ROUTE53.window), (5, ROUTE53_WINDOW));
        assert!(ROUTE53_WINDOW >= Duration::from_secs(1), "five per second at most");
    }

    /// With the real clock: concurrent waiters each return no earlier than their turn, and
    /// the turns keep the limit. Only lower bounds on time are checked, which cannot flake.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_waiters_wait_for_their_turns() {
        let pace = Arc::new(Pace::new(2, Duration::from_millis(30)));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let pace = Arc::clone(&pace);
            tasks.spawn(async move {
                let turn = pace.wait().await;
                (turn, Instant::now())
            });
        }
        let mut turns = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let (turn, woke) = done.expect("waiter");
            assert!(woke >= turn, "woke before its turn");
            turns.push(turn);
        }
        turns.sort();
        assert!(within_limit(&turns, 2, Duration::from_millis(30)), "{turns:?}");
        assert!(turns[7] - turns[0] >= Duration::from_millis(90), "8 turns at 2 per 30 ms span 3 windows");
    }
}
