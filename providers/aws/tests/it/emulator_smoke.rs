//! Drives moto through the real AWS SDK clients built by `drplan_provider_aws::client`.

use aws_config::SdkConfig;
use aws_sdk_ec2::types::{Filter, InstanceType, ResourceType, Tag, TagSpecification};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use drplan_harness::{Emulator, Running};
use drplan_provider_aws::{s3_client, sdk_config};

/// One of the AMIs moto ships with.
const AMI: &str = "ami-12c6146b";

/// Static credentials set on the config rather than in the process environment,
/// which parallel test threads share.
async fn emulator_config(moto: &Running) -> SdkConfig {
    let cfg = sdk_config(Some(moto.url()), "us-east-1").await;
    cfg.to_builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "drplan-smoke",
        )))
        .build()
}

#[tokio::test]
async fn ec2_run_instances_and_find_them_by_tag() {
    let moto = Running::start(Emulator::Moto).expect("moto should start");
    let ec2 = aws_sdk_ec2::Client::new(&emulator_config(&moto).await);

    let empty = ec2.describe_instances().send().await.expect("DescribeInstances");
    assert!(empty.reservations().is_empty(), "fresh account has instances: {empty:?}");

    let run = ec2
        .run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .tag_specifications(
            TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Tag::builder().key("drplan:project").value("smoke").build())
                .build(),
        )
        .send()
        .await
        .expect("RunInstances");
    let launched: Vec<&str> = run.instances().iter().filter_map(|i| i.instance_id()).collect();
    assert_eq!(launched.len(), 1, "{run:?}");

    // An untagged instance that the filter must leave out.
    ec2.run_instances()
        .image_id(AMI)
        .instance_type(InstanceType::T3Micro)
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .expect("RunInstances (untagged)");

    let found = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag:drplan:project").values("smoke").build())
        .send()
        .await
        .expect("DescribeInstances by tag");
    let found: Vec<_> = found.reservations().iter().flat_map(|r| r.instances()).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].instance_id(), Some(launched[0]));
    let project = found[0].tags().iter().find(|t| t.key() == Some("drplan:project")).and_then(|t| t.value());
    assert_eq!(project, Some("smoke"));

    moto.moto_reset().expect("moto reset");
    let after_reset = ec2.describe_instances().send().await.expect("DescribeInstances after reset");
    assert!(after_reset.reservations().is_empty(), "reset kept instances: {after_reset:?}");
}

#[tokio::test]
async fn route53_zone_and_s3_bucket_round_trip() {
    let moto = Running::start(Emulator::Moto).expect("moto should start");
    let cfg = emulator_config(&moto).await;

    let route53 = aws_sdk_route53::Client::new(&cfg);
    let created = route53
        .create_hosted_zone()
        .name("smoke.example.com")
        .caller_reference("drplan-smoke-1")
        .send()
        .await
        .expect("CreateHostedZone");
    let zone_id = created.hosted_zone().map(|z| z.id().to_owned()).expect("created zone has an id");
    let zones = route53.list_hosted_zones().send().await.expect("ListHostedZones");
    let listed: Vec<(&str, &str)> = zones.hosted_zones().iter().map(|z| (z.id(), z.name())).collect();
    assert_eq!(listed, vec![(zone_id.as_str(), "smoke.example.com.")]);

    let s3 = s3_client(&cfg, true);
    s3.create_bucket().bucket("drplan-smoke-state").send().await.expect("CreateBucket");
    let buckets = s3.list_buckets().send().await.expect("ListBuckets");
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, vec!["drplan-smoke-state"]);
}
