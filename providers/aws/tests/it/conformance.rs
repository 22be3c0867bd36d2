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
