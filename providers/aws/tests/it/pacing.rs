//! Route 53 allows five requests per second per account. Many Route 53 operations at once
//! (record and health check updates, refreshes, health gates, as a parallel apply runs
//! them) must still reach it at no more than five in any second.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use drplan_core::plan::{self, Options, Prior};
use drplan_core::provider::{ApplyRequest, Provider, idempotency_token};
use drplan_provider_aws::pace::ROUTE53_REQUESTS;

use common::{ZONE, converge, load, moto, refresh, shop_hcl};

/// The most requests of `times` (sorted) inside any one-second window, and where it starts.
fn busiest_second(times: &[Instant]) -> (usize, usize) {
    let mut best = (0, 0);
    for (i, t) in times.iter().enumerate() {
        let n = times[i..].iter().take_while(|u| **u - *t < Duration::from_secs(1)).count();
        if n > best.0 {
            best = (n, i);
        }
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_route53_operations_stay_within_five_per_second() {
    let env = moto().await;
    env.create_zone(ZONE).await;
    let before = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider_paced_by_process(&before);
    let mut prior = Prior::default();
    converge(&provider, &before, &mut prior, "deploy", usize::MAX).await;

    // A new TTL and health check threshold: both records and both checks change.
    let hcl = shop_hcl(env.moto.url(), "us-east-1", "eu-west-1")
        .replace("ttl    = 60", "ttl    = 120")
        .replace("threshold = 2", "threshold = 3");
    let after = load(&hcl);
    // Two providers, as two parts of one process would build them: one limiter serves both.
    let (applier, applied) = env.provider_paced_by_process(&after);
    let (reader, read) = env.provider_paced_by_process(&after);
    let live = refresh(&reader, &after).await;
    let plan = plan::plan(&after, &prior, Some(&live), &Options::default()).expect("plan");
    let changes: Vec<plan::Change> = plan
        .changes
        .iter()
        .filter(|c| c.address.starts_with("dns.") || c.address.starts_with("health_check."))
        .cloned()
        .collect();
    assert_eq!(changes.len(), 4, "{:#?}", plan.changes);

    let (applier, reader) = (Arc::new(applier), Arc::new(reader));
    let after = Arc::new(after);
    let start = (applied.count(), read.count());
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for change in changes {
        let (provider, after) = (Arc::clone(&applier), Arc::clone(&after));
        tasks.spawn(async move {
            let token = idempotency_token("update", &change.address);
            provider
                .apply(&ApplyRequest { project: &after.project, change: &change, idempotency_token: &token })
                .await
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", change.address))
        });
    }
    for _ in 0..3 {
        let (provider, after) = (Arc::clone(&reader), Arc::clone(&after));
        tasks.spawn(async move {
            refresh(&*provider, &after).await;
            Ok(())
        });
    }
    for region in ["us-east-1", "eu-west-1"] {
        let provider = Arc::clone(&reader);
        tasks.spawn(async move {
            provider
                .wait_healthy(
                    "shop",
                    region,
                    std::time::SystemTime::now(),
                    Duration::from_millis(10),
                    Duration::from_secs(120),
                )
                .await
                .map_err(|e| format!("gate {region}: {e}"))
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("the operation ran to its end").unwrap_or_else(|e| panic!("{e}"));
    }
    let elapsed = began.elapsed();

    let route53 = |r: Vec<String>| r.iter().filter(|r| r.contains("/2013-04-01/")).count();
    let concurrent = route53(applied.since(start.0)) + route53(read.since(start.1));
    let mut times = applied.route53_times();
    times.extend(read.route53_times());
    times.sort();
    let (most, at) = busiest_second(&times);
    println!(
        "{concurrent} Route 53 requests from 9 concurrent operations in {elapsed:.1?}; busiest second: {most} requests"
    );
    assert!(concurrent >= 30, "too few requests to exercise the limit: {concurrent}");
    let offsets: Vec<u128> = times[at..at + most].iter().map(|t| (*t - times[at]).as_millis()).collect();
    assert!(
        most <= ROUTE53_REQUESTS,
        "{most} Route 53 requests within one second (at ms offsets {offsets:?}); the limit is {ROUTE53_REQUESTS}"
    );
}
