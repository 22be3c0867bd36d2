//! A cyber attack on `examples/bot-core`, through the real binary on moto, gcplocal and kmock:
//! an incident declared on the active region, a failover away from it that takes its
//! evidence first, isolates it, keeps its machines and pods, and restores the newest point
//! from before the incident; the incident closed and the isolation lifted.
//!
//! What the emulators lack is played: kmock runs no pods, so each cluster gets its Nodes
//! made through its own API ([`nodes`]) and its restore Jobs finished by the harness
//! (`Running::play_jobs`); moto's Route 53 checkers by the world's fault proxy.

use std::time::Duration;

use drplan_harness::{JobOutcome, RequestInfo, Running};

use crate::support::bot_core::{self, Damage, World, describe, done_order, json, position, world};
use crate::support::{http, text};

/// Two Nodes in `cluster`, as its cloud's node pool would have made them.
fn nodes(cluster: &Running) {
    for name in ["node-a", "node-b"] {
        let body = serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}});
        let (code, answer) = http(cluster.url(), "POST", "/api/v1/nodes", "application/json", &body.to_string());
        assert!((200..300).contains(&code), "creating Node {name}: {code} {answer}");
    }
}

/// Each Node of `cluster` and whether it is unschedulable.
fn cordoned(cluster: &Running) -> Vec<(String, bool)> {
    let (_, body) = http(cluster.url(), "GET", "/api/v1/nodes", "application/json", "");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["metadata"]["name"].as_str().unwrap().to_string(), n["spec"]["unschedulable"] == true))
        .collect()
}

/// The NetworkPolicies in `cluster`'s namespace, by name.
fn policies(cluster: &Running) -> Vec<String> {
    let path = "/apis/networking.k8s.io/v1/namespaces/bot-core/networkpolicies";
    let (code, body) = http(cluster.url(), "GET", path, "application/json", "");
    assert_eq!(code, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    list["items"].as_array().unwrap().iter().map(|p| p["metadata"]["name"].as_str().unwrap().to_string()).collect()
}

/// The snapshots in `region` tagged with `incident`.
fn evidence(w: &World, region: &str, incident: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let all = w.moto.snapshots(region).unwrap();
    all.into_values().filter(|tags| tags.get("drplan:incident").map(String::as_str) == Some(incident)).collect()
}

/// Whether the `DRPLAN_RETENTION_HOLD` variable is set on each backup CronJob of `cluster`.
fn retention_held(cluster: &Running) -> Vec<bool> {
    let (_, body) = http(cluster.url(), "GET", "/apis/batch/v1/namespaces/bot-core/cronjobs", "application/json", "");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let env = &c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"];
            env.as_array().unwrap().iter().any(|e| e["name"] == "DRPLAN_RETENTION_HOLD" && e["value"] == "1")
        })
        .collect()
}

/// Whether the Cloud Storage copy's expiry rule is paused (it matches nothing).
fn gcs_paused(w: &World) -> bool {
    let (code, body) = http(w.gcplocal.url(), "GET", "/storage/v1/b/bot-core-backups-eu", "application/json", "");
    assert_eq!(code, 200, "{body}");
    let bucket: serde_json::Value = serde_json::from_str(&body).unwrap();
    bucket["lifecycle"]["rule"][0]["condition"]["createdBefore"].is_string()
}

/// A clean point written, then the incident declared, then two points written during it:
/// one named as now, one whose name says it is older than the incident (as an attacker who
/// chose its name would). Returns the three names: clean, newer, backdated.
fn points_around_an_incident(w: &World, region: &str) -> (String, String, String) {
    let clean = bot_core::write_point(w, 4 * 3600, Damage::None);
    // The storage's clock has a one-second grain: the incident begins after the clean point
    // was written, and the others are written after it began.
    std::thread::sleep(Duration::from_millis(1_500));
    let since = drplan_core::recovery::rfc3339(bot_core::now());
    std::thread::sleep(Duration::from_millis(1_500));
    let out = w.drplan(&[
        "incident",
        "declare",
        "--region",
        region,
        "--since",
        &since,
        "--reason",
        "ransomware on the trading hosts",
        "bot-core",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(text(&out.stdout).contains("Incident inc-1 declared"), "{}", describe(&out));
    let newer = bot_core::write_point(w, 60, Damage::None);
    let backdated = bot_core::write_point(w, 3600, Damage::None);
    (clean, newer, backdated)
}

#[test]
fn an_incident_isolates_the_region_keeps_its_evidence_and_restores_from_before_it() {
    let w = world(|c| c);
    nodes(&w.use1);
    w.converge();
    let east = w.moto.live_instances("us-east-1").unwrap();
    assert_eq!(east.len(), 3);
    let groups_before: Vec<Vec<String>> =
        east.iter().map(|id| w.moto.instance_groups("us-east-1", id).unwrap()).collect();
    let (clean, newer, backdated) = points_around_an_incident(&w, "us-east-1");

    // The newer points are verified, and suspect: by the storage's own times, whatever
    // their names say.
    let report = json(&w.drplan(&["backups", "bot-core", "--json"]));
    let points = report["backups"][0]["destinations"][0]["points"].as_array().unwrap().clone();
    let suspect =
        |name: &str| points.iter().find(|p| p["name"] == name).map(|p| (p["status"].clone(), p["suspect"].clone()));
    assert_eq!(suspect(&newer), Some(("verified".into(), true.into())), "{points:#?}");
    assert_eq!(suspect(&backdated), Some(("verified".into(), true.into())), "{points:#?}");
    assert_eq!(report["backups"][0]["newest_usable"]["point"], clean.as_str(), "{report:#}");
    let listing = text(&w.drplan(&["backups", "bot-core"]).stdout);
    assert!(listing.contains(&format!("{newer}  ")) && listing.contains("SUSPECT: written"), "{listing}");

    // Declaring it changed nothing in the clouds; every plan shows it; the serving region is
    // not isolated by a plan that does not fail over.
    assert_eq!(cordoned(&w.use1), [("node-a".to_string(), false), ("node-b".to_string(), false)]);
    let plan = w.drplan(&["plan", "bot-core"]);
    let shown = text(&plan.stdout);
    assert!(shown.contains("Incident inc-1 open on us-east-1"), "{}", describe(&plan));
    assert!(
        text(&plan.stderr).contains("still serves: it is not isolated") || shown.contains("still serves"),
        "{}",
        describe(&plan)
    );

    // The failover away from it: evidence, isolation, the newest clean point restored.
    let out = w.drplan(&["failover", "--to", "eu-west-1", "bot-core", "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&w.drplan(&["plan", "bot-core", "--json"]));
    assert_eq!(doc["incidents"][0]["id"], "inc-1", "{:#}", doc["incidents"]);
    assert_eq!(doc["restores"][0]["point"], clean.as_str(), "{:#}", doc["restores"]);
    assert_eq!(doc["databases"][0]["how"], "incident", "{:#}", doc["databases"]);
    let addresses: Vec<&str> =
        doc["resource_changes"].as_array().unwrap().iter().filter_map(|c| c["address"].as_str()).collect();
    assert!(
        !addresses.iter().any(|a| a.starts_with("region.us-east-1.compute.")),
        "no instance of us-east-1 changes: {addresses:?}"
    );
    assert!(
        !addresses.iter().any(|a| a.starts_with("region.us-east-1.workload.")),
        "no pod of us-east-1 goes: {addresses:?}"
    );
    assert!(!addresses.contains(&"region.us-east-1.stop_writes.ledger"), "{addresses:?}");

    w.euw1.play_jobs(JobOutcome::Complete).unwrap();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let order = done_order(&out);

    // EBS snapshots tagged with the incident, one per volume, taken before anything else
    // touched those instances, each copied to eu-west-1.
    let taken = evidence(&w, "us-east-1", "inc-1");
    assert_eq!(taken.len(), 3, "{taken:#?}");
    let copies = evidence(&w, "eu-west-1", "inc-1");
    assert_eq!(copies.len(), 3, "{copies:#?}");
    for i in 0..3 {
        let evidence = position(&order, &format!("region.us-east-1.evidence.nodes[{i}]"));
        let quarantine = position(&order, &format!("region.us-east-1.quarantine.nodes[{i}]"));
        assert!(evidence < quarantine, "{order:?}");
        assert!(evidence < position(&order, "region.us-east-1.cordon"), "{order:?}");
    }
    // The instances still exist, each in the quarantine group alone, which lets nothing in or out.
    assert_eq!(w.moto.live_instances("us-east-1").unwrap(), east, "no instance terminated");
    let state = w.state();
    let quarantine = state["objects"].as_array().unwrap().iter().find(|o| o["type"] == "quarantine").unwrap().clone();
    let group = quarantine["attributes"]["group_id"].as_str().unwrap().to_string();
    for id in &east {
        assert_eq!(w.moto.instance_groups("us-east-1", id).unwrap(), std::slice::from_ref(&group));
    }
    assert_eq!(w.moto.group_rules("us-east-1", &group).unwrap(), (0, 0), "no ingress, no egress");
    // Nodes cordoned, a deny-all NetworkPolicy, the schedule suspended, its pods kept.
    assert_eq!(cordoned(&w.use1), [("node-a".to_string(), true), ("node-b".to_string(), true)]);
    assert_eq!(policies(&w.use1), ["drplan-incident-inc-1"]);
    assert_eq!(bot_core::suspended(&w.use1), [true]);
    assert_eq!(bot_core::replicas(&w.use1), [3, 3, 2], "us-east-1's pods are evidence: left as they were");
    // Retention held: both clouds' expiry rules paused, the tools told.
    assert_eq!(w.moto.lifecycle_status("bot-core-backups").unwrap().values().collect::<Vec<_>>(), ["Disabled"]);
    assert!(gcs_paused(&w));
    assert_eq!(retention_held(&w.euw1), [true]);
    // The restore used the newest point from before the incident, into the promoted standby.
    let restore = state["objects"].as_array().unwrap().iter().find(|o| o["type"] == "restore").unwrap().clone();
    assert_eq!(restore["attributes"]["point_name"], clean.as_str(), "{restore:#}");
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"));

    // Closing asks for the instances to be replaced, or kept on purpose.
    let out = w.drplan(&["incident", "close", "inc-1", "bot-core"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(text(&out.stderr).contains("drplan::incident::invalid"), "{}", describe(&out));
    let out = w.drplan(&["incident", "close", "inc-1", "--keep-instances", "bot-core"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("never deletes it") || text(&out.stdout).contains("never deletes it"),
        "{}",
        describe(&out)
    );
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Lifted first, then us-east-1 converges to its standby role (one instance kept).
    let kept = w.moto.live_instances("us-east-1").unwrap();
    assert_eq!(kept.len(), 1);
    for (id, before) in east.iter().zip(&groups_before).filter(|(id, _)| kept.contains(*id)) {
        assert_eq!(&w.moto.instance_groups("us-east-1", id).unwrap(), before, "{id}'s groups are back");
    }
    assert_eq!(cordoned(&w.use1), [("node-a".to_string(), false), ("node-b".to_string(), false)]);
    assert!(policies(&w.use1).is_empty());
    assert_eq!(w.moto.lifecycle_status("bot-core-backups").unwrap().values().collect::<Vec<_>>(), ["Enabled"]);
    assert!(!gcs_paused(&w));
    assert_eq!(retention_held(&w.euw1), [false]);
    assert_eq!(bot_core::suspended(&w.use1), [true], "us-east-1 is a standby now: its schedule stays suspended");
    // The evidence stays, and the record.
    assert_eq!(evidence(&w, "us-east-1", "inc-1").len(), 3);
    assert_eq!(evidence(&w, "eu-west-1", "inc-1").len(), 3);
    let listed = text(&w.drplan(&["incident", "list", "bot-core"]).stdout);
    assert!(listed.contains("inc-1  us-east-1  closed") && listed.contains("evidence us-east-1:snap-"), "{listed}");
    let listing = json(&w.drplan(&["incident", "list", "bot-core", "--json"]));
    let record = &listing["incidents"][0];
    assert_eq!((record["id"].as_str(), record["keep_instances"].as_bool()), (Some("inc-1"), Some(true)), "{listing:#}");
    assert!(record["closed_at"].is_string() && record["declared_by"].is_string(), "{listing:#}");
    assert_eq!(record["evidence"].as_array().map(Vec::len), Some(6), "three snapshots and their copies: {listing:#}");
    let out = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "the next plan converges: {}", describe(&out));
}

#[test]
fn the_old_active_unreachable_its_isolation_is_owed_and_the_failover_goes_on() {
    let w = world(|c| c);
    nodes(&w.use1);
    w.converge();
    let east = w.moto.live_instances("us-east-1").unwrap();
    let (clean, _, _) = points_around_an_incident(&w, "us-east-1");
    w.lose_us_east_1();
    let out = w.drplan(&["failover", "--to", "eu-west-1", "bot-core", "--write", "--allow-unreachable"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    w.euw1.play_jobs(JobOutcome::Complete).unwrap();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--allow-unreachable"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(w.moto.failover_record("PRIMARY").unwrap().as_deref(), Some("euw1.bot-core.com"));
    let state = w.state();
    let restore = state["objects"].as_array().unwrap().iter().find(|o| o["type"] == "restore").unwrap().clone();
    assert_eq!(restore["attributes"]["point_name"], clean.as_str(), "{restore:#}");
    assert!(
        state["lost"]["us-east-1"]["owed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "region.us-east-1.evidence.nodes[0]"),
        "{:#}",
        state["lost"]
    );

    // Back: its evidence first, then its isolation; nothing of it terminated or scaled down.
    w.restore_us_east_1();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let order = done_order(&out);
    assert!(
        position(&order, "region.us-east-1.evidence.nodes[0]")
            < position(&order, "region.us-east-1.quarantine.nodes[0]")
    );
    assert_eq!(evidence(&w, "us-east-1", "inc-1").len(), 3);
    assert_eq!(w.moto.live_instances("us-east-1").unwrap(), east, "no instance terminated");
    assert_eq!(cordoned(&w.use1), [("node-a".to_string(), true), ("node-b".to_string(), true)]);
    assert_eq!(bot_core::replicas(&w.use1), [3, 3, 2]);
}

#[test]
fn an_isolation_killed_midway_takes_one_snapshot_per_volume_when_applied_again() {
    let w = world(|c| c);
    w.converge();
    let west = w.moto.live_instances("eu-west-1").unwrap();
    // The standby is compromised: the next apply isolates it, and is killed once its snapshot
    // was taken, while the copy of it to the serving region is held at the proxy.
    let out = w.drplan(&[
        "incident",
        "declare",
        "--region",
        "eu-west-1",
        "--since",
        "10m",
        "--reason",
        "stolen keys",
        "bot-core",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let copying = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = std::sync::Arc::clone(&copying);
    w.aws.set_faults(bot_core::checkers(&w.failing).stalling(Duration::from_secs(60), move |r: &RequestInfo| {
        let copy = r.action.as_deref() == Some("CopySnapshot");
        if copy {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        copy
    }));
    let mut child = w.command(&["apply", "bot-core", "--auto-approve"]).spawn().unwrap();
    let started = std::time::Instant::now();
    while !copying.load(std::sync::atomic::Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(copying.load(std::sync::atomic::Ordering::SeqCst), "the copy was asked for");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(evidence(&w, "eu-west-1", "inc-1").len(), 1, "the snapshot was taken before the kill");
    assert!(evidence(&w, "us-east-1", "inc-1").is_empty(), "its copy was not");

    w.aws.set_faults(bot_core::checkers(&w.failing));
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let taken = evidence(&w, "eu-west-1", "inc-1");
    assert_eq!(taken.len(), 1, "one snapshot per volume, the first one found again: {taken:#?}");
    let copies = evidence(&w, "us-east-1", "inc-1");
    assert_eq!(copies.len(), 1, "{copies:#?}");
    assert_eq!(copies[0].get("drplan:volume"), taken[0].get("drplan:volume"));
    assert_eq!(w.moto.live_instances("eu-west-1").unwrap(), west, "no instance terminated");
}

#[test]
fn bad_input_gets_a_located_coded_error() {
    let w = world(|c| c);
    let declare = |region: &str, since: &str| {
        w.drplan(&["incident", "declare", "--region", region, "--since", since, "--reason", "x", "bot-core"])
    };
    let future = drplan_core::recovery::rfc3339(bot_core::now() + 3600);
    for (out, code, label) in [
        (declare("us-east-1", &future), "drplan::incident::invalid", "this time"),
        (declare("us-east-1", "last tuesday"), "drplan::incident::invalid", "this time"),
        (declare("us-east-2", "1h"), "drplan::config::unknown_region", "not a region of this configuration"),
        (w.drplan(&["incident", "close", "inc-9", "bot-core"]), "drplan::incident::unknown", "no such incident"),
    ] {
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert!(err.contains(code) && err.contains(label) && err.contains("command line"), "{err}");
    }
    let err = text(&declare("us-east-2", "1h").stderr);
    assert!(err.contains("did you mean `us-east-1`?"), "{err}");
    assert!(!w.config().join(".drplan/state.json").exists(), "nothing was recorded");
}

#[test]
fn the_watcher_never_targets_a_compromised_region() {
    let w = world(|c| c);
    w.converge();
    bot_core::write_point(&w, 10 * 60, Damage::None);
    let out = w.drplan(&[
        "incident",
        "declare",
        "--region",
        "eu-west-1",
        "--since",
        "1h",
        "--reason",
        "stolen keys",
        "bot-core",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    w.fail_checks_of("us-east-1");
    // Manual mode: the watcher says what it would do, after the threshold's two rounds. The
    // cold site has no point to restore and is not tried here (`allow_cold`): nothing is
    // left, and the standby is passed over as compromised.
    let out = w.drplan(&["watch", "bot-core", "--rounds", "2", "--interval", "1s", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let events: Vec<serde_json::Value> =
        text(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let last = events.last().cloned().unwrap_or_default();
    assert_eq!(last["type"], "no-target", "{last:#}");
    let why = last["text"].as_str().unwrap_or_default();
    assert!(why.contains("eu-west-1: compromised: incident inc-1 open since"), "{why}");
    // Without the incident, the same rounds would have chosen the standby.
    let out = w.drplan(&["incident", "close", "inc-1", "--keep-instances", "bot-core"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = w.drplan(&["watch", "bot-core", "--rounds", "2", "--interval", "1s", "--json"]);
    let events: Vec<serde_json::Value> =
        text(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let last = events.last().cloned().unwrap_or_default();
    assert_eq!(last["type"], "would-fail-over", "{last:#}");
    assert!(last["text"].as_str().unwrap_or_default().contains("would fail over to eu-west-1"), "{last:#}");
}
