//! `GcpProvider` against gcplocal (one emulator per test): the conformance suite, a cold
//! region promoted and demoted through the engine, a GCS backup destination, a crashed run
//! adopted, an unreachable endpoint; and the 409 `alreadyExists` path against a canned server.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use common::provider;
use drplan_core::config::Config;
use drplan_core::plan::resource::{Kind, Value};
use drplan_core::plan::{self, Action, Change, Options, Prior, desired};
use drplan_core::provider::{ApplyRequest, ErrorClass, Provider, RefreshRequest, idempotency_token};
use drplan_harness::{Emulator, Running};
use drplan_provider_fake::conformance::{self, Fixture};
use drplan_provider_fake::kit::{self, Backup, Region, Topology, refresh, regions};
use drplan_provider_gcp::GcpProvider;
use serde_json::Value as Json;

const GCP_PROJECT: &str = "dr-test";
const ZONE: &str = "asia-east1-a";

/// A configuration: an AWS region without compute and a GCP region `apac` with a pool of
/// `count` instances per role, `apac` having `role`; a GCS backup destination.
fn configuration(endpoint: &str, apac_role: &str) -> Config {
    let aws_role = if apac_role == "active" { "standby" } else { "active" };
    Topology::new("shop")
        .aws(None)
        .gcp(GCP_PROJECT, endpoint)
        .region(Region::aws("us-east-1", aws_role).endpoint("use1.shop.example"))
        .region(Region::gcp("apac", apac_role, ZONE).endpoint("apac.shop.example").compute(
            "web",
            "e2-standard-4",
            &format!("projects/{GCP_PROJECT}/global/images/web-v1"),
            (3, 1, 0),
        ))
        .backup(Backup::new("db", "0 * * * *", "14d", "backup:1").full().gcs(
            "offsite",
            "shop-backups-apac",
            "db/",
            "asia-east1",
            Some("NEARLINE"),
        ))
        .load()
}

/// Instances gcplocal holds in the zone: (name, labels).
async fn emulator_instances(url: &str) -> Vec<(String, Json)> {
    let body: Json = http_get(&format!("{url}/compute/v1/projects/{GCP_PROJECT}/zones/{ZONE}/instances")).await;
    let mut out: Vec<(String, Json)> = body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| (i["name"].as_str().unwrap_or("").to_string(), i["labels"].clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn http_get(url: &str) -> Json {
    reqwest::get(url).await.unwrap().json::<Json>().await.unwrap()
}

fn is_gcp(p: &GcpProvider, c: &Change) -> bool {
    p.manages(c.kind, drplan_core::provider::cloud_of(c))
}

/// Plans, then runs the GCP changes in graph order (the first `limit`), recording results in
/// `prior` as state would. Returns the GCP changes planned.
async fn converge(p: &GcpProvider, config: &Config, prior: &mut Prior, plan_id: &str, limit: usize) -> Vec<Change> {
    // The AWS region serves nothing in this fixture: apply would refuse, the GCP side is tested.
    let plan = kit::plan(p, config, prior).await;
    let plan = kit::apply_plan(p, config, prior, plan, plan_id, limit).await;
    plan.changes.into_iter().filter(|c| is_gcp(p, c)).collect()
}

async fn gcp_changes_left(p: &GcpProvider, config: &Config, prior: &Prior) -> Vec<Change> {
    let live = refresh(p, config).await;
    let plan = plan::plan(config, prior, Some(&live), &Options::default()).unwrap();
    assert!(plan.drift.iter().all(|d| d.kind != Kind::Instance && d.kind != Kind::Bucket), "{:#?}", plan.drift);
    plan.changes.into_iter().filter(|c| is_gcp(p, c)).collect()
}

fn actions(changes: &[Change]) -> Vec<(Action, String)> {
    changes.iter().map(|c| (c.action, c.address.clone())).collect()
}

#[tokio::test]
async fn conformance_instance() {
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal");
    let config = configuration(gcplocal.url(), "active");
    let p = provider(&config).await;
    let resource =
        desired::desired(&config).into_iter().find(|r| r.kind == Kind::Instance).expect("an instance is desired");
    // No attribute of an instance changes in place on gcplocal (no start, stop or
    // setMachineType): an update of the machine type is carried out by replacement.
    let fixture = Fixture {
        project: config.project.clone(),
        regions: regions(&config),
        resource,
        update: ("instance_type".into(), Value::Str("e2-standard-8".into())),
    };
    conformance::check(&p, &fixture).await.unwrap();
    assert!(emulator_instances(gcplocal.url()).await.is_empty(), "{:?}", emulator_instances(gcplocal.url()).await);
}

#[tokio::test]
async fn conformance_bucket() {
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal");
    let config = configuration(gcplocal.url(), "active");
    let p = provider(&config).await;
    let resource = desired::desired(&config).into_iter().find(|r| r.kind == Kind::Bucket).expect("a bucket is desired");
    let fixture = Fixture {
        project: config.project.clone(),
        regions: regions(&config),
        resource,
        update: ("expire_days".into(), Value::Int(30)),
    };
    conformance::check(&p, &fixture).await.unwrap();
}

#[tokio::test]
async fn cold_region_promoted_then_demoted() {
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal");
    let cold = configuration(gcplocal.url(), "cold");
    let p = provider(&cold).await;
    let mut prior = Prior::default();
    // Cold: only the bucket.
    let first = converge(&p, &cold, &mut prior, "deploy", usize::MAX).await;
    assert_eq!(actions(&first), vec![(Action::Create, "backup.db.destination.offsite".into())]);
    assert!(emulator_instances(gcplocal.url()).await.is_empty());

    let active = configuration(gcplocal.url(), "active");
    let promoted = converge(&p, &active, &mut prior, "promote", usize::MAX).await;
    let addresses: Vec<_> = (0..3).map(|i| (Action::Create, format!("region.apac.compute.web[{i}]"))).collect();
    assert_eq!(actions(&promoted), addresses);
    assert_eq!(gcp_changes_left(&p, &active, &prior).await, vec![]);

    let held = emulator_instances(gcplocal.url()).await;
    let names: Vec<&str> = held.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, vec!["shop-apac-web-0", "shop-apac-web-1", "shop-apac-web-2"]);
    for (i, (_, labels)) in held.iter().enumerate() {
        let want = serde_json::json!({
            "drplan-project": "shop", "drplan-region": "apac", "drplan-pool": "web", "drplan-index": i.to_string(),
        });
        assert_eq!(labels, &want);
    }
    let live = refresh(&p, &active).await;
    let web1 = &live.objects["region.apac.compute.web[1]"];
    assert_eq!(web1.id, format!("{ZONE}/shop-apac-web-1"));
    assert_eq!(web1.resource.str("image"), Some("projects/dr-test/global/images/web-v1"));
    assert_eq!(web1.resource.str("instance_type"), Some("e2-standard-4"));
    assert_eq!(web1.resource.str("state"), Some("running"));
    assert_eq!(web1.resource.str("zone"), Some(ZONE));
    assert_eq!(web1.resource.int("index"), Some(1));

    let demoted = converge(&p, &cold, &mut prior, "demote", usize::MAX).await;
    assert_eq!(demoted.len(), 3);
    assert!(demoted.iter().all(|c| c.action == Action::Delete), "{demoted:#?}");
    assert!(emulator_instances(gcplocal.url()).await.is_empty(), "{:?}", emulator_instances(gcplocal.url()).await);
    assert_eq!(gcp_changes_left(&p, &cold, &prior).await, vec![]);
}

#[tokio::test]
async fn a_new_image_replaces_each_instance_under_another_name() {
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal");
    let config = configuration(gcplocal.url(), "active");
    let p = provider(&config).await;
    let mut prior = Prior::default();
    converge(&p, &config, &mut prior, "deploy", usize::MAX).await;

    let text_v2 = |c: &Config| {
        let mut c = c.clone();
        for pool in c.regions.iter_mut().flat_map(|r| r.compute.iter_mut()) {
            pool.image = format!("projects/{GCP_PROJECT}/global/images/web-v2");
        }
        c
    };
    let v2 = text_v2(&config);
    let replaced = converge(&p, &v2, &mut prior, "v2", usize::MAX).await;
    assert_eq!(replaced.iter().filter(|c| c.action == Action::Replace).count(), 3, "{:#?}", actions(&replaced));
    assert_eq!(gcp_changes_left(&p, &v2, &prior).await, vec![]);
    let held = emulator_instances(gcplocal.url()).await;
    assert_eq!(held.len(), 3, "old instances deleted: {held:?}");
    assert!(held.iter().all(|(n, _)| n.contains("-r")), "{held:?}");
    let live = refresh(&p, &v2).await;
    assert_eq!(
        live.objects["region.apac.compute.web[2]"].resource.str("image"),
        Some("projects/dr-test/global/images/web-v2")
    );

    // A second replacement goes back to the plain name.
    let replaced = converge(&p, &config, &mut prior, "v1-again", usize::MAX).await;
    assert_eq!(replaced.len(), 3);
    let names: Vec<String> = emulator_instances(gcplocal.url()).await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["shop-apac-web-0", "shop-apac-web-1", "shop-apac-web-2"]);
}

#[tokio::test]
async fn refresh_costs_one_list_per_region_and_two_calls_per_bucket() {
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal");
    let config = configuration(gcplocal.url(), "active");
    let p = provider(&config).await;
    let mut prior = Prior::default();
    converge(&p, &config, &mut prior, "deploy", usize::MAX).await;
    let before = p.api_calls();
    let live = refresh(&p, &config).await;
    assert_eq!(live.objects.len(), 4, "{:#?}", live.objects.keys());
    // One instances list for the region, a GET and an objects page for the bucket.
    assert_eq!(p.api_calls() - before, 3);
}

#[tokio::test]
async fn gcs_backup_destination_has_its_lifecycle_and_age() {
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal");
    let config = configuration(gcplocal.url(), "cold");
    let p = provider(&config).await;
    let mut prior = Prior::default();
    converge(&p, &config, &mut prior, "deploy", usize::MAX).await;

    let bucket = http_get(&format!("{}/storage/v1/b/shop-backups-apac", gcplocal.url())).await;
    assert_eq!(bucket["location"], "asia-east1");
    assert_eq!(bucket["storageClass"], "NEARLINE");
    assert_eq!(bucket["versioning"]["enabled"], true);
    assert_eq!(
        bucket["lifecycle"]["rule"],
        serde_json::json!([{"action": {"type": "Delete"}, "condition": {"age": 14, "matchesPrefix": ["db/"]}}])
    );
    assert_eq!(bucket["labels"]["drplan-project"], "shop");

    let address = "backup.db.destination.offsite";
    let live = refresh(&p, &config).await;
    assert_eq!(live.objects[address].resource.attrs, desired_attrs(&config, address));
    assert_eq!(live.newest_backup_age.get(address), None, "no backup yet");

    // A backup under the prefix, and one elsewhere that does not count.
    for name in ["db/2026-01-01.dump", "other/x"] {
        let url = format!("{}/upload/storage/v1/b/shop-backups-apac/o?uploadType=media&name={name}", gcplocal.url());
        reqwest::Client::new().post(url).body("data").send().await.unwrap().error_for_status().unwrap();
    }
    let live = refresh(&p, &config).await;
    let age = live.newest_backup_age.get(address).copied();
    assert!(age.is_some_and(|a| a < 60), "{age:?}");
    assert_eq!(gcp_changes_left(&p, &config, &prior).await, vec![]);
}

/// Listings come in name order, so with more than a page of objects under the prefix the
/// newest backup may be on a later page: every page is read.
#[tokio::test]
async fn the_newest_backup_is_found_past_the_first_page() {
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal");
    let config = configuration(gcplocal.url(), "cold");
    let p = provider(&config).await;
    converge(&p, &config, &mut Prior::default(), "deploy", usize::MAX).await;
    let upload = |name: String| {
        let url = format!("{}/upload/storage/v1/b/shop-backups-apac/o?uploadType=media&name={name}", gcplocal.url());
        async move { reqwest::Client::new().post(url).body("data").send().await.unwrap().error_for_status().unwrap() }
    };
    for chunk in (0..1_000).collect::<Vec<u32>>().chunks(50) {
        let mut uploads = tokio::task::JoinSet::new();
        for i in chunk {
            uploads.spawn(upload(format!("db/0-old-{i:04}.dump")));
        }
        uploads.join_all().await;
    }
    // Longer than any refresh takes, so the two ages cannot overlap even on a loaded machine.
    let gap = std::time::Duration::from_secs(8);
    let old_written = std::time::Instant::now();
    tokio::time::sleep(gap).await;
    upload("db/newest.dump".into()).await;

    let before = p.api_calls();
    let refreshing = std::time::Instant::now();
    let age = refresh(&p, &config).await.newest_backup_age.get("backup.db.destination.offsite").copied();
    // Ages are whole seconds: an old backup is at least this old.
    let oldest_possible_for_old = refreshing.duration_since(old_written).as_secs().saturating_sub(1);
    assert!(
        age.is_some_and(|a| a < oldest_possible_for_old),
        "the newest backup is the one uploaded {gap:?} after the others: {age:?}, the others at least {oldest_possible_for_old}s"
    );
    // The instances list, the bucket, and two pages of objects.
    assert_eq!(p.api_calls() - before, 4);
}

fn desired_attrs(config: &Config, address: &str) -> drplan_core::plan::Attrs {
    kit::desired_at(config, address).attrs
}

#[tokio::test]
async fn a_crashed_run_is_adopted_and_nothing_duplicated() {
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal");
    let config = configuration(gcplocal.url(), "active");
    let p = provider(&config).await;
    // The run inserts two of the four objects, then dies before writing state.
    let mut lost = Prior::default();
    converge(&p, &config, &mut lost, "crashed", 2).await;
    let inserted = emulator_instances(gcplocal.url()).await.len();

    let mut prior = Prior::default();
    let live = refresh(&p, &config).await;
    let plan = plan::plan(&config, &prior, Some(&live), &Options::default()).unwrap();
    let gcp: Vec<_> = plan.changes.iter().filter(|c| is_gcp(&p, c)).cloned().collect();
    let adopted = gcp.iter().filter(|c| c.action == Action::Adopt).count();
    let created = gcp.iter().filter(|c| c.action == Action::Create).count();
    assert_eq!((adopted, created), (2, 2), "{:#?}", actions(&gcp));

    let resumed = converge(&p, &config, &mut prior, "resumed", usize::MAX).await;
    assert_eq!(resumed.iter().filter(|c| c.action == Action::Create).count(), 2);
    assert_eq!(gcp_changes_left(&p, &config, &prior).await, vec![]);
    let held = emulator_instances(gcplocal.url()).await;
    assert_eq!(held.len(), 3, "exactly the configured instances, none twice: {held:?}");
    assert!(inserted < 3, "the crash happened before all instances existed ({inserted})");
}

#[tokio::test]
async fn an_unreachable_endpoint_marks_the_region() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = configuration(&format!("http://127.0.0.1:{port}"), "active");
    let p = provider(&config).await;
    let regions = vec!["apac".to_string()];
    let snapshot = p
        .refresh(&RefreshRequest { project: &config.project, regions: &regions, desired: &[] })
        .await
        .expect("an unreachable region does not fail the refresh");
    let reason = snapshot.unreachable.get("apac").cloned().unwrap_or_default();
    assert!(reason.contains("127.0.0.1") && !reason.contains('\n'), "{reason:?}");
    assert!(snapshot.objects.is_empty());
}

/// A request line without the system parameters (`$alt`, `$apiVersion`) that the Compute
/// Engine client adds to every request: what is left is the request the provider made.
fn without_system_parameters(line: &str) -> String {
    let mut parts = line.splitn(3, ' ');
    let (method, target, version) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next());
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let kept: Vec<&str> =
        query.split('&').filter(|p| !p.is_empty() && !p.starts_with("%24") && !p.starts_with('$')).collect();
    let target = if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) };
    match version {
        Some(v) => format!("{method} {target} {v}"),
        None => format!("{method} {target}"),
    }
}

/// Answers each request with the next canned response; returns the request lines seen
/// (without the client's system parameters).
fn canned_server(responses: Vec<(u16, String)>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for (status, body) in responses {
            let (mut stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            seen.push(without_system_parameters(line.trim()));
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut request_body = vec![0; length];
            reader.read_exact(&mut request_body).unwrap();
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(reply.as_bytes()).unwrap();
        }
        seen
    });
    (url, handle)
}

#[tokio::test]
async fn an_insert_answered_already_exists_adopts_the_instance() {
    let conflict = r#"{"error": {"code": 409, "message": "The resource 'projects/dr-test/zones/asia-east1-a/instances/shop-apac-web-0' already exists", "errors": [{"reason": "alreadyExists", "domain": "global", "message": "exists"}]}}"#;
    let existing = serde_json::json!({
        "id": "1234", "name": "shop-apac-web-0", "zone": format!("https://compute.googleapis.com/compute/v1/projects/{GCP_PROJECT}/zones/{ZONE}"),
        "machineType": format!("https://compute.googleapis.com/compute/v1/projects/{GCP_PROJECT}/zones/{ZONE}/machineTypes/e2-standard-4"),
        "status": "STAGING", "creationTimestamp": "2026-11-27T10:00:00.000-08:00",
        "labels": {"drplan-project": "shop", "drplan-region": "apac", "drplan-pool": "web", "drplan-index": "0"},
        "metadata": {"items": [{"key": "drplan-image", "value": format!("projects/{GCP_PROJECT}/global/images/web-v1")}]},
    });
    let (url, server) = canned_server(vec![(409, conflict.to_string()), (200, existing.to_string())]);
    let config = configuration(&url, "active");
    let p = provider(&config).await;
    let want = kit::desired_of(&config, Kind::Instance, None);
    let change = kit::change(&want, Action::Create);
    let token = idempotency_token("plan", &want.address);
    let got = p
        .apply(&ApplyRequest { project: &config.project, change: &change, idempotency_token: &token })
        .await
        .expect("a 409 on insert adopts the existing instance")
        .expect("an object");
    assert_eq!(got.id, format!("{ZONE}/shop-apac-web-0"));
    assert_eq!(got.resource.address, "region.apac.compute.web[0]");
    for (k, v) in &want.attrs {
        assert_eq!(got.resource.attrs.get(k), Some(v), "{k}");
    }
    let seen = server.join().unwrap();
    assert_eq!(seen.len(), 2);
    let uuid = drplan_provider_gcp::names::insert_request_id(&token, "shop-apac-web-0");
    assert_eq!(uuid.len(), 36);
    assert_eq!(uuid.matches('-').count(), 4);
    assert!(
        seen[0]
            .starts_with(&format!("POST /compute/v1/projects/{GCP_PROJECT}/zones/{ZONE}/instances?requestId={uuid}")),
        "{seen:?}"
    );
    assert!(
        seen[1].starts_with(&format!("GET /compute/v1/projects/{GCP_PROJECT}/zones/{ZONE}/instances/shop-apac-web-0 ")),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_insert_answered_already_exists_by_a_stranger_is_a_conflict() {
    let conflict = r#"{"error": {"code": 409, "message": "already exists", "errors": [{"reason": "alreadyExists"}]}}"#;
    let stranger = serde_json::json!({
        "name": "shop-apac-web-0", "zone": format!("projects/{GCP_PROJECT}/zones/{ZONE}"),
        "machineType": "e2-micro", "status": "RUNNING", "labels": {"team": "other"},
    });
    let (url, server) = canned_server(vec![(409, conflict.to_string()), (200, stranger.to_string())]);
    let config = configuration(&url, "active");
    let p = provider(&config).await;
    let want = kit::desired_of(&config, Kind::Instance, None);
    let change = kit::change(&want, Action::Create);
    let err = p
        .apply(&ApplyRequest { project: &config.project, change: &change, idempotency_token: "t" })
        .await
        .expect_err("another instance holding the name is not adopted");
    assert_eq!(err.class, ErrorClass::Conflict, "{err}");
    assert_eq!(err.address.as_deref(), Some("region.apac.compute.web[0]"));
    assert_eq!(server.join().unwrap().len(), 2);
}

#[tokio::test]
async fn errors_are_classified_and_throttling_retried() {
    let throttled =
        r#"{"error": {"code": 403, "message": "Rate Limit Exceeded", "errors": [{"reason": "rateLimitExceeded"}]}}"#;
    let denied = r#"{"error": {"code": 403, "message": "Required 'compute.instances.get' permission", "errors": [{"reason": "forbidden"}]}}"#;
    let (url, server) =
        canned_server(vec![(429, throttled.to_string()), (403, throttled.to_string()), (403, denied.to_string())]);
    let config = configuration(&url, "active");
    let p = provider(&config).await;
    let regions = vec!["apac".to_string()];
    let err = p
        .refresh(&RefreshRequest { project: &config.project, regions: &regions, desired: &[] })
        .await
        .expect_err("a forbidden list fails the refresh");
    assert_eq!(err.class, ErrorClass::Denied, "{err}");
    assert!(err.message.contains("forbidden: Required 'compute.instances.get' permission"), "{err}");
    assert_eq!(server.join().unwrap().len(), 3, "two throttled answers were retried");
}

#[tokio::test]
async fn quota_and_invalid_answers_are_invalid_and_not_retried() {
    let quota = r#"{"error": {"code": 403, "message": "Quota 'CPUS' exceeded.  Limit: 8.0 in region asia-east1.", "errors": [{"reason": "quotaExceeded", "domain": "usageLimits"}]}}"#;
    let (url, server) = canned_server(vec![(403, quota.to_string())]);
    let config = configuration(&url, "active");
    let p = provider(&config).await;
    let want = kit::desired_of(&config, Kind::Instance, None);
    let change = kit::change(&want, Action::Create);
    let err = p
        .apply(&ApplyRequest { project: &config.project, change: &change, idempotency_token: "t" })
        .await
        .expect_err("an insert over quota fails");
    assert_eq!(err.class, ErrorClass::Invalid, "{err}");
    assert!(err.message.contains("HTTP 403: quotaExceeded: Quota 'CPUS' exceeded"), "{err}");
    assert_eq!(server.join().unwrap().len(), 1, "a quota is not waited out");

    let invalid = r#"{"error": {"code": 400, "message": "Invalid value for field 'filter'", "status": "INVALID_ARGUMENT", "errors": [{"reason": "invalid"}]}}"#;
    let (url, server) = canned_server(vec![(400, invalid.to_string())]);
    let config = configuration(&url, "active");
    let p = provider(&config).await;
    let regions = vec!["apac".to_string()];
    let err = p
        .refresh(&RefreshRequest { project: &config.project, regions: &regions, desired: &[] })
        .await
        .expect_err("a refused list fails the refresh");
    assert_eq!(err.class, ErrorClass::Invalid, "{err}");
    assert!(err.message.contains("region apac (zone asia-east1-a): HTTP 400: invalid: Invalid value"), "{err}");
    assert_eq!(server.join().unwrap().len(), 1);
}
