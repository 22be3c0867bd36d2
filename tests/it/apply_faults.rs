//! apply through a fault-injecting proxy in front of moto: with throttling, 5xx answers and
//! dropped connections on a share of requests it converges within the retry budget; with
//! one region's launches failing for good it stops with a plain summary, records what it
//! did, leaks nothing, and the next apply without faults finishes the work.

use crate::support;

use support::text;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Instant;

use drplan_harness::{Emulator, FaultKind, FaultProxy, Faults, Running};
use drplan_provider_fake::kit::{Backup, Topology};
use support::{aws_region, dns_failover};

const ZONE: &str = "faults.example.com";
const ACTIVE: usize = 24;
const STANDBY: usize = 12;
/// One request in this many is faulted in the converging scenario.
const FAULT_EVERY: u64 = 4;

fn configuration(endpoint: &str) -> String {
    let web = (ACTIVE as u32, STANDBY as u32, 0);
    Topology::new("faults")
        .aws(Some(endpoint))
        .region(aws_region("us-east-1", "active", ZONE, web))
        .region(aws_region("us-west-2", "standby", ZONE, web))
        .backup(Backup::new("database", "0 */1 * * *", "30d", "faults/backup:1").full().s3(
            "primary",
            "faults-backups",
            "db/",
            "us-east-1",
            None,
        ))
        .failover(dns_failover(ZONE, "10s", 1))
        .hcl()
}

fn describe(out: &Output, proxy: &FaultProxy) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- proxy {:?}\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr),
        proxy.counts(),
        proxy.log().join("\n")
    )
}

/// The state file, which must be whole JSON: `(address, type, region, id)` per object.
fn state_objects(dir: &Path) -> Vec<(String, String, Option<String>, String)> {
    let bytes = std::fs::read(dir.join(".drplan/state.json")).expect("the state file exists");
    let state: serde_json::Value = serde_json::from_slice(&bytes).expect("the state file is valid JSON");
    state["objects"]
        .as_array()
        .expect("state has an objects list")
        .iter()
        .map(|o| {
            let s = |k: &str| o[k].as_str().unwrap_or_default().to_owned();
            (s("address"), s("type"), o["region"].as_str().map(str::to_owned), s("id"))
        })
        .collect()
}

/// Instance ids the state records in `region`.
fn recorded_instances(dir: &Path, region: &str) -> BTreeSet<String> {
    state_objects(dir)
        .into_iter()
        .filter(|(_, kind, r, _)| kind == "instance" && r.as_deref() == Some(region))
        .map(|(_, _, _, id)| id)
        .collect()
}

fn setup() -> (Running, tempfile::TempDir) {
    let moto = Running::start(Emulator::Moto).expect("moto starts");
    moto.create_hosted_zone(ZONE).unwrap();
    (moto, tempfile::tempdir().unwrap())
}

fn apply(dir: &Path) -> Output {
    support::drplan_aws(dir).args(["apply", ".", "--auto-approve"]).output().unwrap()
}

/// moto holds exactly the desired instances, all of them recorded, and a plan through
/// `proxy` finds nothing to do.
fn assert_converged(moto: &Running, proxy: &FaultProxy, dir: &Path) {
    for (region, want) in [("us-east-1", ACTIVE), ("us-west-2", STANDBY)] {
        let live = moto.live_instances(region).unwrap();
        assert_eq!(live.len(), want, "instances in {region}");
        assert_eq!(recorded_instances(dir, region), live, "state records exactly moto's instances in {region}");
    }
    let kinds: BTreeSet<String> = state_objects(dir).into_iter().map(|(_, kind, _, _)| kind).collect();
    for kind in ["bucket", "dns_record", "health_check"] {
        assert!(kinds.contains(kind), "state records a {kind}: {kinds:?}");
    }
    let out = support::drplan_aws(dir).args(["plan", ".", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "converged: {}", describe(&out, proxy));
}

#[test]
fn a_share_of_throttling_5xx_and_dropped_connections_is_absorbed_by_retries() {
    let (moto, dir) = setup();
    let proxy = FaultProxy::start(moto.url(), Faults::every(FAULT_EVERY)).expect("proxy starts");
    std::fs::write(dir.path().join("main.hcl"), configuration(proxy.url())).unwrap();

    let started = Instant::now();
    let out = apply(dir.path());
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "apply converges despite the faults: {}", describe(&out, &proxy));
    let counts = proxy.counts();
    assert!(
        counts.throttled > 0 && counts.server_errors > 0 && counts.dropped > 0,
        "every kind of fault was injected: {counts:?}"
    );
    assert!(
        counts.injected() * FAULT_EVERY * 2 >= counts.forwarded,
        "about one request in {FAULT_EVERY} was faulted: {counts:?}"
    );
    assert_eq!(counts.upstream_failures, 0);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Apply complete") && stderr.contains(" 0 failed"), "{stderr}");
    eprintln!("apply with faults: {took:.1?}, {counts:?}");

    let before_plan = proxy.counts().injected();
    assert_converged(&moto, &proxy, dir.path());
    assert!(proxy.counts().injected() > before_plan, "the converged plan also ran through faults");
}

#[test]
fn a_region_whose_launches_always_fail_stops_cleanly_and_the_next_apply_finishes() {
    let (moto, dir) = setup();
    let broken = Faults::always(FaultKind::ServerError)
        .matching(|r| r.region.as_deref() == Some("us-east-1") && r.action.as_deref() == Some("RunInstances"));
    let proxy = FaultProxy::start(moto.url(), broken).expect("proxy starts");
    std::fs::write(dir.path().join("main.hcl"), configuration(proxy.url())).unwrap();

    let started = Instant::now();
    let out = apply(dir.path());
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out, &proxy));
    let counts = proxy.counts();
    assert!(counts.server_errors >= ACTIVE as u64, "every launch in us-east-1 was refused: {counts:?}");
    eprintln!("apply with us-east-1 launches failing: {took:.1?}, {counts:?}");

    let stderr = text(&out.stderr);
    let summary = &stderr[stderr.find("Apply failed:").unwrap_or_else(|| panic!("a summary line: {stderr}"))..];
    assert!(summary.contains(&format!("{ACTIVE} failed")), "{summary}");
    for i in 0..ACTIVE {
        let id = format!("region.us-east-1.compute.web[{i}]");
        let line = summary.lines().find(|l| l.starts_with(&format!("  failed:  {id}: ")));
        let line = line.unwrap_or_else(|| panic!("{id} is named in the summary:\n{summary}"));
        assert!(line.contains("RunInstances: InternalError: An internal error has occurred."), "{line}");
        assert_eq!(line.matches(&id).count(), 1, "the address is named once: {line}");
        assert!(!line.contains("failed: failed:"), "{line}");
    }
    // What could not run without the active region's capacity is named with its reason.
    for skipped in ["gate.health.us-east-1", "dns.api.faults.example.com.primary"] {
        let line = stderr.lines().find(|l| l.trim_start().starts_with(&format!("skipped  {skipped}:")));
        let line = line.unwrap_or_else(|| panic!("{skipped} is reported skipped:\n{stderr}"));
        assert!(line.contains("which failed"), "{line}");
    }
    // The cause in plain words, not the SDK's debug representation.
    for dump in
        ["ServiceError", "SdkError", "DispatchFailure", "ErrorMetadata", "raw:", "Response {", "Some(", "source:"]
    {
        assert!(!stderr.contains(dump), "raw SDK output ({dump:?}) in:\n{stderr}");
    }

    // What succeeded is recorded, and nothing exists that state does not know of.
    assert!(moto.live_instances("us-east-1").unwrap().is_empty(), "no launch in us-east-1 reached moto");
    let standby = moto.live_instances("us-west-2").unwrap();
    assert_eq!(standby.len(), STANDBY, "the standby region was not held up by the failures");
    assert_eq!(recorded_instances(dir.path(), "us-west-2"), standby, "state records every standby instance");
    assert!(recorded_instances(dir.path(), "us-east-1").is_empty());
    let addresses: Vec<String> = state_objects(dir.path()).into_iter().map(|(address, ..)| address).collect();
    assert!(addresses.iter().any(|a| a == "backup.database.destination.primary"), "{addresses:?}");
    assert!(!addresses.iter().any(|a| a == "dns.api.faults.example.com.primary"), "{addresses:?}");

    proxy.set_faults(Faults::none());
    let started = Instant::now();
    let out = apply(dir.path());
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out, &proxy));
    eprintln!("apply without faults: {took:.1?}");
    assert_converged(&moto, &proxy, dir.path());
}
