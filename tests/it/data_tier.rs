//! The data tier fails over with its region, through the real binary: `examples/bot-core`'s
//! ledger (an RDS writer in us-east-1, a cross-region read replica in eu-west-1) on moto.
//!
//! Two controllers moto lacks are played: RDS's publisher of `ReplicaLag` (the world's
//! [`LagPublisher`], read in one-second periods), and the order of events is observed at the
//! emulators themselves by [`Timeline`], which looks at the clusters and moto at the moment
//! each call of interest arrives at the proxies in front of them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drplan_harness::{Faults, RequestInfo, Running};

use crate::support::bot_core::{LEDGER_EUW1, LEDGER_USE1, World, checkers, describe, json, replicas, world};

/// What was true at the moment a call arrived: what it was, when, and the trading engine's
/// replicas in each AWS region's cluster then.
#[derive(Debug, Clone)]
struct Moment {
    what: String,
    at: Instant,
    /// `spec.replicas` of trading-engine in use1 and euw1 at that moment.
    writers: (i64, i64),
    /// eu-west-1's running instances at that moment.
    euw1_instances: usize,
}

/// The calls of a failover, in the order they reached the emulators: the old region's
/// Deployment patches (through the proxy in front of us-east-1's cluster), and RDS and
/// Route 53 calls (through the proxy in front of moto). Each looks at the clusters and moto
/// before it is forwarded, so what it records is the world that call found.
#[derive(Clone)]
struct Timeline {
    moments: Arc<Mutex<Vec<Moment>>>,
}

impl Timeline {
    fn watch(w: &World) -> Timeline {
        let t = Timeline { moments: Arc::default() };
        w.aws.set_faults(t.recording(w, checkers(&w.failing)));
        w.use1_proxy.set_faults(t.recording(w, Faults::none()));
        t
    }

    /// `faults`, and every request of interest recorded with the world it found.
    fn recording(&self, w: &World, faults: Faults) -> Faults {
        let moments = Arc::clone(&self.moments);
        let (use1, euw1, moto) = (w.use1.url().to_string(), w.euw1.url().to_string(), Arc::clone(&w.moto));
        faults.stalling(Duration::ZERO, move |r: &RequestInfo| {
            if let Some(what) = of_interest(r) {
                let writers = (trading_engine(&use1), trading_engine(&euw1));
                let euw1_instances = moto.live_instances("eu-west-1").map(|s| s.len()).unwrap_or_default();
                moments.lock().unwrap().push(Moment { what, at: Instant::now(), writers, euw1_instances });
            }
            false
        })
    }

    fn moments(&self) -> Vec<Moment> {
        self.moments.lock().unwrap().clone()
    }

    /// The first moment whose call starts with `what`.
    fn first(&self, what: &str) -> Moment {
        let all = self.moments();
        all.iter().find(|m| m.what.starts_with(what)).cloned().unwrap_or_else(|| panic!("no {what} in {all:#?}"))
    }
}

fn of_interest(r: &RequestInfo) -> Option<String> {
    match (r.method.as_str(), r.action.as_deref()) {
        ("PATCH", _) if r.path.contains("/deployments/") => {
            Some(format!("patch {}", r.path.rsplit('/').next().unwrap_or_default()))
        }
        (
            _,
            Some(
                a @ ("PromoteReadReplica"
                | "ModifyDBInstance"
                | "CreateDBInstanceReadReplica"
                | "PromoteReadReplicaDBCluster"
                | "ModifyDBCluster"),
            ),
        ) => Some(format!("{a} {}", r.region.as_deref().unwrap_or_default())),
        ("POST", _) if r.path.ends_with("/rrset") || r.path.ends_with("/rrset/") => Some("dns".into()),
        ("PATCH", _) if r.path.contains("/clusters/") => {
            Some(format!("patch cluster {}", r.path.rsplit('/').next().unwrap_or_default()))
        }
        _ => None,
    }
}

fn trading_engine(cluster: &str) -> i64 {
    let path = "/apis/apps/v1/namespaces/bot-core/deployments/trading-engine";
    let (_, body) = crate::support::http(cluster, "GET", path, "application/json", "");
    serde_json::from_str::<serde_json::Value>(&body).map_or(-1, |d| d["spec"]["replicas"].as_i64().unwrap_or(-1))
}

/// The ledger's instances in `region` as moto holds them: identifier → its source, if any.
fn ledger(moto: &Running, region: &str) -> std::collections::BTreeMap<String, Option<String>> {
    moto.db_instances(region).unwrap().into_iter().map(|(id, db)| (id, db.source)).collect()
}

fn primary(w: &World) -> String {
    w.moto.failover_record("PRIMARY").unwrap().unwrap_or_default()
}

/// `drplan failover --to eu-west-1 --write`: the configuration edited (its plan may still
/// need `--allow-unreachable` or `--accept-data-loss`, which the tests then give to apply).
fn failover_to_euw1(w: &World, flags: &[&str]) {
    let mut args = vec!["failover", "--to", "eu-west-1", "bot-core", "--write"];
    args.extend(flags);
    let out = w.drplan(&args);
    let text = describe(&out);
    assert!(text.contains("+  role     = \"active\""), "{text}");
    assert!(!text.contains("were not changed"), "{text}");
}

#[test]
fn a_planned_switchover_stops_writes_catches_up_promotes_fences_and_reprotects() {
    let w = world(|c| c);
    w.converge();
    let timeline = Timeline::watch(&w);
    failover_to_euw1(&w, &[]);

    // The plan says it all before anything runs.
    let plan = w.drplan(&["plan", "bot-core", "--json"]);
    let doc = json(&plan);
    let db = &doc["databases"][0];
    assert_eq!(
        (db["database"].as_str(), db["how"].as_str(), db["window_seconds"].as_u64()),
        (Some("ledger"), Some("graceful"), Some(0)),
        "{db}"
    );
    assert_eq!(db["writers"]["trading-engine"], 3, "{db}");

    let started = Instant::now();
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // The order, as the emulators saw it.
    let stop = timeline.first("patch trading-engine");
    assert_eq!(stop.euw1_instances, 3, "eu-west-1's machines were up before writes stopped: {stop:?}");
    let promote = timeline.first("PromoteReadReplica eu-west-1");
    assert_eq!(promote.writers.0, 0, "us-east-1's writers were at 0 when the promotion arrived: {promote:?}");
    let fence = timeline.first("ModifyDBInstance us-east-1");
    let dns = timeline.first("dns");
    assert!(stop.at < promote.at && promote.at < fence.at && fence.at < dns.at, "{:#?}", timeline.moments());
    assert_eq!(dns.writers.0, 0, "no writer ran in us-east-1 while traffic moved: {dns:?}");
    assert_eq!(primary(&w), "euw1.bot-core.com");

    // The old writer is renamed and kept; a new replica under its name follows the new writer.
    let east = ledger(&w.moto, "us-east-1");
    let kept: Vec<&String> = east.keys().filter(|id| id.starts_with(&format!("{LEDGER_USE1}-kept-"))).collect();
    assert_eq!(kept.len(), 1, "{east:#?}");
    assert_eq!(east[kept[0]], None, "the kept old writer is standalone, its data intact: {east:#?}");
    let source = east[LEDGER_USE1].clone().unwrap_or_default();
    assert!(source.contains("eu-west-1") && source.ends_with(LEDGER_EUW1), "{east:#?}");
    assert_eq!(ledger(&w.moto, "eu-west-1")[LEDGER_EUW1], None, "eu-west-1 is the writer");
    assert_eq!(replicas(&w.use1)[0], 1, "the old region's writer back at its standby count, on a replica");

    // State records the promotion (nothing lost) and the kept instance.
    let state = w.state();
    let record = &state["databases"]["ledger"];
    let promotion = &record["promotions"][0];
    assert_eq!(
        (promotion["region"].as_str(), promotion["how"].as_str(), promotion["window_seconds"].as_u64()),
        (Some("eu-west-1"), Some("graceful"), Some(0)),
        "{record}"
    );
    assert_eq!(record["kept"][0]["identifier"].as_str(), Some(kept[0].as_str()), "{record}");
    assert_eq!(record["kept"][0]["writer"], true, "{record}");

    // `status` lists the kept instance until a person forgets it; the instance stays.
    let report = json(&w.drplan(&["status", "bot-core", "--json"]));
    assert_eq!(
        report["databases"][0]["kept"][0]["identifier"].as_str(),
        Some(kept[0].as_str()),
        "{}",
        report["databases"]
    );
    assert_eq!(report["databases"][0]["writer"].as_str(), Some(format!("eu-west-1/{LEDGER_EUW1}").as_str()));
    let out = w.drplan(&["state", "forget-kept", kept[0], "bot-core"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = json(&w.drplan(&["status", "bot-core", "--json"]));
    assert_eq!(report["databases"][0]["kept"], serde_json::json!([]), "{}", report["databases"]);
    assert!(ledger(&w.moto, "us-east-1").contains_key(kept[0].as_str()), "forgetting deletes nothing");

    // A second plan has nothing left to do for the data tier.
    let again = json(&w.drplan(&["plan", "bot-core", "--json"]));
    assert!(again["databases"].is_null(), "{}", again["databases"]);
    let moments = timeline.moments();
    let writes_back =
        moments.iter().find(|m| m.what == "patch trading-engine" && m.at > promote.at).map_or(dns.at, |m| m.at);
    println!(
        "switchover: apply {:.1}s; writes unavailable {:.1}s (stop → promotion {:.1}s, promotion → DNS {:.1}s)",
        took.as_secs_f64(),
        writes_back.max(dns.at).duration_since(stop.at).as_secs_f64(),
        promote.at.duration_since(stop.at).as_secs_f64(),
        dns.at.duration_since(promote.at).as_secs_f64(),
    );
}

#[test]
fn a_catch_up_that_never_comes_promotes_nothing_and_starts_the_writers_again() {
    let w = world(|c| c.replacen("  max_lag = \"30s\"", "  max_lag = \"30s\"\n  catch_up_timeout = \"4s\"", 1));
    w.converge();
    // The replica stays five seconds behind whatever happens.
    w.lag.set("eu-west-1", LEDGER_EUW1, Some(5.0));
    failover_to_euw1(&w, &[]);
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    let text = describe(&out);
    assert!(text.contains("did not catch up"), "{text}");
    assert!(text.contains("resume_writes"), "the undo is shown: {text}");
    assert_eq!(
        ledger(&w.moto, "eu-west-1")[LEDGER_EUW1].as_deref().map(|s| s.ends_with(LEDGER_USE1)),
        Some(true),
        "nothing was promoted"
    );
    assert_eq!(ledger(&w.moto, "us-east-1")[LEDGER_USE1], None, "us-east-1 is still the writer, not renamed");
    assert_eq!(replicas(&w.use1)[0], 3, "the writers are back");
    assert_eq!(primary(&w), "use1.bot-core.com", "DNS stays");
}

#[test]
fn a_disaster_within_the_budget_promotes_and_the_returning_region_is_fenced_before_its_writers() {
    let w = world(|c| c);
    w.converge();
    w.lag.set("eu-west-1", LEDGER_EUW1, Some(2.0));
    std::thread::sleep(Duration::from_secs(2));
    w.lose_us_east_1();
    failover_to_euw1(&w, &["--allow-unreachable"]);
    let plan = json(&w.drplan(&["plan", "bot-core", "--json", "--allow-unreachable"]));
    let db = &plan["databases"][0];
    assert_eq!(
        (db["how"].as_str(), db["window_seconds"].as_u64(), db["budget_seconds"].as_u64()),
        (Some("ungraceful"), Some(2), Some(30)),
        "{db}"
    );
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--allow-unreachable"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(ledger(&w.moto, "eu-west-1")[LEDGER_EUW1], None, "promoted");
    assert_eq!(primary(&w), "euw1.bot-core.com");
    let state = w.state();
    assert!(
        state["lost"]["us-east-1"]["owed"].as_array().unwrap().iter().any(|a| a == "region.us-east-1.database.ledger"),
        "{}",
        state["lost"]
    );
    assert_eq!(state["databases"]["ledger"]["promotions"][0]["how"], "ungraceful");
    // No watcher saw it fail and no writer was stopped: its downtime counts from the apply's
    // start, and says so.
    let failover = &state["history"]["failovers"][0];
    assert!(failover["counted_from"].as_str().is_some_and(|c| c.starts_with("apply started")), "{failover:#}");
    assert!(failover["downtime_seconds"].as_u64().is_some_and(|d| d >= 60), "{failover:#}");

    // us-east-1 answers again, its trading engine still running at its active count: the
    // old writer is fenced before anything else happens there.
    w.restore_us_east_1();
    let timeline = Timeline::watch(&w);
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let fence = timeline.first("ModifyDBInstance us-east-1");
    let first_patch = timeline.first("patch");
    assert!(fence.at < first_patch.at, "{:#?}", timeline.moments());
    let east = ledger(&w.moto, "us-east-1");
    assert!(east.keys().any(|id| id.starts_with(&format!("{LEDGER_USE1}-kept-"))), "{east:#?}");
    assert!(east[LEDGER_USE1].as_deref().is_some_and(|s| s.ends_with(LEDGER_EUW1)), "{east:#?}");
    assert!(w.state()["lost"].is_null(), "the fence is done");
    assert_eq!(w.state()["history"]["failovers"].as_array().unwrap().len(), 1, "a fence is no failover");
}

#[test]
fn a_disaster_past_the_budget_is_promoted_only_with_the_data_loss_accepted() {
    let w = world(|c| c);
    w.converge();
    // Two minutes behind: the standby is not ready to take over without losing data...
    w.lag.set("eu-west-1", LEDGER_EUW1, Some(120.0));
    std::thread::sleep(Duration::from_secs(2));
    let status = w.drplan(&["status", "bot-core", "--json"]);
    assert_eq!(status.status.code(), Some(2), "{}", describe(&status));
    let report = json(&status);
    let reasons = report["reasons"].to_string();
    assert!(
        reasons.contains("standby eu-west-1") && reasons.contains("2m behind, past its budget of 30s"),
        "{reasons}"
    );
    // ...then the region goes dark.
    w.lose_us_east_1();
    // The edit itself is refused: the plan after it would lose more than the budget.
    let out = w.drplan(&["failover", "--to", "eu-west-1", "bot-core", "--write", "--allow-unreachable"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(describe(&out).contains("drplan::plan::data_loss"), "{}", describe(&out));
    failover_to_euw1(&w, &["--allow-unreachable", "--accept-data-loss"]);
    // The acceptance was for the edit: an apply that does not accept it again is refused.
    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--allow-unreachable"]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    let text = describe(&out);
    assert!(text.contains("drplan::plan::data_loss") && text.contains("may lose 2m") && text.contains("30s"), "{text}");
    assert!(text.contains("--accept-data-loss"), "{text}");
    assert!(ledger(&w.moto, "eu-west-1")[LEDGER_EUW1].is_some(), "nothing promoted");
    assert_eq!(primary(&w), "use1.bot-core.com", "nothing moved");

    // The acceptance binds to the window shown: a saved plan accepting 2m is not applied
    // once the replica is further behind.
    let saved = w.dir.path().join("accepted.plan");
    let out =
        w.drplan(&["plan", "bot-core", "--allow-unreachable", "--accept-data-loss", "--out", saved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    w.lag.set("eu-west-1", LEDGER_EUW1, Some(200.0));
    std::thread::sleep(Duration::from_secs(2));
    let out = w.drplan(&["apply", saved.to_str().unwrap(), "--config", "bot-core", "--auto-approve"]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        describe(&out).contains("may now lose 3m20s of writes to `ledger`, more than the 2m its plan showed"),
        "{}",
        describe(&out)
    );
    assert!(ledger(&w.moto, "eu-west-1")[LEDGER_EUW1].is_some(), "nothing promoted");

    let out = w.drplan(&["apply", "bot-core", "--auto-approve", "--allow-unreachable", "--accept-data-loss"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(ledger(&w.moto, "eu-west-1")[LEDGER_EUW1], None, "promoted");
    let promotion = &w.state()["databases"]["ledger"]["promotions"][0];
    assert_eq!(
        (promotion["accepted"].as_bool(), promotion["window_seconds"].as_u64()),
        (Some(true), Some(200)),
        "{promotion}"
    );
}

#[test]
fn the_watcher_refuses_to_promote_past_the_budget_and_says_why() {
    let w = world(|c| {
        c.replacen("mode  = \"manual\"", "mode  = \"automatic\"", 1).replacen(
            "  health_check {",
            "  automatic {\n    interval = \"1s\"\n  }\n\n  health_check {",
            1,
        )
    });
    w.converge();
    w.lag.set("eu-west-1", LEDGER_EUW1, Some(120.0));
    std::thread::sleep(Duration::from_secs(2));
    w.fail_checks_of("us-east-1");
    w.lose_us_east_1();
    let out = w.drplan(&["watch", "bot-core", "--rounds", "3", "--interval", "1s", "--json"]);
    assert_eq!(out.status.code(), Some(1), "a refused failover is an error: {}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let events: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let refused: Vec<&str> =
        events.iter().filter(|e| e["type"] == "failover-refused").filter_map(|e| e["text"].as_str()).collect();
    assert!(!refused.is_empty(), "{}", describe(&out));
    assert!(refused[0].contains("may lose 2m") && refused[0].contains("drplan::plan::data_loss"), "{refused:?}");
    assert!(ledger(&w.moto, "eu-west-1")[LEDGER_EUW1].is_some(), "nothing promoted");
    assert_eq!(primary(&w), "use1.bot-core.com", "traffic stays; a person decides");
    assert!(w.state().get("override").is_none());
}

#[test]
fn an_apply_killed_between_the_stop_and_the_promotion_is_resumed_from_its_record() {
    let w = world(|c| c);
    w.converge();
    // The replica lags, so the first apply waits in its catch-up after stopping the writers.
    w.lag.set("eu-west-1", LEDGER_EUW1, Some(5.0));
    failover_to_euw1(&w, &[]);
    let mut child = w
        .command(&["apply", "bot-core", "--auto-approve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while trading_engine(w.use1.url()) != 0 {
        assert!(Instant::now() < deadline, "the writers were never stopped");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Stopped, waiting for the catch-up: killed outright.
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    let state = w.state();
    assert_eq!(
        state["switchover"]["writers"]["region.us-east-1.workload.trading-engine"], 3,
        "{}",
        state["switchover"]
    );
    assert!(ledger(&w.moto, "eu-west-1")[LEDGER_EUW1].is_some(), "not promoted");
    assert_eq!(primary(&w), "use1.bot-core.com");

    // The next plan resumes the switchover from its record: the writers' counts before the
    // stop, not the 0 they are at now.
    let plan = json(&w.drplan(&["plan", "bot-core", "--json"]));
    let stop = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "region.us-east-1.stop_writes.ledger")
        .cloned()
        .unwrap_or_else(|| panic!("no stop_writes in {}", plan["resource_changes"]));
    assert_eq!(stop["change"]["after"]["workloads"], "trading-engine=3");

    w.lag.set("eu-west-1", LEDGER_EUW1, Some(0.0));
    let timeline = Timeline::watch(&w);
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let promote = timeline.first("PromoteReadReplica eu-west-1");
    assert_eq!(promote.writers.0, 0, "never two writers: {promote:?}");
    assert_eq!(ledger(&w.moto, "eu-west-1")[LEDGER_EUW1], None);
    assert_eq!(primary(&w), "euw1.bot-core.com");
    assert_eq!((trading_engine(w.use1.url()), trading_engine(w.euw1.url())), (1, 3));
    assert!(w.state()["switchover"].is_null(), "the switchover is done");
}

/// A CloudNativePG Cluster of the distributed topology, named `name`, whose writer is `primary`.
fn cnpg_cluster(cluster: &Running, name: &str, primary: &str) {
    let body = serde_json::json!({
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": { "name": name, "namespace": "bot-core" },
        "spec": { "instances": 3, "replica": { "self": name, "primary": primary, "source": primary } },
    });
    let path = "/apis/postgresql.cnpg.io/v1/namespaces/bot-core/clusters";
    let (code, answer) = crate::support::http(cluster.url(), "POST", path, "application/json", &body.to_string());
    assert!(code == 200 || code == 201, "{code} {answer}");
}

fn cnpg(cluster: &Running, name: &str) -> serde_json::Value {
    let path = format!("/apis/postgresql.cnpg.io/v1/namespaces/bot-core/clusters/{name}");
    let (_, body) = crate::support::http(cluster.url(), "GET", &path, "application/json", "");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn a_cloudnativepg_switchover_is_the_operators_token_handshake() {
    let w = world(|c| {
        c.replacen(&format!("rds_instance = \"{LEDGER_USE1}\""), "cloudnativepg = \"ledger-use1\"", 1).replacen(
            &format!("rds_instance = \"{LEDGER_EUW1}\""),
            "cloudnativepg = \"ledger-euw1\"",
            1,
        )
    });
    cnpg_cluster(&w.use1, "ledger-use1", "ledger-use1");
    cnpg_cluster(&w.euw1, "ledger-euw1", "ledger-use1");
    w.converge();
    let timeline = Timeline::watch(&w);
    failover_to_euw1(&w, &[]);
    let doc = json(&w.drplan(&["plan", "bot-core", "--json"]));
    assert_eq!(doc["databases"][0]["how"], "graceful", "{}", doc["databases"]);
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // The handshake, as the operator's objects record it.
    let old = cnpg(&w.use1, "ledger-use1");
    let new = cnpg(&w.euw1, "ledger-euw1");
    let token = old["status"]["demotionToken"].as_str().unwrap_or_default().to_string();
    assert!(!token.is_empty(), "the old primary was demoted: {old:#}");
    assert_eq!(old["spec"]["replica"]["primary"], "ledger-euw1", "{old:#}");
    assert_eq!(new["spec"]["replica"]["primary"], "ledger-euw1", "{new:#}");
    assert_eq!(new["spec"]["replica"]["promotionToken"].as_str(), Some(token.as_str()), "{new:#}");
    assert_eq!(new["status"]["lastPromotionToken"].as_str(), Some(token.as_str()), "{new:#}");
    // Writes stopped, then the demotion, then traffic: and nothing deleted.
    let stop = timeline.first("patch trading-engine");
    let demote = timeline.first("patch cluster ledger-use1");
    let dns = timeline.first("dns");
    assert!(stop.at < demote.at && demote.at < dns.at, "{:#?}", timeline.moments());
    assert_eq!(demote.writers.0, 0, "{demote:?}");
    assert_eq!(primary(&w), "euw1.bot-core.com");
    let again = json(&w.drplan(&["plan", "bot-core", "--json"]));
    assert!(again["databases"].is_null() && !again["resource_changes"].to_string().contains("database"), "{again:#}");
}

/// `examples/four-regions` on moto, gcplocal and three kmock clusters (`use1`, `usw2`,
/// `euw1`), with the pipeline's Deployments and the ledger set up as its operators would:
/// the writer in us-east-1, a replica of it in us-west-2 and in eu-west-1.
#[test]
fn four_regions_converge_and_a_failover_repoints_the_other_standby() {
    use drplan_harness::{Emulator, write_kubeconfig};
    let moto = Arc::new(Running::start(Emulator::Moto).expect("moto starts"));
    let gcplocal = Running::start(Emulator::Gcplocal).expect("gcplocal starts");
    let clusters: Vec<Running> = (0..3).map(|_| Running::start(Emulator::Kmock).expect("kmock starts")).collect();
    moto.create_hosted_zone("payments.example.com").unwrap();
    for cluster in &clusters {
        for name in ["api", "ledger", "reports"] {
            let body = serde_json::json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "payments"},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": name, "image": format!("payments/{name}:2.1")}]}}}
            });
            let (code, text) = crate::support::http(
                cluster.url(),
                "POST",
                "/apis/apps/v1/namespaces/payments/deployments",
                "application/json",
                &body.to_string(),
            );
            assert!((200..300).contains(&code), "{code} {text}");
        }
    }
    let network = |region: &str| moto.create_db_network(region, "ledger").unwrap();
    let writer = moto.create_db_instance(&network("us-east-1"), "payments-ledger-use1", "db.r6g.large", &[]).unwrap();
    moto.create_db_replica(&network("us-west-2"), "payments-ledger-usw2", &writer).unwrap();
    moto.create_db_replica(&network("eu-west-1"), "payments-ledger-euw1", &writer).unwrap();
    let lag =
        crate::support::bot_core::LagPublisher::start(Arc::clone(&moto), &["us-east-1", "us-west-2", "eu-west-1"]);

    let dir = tempfile::tempdir().unwrap();
    write_kubeconfig(
        dir.path().join("kubeconfig"),
        &[("use1", clusters[0].url()), ("usw2", clusters[1].url()), ("euw1", clusters[2].url())],
    )
    .unwrap();
    let config = std::fs::read_to_string(crate::support::root().join("examples/four-regions/main.hcl"))
        .unwrap()
        .replacen("# endpoint = \"http://127.0.0.1:5000\"", &format!("endpoint = \"{}\"", moto.url()), 1)
        .replacen("# endpoint    = \"http://127.0.0.1:8400\"", &format!("endpoint    = \"{}\"", gcplocal.url()), 1)
        .replacen("# credentials = \"anonymous\"", "credentials = \"anonymous\"", 1);
    std::fs::create_dir(dir.path().join("payments")).unwrap();
    std::fs::write(dir.path().join("payments/main.hcl"), config).unwrap();
    let drplan = |args: &[&str]| {
        crate::support::drplan_aws(dir.path())
            .args(args)
            .env("KUBECONFIG", dir.path().join("kubeconfig"))
            .env("DRPLAN_AWS_LAG_PERIOD", "1")
            .output()
            .unwrap()
    };

    let out = drplan(&["apply", "payments", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = drplan(&["plan", "payments", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged: {}", describe(&out));

    let out = drplan(&["failover", "--to", "us-west-2", "payments", "--write"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = drplan(&["apply", "payments", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = drplan(&["plan", "payments", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "converged after the failover: {}", describe(&out));

    assert_eq!(ledger(&moto, "us-west-2")["payments-ledger-usw2"], None, "us-west-2 is the writer");
    for (region, id) in [("us-east-1", "payments-ledger-use1"), ("eu-west-1", "payments-ledger-euw1")] {
        let there = ledger(&moto, region);
        assert!(there[id].as_deref().is_some_and(|s| s.ends_with("payments-ledger-usw2")), "{region}: {there:#?}");
        let kept: Vec<&String> = there.keys().filter(|k| k.starts_with(&format!("{id}-kept-"))).collect();
        assert_eq!(kept.len(), 1, "{region}'s old instance is renamed and kept: {there:#?}");
    }
    drop(lag);
}

/// The ledger on Aurora MySQL: a writer cluster in us-east-1, a cross-region replica cluster
/// in eu-west-1, each with one instance, their lag from `AuroraBinlogReplicaLag`.
#[test]
fn an_aurora_switchover_promotes_the_replica_cluster_and_reprotects_the_old_writer() {
    let w = world(|c| {
        c.replacen("  engine  = \"postgres\"\n  writers", "  engine  = \"mysql\"\n  writers", 1)
            .replacen(&format!("rds_instance = \"{LEDGER_USE1}\""), "aurora_cluster = \"ledger-use1\"", 1)
            .replacen(&format!("rds_instance = \"{LEDGER_EUW1}\""), "aurora_cluster = \"ledger-euw1\"", 1)
    });
    let writer = w.moto.create_aurora_cluster("us-east-1", "ledger-use1", "db.r6g.large", None).unwrap();
    w.moto.create_aurora_cluster("eu-west-1", "ledger-euw1", "db.r6g.large", Some(&writer)).unwrap();
    w.converge();
    let status = json(&w.drplan(&["status", "bot-core", "--json"]));
    assert_eq!(status["databases"][0]["replicas"][0]["lag_seconds"], 0, "{}", status["databases"]);
    let timeline = Timeline::watch(&w);
    failover_to_euw1(&w, &[]);
    let out = w.drplan(&["apply", "bot-core", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let promote = timeline.first("PromoteReadReplicaDBCluster eu-west-1");
    assert_eq!(promote.writers.0, 0, "{promote:?}");
    assert!(timeline.first("patch trading-engine").at < promote.at && promote.at < timeline.first("dns").at);
    let west = w.moto.db_clusters("eu-west-1").unwrap();
    assert_eq!(west["ledger-euw1"], None, "promoted: {west:#?}");
    let east = w.moto.db_clusters("us-east-1").unwrap();
    assert!(east.keys().any(|k| k.starts_with("ledger-use1-kept-")), "the old writer is kept: {east:#?}");
    assert!(east["ledger-use1"].as_deref().is_some_and(|s| s.ends_with("cluster:ledger-euw1")), "{east:#?}");
    let again = w.drplan(&["plan", "bot-core", "--detailed-exitcode"]);
    assert_eq!(again.status.code(), Some(0), "converged: {}", describe(&again));
}
