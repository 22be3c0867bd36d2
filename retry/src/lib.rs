//! drplan-retry: the one executor of core's [`RetryPolicy`]. Every provider request and
//! every state request goes through [`run`] (or [`run_with`]), and nothing else retries:
//! the SDKs' own retries are off, the apply layer does not retry, so retries never stack.
//!
//! The executor owns what the policy may not: the clock, the sleeps and the random jitter
//! drawn for each retry. Which phase a request is sent in (a refresh, or one change of an
//! apply) is set around a provider's `apply` with [`applying`] and read back here, so the
//! requests below need not carry it.

use std::future::Future;

use drplan_core::provider::ProviderError;
pub use drplan_core::retry::{Failure, Phase, RetryPolicy};
use tokio::time::Instant;

tokio::task_local! {
    static PHASE: Phase;
}

/// Runs `f` with its requests sent in the apply phase (see [`RetryPolicy::unconnected_attempts`]).
pub async fn applying<F: Future>(f: F) -> F::Output {
    PHASE.scope(Phase::Apply, f).await
}

/// The phase the current task's requests are sent in: [`Phase::Refresh`] unless inside
/// [`applying`].
pub fn phase() -> Phase {
    PHASE.try_with(|p| *p).unwrap_or_default()
}

/// Runs `attempt` until it succeeds, fails for good, or the policy gives up. An error
/// given up on after retries says how many attempts it took and how long, unless it is an
/// unreachable one (whose text goes into plans, which must not vary from run to run).
pub async fn run<T, F, Fut>(policy: &RetryPolicy, attempt: F) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let started = Instant::now();
    let mut attempts = 0;
    run_counted(policy, Failure::of, &mut attempts, attempt).await.map_err(|mut e| {
        if attempts > 1 && e.class != drplan_core::provider::ErrorClass::Unreachable {
            e.message = format!("{} (after {attempts} attempts in {:.1?})", e.message, started.elapsed());
        }
        e
    })
}

/// [`run`] for errors of another type (the state backend's), classified by `classify`,
/// returned as the last attempt gave them.
pub async fn run_with<T, E, F, Fut>(policy: &RetryPolicy, classify: impl Fn(&E) -> Failure, attempt: F) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    run_counted(policy, classify, &mut 0, attempt).await
}

async fn run_counted<T, E, F, Fut>(
    policy: &RetryPolicy,
    classify: impl Fn(&E) -> Failure,
    attempts: &mut u32,
    mut attempt: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let phase = phase();
    let started = Instant::now();
    loop {
        *attempts += 1;
        let error = match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let failure = classify(&error);
        match policy.next_delay(phase, *attempts, started.elapsed(), failure, fastrand::f64()) {
            Some(delay) => {
                // Throttling says the account is busier than drplan paces for: worth a warning.
                if failure == Failure::Throttled {
                    tracing::warn!(attempt = *attempts, reason = %error, pause = ?delay, "retrying a throttled call");
                } else {
                    tracing::debug!(attempt = *attempts, ?failure, reason = %error, pause = ?delay, "retrying a call");
                }
                tokio::time::sleep(delay).await;
            }
            None => return Err(error),
        }
    }
}

/// Whether `e` (or an error it wraps) says no connection was made: refused, unroutable, or
/// not accepted within the connect timeout. Nothing was sent, so nothing can have happened;
/// a connection lost after it was made says neither.
pub fn connect_failed(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut next = Some(e);
    while let Some(err) = next {
        // The AWS SDK's connect timeout: "HTTP connect timeout occurred after 3s".
        if err.to_string().starts_with("HTTP connect timeout") {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionRefused | ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable
            )
        {
            return true;
        }
        next = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use drplan_core::provider::ErrorClass;

    use super::*;

    fn counting(
        calls: &AtomicU32,
        class: ErrorClass,
    ) -> impl FnMut() -> std::future::Ready<Result<(), ProviderError>> + '_ {
        move || {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err(ProviderError::new(class, "m")))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_call_gives_up_after_the_maximum_within_the_budget() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let e = run(&RetryPolicy::DEFAULT, counting(&calls, ErrorClass::Throttled)).await.unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), RetryPolicy::DEFAULT.max_attempts);
        assert!(started.elapsed() <= RetryPolicy::DEFAULT.worst_backoff(), "{:?}", started.elapsed());
        assert!(e.message.starts_with("m (after 5 attempts in "), "{}", e.message);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connection_costs_one_attempt_at_refresh_and_three_at_apply() {
        let calls = AtomicU32::new(0);
        let e = run(&RetryPolicy::DEFAULT, counting(&calls, ErrorClass::Unreachable)).await.unwrap_err();
        assert_eq!((calls.load(Ordering::SeqCst), e.message.as_str()), (1, "m"));
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let e = applying(run(&RetryPolicy::DEFAULT, counting(&calls, ErrorClass::Unreachable))).await.unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert_eq!(e.message, "m", "an unreachable error's text does not vary with timing");
        assert_eq!(phase(), Phase::Refresh, "the phase ends with the future it was set for");
    }

    #[tokio::test(start_paused = true)]
    async fn what_will_not_change_is_not_retried() {
        let calls = AtomicU32::new(0);
        let e = run(&RetryPolicy::DEFAULT, counting(&calls, ErrorClass::Denied)).await.unwrap_err();
        assert_eq!((calls.load(Ordering::SeqCst), e.message.as_str()), (1, "m"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_that_clears_succeeds() {
        let mut left = 2;
        let got = run(&RetryPolicy::DEFAULT, || {
            left -= 1;
            std::future::ready(if left >= 0 {
                Err(ProviderError::new(ErrorClass::Failed, "503").transient())
            } else {
                Ok(7)
            })
        })
        .await;
        assert_eq!(got, Ok(7));
    }

    #[test]
    fn connect_failures_are_told_from_lost_connections() {
        use std::io::{Error, ErrorKind};
        assert!(connect_failed(&Error::from(ErrorKind::ConnectionRefused)));
        assert!(!connect_failed(&Error::from(ErrorKind::ConnectionReset)));
        assert!(!connect_failed(&Error::from(ErrorKind::UnexpectedEof)));
    }
}
