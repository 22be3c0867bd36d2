//! The backend conformance suite, run against the local backend, the S3 backend and the
//! replicated S3 backend (a primary and a replica in another region) on moto. The second process of the locking checks is this test binary again, started in
//! holder mode through `DRPLAN_STATE_HOLDER`.

use std::process::Command;

use drplan_harness::{Emulator, Running};
use drplan_state::{
    Backend, LocalBackend, ReplicatedBackend, S3Backend, S3Location, StateError, StaticCredentials, conformance,
};

/// Which backend a holder process opens: `local:PATH`, `s3:BUCKET/KEY@ENDPOINT` or
/// `s3r:PRIMARY,REPLICA/KEY@ENDPOINT`.
const HOLDER: &str = "DRPLAN_STATE_HOLDER";

fn open(spec: &str) -> Box<dyn Backend> {
    if let Some(path) = spec.strip_prefix("local:") {
        return Box::new(LocalBackend::new(path));
    }
    if let Some(rest) = spec.strip_prefix("s3r:") {
        let (bucket_key, endpoint) = rest.split_once('@').expect("s3r:BUCKETS/KEY@ENDPOINT");
        let (buckets, key) = bucket_key.split_once('/').expect("BUCKETS/KEY");
        let regions = ["us-east-1", "us-west-2", "eu-west-1"];
        let mut copies = buckets.split(',').zip(regions).map(|(bucket, region)| S3Location {
            bucket: bucket.into(),
            key: key.into(),
            region: region.into(),
            endpoint: Some(endpoint.into()),
        });
        let primary = copies.next().expect("a primary bucket");
        return Box::new(
            ReplicatedBackend::with_credentials(primary, copies.collect(), false, Some(test_credentials()))
                .expect("a replicated backend"),
        );
    }
    let rest = spec.strip_prefix("s3:").expect("a holder spec");
    let (bucket_key, endpoint) = rest.split_once('@').expect("s3:BUCKET/KEY@ENDPOINT");
    let (bucket, key) = bucket_key.split_once('/').expect("BUCKET/KEY");
    Box::new(
        S3Backend::with_credentials(
            S3Location {
                bucket: bucket.into(),
                key: key.into(),
                region: "us-east-1".into(),
                endpoint: Some(endpoint.into()),
            },
            Some(test_credentials()),
        )
        .expect("an S3 backend"),
    )
}

fn holder_command(spec: String) -> impl Fn() -> Command {
    move || {
        let mut c = Command::new(std::env::current_exe().expect("this test binary"));
        c.args(["conformance::holder", "--exact", "--nocapture", "--test-threads=1"]).env(HOLDER, &spec);
        with_test_credentials(&mut c);
        c
    }
}

fn with_test_credentials(c: &mut Command) {
    c.env("AWS_ACCESS_KEY_ID", "testing").env("AWS_SECRET_ACCESS_KEY", "testing").env_remove("AWS_PROFILE");
}

/// Not a test of its own: the other process of the locking checks.
#[test]
fn holder() {
    if let Ok(spec) = std::env::var(HOLDER) {
        conformance::hold(open(&spec).as_ref());
    }
}

#[test]
fn local_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("local:{}", dir.path().join(".drplan/state.json").display());
    conformance::check(&|| open(&spec), &holder_command(spec.clone()));
}

/// moto's static keys, passed to each backend (never set in this process's environment,
/// which other test threads read).
fn test_credentials() -> StaticCredentials {
    StaticCredentials::new("testing", "testing")
}

#[test]
fn s3_backend_conforms_on_moto() {
    let moto = Running::start(Emulator::Moto).unwrap();
    moto.create_bucket("drplan-state").unwrap();
    let spec = format!("s3:drplan-state/teams/bot-core/state.json@{}", moto.url());
    conformance::check(&|| open(&spec), &holder_command(spec.clone()));
}

#[test]
fn replicated_s3_backend_conforms_on_moto() {
    let moto = Running::start(Emulator::Moto).unwrap();
    moto.create_bucket("state-use1").unwrap();
    moto.create_bucket("state-usw2").unwrap();
    let spec = format!("s3r:state-use1,state-usw2/teams/bot-core/state.json@{}", moto.url());
    conformance::check(&|| open(&spec), &holder_command(spec.clone()));
    // Every copy holds what was written last, and no lock is left in either.
    let last = open(&spec).read().unwrap().unwrap();
    for bucket in ["state-use1", "state-usw2"] {
        let copy = open(&format!("s3:{bucket}/teams/bot-core/state.json@{}", moto.url()));
        assert_eq!(copy.read().unwrap().as_ref(), Some(&last), "{bucket} holds the newest state");
    }
}

#[test]
fn s3_lock_object_names_its_holder_until_released() {
    let moto = Running::start(Emulator::Moto).unwrap();
    moto.create_bucket("drplan-state").unwrap();
    let backend = open(&format!("s3:drplan-state/state.json@{}", moto.url()));
    let lock = backend.lock("apply", "ana", "t", std::time::Duration::ZERO).unwrap();
    // Someone else is refused; our own identity is what the lock object holds.
    let other = open(&format!("s3:drplan-state/state.json@{}", moto.url()));
    assert!(other.lock("plan", "bo", "t", std::time::Duration::ZERO).is_err());
    assert_eq!(other.lock_info().unwrap().map(|i| i.id), Some(lock.info.id.clone()));
    drop(lock);
    assert_eq!(other.lock_info().unwrap(), None);
}

#[test]
fn s3_errors_say_what_to_do() {
    let moto = Running::start(Emulator::Moto).unwrap();
    let missing = open(&format!("s3:no-such-bucket/state.json@{}", moto.url()));
    let err = missing.read().unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StateError::Unreadable { .. }), "{text}");
    assert!(text.contains("s3://no-such-bucket/state.json") && text.contains("does not exist"), "{text}");

    // Nothing listens on a port just closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dead = open(&format!("s3:b/state.json@http://{closed}"));
    let text = dead.read().unwrap_err().to_string();
    assert!(text.contains("cannot reach"), "{text}");
    let text = dead.lock("apply", "a", "t", std::time::Duration::ZERO).unwrap_err().to_string();
    assert!(text.contains("cannot reach"), "{text}");

    // A state object that is not a state is refused by name, and left alone.
    moto.create_bucket("garbage").unwrap();
    let body = "{\"trunc";
    moto.put_object("garbage", "state.json", body).unwrap();
    let garbage = open(&format!("s3:garbage/state.json@{}", moto.url()));
    let text = garbage.read().unwrap_err().to_string();
    assert!(text.contains("not a drplan state file"), "{text}");
    assert_eq!(garbage.read_bytes().unwrap().unwrap(), body.as_bytes());
}
