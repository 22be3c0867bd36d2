//! Helpers shared by the CLI tests: run the real binary, compare against golden files.

#![allow(dead_code, reason = "each test binary uses a different subset")]

pub mod bot_core;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use drplan_provider_fake::kit::{Counts, Failover, Region, Topology};

/// The workspace root; tests run the binary from here so paths in output are relative.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A `drplan` command with a clean, deterministic environment.
pub fn drplan() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drplan"));
    c.current_dir(root()).env("NO_COLOR", "1").env_remove("COLUMNS");
    c
}

/// A `drplan` command run in `dir` with static test credentials for an AWS emulator, and
/// nothing from the environment that could point it at a real account.
pub fn drplan_aws(dir: &Path) -> Command {
    let mut c = drplan();
    c.current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    c
}

/// The image of the tests' instances; the emulators accept any.
pub const AMI: &str = "ami-0123456789abcdef0";

/// A configuration of two AWS regions on the emulator at `endpoint` (us-east-1 active,
/// us-west-2 standby), each with a `web` pool of `active`/`standby` instances by role, and
/// the state in S3 when `state_bucket` is given (key `PROJECT/state.json`).
pub fn two_aws_regions(
    endpoint: &str,
    project: &str,
    active: usize,
    standby: usize,
    state_bucket: Option<&str>,
) -> String {
    let mut topology = Topology::new(project);
    if let Some(bucket) = state_bucket {
        topology = topology.state_in_s3(bucket, &format!("{project}/state.json"), "us-east-1", endpoint);
    }
    let region = |name: &str, role: &str| {
        Region::aws(name, role).compute("web", "t3.micro", AMI, (active as u32, standby as u32, 0))
    };
    topology.aws(Some(endpoint)).region(region("us-east-1", "active")).region(region("us-west-2", "standby")).hcl()
}

/// An AWS region serving on `use1.ZONE` or `usw2.ZONE`, with a `web` pool of `web`.
pub fn aws_region(name: &str, role: &str, zone: &str, web: Counts) -> Region {
    let short = if name == "us-east-1" { "use1" } else { "usw2" };
    Region::aws(name, role).endpoint(&format!("{short}.{zone}")).compute("web", "t3.micro", AMI, web)
}

/// Failover to us-west-2 by the DNS record `api.ZONE`, checked over HTTPS every `interval`.
pub fn dns_failover(zone: &str, interval: &str, threshold: u32) -> Failover {
    Failover::manual(&["us-west-2"]).dns(zone, &format!("api.{zone}"), 60).health_check(interval, threshold)
}

/// Asserts moto holds exactly `want` live instances per region and that a new plan of the
/// configuration in `dir` finds nothing to do.
pub fn assert_converged_on_moto(moto: &drplan_harness::Running, dir: &Path, want: &[(&str, usize)]) {
    for (region, count) in want {
        assert_eq!(moto.live_instances(region).expect("moto answers").len(), *count, "live instances in {region}");
    }
    let out = drplan_aws(dir).args(["plan", ".", "--detailed-exitcode"]).output().expect("the drplan binary runs");
    assert_eq!(out.status.code(), Some(0), "converged:\n{}{}", text(&out.stdout), text(&out.stderr));
}

/// Two `drplan apply` runs on the configuration in `dir` that overlap for sure: the second
/// starts once the first says it is reading the clouds, which it does holding the state
/// lock (started together, a fast first run could finish before the second began).
pub fn two_applies_at_once(dir: &Path) -> [Output; 2] {
    use std::io::{BufRead, BufReader, Read};
    let start = || {
        drplan_aws(dir)
            .args(["apply", ".", "--auto-approve"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the drplan binary runs")
    };
    let mut a = start();
    let mut first_err = BufReader::new(a.stderr.take().expect("stderr is piped"));
    let mut seen = String::new();
    while !seen.contains("Reading the live state") {
        if first_err.read_line(&mut seen).unwrap_or(0) == 0 {
            break;
        }
    }
    let b = start();
    let b = b.wait_with_output().expect("the second apply ends");
    first_err.read_to_string(&mut seen).expect("the first apply's stderr reads");
    let mut a = a.wait_with_output().expect("the first apply ends");
    a.stderr = seen.into_bytes();
    [a, b]
}

/// Output bytes as text, for assertions and failure messages.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn run(args: &[&str]) -> Output {
    drplan().args(args).output().expect("the drplan binary runs")
}

/// Compares `actual` with the golden file; `UPDATE_EXPECT=1` rewrites the file instead.
/// Returns a description of the mismatch, so a data-driven test can report all at once.
pub fn check_golden(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(path, actual).expect("golden file is writable");
        return None;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    let diff = similar::TextDiff::from_lines(&expected, actual);
    Some(format!(
        "{} differs (run with UPDATE_EXPECT=1 to accept):\n{}",
        path.display(),
        diff.unified_diff().context_radius(2).header("expected", "actual")
    ))
}

/// Writes the state drplan would have after applying the configuration `file` in `dir`.
pub fn write_converged_state(dir: &Path, file: &str) -> drplan_state::StateFile {
    let config = drplan_provider_fake::kit::load(&std::fs::read_to_string(dir.join(file)).unwrap());
    let mut state = drplan_state::StateFile::new(&config.project, "test");
    state.serial = 4;
    state.set_content(&drplan_provider_fake::kit::converged_prior(&config));
    drplan_state::LocalBackend::new(dir.join(".drplan/state.json")).write(&state).unwrap();
    state
}

/// A plain HTTP/1.1 request to an emulator, beside drplan (setup and ground truth, as a
/// deploy pipeline's `kubectl apply` would send); the status code and body.
pub fn http(url: &str, method: &str, path: &str, content_type: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("emulator is listening");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let code = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// A Rego policy denying every promotion, as a team that allows no failover without a
/// person (or a change review) would write it.
pub const DENY_PROMOTIONS: &str = r#"package main

import rego.v1

deny contains msg if {
    some t in input.role_transitions
    t.to == "active"
    msg := sprintf("no automatic promotion of %s", [t.region])
}
"#;
