//! The provider conformance suite on backup CronJobs against kmock, and what a created
//! CronJob holds in the cluster.

use crate::common;

use common::{Clusters, NAMESPACE, PROJECT, config};
use drplan_core::plan::resource::{Kind, Resource, Value};
use drplan_core::plan::{Action, desired};
use drplan_core::provider::{ApplyRequest, Provider, RefreshRequest};
use drplan_provider_fake::conformance::{Fixture, check, check_scale_only};
use drplan_provider_fake::kit;
use drplan_provider_kubernetes::KubernetesProvider;
use kube::api::PostParams;

fn backup_job(config: &drplan_core::config::Config, region: &str) -> Resource {
    kit::desired_of(config, Kind::BackupJob, Some(region))
}

/// Runs the suite on the backup job of `region`, whose cluster is `context`'s kmock; the
/// other regions' contexts point at nothing and are never read.
async fn conformance(regions: &[common::RegionSpec<'_>], region: &str, update: (&str, Value)) {
    let (_, context, _) = *regions.iter().find(|(r, _, _)| *r == region).expect("the region");
    let others: Vec<(&str, &str)> =
        regions.iter().filter(|(r, _, _)| *r != region).map(|(_, c, _)| (*c, "http://127.0.0.1:9")).collect();
    let clusters = Clusters::start(&[context], &others);
    let config = config(regions);
    let provider = KubernetesProvider::new(&config, Some(&clusters.kubeconfig)).await.expect("provider");
    let fixture = Fixture {
        project: PROJECT.to_owned(),
        regions: vec![region.to_owned()],
        resource: backup_job(&config, region),
        update: (update.0.to_owned(), update.1),
    };
    check(&provider, &fixture).await.unwrap_or_else(|e| panic!("conformance: {e}"));
    // The suite ends with a delete: the cluster must hold nothing of drplan's.
    let left = clusters.cronjobs(context).await.list(&Default::default()).await.expect("list CronJobs");
    assert!(left.items.is_empty(), "{:?}", left.items);
}

#[tokio::test]
async fn backup_job_passes_conformance_unsuspending() {
    let regions = [("us-east-1", "use1", "active"), ("eu-west-1", "euw1", "standby")];
    let fixture = backup_job(&config(&regions), "eu-west-1");
    assert_eq!(fixture.bool("suspend"), Some(true), "the standby's schedule starts suspended");
    conformance(&regions, "eu-west-1", ("suspend", Value::Bool(false))).await;
}

#[tokio::test]
async fn backup_job_passes_conformance_changing_schedule() {
    conformance(&[("us-east-1", "use1", "active")], "us-east-1", ("schedule", Value::Str("*/30 * * * *".into()))).await;
}

#[tokio::test]
async fn the_pipelines_workload_passes_scale_only_conformance() {
    let clusters = Clusters::start(&["use1"], &[]);
    clusters.pipeline_deploys("use1", &["ai-service"], 1).await;
    let config = config(&[("us-east-1", "use1", "active")]);
    let provider = KubernetesProvider::new(&config, Some(&clusters.kubeconfig)).await.expect("provider");
    let fixture = Fixture {
        project: PROJECT.to_owned(),
        regions: vec!["us-east-1".to_owned()],
        resource: kit::desired_at(&config, "region.us-east-1.workload.ai-service"),
        update: ("replicas".to_owned(), Value::Int(2)),
    };
    check_scale_only(&provider, &fixture).await.unwrap_or_else(|e| panic!("conformance: {e}"));
    assert_eq!(clusters.replicas("use1", "ai-service").await, Some(2), "left in place, at its last scale");
}

#[tokio::test]
async fn created_cronjob_holds_schedule_image_and_settings_and_an_existing_one_is_adopted() {
    let clusters = Clusters::start(&["use1"], &[]);
    let config = config(&[("us-east-1", "use1", "active")]);
    let provider = KubernetesProvider::new(&config, Some(&clusters.kubeconfig)).await.expect("provider");
    let job = backup_job(&config, "us-east-1");

    // A crashed run left the CronJob behind with an older schedule: create adopts and fixes it.
    let mut stale = job.attrs.clone();
    stale.insert("schedule".into(), "0 0 * * *".into());
    stale.insert("suspend".into(), true.into());
    let stale_job = cronjob(&stale);
    clusters.cronjobs("use1").await.create(&PostParams::default(), &stale_job).await.expect("pre-create CronJob");

    let change = kit::change(&job, Action::Create);
    let created = provider
        .apply(&ApplyRequest { project: PROJECT, change: &change, idempotency_token: "t" })
        .await
        .expect("create adopts the existing CronJob")
        .expect("an object");
    assert_eq!(created.resource.attrs, job.attrs);

    let held = clusters.cronjobs("use1").await.get("drplan-backup-database").await.expect("get CronJob");
    assert_eq!(held.spec.schedule, "0 */1 * * *");
    assert_eq!(held.spec.suspend, Some(false));
    let labels = held.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("app.kubernetes.io/managed-by").map(String::as_str), Some("drplan"));
    assert_eq!(labels.get("drplan.io/project").map(String::as_str), Some(PROJECT));
    let pod = held.spec.job_template.spec.and_then(|s| s.template.spec).expect("pod spec");
    assert_eq!(pod.restart_policy.as_deref(), Some("OnFailure"));
    assert_eq!(pod.containers.len(), 1);
    assert_eq!(pod.containers[0].image.as_deref(), Some("bot-core/backup-tool:latest"));
    let env: Vec<(String, Option<String>)> =
        pod.containers[0].env.iter().flatten().map(|e| (e.name.clone(), e.value.clone())).collect();
    let var = |name: &str| env.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.clone());
    assert_eq!(var("DRPLAN_BACKUP_TYPE").as_deref(), Some("full"));
    assert_eq!(var("DRPLAN_RETENTION"), job.str("retention").map(str::to_owned));
    assert_eq!(var("DRPLAN_DESTINATIONS").as_deref(), Some("s3://bot-core-backups/dr/,file:///mnt/nas/bot-core"));
    assert_eq!(var("DRPLAN_GPG_RECIPIENT").as_deref(), Some("disaster-recovery@bot-core.com"));

    // Refresh reads exactly what desired() builds: nothing to change.
    let regions = vec!["us-east-1".to_owned()];
    let want = desired::desired(&config);
    let seen = provider
        .refresh(&RefreshRequest { project: PROJECT, regions: &regions, desired: &want })
        .await
        .expect("refresh");
    assert_eq!(seen.objects.get(&job.address).map(|o| &o.resource.attrs), Some(&job.attrs));

    // Another project's CronJob in the same namespace is not drplan's business here.
    let mut foreign = cronjob(&job.attrs);
    foreign.metadata.name = Some("drplan-backup-other".into());
    if let Some(l) = foreign.metadata.labels.as_mut() {
        l.insert("drplan.io/project".into(), "someone-else".into());
    }
    clusters.cronjobs("use1").await.create(&PostParams::default(), &foreign).await.expect("foreign CronJob");
    let seen = provider
        .refresh(&RefreshRequest { project: PROJECT, regions: &regions, desired: &want })
        .await
        .expect("refresh");
    let addresses: Vec<&String> = seen.objects.keys().collect();
    assert_eq!(addresses, vec![&job.address]);

    // Creating over it is a conflict, not an adoption: the object stays the other project's.
    let mut clash = change.clone();
    clash.address = "region.us-east-1.backup_job.other".into();
    if let Some(a) = clash.after.as_mut() {
        a.insert("name".into(), "drplan-backup-other".into());
    }
    let err = provider
        .apply(&ApplyRequest { project: PROJECT, change: &clash, idempotency_token: "t" })
        .await
        .expect_err("the name is taken");
    assert_eq!(err.class, drplan_core::provider::ErrorClass::Conflict, "{err}");
    assert_eq!(
        err.message,
        "cronjob `drplan-backup-other` in namespace `bot-core` of context `use1` already exists and is not drplan's \
         for project `bot-core`"
    );
    let held = clusters.cronjobs("use1").await.get("drplan-backup-other").await.expect("get CronJob");
    let project = held.metadata.labels.unwrap_or_default().get("drplan.io/project").cloned();
    assert_eq!(project.as_deref(), Some("someone-else"));
}

/// Builds a CronJob the way the provider does, for pre-creating one in the cluster.
fn cronjob(attrs: &drplan_core::plan::Attrs) -> k8s_openapi::api::batch::v1::CronJob {
    drplan_provider_kubernetes::backup_cronjob(PROJECT, NAMESPACE, attrs).expect("complete attributes")
}

/// A CloudNativePG replica cluster whose writer is in a region this provider does not
/// serve: promoted without a demotion token (the old primary cannot be read), and never
/// deleted. The Cluster is made as its operators would, before drplan runs.
#[tokio::test]
async fn a_cloudnativepg_member_conforms() {
    use drplan_core::plan::resource::{address, attrs};
    let clusters = Clusters::start(&["use1"], &[]);
    let client = clusters.client("use1").await;
    let gvk = kube::core::GroupVersionKind::gvk("postgresql.cnpg.io", "v1", "Cluster");
    let api: kube::Api<kube::api::DynamicObject> =
        kube::Api::namespaced_with(client, NAMESPACE, &kube::api::ApiResource::from_gvk_with_plural(&gvk, "clusters"));
    let cluster: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": { "name": "ledger-b", "namespace": NAMESPACE },
        "spec": { "instances": 1, "replica": { "self": "ledger-b", "primary": "ledger-a", "source": "ledger-a" } },
    }))
    .unwrap();
    api.create(&PostParams::default(), &cluster).await.expect("create Cluster");
    let config = config(&[("us-east-1", "use1", "active")]);
    let provider = KubernetesProvider::new(&config, Some(&clusters.kubeconfig)).await.expect("provider");
    let fixture = Fixture {
        project: PROJECT.to_owned(),
        regions: vec!["us-east-1".to_owned()],
        resource: Resource {
            address: address::database("us-east-1", "ledger"),
            kind: Kind::Database,
            region: Some("us-east-1".into()),
            attrs: attrs([
                ("cloud", "kubernetes".into()),
                ("kind", "cloudnativepg".into()),
                ("engine", "postgres".into()),
                ("identifier", "ledger-b".into()),
                ("context", "use1".into()),
                ("namespace", NAMESPACE.into()),
                ("role", "replica".into()),
                ("source", "?/ledger-a".into()),
            ]),
        },
        update: ("role".to_owned(), Value::Str("writer".into())),
    };
    drplan_provider_fake::conformance::check_database_member(&provider, &fixture)
        .await
        .unwrap_or_else(|e| panic!("conformance: {e}"));
    let after = api.get("ledger-b").await.expect("still there");
    assert_eq!(after.data["spec"]["replica"]["primary"], "ledger-b", "{after:?}");
}

/// An incident's cordon: every Node cordoned once, lifted by the delete, except a Node a
/// person had cordoned before, which stays cordoned.
#[tokio::test]
async fn an_incidents_cordon_passes_conformance_and_leaves_a_persons_cordon() {
    use k8s_openapi::api::core::v1::Node;
    let clusters = Clusters::start(&["use1"], &[]);
    let nodes: kube::Api<Node> = kube::Api::all(clusters.client("use1").await);
    for (name, unschedulable) in [("node-a", false), ("node-b", true)] {
        let node: Node = serde_json::from_value(
            serde_json::json!({"metadata": {"name": name}, "spec": {"unschedulable": unschedulable}}),
        )
        .unwrap();
        nodes.create(&PostParams::default(), &node).await.expect("create Node");
    }
    let config = config(&[("us-east-1", "use1", "active")]);
    let provider = KubernetesProvider::new(&config, Some(&clusters.kubeconfig)).await.expect("provider");
    let fixture = Fixture {
        project: PROJECT.to_owned(),
        regions: vec!["us-east-1".to_owned()],
        resource: Resource {
            address: drplan_core::plan::resource::address::cordon("us-east-1"),
            kind: Kind::Cordon,
            region: Some("us-east-1".into()),
            attrs: drplan_core::plan::resource::attrs([("context", "use1".into()), ("incident", "inc-1".into())]),
        },
        update: ("incident".to_owned(), Value::Str("inc-2".into())),
    };
    let cordoned = drplan_provider_fake::conformance::check_incident_step(&provider, &fixture)
        .await
        .unwrap_or_else(|e| panic!("conformance: {e}"));
    assert_eq!(cordoned.resource.str("nodes"), Some("node-a"), "a person's cordon is not drplan's");
    let state =
        |n: &Node| (n.metadata.name.clone().unwrap(), n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true));
    let after: Vec<(String, bool)> = nodes.list(&Default::default()).await.unwrap().items.iter().map(state).collect();
    assert_eq!(after, [("node-a".to_string(), false), ("node-b".to_string(), true)]);
}

/// An incident's deny-all NetworkPolicy: made once, every pod selected, no rule either way;
/// removed by the delete.
#[tokio::test]
async fn an_incidents_deny_all_policy_passes_conformance() {
    use k8s_openapi::api::networking::v1::NetworkPolicy;
    let clusters = Clusters::start(&["use1"], &[]);
    let config = config(&[("us-east-1", "use1", "active")]);
    let provider = KubernetesProvider::new(&config, Some(&clusters.kubeconfig)).await.expect("provider");
    let fixture = Fixture {
        project: PROJECT.to_owned(),
        regions: vec!["us-east-1".to_owned()],
        resource: Resource {
            address: drplan_core::plan::resource::address::deny_all("us-east-1"),
            kind: Kind::DenyAll,
            region: Some("us-east-1".into()),
            attrs: drplan_core::plan::resource::attrs([
                ("context", "use1".into()),
                ("namespace", NAMESPACE.into()),
                ("name", "drplan-incident-inc-1".into()),
                ("incident", "inc-1".into()),
            ]),
        },
        update: ("incident".to_owned(), Value::Str("inc-2".into())),
    };
    let policies: kube::Api<NetworkPolicy> = kube::Api::namespaced(clusters.client("use1").await, NAMESPACE);
    // Looked at between the create and the delete, through a create of its own.
    let create = drplan_core::plan::Change {
        address: fixture.resource.address.clone(),
        kind: Kind::DenyAll,
        region: fixture.resource.region.clone(),
        action: Action::Create,
        before: None,
        after: Some(fixture.resource.attrs.clone()),
        id: None,
        replace_paths: Vec::new(),
    };
    let request = ApplyRequest { project: PROJECT, change: &create, idempotency_token: "t" };
    provider.apply(&request).await.expect("deny-all");
    let made = policies.get("drplan-incident-inc-1").await.expect("the policy");
    let spec = made.spec.unwrap();
    assert_eq!(spec.policy_types.as_deref(), Some(&["Ingress".to_string(), "Egress".to_string()][..]));
    assert!(spec.ingress.is_none() && spec.egress.is_none());
    assert_eq!(spec.pod_selector.unwrap_or_default(), Default::default(), "every pod");
    drplan_provider_fake::conformance::check_incident_step(&provider, &fixture)
        .await
        .unwrap_or_else(|e| panic!("conformance: {e}"));
    assert!(policies.list(&Default::default()).await.unwrap().items.is_empty());
}
