//! The data tier's groundwork on moto: a writer and its cross-region read replica, the
//! replica's lag from CloudWatch (through the launcher's RPC v2 CBOR shim), and a planned
//! failover's calls: promote, fence by renaming (never deleting), re-protect.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use drplan_core::provider::ErrorClass;
use drplan_harness::DbNetwork;
use drplan_provider_aws::{DbInstance, LagSample};

use common::moto;

const PROJECT: &str = "shop";
const CLASS: &str = "db.r6g.large";
/// 2026-01-01T00:00:00Z: samples carry explicit times, so the lag tests need no clock.
const T: i64 = 1_767_225_600;

fn tags(region: &str) -> [(&'static str, String); 3] {
    [("drplan:project", PROJECT.to_owned()), ("drplan:region", region.to_owned()), ("drplan:database", "ledger".into())]
}

/// What a replica in `network`'s region stands on, with the writer's class and tags.
fn standing_on(network: &DbNetwork, writer: &DbInstance) -> DbInstance {
    DbInstance {
        class: writer.class.clone(),
        subnet_group: Some(network.subnet_group.clone()),
        parameter_group: Some(network.parameter_group.clone()),
        security_groups: vec![network.security_group.clone()],
        encrypted: true,
        kms_key: Some(network.kms_key.clone()),
        tags: writer.tags.clone(),
        ..DbInstance::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_promotes_the_replica_fences_the_writer_by_renaming_and_reprotects() {
    let env = moto().await;
    let config = env.config("us-east-1", "us-west-2");
    let (provider, recorder) = env.provider(&config);
    let east = env.moto.create_db_network("us-east-1", "ledger-east").expect("network in us-east-1");
    let west = env.moto.create_db_network("us-west-2", "ledger-west").expect("network in us-west-2");
    let east_tags = tags("us-east-1");
    let seed: Vec<(&str, &str)> = east_tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let writer_arn = env.moto.create_db_instance(&east, "ledger", CLASS, &seed).expect("writer");

    // The writer as the provider reads it.
    let listed = provider.db_instances("us-east-1").await.expect("DescribeDBInstances");
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let writer = listed[0].clone();
    assert_eq!((writer.identifier.as_str(), writer.arn.as_str()), ("ledger", writer_arn.as_str()));
    assert_eq!(
        (writer.region.as_str(), writer.engine.as_str(), writer.status.as_str()),
        ("us-east-1", "postgres", "available")
    );
    assert_eq!(writer.class, CLASS);
    assert_eq!(writer.subnet_group.as_deref(), Some(east.subnet_group.as_str()));
    assert_eq!(writer.parameter_group.as_deref(), Some(east.parameter_group.as_str()));
    assert_eq!(writer.security_groups, vec![east.security_group.clone()]);
    assert_eq!((writer.encrypted, writer.kms_key.as_deref()), (true, Some(east.kms_key.as_str())));
    assert_eq!((writer.source.as_ref(), writer.replicas.len()), (None, 0));
    assert!(writer.endpoint.as_deref().is_some_and(|e| e.starts_with("ledger.")), "{:?}", writer.endpoint);
    assert_eq!(writer.port, Some(5432));
    let want_tags: BTreeMap<String, String> = east_tags.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    assert_eq!(writer.tags, want_tags);

    // A standby's replica, created by the provider in us-west-2 under the same declared name.
    let replica = provider
        .create_replica("us-west-2", "ledger", &writer.arn, &standing_on(&west, &writer))
        .await
        .expect("CreateDBInstanceReadReplica");
    assert_eq!((replica.region.as_str(), replica.source.as_deref()), ("us-west-2", Some(writer.arn.as_str())));
    assert!(replica.arn.starts_with("arn:aws:rds:us-west-2:"), "{}", replica.arn);
    assert_eq!(replica.class, CLASS);
    assert_eq!(replica.subnet_group.as_deref(), Some(west.subnet_group.as_str()));
    assert_eq!(replica.parameter_group.as_deref(), Some(west.parameter_group.as_str()));
    assert_eq!(replica.security_groups, vec![west.security_group.clone()]);
    assert_eq!(replica.kms_key.as_deref(), Some(west.kms_key.as_str()));
    assert_eq!(replica.tags.get("drplan:region").map(String::as_str), Some("us-west-2"));
    assert_eq!(replica.tags.get("drplan:database").map(String::as_str), Some("ledger"));
    let replica = provider
        .wait_available("us-west-2", "ledger", Duration::from_secs(30), &|_| {})
        .await
        .expect("moto's instances are available at once");
    let writer = provider.db_instance("us-east-1", "ledger").await.expect("read").expect("the writer");
    assert!(replica.replicates_from(&writer) && writer.lists_replica(&replica), "{writer:#?}\n{replica:#?}");
    let truth = env.moto.db_instances("us-west-2").expect("ground truth");
    assert_eq!(truth["ledger"].source.as_deref(), Some(writer_arn.as_str()));
    assert_eq!(truth["ledger"].subnet_group, west.subnet_group);

    // Promote: neither side names the other any more.
    let promoted = provider.promote_replica("us-west-2", "ledger").await.expect("PromoteReadReplica");
    assert_eq!(promoted.source, None);
    let writer = provider.db_instance("us-east-1", "ledger").await.expect("read").expect("old writer");
    let new_writer = provider.db_instance("us-west-2", "ledger").await.expect("read").expect("new writer");
    assert_eq!((new_writer.source.as_ref(), writer.replicas.len()), (None, 0), "{writer:#?}\n{new_writer:#?}");
    assert!(!new_writer.replicates_from(&writer) && !writer.lists_replica(&new_writer));
    let truth = env.moto.db_instances("us-west-2").expect("ground truth");
    assert_eq!(
        (truth["ledger"].source.as_ref(), env.moto.db_instances("us-east-1").unwrap()["ledger"].replicas.len()),
        (None, 0)
    );
    // A second promotion (a run resumed after a lost answer) finds it done and sends nothing.
    let start = recorder.count();
    provider.promote_replica("us-west-2", "ledger").await.expect("already standalone");
    assert_eq!(recorder.since(start), ["DescribeDBInstances"]);

    // Fence the old writer by renaming it: still there under the new name, its endpoint moved.
    let fenced = provider.rename_instance("us-east-1", "ledger", "ledger-fenced").await.expect("rename");
    assert_eq!(fenced.identifier, "ledger-fenced");
    let listed = provider.db_instances("us-east-1").await.expect("DescribeDBInstances");
    let names: Vec<&str> = listed.iter().map(|d| d.identifier.as_str()).collect();
    assert_eq!(names, ["ledger-fenced"]);
    let fenced = listed[0].clone();
    assert!(fenced.endpoint.as_deref().is_some_and(|e| e.starts_with("ledger-fenced.")), "{:?}", fenced.endpoint);
    assert_ne!(fenced.endpoint, writer.endpoint);
    assert_eq!((fenced.class.as_str(), fenced.kms_key.as_deref()), (CLASS, Some(east.kms_key.as_str())));
    assert_eq!(fenced.tags, want_tags, "tags follow the rename");
    assert_eq!(provider.db_instance("us-east-1", "ledger").await.expect("read"), None);
    // A retried rename (the first attempt went through) finds it done.
    let again = provider.rename_instance("us-east-1", "ledger", "ledger-fenced").await.expect("done already");
    assert_eq!(again.arn, fenced.arn);

    // Re-protect: a replica under the declared name replicating from the new writer, on
    // the fenced instance's settings.
    let protected = provider
        .create_replica("us-east-1", "ledger", &new_writer.arn, &fenced)
        .await
        .expect("CreateDBInstanceReadReplica");
    assert_eq!(protected.source.as_deref(), Some(new_writer.arn.as_str()));
    assert_eq!(protected.class, fenced.class);
    assert_eq!(protected.subnet_group, fenced.subnet_group);
    assert_eq!(protected.parameter_group, fenced.parameter_group);
    assert_eq!(protected.security_groups, fenced.security_groups);
    assert_eq!(protected.kms_key, fenced.kms_key);
    assert_eq!(protected.tags, want_tags);
    let new_writer = provider.db_instance("us-west-2", "ledger").await.expect("read").expect("new writer");
    assert!(new_writer.lists_replica(&protected) && protected.replicates_from(&new_writer), "{new_writer:#?}");
    // Sent again (its answer lost), the create finds its replica and adopts it.
    let start = recorder.count();
    let adopted = provider.create_replica("us-east-1", "ledger", &new_writer.arn, &fenced).await.expect("adopted");
    assert_eq!(adopted.arn, protected.arn);
    assert_eq!(recorder.since(start), ["CreateDBInstanceReadReplica", "DescribeDBInstances"]);

    // A name another instance holds is refused as a conflict, and nothing is overwritten.
    let taken = provider
        .create_replica("us-east-1", "ledger-fenced", &new_writer.arn, &fenced)
        .await
        .expect_err("ledger-fenced is taken");
    assert_eq!(taken.class, ErrorClass::Conflict, "{taken}");
    assert!(taken.message.contains("DBInstanceAlreadyExists"), "{}", taken.message);
    let taken = provider.rename_instance("us-east-1", "ledger", "ledger-fenced").await.expect_err("taken");
    assert_eq!(taken.class, ErrorClass::Conflict, "{taken}");
    let missing = provider.promote_replica("us-east-1", "nothing").await.expect_err("no such instance");
    assert_eq!(missing.class, ErrorClass::NotFound, "{missing}");

    let truth_east = env.moto.db_instances("us-east-1").expect("ground truth");
    assert_eq!(truth_east.keys().collect::<Vec<_>>(), ["ledger", "ledger-fenced"]);
    assert_eq!(truth_east["ledger-fenced"].arn, fenced.arn);
    assert_eq!(truth_east["ledger-fenced"].source, None);
    assert_eq!(truth_east["ledger"].source.as_deref(), Some(new_writer.arn.as_str()));
    let requests = recorder.since(0);
    assert!(!requests.iter().any(|r| r.contains("Delete")), "nothing is ever deleted: {requests:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_lag_is_the_newest_sample_of_each_instance_in_one_request() {
    let env = moto().await;
    let config = env.config("us-east-1", "us-west-2");
    let (provider, recorder) = env.provider(&config);
    let put = |region: &str, id: &str, value: f64, at: i64| {
        env.moto
            .put_metric(region, "AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", id)], value, at)
            .unwrap_or_else(|e| panic!("PutMetricData {id}: {e}"));
    };
    let now = T + 30;
    put("us-west-2", "caught-up", 12.0, T - 270);
    put("us-west-2", "caught-up", 3.0, T - 35);
    put("us-west-2", "caught-up", 0.0, T + 25);
    put("us-west-2", "lagging", 0.0, T - 120);
    put("us-west-2", "lagging", 42.5, T + 10);
    put("us-west-2", "stale", 0.0, T - 900);
    put("us-west-2", "broken", 0.0, T - 60);
    put("us-west-2", "broken", -1.0, T + 5);
    put("us-east-1", "elsewhere", 0.0, T);

    let ids: Vec<String> =
        ["caught-up", "lagging", "stale", "broken", "silent", "elsewhere", "lagging"].map(String::from).to_vec();
    let start = recorder.count();
    let lag = provider.replica_lag("us-west-2", &ids, now).await.expect("GetMetricData");
    let sent = recorder.since(start);
    let unknown = LagSample { seconds: None, at: None };
    let want: BTreeMap<String, LagSample> = [
        ("broken", LagSample { seconds: None, at: Some(T) }),
        ("caught-up", LagSample { seconds: Some(0.0), at: Some(T) }),
        ("elsewhere", unknown),
        ("lagging", LagSample { seconds: Some(42.5), at: Some(T) }),
        ("silent", unknown),
        ("stale", unknown),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(lag, want);
    println!("replica_lag for {} instances sent {} request(s): {sent:?}", want.len(), sent.len());
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert!(sent[0].ends_with("/service/GraniteServiceVersion20100801/operation/GetMetricData"), "{sent:?}");

    // Ten minutes on, every sample is stale.
    let later = provider.replica_lag("us-west-2", &ids, now + 700).await.expect("GetMetricData");
    assert!(later.values().all(|s| *s == unknown), "{later:#?}");
    // Nothing asked, nothing sent.
    let start = recorder.count();
    assert!(provider.replica_lag("us-west-2", &[], now).await.expect("no call").is_empty());
    assert_eq!(recorder.since(start).len(), 0);
}

/// aws-sdk-cloudwatch speaks only Smithy RPC v2 CBOR, which moto does not: the launcher's
/// shim carries requests, answers and errors both ways.
#[tokio::test]
async fn the_rust_cloudwatch_sdk_works_through_the_cbor_shim() {
    use aws_sdk_cloudwatch::primitives::DateTime;
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};

    let env = moto().await;
    let conf = aws_sdk_cloudwatch::config::Builder::from(&drplan_provider_aws::client::with_policy(&env.sdk))
        .region(aws_config::Region::new("us-west-2"));
    let cw = aws_sdk_cloudwatch::Client::from_conf(conf.build());
    let datum = |value: f64, at: i64| {
        MetricDatum::builder()
            .metric_name("ReplicaLag")
            .dimensions(Dimension::builder().name("DBInstanceIdentifier").value("ledger").build())
            .timestamp(DateTime::from_secs(at))
            .value(value)
            .build()
    };
    cw.put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(datum(7.0, T + 10))
        .metric_data(datum(2.0, T + 70))
        .send()
        .await
        .expect("PutMetricData over CBOR");
    let listed = cw.list_metrics().namespace("AWS/RDS").send().await.expect("ListMetrics over CBOR");
    let names: Vec<_> = listed.metrics().iter().filter_map(|m| m.metric_name()).collect();
    assert_eq!(names, ["ReplicaLag"]);
    let truth = env
        .moto
        .metric_maxima("us-west-2", "AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", "ledger")], T, T + 600)
        .expect("ground truth");
    assert_eq!(truth, [(T, 7.0), (T + 60, 2.0)]);

    let refused = cw
        .get_metric_data()
        .start_time(DateTime::from_secs(T))
        .end_time(DateTime::from_secs(T))
        .send()
        .await
        .expect_err("StartTime equal to EndTime");
    let e = drplan_provider_aws::error::sdk_error("GetMetricData", &refused);
    assert_eq!(e.class, ErrorClass::Invalid, "{e}");
    assert!(e.message.starts_with("GetMetricData: ValidationError: "), "{}", e.message);
}

/// Every call of the data tier goes through the one retry layer: with every other request
/// throttled, failed or dropped by the fault proxy, each still succeeds, and the proxy
/// injected every kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_tier_calls_are_retried_through_throttling_errors_and_drops() {
    use drplan_harness::{FaultProxy, Faults};
    use drplan_provider_aws::AwsProvider;

    let env = moto().await;
    let east = env.moto.create_db_network("us-east-1", "ledger-east").expect("network in us-east-1");
    let west = env.moto.create_db_network("us-west-2", "ledger-west").expect("network in us-west-2");
    let writer_arn = env.moto.create_db_instance(&east, "ledger", CLASS, &[]).expect("writer");
    env.moto
        .put_metric("us-west-2", "AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", "ledger")], 1.0, T)
        .expect("a sample");

    let proxy = FaultProxy::start(env.moto.url(), Faults::every(2)).expect("proxy starts");
    let config = common::load(&common::shop_hcl(proxy.url(), "us-east-1", "us-west-2"));
    let sdk = env.sdk.to_builder().endpoint_url(proxy.url()).build();
    let provider = AwsProvider::with_sdk_config(&config, &sdk, Vec::new());

    let writer = provider.db_instance("us-east-1", "ledger").await.expect("read").expect("the writer");
    assert_eq!(writer.arn, writer_arn);
    let replica = provider
        .create_replica("us-west-2", "ledger", &writer.arn, &standing_on(&west, &writer))
        .await
        .expect("create");
    assert_eq!(replica.source.as_deref(), Some(writer_arn.as_str()));
    let lag = provider.replica_lag("us-west-2", &["ledger".to_owned()], T).await.expect("lag");
    assert_eq!(lag["ledger"], LagSample { seconds: Some(1.0), at: Some(T) });
    provider.promote_replica("us-west-2", "ledger").await.expect("promote");
    provider.rename_instance("us-east-1", "ledger", "ledger-fenced").await.expect("rename");
    provider.wait_available("us-east-1", "ledger-fenced", Duration::from_secs(30), &|_| {}).await.expect("wait");
    assert_eq!(provider.db_instances("us-west-2").await.expect("list").len(), 1);

    let counts = proxy.counts();
    println!("through every-other-request faults: {counts:?}");
    assert!(counts.throttled > 0 && counts.server_errors > 0 && counts.dropped > 0, "{counts:?}");
    let truth = env.moto.db_instances("us-east-1").expect("ground truth");
    assert_eq!(truth.keys().collect::<Vec<_>>(), ["ledger-fenced"]);
    assert_eq!(env.moto.db_instances("us-west-2").expect("ground truth")["ledger"].source, None);
}
