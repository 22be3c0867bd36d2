//! The engine against moto through the AWS provider: plan, apply in graph order, refresh,
//! plan again: nothing left. Failover, drift repair, crash adoption, a missing zone.

use crate::common;

use aws_sdk_route53::types::{
    Change as R53Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover,
    RrType,
};
use drplan_core::plan::resource::Kind;
use drplan_core::plan::{self, Action, DriftKind, Options, Prior, desired};
use drplan_core::provider::{ApplyRequest, ErrorClass, Provider, idempotency_token};

use common::{ZONE, assert_converged, converge, moto, refresh};
use drplan_provider_fake::kit;

/// The PRIMARY and SECONDARY record sets of `api.<zone>` as moto holds them: (failover, target, health check id).
async fn records(env: &common::Env, zone_id: &str) -> Vec<(String, String, Option<String>)> {
    let out =
        env.route53().list_resource_record_sets().hosted_zone_id(zone_id).send().await.expect("ListResourceRecordSets");
    let mut v: Vec<_> = out
        .resource_record_sets()
        .iter()
        .filter(|s| s.r#type() == &RrType::Cname)
        .map(|s| {
            (
                s.failover().map(|f| f.as_str().to_owned()).unwrap_or_default(),
                s.resource_records().first().map(|r| r.value().to_owned()).unwrap_or_default(),
                s.health_check_id().map(str::to_owned),
            )
        })
        .collect();
    v.sort();
    v
}

/// Running or pending instances per region, as moto holds them.
async fn running(env: &common::Env, region: &str) -> usize {
    let out = env.ec2(region).describe_instances().send().await.expect("DescribeInstances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter(|i| matches!(i.state().and_then(|s| s.name()).map(|n| n.as_str()), Some("running" | "pending")))
        .count()
}

#[tokio::test]
async fn deploy_then_failover_converge() {
    let env = moto().await;
    let zone_id = env.create_zone(ZONE).await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let mut prior = Prior::default();

    let changes = converge(&provider, &config, &mut prior, "deploy", usize::MAX).await;
    assert_eq!(changes.len(), desired::desired(&config).len(), "{changes:#?}");
    assert!(changes.iter().all(|c| c.action == Action::Create));
    assert_converged(&provider, &config, &prior).await;
    assert_eq!((running(&env, "us-east-1").await, running(&env, "eu-west-1").await), (2, 1));

    let checks = env.route53().list_health_checks().send().await.expect("ListHealthChecks");
    let check_for = |fqdn: &str| {
        checks
            .health_checks()
            .iter()
            .find(|h| h.health_check_config().and_then(|c| c.fully_qualified_domain_name()) == Some(fqdn))
            .map(|h| h.id().to_owned())
            .unwrap_or_else(|| panic!("no health check of {fqdn}"))
    };
    let (use1, euw1) = (format!("use1.{ZONE}"), format!("euw1.{ZONE}"));
    assert_eq!(
        records(&env, &zone_id).await,
        vec![
            ("PRIMARY".into(), use1.clone(), Some(check_for(&use1))),
            ("SECONDARY".into(), euw1.clone(), Some(check_for(&euw1))),
        ]
    );
    let s3 = env.s3("eu-west-1");
    let versioning = s3.get_bucket_versioning().bucket("shop-backups").send().await.expect("GetBucketVersioning");
    assert_eq!(versioning.status().map(|s| s.as_str()), Some("Enabled"));

    // The newest backup's age comes from one listing under the prefix.
    let bucket = "backup.database.destination.primary";
    assert_eq!(refresh(&provider, &config).await.newest_backup_age.get(bucket), None);
    for key in ["elsewhere/old.sql", "dr/db-1.sql.gpg"] {
        common::put_object(&s3, "shop-backups", key, b"backup".to_vec()).await;
    }
    let age = refresh(&provider, &config).await.newest_backup_age.get(bucket).copied();
    assert!(age.is_some_and(|a| a < 120), "{age:?}");

    // Failover: eu-west-1 becomes active.
    let config = env.config("eu-west-1", "us-east-1");
    let changes = converge(&provider, &config, &mut prior, "failover", usize::MAX).await;
    let summary: Vec<String> = changes.iter().map(|c| format!("{} {}", c.action.as_str(), c.address)).collect();
    assert!(summary.contains(&"update dns.api.shop.example.com.primary".to_owned()), "{summary:#?}");
    assert!(summary.contains(&"create region.eu-west-1.compute.nodes[1]".to_owned()), "{summary:#?}");
    assert!(summary.contains(&"delete region.us-east-1.compute.nodes[1]".to_owned()), "{summary:#?}");
    assert_converged(&provider, &config, &prior).await;
    assert_eq!((running(&env, "us-east-1").await, running(&env, "eu-west-1").await), (1, 2));
    assert_eq!(
        records(&env, &zone_id).await,
        vec![
            ("PRIMARY".into(), euw1.clone(), Some(check_for(&euw1))),
            ("SECONDARY".into(), use1.clone(), Some(check_for(&use1))),
        ]
    );
}

#[tokio::test]
async fn drift_made_by_hand_is_repaired() {
    let env = moto().await;
    let zone_id = env.create_zone(ZONE).await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let mut prior = Prior::default();
    converge(&provider, &config, &mut prior, "deploy", usize::MAX).await;

    // Someone terminates an instance and points PRIMARY elsewhere from the console.
    let victim = prior.objects["region.us-east-1.compute.nodes[1]"].id.clone();
    env.ec2("us-east-1").terminate_instances().instance_ids(&victim).send().await.expect("TerminateInstances");
    let primary = &prior.objects["dns.api.shop.example.com.primary"];
    let check_id = {
        let checks = env.route53().list_health_checks().send().await.expect("ListHealthChecks");
        checks
            .health_checks()
            .iter()
            .find(|h| {
                h.health_check_config().and_then(|c| c.fully_qualified_domain_name()) == Some("use1.shop.example.com")
            })
            .map(|h| h.id().to_owned())
    };
    let edited = ResourceRecordSet::builder()
        .name(format!("api.{ZONE}."))
        .r#type(RrType::Cname)
        .ttl(60)
        .set_identifier(primary.resource.str("set_identifier").unwrap())
        .failover(ResourceRecordSetFailover::Primary)
        .set_health_check_id(check_id)
        .resource_records(ResourceRecord::builder().value("maintenance.shop.example.com").build().unwrap())
        .build()
        .unwrap();
    env.route53()
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(
            ChangeBatch::builder()
                .changes(R53Change::builder().action(ChangeAction::Upsert).resource_record_set(edited).build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("UPSERT by hand");

    let live = refresh(&provider, &config).await;
    let plan = plan::plan(&config, &prior, Some(&live), &Options::default()).expect("plan");
    let drift: Vec<(String, DriftKind)> = plan.drift.iter().map(|d| (d.address.clone(), d.drift.clone())).collect();
    assert_eq!(
        drift,
        vec![
            ("dns.api.shop.example.com.primary".to_owned(), DriftKind::Changed),
            ("region.us-east-1.compute.nodes[1]".to_owned(), DriftKind::Deleted),
        ]
    );
    let changes: Vec<(String, Action)> = plan.changes.iter().map(|c| (c.address.clone(), c.action)).collect();
    assert_eq!(
        changes,
        vec![
            ("dns.api.shop.example.com.primary".to_owned(), Action::Update),
            ("region.us-east-1.compute.nodes[1]".to_owned(), Action::Create),
        ]
    );

    converge(&provider, &config, &mut prior, "repair", usize::MAX).await;
    assert_converged(&provider, &config, &prior).await;
    assert_eq!(running(&env, "us-east-1").await, 2);
    let primary = records(&env, &zone_id).await.into_iter().find(|r| r.0 == "PRIMARY").expect("PRIMARY");
    assert_eq!(primary.1, "use1.shop.example.com");
}

#[tokio::test]
async fn a_crashed_run_is_adopted_not_duplicated() {
    let env = moto().await;
    env.create_zone(ZONE).await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, recorder) = env.provider(&config);

    // The run creates the first objects (a bucket, health checks, instances), then dies
    // before writing any state.
    let mut lost = Prior::default();
    let planned = converge(&provider, &config, &mut lost, "crashed", 5).await;
    let launched: Vec<String> = lost.objects.keys().cloned().collect();
    assert_eq!(launched.len(), 5);
    let instances: Vec<&String> = launched.iter().filter(|a| a.contains(".compute.")).collect();
    assert!(!instances.is_empty(), "{launched:?}");
    // Each RunInstances carried the token of its plan and address.
    let mut expected: Vec<String> = planned
        .iter()
        .filter(|c| instances.contains(&&c.address))
        .map(|c| idempotency_token("crashed", &c.address))
        .collect();
    expected.sort();
    let mut tokens = recorder.tokens();
    tokens.sort();
    assert_eq!(tokens, expected);

    let mut prior = Prior::default();
    let live = refresh(&provider, &config).await;
    let plan = plan::plan(&config, &prior, Some(&live), &Options::default()).expect("plan");
    let adopted: Vec<&str> =
        plan.changes.iter().filter(|c| c.action == Action::Adopt).map(|c| c.address.as_str()).collect();
    assert_eq!(adopted, launched.iter().map(String::as_str).collect::<Vec<_>>());

    let before = recorder.tokens().len();
    converge(&provider, &config, &mut prior, "resumed", usize::MAX).await;
    assert_converged(&provider, &config, &prior).await;
    // Only the instances not launched before were launched now; nothing duplicated.
    assert_eq!(recorder.tokens().len() - before, 3 - instances.len());
    assert_eq!((running(&env, "us-east-1").await, running(&env, "eu-west-1").await), (2, 1));

    // A retried create of an adopted address returns the instance, without launching.
    let change = plan.changes.iter().find(|c| &c.address == instances[0]).expect("adopted change");
    let create = plan::Change { action: Action::Create, id: None, before: None, ..change.clone() };
    let token = idempotency_token("crashed", &create.address);
    let again = provider
        .apply(&ApplyRequest { project: &config.project, change: &create, idempotency_token: &token })
        .await
        .expect("repeated create")
        .expect("an instance");
    assert_eq!(again.id, prior.objects[instances[0]].id);
    assert_eq!(recorder.tokens().len() - before, 3 - instances.len());
}

#[tokio::test]
async fn a_missing_hosted_zone_is_a_clear_invalid_error() {
    let env = moto().await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let record = kit::desired_of(&config, Kind::DnsRecord, None);
    let change = kit::change(&record, Action::Create);
    let token = idempotency_token("p", &change.address);
    let err = provider
        .apply(&ApplyRequest { project: &config.project, change: &change, idempotency_token: &token })
        .await
        .expect_err("no zone");
    assert_eq!(err.class, ErrorClass::Invalid);
    assert_eq!(
        err.message,
        "hosted zone `shop.example.com` not found; drplan manages records, not zones: create the zone first"
    );
    assert_eq!(err.address.as_deref(), Some(record.address.as_str()));
    // Refresh does not fail on it: there are simply no records yet.
    let live = refresh(&provider, &config).await;
    assert!(!live.objects.keys().any(|a| a.starts_with("dns.")), "{:?}", live.objects.keys());
}

#[tokio::test]
async fn a_new_instance_type_replaces_instances() {
    let env = moto().await;
    env.create_zone(ZONE).await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let mut prior = Prior::default();
    converge(&provider, &config, &mut prior, "deploy", usize::MAX).await;
    let old = prior.objects["region.eu-west-1.compute.nodes[0]"].id.clone();

    let bigger =
        common::load(&common::shop_hcl(env.moto.url(), "us-east-1", "eu-west-1").replace("t3.micro", "t3.small"));
    let changes = converge(&provider, &bigger, &mut prior, "resize", usize::MAX).await;
    let replaced = changes.iter().filter(|c| c.action == Action::Replace).count();
    assert_eq!(replaced, 3, "{changes:#?}");
    assert_converged(&provider, &bigger, &prior).await;

    let out = env.ec2("eu-west-1").describe_instances().send().await.expect("DescribeInstances");
    let mut seen: Vec<(String, String, String)> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_owned(),
                i.instance_type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
                i.state().and_then(|s| s.name()).map(|n| n.as_str().to_owned()).unwrap_or_default(),
            )
        })
        .collect();
    seen.sort_by_key(|(id, _, _)| id != &old);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!((seen[0].0.as_str(), seen[0].2.as_str()), (old.as_str(), "terminated"));
    assert_eq!((seen[1].1.as_str(), seen[1].2.as_str()), ("t3.small", "running"));
    assert_eq!(prior.objects["region.eu-west-1.compute.nodes[0]"].id, seen[1].0);
}

#[tokio::test]
async fn replacing_a_health_check_moves_the_records_onto_the_new_one_first() {
    let env = moto().await;
    let zone_id = env.create_zone(ZONE).await;
    let config = env.config("us-east-1", "eu-west-1");
    let (provider, _) = env.provider(&config);
    let mut prior = Prior::default();
    converge(&provider, &config, &mut prior, "deploy", usize::MAX).await;
    let old: Vec<String> = records(&env, &zone_id).await.into_iter().filter_map(|r| r.2).collect();
    assert_eq!(old.len(), 2);

    // Route 53 cannot change a check's protocol in place: the plan replaces both checks.
    let text = common::shop_hcl(env.moto.url(), "us-east-1", "eu-west-1")
        .replace("protocol  = \"HTTPS\"", "protocol  = \"HTTP\"");
    let config = common::load(&text);
    let changes = converge(&provider, &config, &mut prior, "new-protocol", usize::MAX).await;
    let replaced: Vec<&str> =
        changes.iter().filter(|c| c.action == Action::Replace).map(|c| c.address.as_str()).collect();
    assert_eq!(replaced, ["health_check.eu-west-1", "health_check.us-east-1"], "{changes:#?}");

    let checks = env.route53().list_health_checks().send().await.expect("ListHealthChecks");
    let now: Vec<(String, String)> = checks
        .health_checks()
        .iter()
        .map(|h| {
            (h.id().to_owned(), h.health_check_config().map(|c| c.r#type().as_str().to_owned()).unwrap_or_default())
        })
        .collect();
    assert_eq!(now.len(), 2, "the old checks are gone: {now:?}");
    assert!(now.iter().all(|(id, kind)| kind == "HTTP" && !old.contains(id)), "{now:?}");
    let referenced: Vec<String> = records(&env, &zone_id).await.into_iter().filter_map(|r| r.2).collect();
    for id in &referenced {
        assert!(
            now.iter().any(|(n, _)| n == id),
            "a record still points at a deleted check {id}: {referenced:?} vs {now:?}"
        );
    }
    assert_converged(&provider, &config, &prior).await;
}
