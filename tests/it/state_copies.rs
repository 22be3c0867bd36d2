//! Copies of the state in two regions, through the real binary against moto. The state's
//! S3 requests go through the harness proxy, which makes a region unreachable by dropping
//! every request whose SigV4 credential scope names it; the clouds are reached directly, so
//! only the state copy's region is lost.

use crate::support;

use drplan_harness::{Emulator, FaultKind, FaultProxy, Faults, Running};
use drplan_state::{Backend, S3Backend, S3Location, StateFile, StaticCredentials};
use support::text;

const PRIMARY: &str = "payments-state-use1";
const REPLICA: &str = "payments-state-usw2";
const KEY: &str = "dr/state.json";

struct World {
    moto: Running,
    proxy: FaultProxy,
    dir: tempfile::TempDir,
}

/// moto with both buckets, the proxy in front of it for the state, and the configuration.
fn world() -> World {
    let moto = Running::start(Emulator::Moto).unwrap();
    moto.create_bucket(PRIMARY).unwrap();
    moto.create_bucket(REPLICA).unwrap();
    let proxy = FaultProxy::start(moto.url(), Faults::none()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backend = format!(
        "  project = \"copies\"\n\n  backend \"s3\" {{\n    bucket   = \"{PRIMARY}\"\n    key      = \"{KEY}\"\n    region   = \"us-east-1\"\n    endpoint = \"{}\"\n\n    replica {{\n      bucket = \"{REPLICA}\"\n      region = \"us-west-2\"\n    }}\n  }}\n",
        proxy.url()
    );
    let config =
        support::two_aws_regions(moto.url(), "copies", 2, 1, None).replace("  project = \"copies\"\n", &backend);
    std::fs::write(dir.path().join("main.hcl"), config).unwrap();
    World { moto, proxy, dir }
}

impl World {
    fn drplan(&self, args: &[&str]) -> std::process::Output {
        support::drplan_aws(self.dir.path()).args(args).output().unwrap()
    }

    /// One copy read directly from moto, past the proxy.
    fn copy(&self, bucket: &str) -> S3Backend {
        let region = if bucket == PRIMARY { "us-east-1" } else { "us-west-2" };
        S3Backend::with_credentials(
            S3Location {
                bucket: bucket.into(),
                key: KEY.into(),
                region: region.into(),
                endpoint: Some(self.moto.url().into()),
            },
            Some(StaticCredentials::new("testing", "testing")),
        )
        .unwrap()
    }

    fn state(&self, bucket: &str) -> StateFile {
        self.copy(bucket).read().unwrap().expect("the copy has a state")
    }

    fn lose(&self, region: &'static str) {
        self.proxy.set_faults(Faults::always(FaultKind::Drop).matching(move |r| r.region.as_deref() == Some(region)));
    }

    fn apply(&self) {
        let out = self.drplan(&["apply", "--auto-approve"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

fn refused_naming_the_lost_copy(out: &std::process::Output) {
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("drplan::state::copy_unreachable")
            && err.contains(PRIMARY)
            && err.contains("us-east-1")
            && err.contains("--allow-unreachable"),
        "{err}"
    );
    assert!(!err.contains("DispatchFailure") && !err.contains("SdkError"), "no SDK dump: {err}");
}

#[test]
fn the_primary_region_lost_refused_without_the_flag_run_on_the_replica_with_it_then_caught_up() {
    let w = world();
    w.apply();
    let before = w.state(PRIMARY);
    assert_eq!(w.state(REPLICA), before, "apply writes both copies");

    w.lose("us-east-1");
    for args in [&["plan"][..], &["apply", "--auto-approve"], &["failover", "--to", "us-west-2", "--write"]] {
        refused_naming_the_lost_copy(&w.drplan(args));
    }
    assert!(std::fs::read_to_string(w.dir.path().join("main.hcl")).unwrap().contains("role  = \"active\""));

    let out = w.drplan(&["plan", "--allow-unreachable"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("state copy `{PRIMARY}`")) && err.contains("declared lost"), "{err}");

    // Drift says the copy is unreachable, as a finding of its own.
    let out = w.drplan(&["drift", "--allow-unreachable", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}{}", text(&out.stdout), text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["kind"] == "state" && f["subject"].as_str().unwrap().contains(PRIMARY)),
        "{findings:?}"
    );

    // The failover, from the replica.
    let out = w.drplan(&["failover", "--to", "us-west-2", "--write", "--allow-unreachable"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = w.drplan(&["apply", "--auto-approve", "--allow-unreachable"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let replica = w.state(REPLICA);
    assert!(replica.serial > before.serial, "the replica's serial rises: {} then {}", before.serial, replica.serial);
    assert_eq!(replica.roles.get("us-west-2").map(String::as_str), Some("active"));
    assert_eq!(w.state(PRIMARY), before, "the lost copy was not touched");

    // The region returns: the copies show the primary behind, and the next apply catches it
    // up before it plans anything.
    w.proxy.set_faults(Faults::none());
    let out = w.drplan(&["state", "copies"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let row = |name: &str| table.lines().find(|l| l.starts_with(name)).unwrap_or_default().to_string();
    assert!(row(PRIMARY).contains("behind") && row(PRIMARY).contains(&before.serial.to_string()), "{table}");
    assert!(row(REPLICA).contains("current") && row(REPLICA).contains(&replica.lineage), "{table}");

    let out = w.drplan(&["apply", "--auto-approve"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let caught_up = err.find("was behind and was brought up to date").unwrap_or_else(|| panic!("{err}"));
    assert!(caught_up < err.find("Reading the live state").unwrap(), "caught up before anything else: {err}");
    assert_eq!(w.state(PRIMARY), w.state(REPLICA), "both copies equal");
    assert_eq!(w.state(PRIMARY).lineage, replica.lineage);

    let out = w.drplan(&["state", "copies", "--json"]);
    let copies: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let copies = copies.as_array().unwrap();
    assert_eq!(copies.len(), 2);
    assert!(copies.iter().all(|c| c["status"] == "current" && c["serial"] == copies[0]["serial"]), "{copies:?}");
    assert_eq!(copies[0]["lineage"], replica.lineage.as_str());
}

#[test]
fn two_applies_at_once_with_both_copies_reachable_exactly_one_proceeds() {
    let w = world();
    let [a, b] = support::two_applies_at_once(w.dir.path());
    let codes = [a.status.code(), b.status.code()];
    assert!(codes.contains(&Some(0)) && codes.contains(&Some(1)), "one proceeds, one is refused: {codes:?}");
    let refused = if a.status.success() { &b } else { &a };
    let err = text(&refused.stderr);
    assert!(err.contains("drplan::state::locked"), "{err}");
    assert_eq!(w.state(PRIMARY), w.state(REPLICA));
    for bucket in [PRIMARY, REPLICA] {
        assert_eq!(w.copy(bucket).lock_info().unwrap(), None, "no lock left in {bucket}");
    }
    support::assert_converged_on_moto(&w.moto, w.dir.path(), &[("us-east-1", 2), ("us-west-2", 1)]);
}

#[test]
fn a_run_killed_between_the_two_copy_writes_is_repaired_by_the_next_run() {
    let w = world();
    w.apply();
    // What a run killed after writing the first copy and before the second leaves: the
    // primary alone one write ahead (written here through the library, which is exactly
    // the write drplan makes first).
    let primary = w.copy(PRIMARY);
    let mut ahead = primary.read().unwrap().unwrap();
    ahead.serial += 1;
    ahead.objects.retain(|o| o.address != "region.us-west-2.compute.web[0]");
    primary.write(&ahead).unwrap();
    assert_eq!(w.state(REPLICA).serial, ahead.serial - 1);

    let out = w.drplan(&["plan"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("state copy `{REPLICA}`")) && err.contains("brought up to date"), "{err}");
    assert_eq!(w.state(REPLICA), ahead, "the higher serial is taken and the other copy repaired");
    // The plan was made from it: the forgotten instance is adopted again.
    assert!(text(&out.stdout).contains("region.us-west-2.compute.web[0]"), "{}", text(&out.stdout));
}

#[test]
fn diverged_copies_are_refused_until_pull_copy_and_push_force() {
    let w = world();
    w.apply();
    // Each copy written alone at the same serial with other content, by hand.
    let serial = w.state(PRIMARY).serial + 1;
    for (bucket, forget) in [(PRIMARY, "region.us-east-1.compute.web[0]"), (REPLICA, "region.us-east-1.compute.web[1]")]
    {
        let c = w.copy(bucket);
        let mut s = c.read().unwrap().unwrap();
        s.serial = serial;
        s.objects.retain(|o| o.address != forget);
        c.write(&s).unwrap();
    }

    let out = w.drplan(&["plan"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("drplan::state::diverged")
            && err.contains(PRIMARY)
            && err.contains(REPLICA)
            && err.contains("state pull --copy")
            && err.contains("state push --force"),
        "{err}"
    );
    let out = w.drplan(&["state", "copies"]);
    assert_eq!(text(&out.stdout).matches("diverged").count(), 2, "{}", text(&out.stdout));

    let out = w.drplan(&["state", "pull", "--copy", REPLICA]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = w.dir.path().join("chosen.json");
    std::fs::write(&file, &out.stdout).unwrap();
    let out = w.drplan(&["state", "pull", "--copy", "no-such-copy"]);
    assert!(text(&out.stderr).contains("drplan::state::unknown_copy"), "{}", text(&out.stderr));

    let out = w.drplan(&["state", "push", "chosen.json"]);
    assert_eq!(out.status.code(), Some(1), "not without --force");
    assert!(text(&out.stderr).contains("--force"), "{}", text(&out.stderr));
    let out = w.drplan(&["state", "push", "--force", "chosen.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let (p, r) = (w.state(PRIMARY), w.state(REPLICA));
    assert_eq!(p, r, "every copy holds the pushed state");
    assert_eq!(p.serial, serial + 1, "above every copy's serial");
    assert!(p.objects.iter().any(|o| o.address == "region.us-east-1.compute.web[0]"), "the replica's content");
    let out = w.drplan(&["plan"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}
