//! The replicated S3 backend on moto, with a region made unreachable by the harness proxy
//! (it drops every request whose SigV4 credential scope names that region): a lost copy is
//! refused unless declared lost, caught up when it is back, a crash between two copy writes
//! is repaired, and copies that diverged are refused until a forced push.

use std::time::Duration;

use drplan_harness::{Emulator, FaultKind, FaultProxy, Faults, Running};
use drplan_state::{
    Backend, CopyStatus, LockError, ReplicatedBackend, S3Backend, S3Location, StateError, StateFile, StaticCredentials,
};

const KEY: &str = "dr/state.json";
const PRIMARY: &str = "state-use1";
const REPLICA: &str = "state-usw2";

/// moto's static keys, passed to each backend (never set in this process's environment,
/// which other test threads read).
fn test_credentials() -> Option<StaticCredentials> {
    Some(StaticCredentials::new("testing", "testing"))
}

fn at(endpoint: &str, bucket: &str, region: &str) -> S3Location {
    S3Location { bucket: bucket.into(), key: KEY.into(), region: region.into(), endpoint: Some(endpoint.into()) }
}

fn replicated(endpoint: &str, allow_unreachable: bool) -> ReplicatedBackend {
    ReplicatedBackend::with_credentials(
        at(endpoint, PRIMARY, "us-east-1"),
        vec![at(endpoint, REPLICA, "us-west-2")],
        allow_unreachable,
        test_credentials(),
    )
    .unwrap()
}

/// One copy alone, as a plain S3 backend.
fn copy(endpoint: &str, bucket: &str) -> S3Backend {
    let region = if bucket == PRIMARY { "us-east-1" } else { "us-west-2" };
    S3Backend::with_credentials(at(endpoint, bucket, region), test_credentials()).unwrap()
}

fn serial_of(endpoint: &str, bucket: &str) -> Option<u64> {
    copy(endpoint, bucket).read().unwrap().map(|s| s.serial)
}

/// moto with both buckets, a proxy in front of it, and a first state at serial 1 in both.
fn setup() -> (Running, FaultProxy, StateFile) {
    let moto = Running::start(Emulator::Moto).unwrap();
    moto.create_bucket(PRIMARY).unwrap();
    moto.create_bucket(REPLICA).unwrap();
    let proxy = FaultProxy::start(moto.url(), Faults::none()).unwrap();
    let backend = replicated(proxy.url(), false);
    assert!(backend.read().unwrap().is_none());
    let mut first = StateFile::new("demo", "test");
    first.serial = 1;
    backend.write(&first).unwrap();
    (moto, proxy, first)
}

fn lose(proxy: &FaultProxy, region: &'static str) {
    proxy.set_faults(Faults::always(FaultKind::Drop).matching(move |r| r.region.as_deref() == Some(region)));
}

#[test]
fn a_lost_copy_is_refused_unless_declared_lost_then_caught_up_when_back() {
    let (moto, proxy, first) = setup();
    lose(&proxy, "us-east-1");

    // Without the flag: read and lock refuse, naming the lost copy.
    let strict = replicated(proxy.url(), false);
    match strict.read() {
        Err(e @ StateError::CopyUnreachable { .. }) => {
            let text = e.to_string();
            assert!(text.contains(PRIMARY) && text.contains("us-east-1"), "{text}");
        }
        other => panic!("a lost copy must be refused, got {other:?}"),
    }
    match strict.lock("apply", "ana", "t", Duration::ZERO) {
        Err(LockError::CopyUnreachable { copy, region, .. }) => {
            assert_eq!((copy.as_str(), region.as_str()), (PRIMARY, "us-east-1"))
        }
        other => panic!("a lost copy's lock must be refused, got {other:?}"),
    }

    // With it: the run works on the replica alone.
    let lenient = replicated(proxy.url(), true);
    let lock = lenient.lock("apply", "ana", "t", Duration::ZERO).expect("locked on the replica");
    let state = lenient.read().unwrap().expect("the replica's state");
    assert_eq!(state.serial, 1);
    let copies = lenient.copies();
    assert_eq!(copies[0].status, CopyStatus::Unreachable, "{copies:?}");
    assert_eq!(copies[1].status, CopyStatus::Current, "{copies:?}");
    let mut next = state.clone();
    next.serial = 2;
    lenient.write(&next).unwrap();
    next.serial = 3;
    lenient.write(&next).unwrap();
    drop(lock);

    // Back: the primary is behind; a locked read catches it up before anything else.
    proxy.set_faults(Faults::none());
    assert_eq!(serial_of(moto.url(), PRIMARY), Some(1));
    assert_eq!(serial_of(moto.url(), REPLICA), Some(3));
    let back = replicated(proxy.url(), false);
    let unlocked = back.read().unwrap().unwrap();
    assert_eq!(unlocked.serial, 3, "the highest serial wins");
    assert_eq!(back.copies()[0].status, CopyStatus::Behind);
    assert_eq!(serial_of(moto.url(), PRIMARY), Some(1), "an unlocked read writes nothing");
    let lock = back.lock("plan", "bo", "t", Duration::ZERO).unwrap();
    let read = back.read().unwrap().unwrap();
    assert_eq!(back.copies()[0].status, CopyStatus::CaughtUp, "{:?}", back.copies());
    assert_eq!(copy(moto.url(), PRIMARY).read().unwrap().as_ref(), Some(&read));
    assert_eq!(read.lineage, first.lineage);
    drop(lock);
    let survey = back.survey();
    assert!(survey.iter().all(|c| c.status == CopyStatus::Current && c.serial == Some(3)), "{survey:?}");
}

#[test]
fn a_crash_between_the_two_copy_writes_is_repaired_from_the_higher_serial() {
    let (moto, proxy, first) = setup();
    // A run that died after writing the primary and before the replica: the primary alone.
    let primary = copy(moto.url(), PRIMARY);
    primary.read().unwrap();
    let mut second = first.clone();
    second.serial = 2;
    second.project = "changed".into();
    primary.write(&second).unwrap();

    let backend = replicated(proxy.url(), false);
    let _lock = backend.lock("apply", "ana", "t", Duration::ZERO).unwrap();
    assert_eq!(backend.read().unwrap().as_ref(), Some(&second), "the higher serial is taken");
    assert_eq!(backend.copies()[1].status, CopyStatus::CaughtUp);
    assert_eq!(copy(moto.url(), REPLICA).read().unwrap().as_ref(), Some(&second), "and the other repaired");
}

#[test]
fn diverged_copies_are_refused_until_a_forced_push() {
    let (moto, proxy, first) = setup();
    // The same serial, different content: made by hand.
    for (bucket, project) in [(PRIMARY, "left"), (REPLICA, "right")] {
        let c = copy(moto.url(), bucket);
        c.read().unwrap();
        let mut s = first.clone();
        s.serial = 2;
        s.project = project.into();
        c.write(&s).unwrap();
    }
    let backend = replicated(proxy.url(), false);
    match backend.read() {
        Err(e @ StateError::Diverged { .. }) => {
            let text = e.to_string();
            assert!(text.contains(PRIMARY) && text.contains(REPLICA) && text.contains("serial 2"), "{text}");
        }
        other => panic!("diverged copies must be refused, got {other:?}"),
    }
    assert!(backend.survey().iter().all(|c| c.status == CopyStatus::Diverged), "{:?}", backend.survey());

    // The replica's content is chosen and pushed onto every copy.
    let chosen = drplan_state::parse(&backend.read_copy(REPLICA).unwrap().unwrap(), REPLICA).unwrap();
    assert_eq!(chosen.project, "right");
    let _lock = backend.lock("state push", "ana", "t", Duration::ZERO).unwrap();
    assert!(matches!(backend.push(&chosen, false), Err(StateError::PushRefused { .. })), "not without force");
    let written = backend.push(&chosen, true).unwrap();
    assert_eq!((written.serial, written.project.as_str()), (3, "right"), "above every copy's serial");
    let healed = replicated(proxy.url(), false).read().unwrap().unwrap();
    assert_eq!(healed, written);
}

#[test]
fn both_sides_of_a_partition_writing_is_divergence_even_at_other_serials() {
    let (moto, proxy, first) = setup();
    // One operator loses us-west-2 and writes twice; another loses us-east-1 and writes once.
    lose(&proxy, "us-west-2");
    let east = replicated(proxy.url(), true);
    let mut s = east.read().unwrap().unwrap();
    for serial in [2, 3] {
        s.serial = serial;
        s.project = "east".into();
        east.write(&s).unwrap();
    }
    lose(&proxy, "us-east-1");
    let west = replicated(proxy.url(), true);
    let mut w = west.read().unwrap().unwrap();
    assert_eq!(w.serial, first.serial);
    w.serial = 2;
    w.project = "west".into();
    west.write(&w).unwrap();

    proxy.set_faults(Faults::none());
    assert_eq!((serial_of(moto.url(), PRIMARY), serial_of(moto.url(), REPLICA)), (Some(3), Some(2)));
    match replicated(proxy.url(), false).read() {
        Err(e @ StateError::Diverged { .. }) => assert!(e.to_string().contains("declared it lost at serial 1"), "{e}"),
        other => panic!("a copy written after it was declared lost is divergence, got {other:?}"),
    }
}

#[test]
fn a_lock_held_in_any_copy_is_refused_with_its_holder_and_nothing_is_kept() {
    let (moto, proxy, _) = setup();
    // Another run's lock object in the replica only (the primary's may have been released).
    let held = copy(moto.url(), REPLICA).lock("apply", "ana@laptop", "t", Duration::ZERO).unwrap();
    let backend = replicated(proxy.url(), false);
    match backend.lock("apply", "bo", "t", Duration::ZERO) {
        Err(LockError::Held(info)) => assert_eq!(info.id, held.info.id),
        other => panic!("a lock held in the replica must be refused, got {other:?}"),
    }
    assert_eq!(copy(moto.url(), PRIMARY).lock_info().unwrap(), None, "the primary's lock was given back");
    let id = held.info.id.clone();
    std::mem::forget(held);
    assert_eq!(backend.force_unlock(&id).unwrap().id, id);
    assert_eq!(backend.lock_info().unwrap(), None);
}
