//! The provider conformance suite against moto, for each kind the AWS provider manages.

use crate::common;

use drplan_core::plan::Value;
use drplan_core::plan::resource::{Kind, Resource, address, attrs};
use drplan_provider_fake::conformance::{Fixture, check, check_dns_record};

use common::{AMI, ZONE, moto};

#[tokio::test]
async fn instance_conforms() {
    let env = moto().await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, recorder) = env.provider(&config);
    let fixture = Fixture {
        project: "conformance".into(),
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        resource: Resource {
            address: address::instance("us-east-1", "nodes", 0),
            kind: Kind::Instance,
            region: Some("us-east-1".into()),
            attrs: attrs([
                ("cloud", "aws".into()),
                ("pool", "nodes".into()),
                ("index", 0u32.into()),
                ("instance_type", "t3.micro".into()),
                ("image", AMI.into()),
                ("state", "running".into()),
            ]),
        },
        // Stopping is the in-place change an instance supports.
        update: ("state".into(), "stopped".into()),
    };
    check(&provider, &fixture).await.unwrap_or_else(|e| panic!("{e}"));
    // The repeated create adopted the first instance instead of launching a second.
    assert_eq!(recorder.tokens().len(), 1, "{:?}", recorder.tokens());
    let all = env.ec2("us-east-1").describe_instances().send().await.expect("DescribeInstances");
    let states: Vec<_> = all
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()))
        .collect();
    assert_eq!(states, vec!["terminated".to_owned()]);
}

#[tokio::test]
async fn health_check_conforms() {
    let env = moto().await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let fixture = Fixture {
        project: "conformance".into(),
        regions: vec![],
        resource: Resource {
            address: address::health_check("us-east-1"),
            kind: Kind::HealthCheck,
            region: None,
            attrs: attrs([
                ("serves", "us-east-1".into()),
                ("fqdn", "use1.shop.example.com".into()),
                ("protocol", "HTTPS".into()),
                ("port", 443i64.into()),
                ("path", "/health".into()),
                ("interval", 30i64.into()),
                ("threshold", 3i64.into()),
            ]),
        },
        update: ("threshold".into(), Value::Int(5)),
    };
    check(&provider, &fixture).await.unwrap_or_else(|e| panic!("{e}"));
    let left = env.route53().list_health_checks().send().await.expect("ListHealthChecks");
    assert!(left.health_checks().is_empty(), "{left:?}");
}

#[tokio::test]
async fn bucket_conforms() {
    let env = moto().await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let fixture = Fixture {
        project: "conformance".into(),
        regions: vec![],
        resource: Resource {
            address: address::bucket("database", "primary"),
            kind: Kind::Bucket,
            region: None,
            attrs: attrs([
                ("cloud", "aws".into()),
                ("bucket", "conformance-backups".into()),
                ("prefix", "dr/".into()),
                ("location", "eu-west-1".into()),
                ("versioning", true.into()),
                ("expire_days", 30i64.into()),
                ("storage_class", "GLACIER".into()),
            ]),
        },
        update: ("expire_days".into(), Value::Int(45)),
    };
    check(&provider, &fixture).await.unwrap_or_else(|e| panic!("{e}"));
    let buckets = env.s3("eu-west-1").list_buckets().send().await.expect("ListBuckets");
    assert!(buckets.buckets().is_empty(), "{buckets:?}");
}

#[tokio::test]
async fn dns_record_conforms() {
    let env = moto().await;
    env.create_zone(ZONE).await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let name = format!("api.{ZONE}");
    let fixture = Fixture {
        project: "conformance".into(),
        regions: vec![],
        resource: Resource {
            address: address::dns_record(&name, "PRIMARY"),
            kind: Kind::DnsRecord,
            region: None,
            attrs: attrs([
                ("zone", ZONE.into()),
                ("name", name.as_str().into()),
                ("type", "CNAME".into()),
                ("ttl", 60i64.into()),
                ("failover", "PRIMARY".into()),
                ("set_identifier", "conformance-primary".into()),
                ("target", format!("use1.{ZONE}").into()),
                ("health_check", "".into()),
            ]),
        },
        update: ("target".into(), Value::Str(format!("maintenance.{ZONE}"))),
    };
    check_dns_record(&provider, &fixture).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn a_database_member_conforms() {
    let env = moto().await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let east = env.moto.create_db_network("us-east-1", "ledger").expect("network");
    let west = env.moto.create_db_network("eu-west-1", "ledger").expect("network");
    let writer = env.moto.create_db_instance(&east, "ledger-use1", "db.r6g.large", &[]).expect("writer");
    env.moto.create_db_replica(&west, "ledger-euw1", &writer).expect("replica");
    let fixture = Fixture {
        project: "conformance".into(),
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        resource: Resource {
            address: address::database("eu-west-1", "ledger"),
            kind: Kind::Database,
            region: Some("eu-west-1".into()),
            attrs: attrs([
                ("cloud", "aws".into()),
                ("kind", "rds_instance".into()),
                ("engine", "postgres".into()),
                ("identifier", "ledger-euw1".into()),
                ("role", "replica".into()),
                ("source", "us-east-1/ledger-use1".into()),
            ]),
        },
        update: ("role".into(), "writer".into()),
    };
    drplan_provider_fake::conformance::check_database_member(&provider, &fixture)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let west = env.moto.db_instances("eu-west-1").expect("DescribeDBInstances");
    assert_eq!(west["ledger-euw1"].source, None, "promoted, and still there: {west:#?}");
}

#[tokio::test]
async fn a_thaw_of_an_archived_point_conforms() {
    let env = moto().await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let s3 = env.s3("eu-west-1");
    common::create_bucket(&s3, "shop-archive", "eu-west-1").await;
    for (key, class) in [
        ("dr/20261201_070000/database.dump.gpg", "GLACIER"),
        ("dr/20261201_070000/wal/000001.gpg", "DEEP_ARCHIVE"),
        ("dr/20261201_070000/manifest.json", "STANDARD"),
        ("dr/20261201_080000/database.dump.gpg", "GLACIER"),
    ] {
        s3.put_object()
            .bucket("shop-archive")
            .key(key)
            .storage_class(class.into())
            .body(b"archived".to_vec().into())
            .send()
            .await
            .expect("PutObject");
    }
    let fixture = Fixture {
        project: "conformance".into(),
        regions: vec!["us-east-1".into()],
        resource: Resource {
            address: address::thaw("asia-pacific-1", "database"),
            kind: Kind::Thaw,
            region: Some("asia-pacific-1".into()),
            attrs: attrs([
                ("cloud", "aws".into()),
                ("location", "eu-west-1".into()),
                ("bucket", "shop-archive".into()),
                ("prefix", "dr/20261201_070000/".into()),
                ("tier", "Standard".into()),
                ("days", 2i64.into()),
                ("seconds", 43_200i64.into()),
                ("timeout", 600i64.into()),
            ]),
        },
        update: ("tier".into(), "Bulk".into()),
    };
    drplan_provider_fake::conformance::check_thaw(&provider, &fixture).await.unwrap_or_else(|e| panic!("{e}"));
    // The two archived objects of the point were thawed; the manifest (readable) and the
    // other point were left alone.
    let restore = |key: &str| {
        let s3 = s3.clone();
        let key = key.to_string();
        async move {
            s3.head_object()
                .bucket("shop-archive")
                .key(key)
                .send()
                .await
                .expect("HeadObject")
                .restore()
                .map(str::to_owned)
        }
    };
    assert!(
        restore("dr/20261201_070000/database.dump.gpg").await.is_some_and(|r| r.contains("ongoing-request=\"false\""))
    );
    assert!(restore("dr/20261201_070000/wal/000001.gpg").await.is_some());
    assert_eq!(restore("dr/20261201_070000/manifest.json").await, None);
    assert_eq!(restore("dr/20261201_080000/database.dump.gpg").await, None);
}

/// An instance launched in `region` as its operators would, its id.
async fn running_instance(env: &common::Env, region: &str) -> String {
    let run =
        env.ec2(region).run_instances().image_id(AMI).min_count(1).max_count(1).send().await.expect("RunInstances");
    run.instances()[0].instance_id().unwrap().to_owned()
}

#[tokio::test]
async fn an_incidents_evidence_conforms_and_is_copied_once() {
    let env = moto().await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let id = running_instance(&env, "us-east-1").await;
    let fixture = Fixture {
        project: "conformance".into(),
        regions: vec!["us-east-1".into(), "eu-west-1".into()],
        resource: Resource {
            address: address::evidence(&address::instance("us-east-1", "nodes", 0)),
            kind: Kind::Evidence,
            region: Some("us-east-1".into()),
            attrs: attrs([
                ("cloud", "aws".into()),
                ("incident", "inc-1".into()),
                ("instance_id", id.as_str().into()),
                ("copy_region", "eu-west-1".into()),
            ]),
        },
        update: ("copy_region".into(), "".into()),
    };
    let taken = drplan_provider_fake::conformance::check_incident_step(&provider, &fixture)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // One snapshot of the instance's one volume, tagged in its create call; one copy.
    let tagged = |region: &'static str| {
        let env = &env;
        async move {
            let found = env
                .ec2(region)
                .describe_snapshots()
                .owner_ids("self")
                .filters(aws_sdk_ec2::types::Filter::builder().name("tag:drplan:incident").values("inc-1").build())
                .send()
                .await
                .expect("DescribeSnapshots");
            found.snapshots().iter().filter_map(|s| s.snapshot_id().map(str::to_owned)).collect::<Vec<_>>()
        }
    };
    let (source, copies) = (tagged("us-east-1").await, tagged("eu-west-1").await);
    assert_eq!((source.len(), copies.len()), (1, 1), "{source:?} {copies:?}");
    assert_eq!(taken.resource.str("snapshots"), Some(format!("us-east-1:{}", source[0]).as_str()));
    assert_eq!(taken.resource.str("copies"), Some(format!("eu-west-1:{}", copies[0]).as_str()));
}

#[tokio::test]
async fn a_quarantine_conforms_and_lifting_it_restores_the_groups() {
    let env = moto().await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let id = running_instance(&env, "us-east-1").await;
    let groups = |env: &common::Env, id: String| {
        let client = env.ec2("us-east-1");
        async move {
            let found = client.describe_instances().instance_ids(id).send().await.expect("DescribeInstances");
            let i = found.reservations()[0].instances()[0].clone();
            let mut own: Vec<String> =
                i.security_groups().iter().filter_map(|g| g.group_id().map(str::to_owned)).collect();
            if own.is_empty() {
                // moto keeps an instance launched without groups at none of its own.
                own =
                    i.network_interfaces()[0].groups().iter().filter_map(|g| g.group_id().map(str::to_owned)).collect();
            }
            own.sort();
            own
        }
    };
    let before = groups(&env, id.clone()).await;
    let fixture = Fixture {
        project: "conformance".into(),
        regions: vec!["us-east-1".into()],
        resource: Resource {
            address: address::quarantine(&address::instance("us-east-1", "nodes", 0)),
            kind: Kind::Quarantine,
            region: Some("us-east-1".into()),
            attrs: attrs([
                ("cloud", "aws".into()),
                ("incident", "inc-1".into()),
                ("instance_id", id.as_str().into()),
                ("group", "drplan-quarantine-inc-1".into()),
            ]),
        },
        update: ("group".into(), "other".into()),
    };
    let quarantined = drplan_provider_fake::conformance::check_incident_step(&provider, &fixture)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(quarantined.resource.str("previous_groups"), Some(before.join(",").as_str()));
    assert_eq!(groups(&env, id.clone()).await, before, "lifting it put the groups back");
    // The group it made lets nothing in or out.
    let group = quarantined.resource.str("group_id").unwrap().to_owned();
    let found = env.ec2("us-east-1").describe_security_groups().group_ids(group).send().await.expect("Describe");
    let g = &found.security_groups()[0];
    assert!(g.ip_permissions().is_empty() && g.ip_permissions_egress().is_empty(), "{g:?}");
}
