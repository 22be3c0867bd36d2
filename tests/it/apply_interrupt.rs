//! Ctrl-C during `drplan apply`, through the real binary against moto. The first interrupt
//! stops scheduling and lets running actions finish and be recorded; a second one exits at
//! once and names what may be incomplete. Either way the state file stays whole and the next
//! apply converges to exactly the desired instances.
//!
//! The action kept in flight is the health gate: Route 53's checkers, played by the harness
//! proxy in front of moto, report the serving region failing for its first eight seconds and
//! healthy after, so the gate runs that long while the standby region's instances are
//! created beside it.

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drplan_harness::{Emulator, FaultProxy, Faults, Running};
use drplan_provider_fake::kit::Topology;
use support::{aws_region, dns_failover};

const ZONE: &str = "intr.example.com";
const SERVING: usize = 2;
/// Instances in the standby region, created while the gate waits: enough that some are
/// still running or not started when the interrupts come.
const STANDBY: usize = 16;
const GATE: &str = "gate.health.us-east-1";

fn configuration(moto: &str) -> String {
    let web = (SERVING as u32, STANDBY as u32, 0);
    Topology::new("intr")
        .aws(Some(moto))
        .region(aws_region("us-east-1", "active", ZONE, web))
        .region(aws_region("us-west-2", "standby", ZONE, web))
        .failover(dns_failover(ZONE, "10s", 2))
        .hcl()
}

/// How long the played checkers report the region failing, from their first question.
const HEALING: Duration = Duration::from_secs(8);

/// Route 53's checkers as a region that is up a few seconds after the gate starts asking:
/// three checkers, failing until [`HEALING`] has passed, then healthy, each observation fresh.
fn slow_to_heal() -> Faults {
    let first = std::sync::Mutex::new(None::<Instant>);
    Faults::health_checkers(move || {
        let asked = *first.lock().unwrap().get_or_insert_with(Instant::now);
        vec![(asked.elapsed() > HEALING, std::time::SystemTime::now()); 3]
    })
    // us-west-2's launches stay in flight for seconds: calls under way when an interrupt
    // lands, which the first interrupt lets finish and the second does not wait for.
    .stalling(STALL, |r| {
        r.region.as_deref() == Some("us-west-2")
            && r.service.as_deref() == Some("ec2")
            && r.action.as_deref() == Some("RunInstances")
    })
}

/// How long a launch in us-west-2 takes (played by the proxy).
const STALL: Duration = Duration::from_secs(6);

/// moto behind the proxy that plays the checkers (the proxy is returned to keep it up).
fn setup() -> (Running, FaultProxy, tempfile::TempDir) {
    let moto = Running::start(Emulator::Moto).expect("moto starts");
    moto.create_hosted_zone(ZONE).unwrap();
    let proxy = FaultProxy::start(moto.url(), slow_to_heal()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.hcl"), configuration(proxy.url())).unwrap();
    (moto, proxy, dir)
}

/// An apply running in the background, its progress lines (stderr) read as they come.
struct Apply {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    reader: Option<JoinHandle<()>>,
}

impl Apply {
    fn start(dir: &Path) -> Apply {
        let mut child = support::drplan_aws(dir)
            .args(["apply", ".", "--auto-approve", "--parallelism", "3"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Apply { child, lines, seen: Vec::new(), reader: Some(reader) }
    }

    /// Waits for a progress line matching `want`; the limit is only there so that a broken
    /// build fails instead of hanging, and is far beyond what the apply needs.
    fn wait_for(&mut self, what: &str, want: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    let hit = want(&line);
                    self.seen.push(line);
                    if hit {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => panic!("no {what} within 120s:\n{}", self.seen.join("\n")),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().unwrap();
                    panic!("apply ended ({status}) before {what}:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    fn interrupt(&self) {
        let status = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -INT");
    }

    /// Waits for the exit; returns the exit code and all of stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        if let Some(r) = self.reader.take() {
            r.join().unwrap();
        }
        self.seen.extend(self.lines.try_iter());
        (status.code(), self.seen.join("\n"))
    }
}

fn started(line: &str, id: &str) -> bool {
    line.trim_start().strip_prefix("started").is_some_and(|rest| rest.trim() == id)
}

fn done(stderr: &str, id: &str) -> bool {
    stderr
        .lines()
        .any(|l| l.trim_start().strip_prefix("done").is_some_and(|rest| rest.trim().starts_with(&format!("{id} ("))))
}

/// The state file is whole JSON, as the backend reads it; returns the addresses it records.
fn state_addresses(dir: &Path) -> Vec<String> {
    let path = dir.join(".drplan/state.json");
    let text = std::fs::read_to_string(&path).expect("a state file was written");
    serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| panic!("state is not JSON ({e}):\n{text}"));
    let state = drplan_state::LocalBackend::new(path).read().expect("state reads").expect("state exists");
    state.objects.iter().map(|o| o.address.clone()).collect()
}

fn apply_again_converges_exactly(moto: &Running, dir: &Path) {
    let out = support::drplan_aws(dir).args(["apply", ".", "--auto-approve"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    support::assert_converged_on_moto(moto, dir, &[("us-east-1", SERVING), ("us-west-2", STANDBY)]);
}

#[test]
fn first_interrupt_lets_calls_finish_abandons_long_waits_records_and_exits_130() {
    let (moto, _proxy, dir) = setup();
    let mut apply = Apply::start(dir.path());
    apply.wait_for("start of the health gate", |l| started(l, GATE));
    apply.interrupt();
    apply.wait_for("the stopping notice", |l| l.starts_with("Stopping:"));
    let (code, stderr) = apply.finish();

    assert_eq!(code, Some(130), "{stderr}");
    assert!(!stderr.contains("Interrupted again"), "{stderr}");
    // The gate was running when the interrupt came: a long wait, it is abandoned (the next
    // run waits again), and traffic does not move.
    let notice = stderr.find("Stopping:").unwrap();
    assert!(
        stderr[notice..].contains(&format!("FAILED   {GATE}: abandoned: stopping")),
        "the running gate is abandoned after the interrupt:\n{stderr}"
    );
    // Every other action that started finished; DNS waits on the gate, so it never started.
    for id in stderr.lines().filter_map(|l| l.trim_start().strip_prefix("started")).map(str::trim) {
        assert!(id == GATE || done(&stderr, id), "{id} started but did not finish:\n{stderr}");
    }
    assert!(!stderr.contains("started  dns."), "{stderr}");
    assert!(stderr.contains("Apply interrupted:") && !stderr.contains(" 0 not started"), "{stderr}");
    assert!(stderr.contains("Run `drplan apply` again to finish"), "{stderr}");

    // Everything reported done is in state, and only that.
    let recorded = state_addresses(dir.path());
    let finished: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("done"))
        .filter_map(|rest| rest.trim().split(' ').next().map(str::to_owned))
        .filter(|id| id != GATE)
        .collect();
    let mut want = finished;
    want.sort();
    let mut got = recorded.clone();
    got.sort();
    assert_eq!(got, want, "state holds exactly the finished changes");
    assert!(!recorded.iter().any(|a| a.starts_with("dns.")), "DNS waits on the gate: {recorded:?}");

    apply_again_converges_exactly(&moto, dir.path());
}

#[test]
fn second_interrupt_exits_at_once_naming_what_may_be_incomplete() {
    let (moto, _proxy, dir) = setup();
    let mut apply = Apply::start(dir.path());
    apply.wait_for("start of the health gate", |l| started(l, GATE));
    apply.interrupt();
    apply.wait_for("the stopping notice", |l| l.starts_with("Stopping:"));
    // us-west-2's launches need seconds more: they are still running when this lands.
    apply.interrupt();
    let (code, stderr) = apply.finish();

    assert_eq!(code, Some(130), "{stderr}");
    let notice = stderr.find("Interrupted again: exiting at once.").unwrap_or_else(|| panic!("{stderr}"));
    let named = &stderr[notice..];
    assert!(named.contains("may be incomplete"), "{stderr}");
    assert!(
        named.lines().any(|l| l.trim().starts_with("region.us-west-2.compute.")),
        "the launch in flight is named:\n{stderr}"
    );
    assert!(!done(&stderr, "region.us-west-2.compute.web[0]"), "exited without waiting for it:\n{stderr}");
    assert!(!stderr.contains("Apply interrupted:"), "no summary after an immediate exit:\n{stderr}");

    // Whatever the exit cut short, the state on disk is whole (writes are atomic).
    let recorded = state_addresses(dir.path());
    assert!(recorded.iter().any(|a| a.starts_with("region.us-east-1.compute.")), "{recorded:?}");
    assert!(!recorded.iter().any(|a| a.starts_with("dns.")), "DNS waits on the gate: {recorded:?}");

    // The launch the exit did not wait for still lands (the proxy holds it, as a slow EC2
    // would): the next apply finds it and adopts it.
    std::thread::sleep(STALL);
    apply_again_converges_exactly(&moto, dir.path());
}

/// moto behind the proxy for the clouds and for the state in S3 (so that a test can also
/// make the state store stop answering).
fn setup_s3() -> (Running, FaultProxy, tempfile::TempDir) {
    let moto = Running::start(Emulator::Moto).expect("moto starts");
    moto.create_hosted_zone(ZONE).unwrap();
    moto.create_bucket("intr-state").unwrap();
    let proxy = FaultProxy::start(moto.url(), slow_to_heal()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let backend = format!(
        "project = \"intr\"\n\n  backend \"s3\" {{\n    bucket   = \"intr-state\"\n    key      = \"intr/state.json\"\n    region   = \"us-east-1\"\n    endpoint = \"{}\"\n  }}",
        proxy.url()
    );
    std::fs::write(dir.path().join("main.hcl"), configuration(proxy.url()).replacen("project = \"intr\"", &backend, 1))
        .unwrap();
    (moto, proxy, dir)
}

/// The first Ctrl-C, once the health gate runs (the second can then land while us-west-2's
/// launches are still in flight).
fn interrupt_during_the_gate(apply: &mut Apply) {
    apply.wait_for("start of the health gate", |l| started(l, GATE));
    apply.interrupt();
    apply.wait_for("the stopping notice", |l| l.starts_with("Stopping:"));
}

#[test]
fn second_interrupt_gives_the_s3_lock_object_back() {
    let (moto, _proxy, dir) = setup_s3();
    let mut apply = Apply::start(dir.path());
    interrupt_during_the_gate(&mut apply);
    apply.interrupt();
    let (code, stderr) = apply.finish();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("Interrupted again: exiting at once."), "{stderr}");
    assert!(!stderr.contains("could not be released"), "{stderr}");
    // What the message says to run works: the lock object is gone.
    let plan = support::drplan_aws(dir.path()).args(["plan", "."]).output().unwrap();
    // The launch the exit did not wait for still lands; the next apply adopts it.
    std::thread::sleep(STALL);
    assert_eq!(plan.status.code(), Some(0), "{}", String::from_utf8_lossy(&plan.stderr));
    apply_again_converges_exactly(&moto, dir.path());
}

#[test]
fn second_interrupt_with_the_s3_store_down_names_the_exact_unlock() {
    let (moto, proxy, dir) = setup_s3();
    let mut apply = Apply::start(dir.path());
    interrupt_during_the_gate(&mut apply);
    // The store stops answering deletes: the lock object cannot be given back.
    proxy.set_faults(slow_to_heal().dropping(|r| r.method == "DELETE"));
    apply.interrupt();
    let (code, stderr) = apply.finish();
    assert_eq!(code, Some(130), "{stderr}");
    let at = stderr.find("could not be released").unwrap_or_else(|| panic!("{stderr}"));
    let command = stderr[at..].split('`').nth(1).unwrap_or_else(|| panic!("no command in:\n{stderr}"));
    assert!(command.starts_with("drplan state unlock "), "{command}");
    // The plan it would suggest comes after the unlock, never alone.
    assert!(stderr.contains("Then run `drplan plan`"), "{stderr}");

    // Once the store answers, the command printed is exactly what frees the state.
    proxy.set_faults(slow_to_heal());
    std::thread::sleep(STALL);
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let unlocked = support::drplan_aws(dir.path()).args(&args).output().unwrap();
    assert!(unlocked.status.success(), "{command}: {}", String::from_utf8_lossy(&unlocked.stderr));
    apply_again_converges_exactly(&moto, dir.path());
}
