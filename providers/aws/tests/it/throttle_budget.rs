//! A call throttled every time, through the harness's fault proxy in front of moto, fails
//! within the retry policy's one budget after exactly its attempts: the SDK's own retries
//! are off, and nothing else retries on top of the executor.

use crate::common;

use std::time::{Duration, Instant};

use drplan_core::plan::desired::desired;
use drplan_core::provider::{ErrorClass, Provider, RefreshRequest};
use drplan_harness::{FaultKind, FaultProxy, Faults};
use drplan_provider_aws::AwsProvider;
use drplan_retry::RetryPolicy;

use common::{load, moto, shop_hcl};

#[tokio::test]
async fn a_persistently_throttled_call_fails_within_the_budget_after_the_policys_attempts() {
    let env = moto().await;
    let throttled = Faults::always(FaultKind::Throttle)
        .matching(|r| r.action.as_deref() == Some("DescribeInstances") && r.region.as_deref() == Some("us-east-1"));
    let proxy = FaultProxy::start(env.moto.url(), throttled).expect("proxy starts");
    let config = load(&shop_hcl(proxy.url(), "us-east-1", "eu-west-1"));
    let sdk = env.sdk.to_builder().endpoint_url(proxy.url()).build();
    let provider = AwsProvider::with_sdk_config(&config, &sdk, Vec::new()).with_route53_pace(env.route53_pace.clone());

    let regions: Vec<String> = config.regions.iter().map(|r| r.name.clone()).collect();
    let want = desired(&config);
    let started = Instant::now();
    let err = provider
        .refresh(&RefreshRequest { project: &config.project, regions: &regions, desired: &want })
        .await
        .expect_err("a region that only ever answers RequestLimitExceeded fails the refresh");
    let elapsed = started.elapsed();

    let policy = RetryPolicy::DEFAULT;
    assert_eq!(err.class, ErrorClass::Throttled, "{err}");
    let attempts = format!("(after {} attempts in ", policy.max_attempts);
    assert!(err.message.starts_with("DescribeInstances in region us-east-1: RequestLimitExceeded"), "{err}");
    assert!(err.message.contains(&attempts), "the error says how long it tried: {err}");
    assert_eq!(proxy.counts().throttled, u64::from(policy.max_attempts), "one layer of retries: {:?}", proxy.counts());
    // The backoff is at most its worst case; the attempts themselves are local round trips.
    assert!(elapsed <= policy.worst_backoff() + Duration::from_secs(5), "took {elapsed:?}");
    assert!(elapsed < policy.budget, "took {elapsed:?}");
}
