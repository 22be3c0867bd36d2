//! The one suite every state backend passes: reads and writes with serial and lineage, no
//! lost update, and locking between threads and between processes, including a holder
//! killed with SIGKILL and its lock broken by id.
//!
//! Panics describe the failed expectation; it is meant to be called from tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use drplan_core::config::Role;
use drplan_core::plan::resource::{Kind, Resource, attrs};
use drplan_core::plan::{Observed, Prior};

use crate::{Backend, LockError, LockInfo, StateError, StateFile};

/// Makes a fresh handle on the same, initially empty, state location.
pub type Make<'a> = &'a dyn Fn() -> Box<dyn Backend>;

/// Runs the whole suite. `holder` is a command that runs [`hold`] on the same location in
/// another process (tests re-run their own binary for it).
pub fn check(make: Make, holder: &dyn Fn() -> Command) {
    storage(make);
    locking(make);
    processes(make, holder);
}

/// A state at `serial` with one instance in it.
fn sample(lineage: &str, serial: u64, image: &str) -> StateFile {
    let mut prior = Prior::default();
    let r = Resource {
        address: "region.us-east-1.compute.web[0]".into(),
        kind: Kind::Instance,
        region: Some("us-east-1".into()),
        attrs: attrs([("index", 0i64.into()), ("image", image.into())]),
    };
    prior.objects.insert(r.address.clone(), Observed { resource: r, id: "i-0123".into() });
    prior.roles.insert("us-east-1".into(), Role::Active);
    let mut file = StateFile::new("conformance", "test");
    file.lineage = lineage.to_string();
    file.serial = serial;
    file.set_content(&prior);
    file
}

fn storage(make: Make) {
    let backend = make();
    let at = backend.location();
    assert!(backend.read().expect("reading an empty location").is_none(), "{at}: a fresh location has no state");
    assert!(backend.read_bytes().expect("reading an empty location").is_none(), "{at}: no bytes either");

    let first = sample("lineage-a", 1, "ami-1");
    backend.write(&first).expect("the first write");
    assert_eq!(backend.read().expect("read back").as_ref(), Some(&first), "{at}: what was written is read back");
    assert_eq!(make().read().expect("read by another handle").as_ref(), Some(&first), "{at}: another handle sees it");
    let bytes = backend.read_bytes().expect("raw read").expect("bytes are there");
    assert_eq!(crate::parse(&bytes, &at).expect("the raw bytes parse"), first, "{at}: raw bytes are the state");

    let second = sample("lineage-a", 2, "ami-2");
    backend.write(&second).expect("a second write");
    let now = make().read().expect("read").expect("a state");
    assert_eq!((now.lineage.as_str(), now.serial), ("lineage-a", 2), "{at}: lineage kept, serial advanced");
    assert_eq!(now, second);

    // Two runs read serial 2; the first to write wins, the second is refused, not merged.
    let (a, b) = (make(), make());
    a.read().expect("a reads");
    b.read().expect("b reads");
    a.write(&sample("lineage-a", 3, "ami-a")).expect("a writes first");
    match b.write(&sample("lineage-a", 3, "ami-b")) {
        Err(StateError::Conflict { reason, .. }) => {
            assert!(reason.contains('2') && reason.contains('3'), "{at}: the refusal names the serials: {reason}")
        }
        other => panic!("{at}: a write over someone else's update must be refused, got {other:?}"),
    }
    assert_eq!(first_image(&make().read().expect("read").expect("a state")), "ami-a", "{at}: a's update kept");
    // Having read the newer state, b may write.
    b.read().expect("b reads again");
    b.write(&sample("lineage-a", 4, "ami-b")).expect("b writes after reading");
    assert_eq!(make().read().expect("read").expect("a state").serial, 4);

    // A state that appears after a run saw none is not overwritten either.
    let c = make();
    c.read().expect("c reads");
    let other = make();
    other.read().expect("read");
    other.write(&sample("lineage-a", 5, "ami-5")).expect("write");
    assert!(
        matches!(c.write(&sample("lineage-a", 5, "ami-c")), Err(StateError::Conflict { .. })),
        "{at}: a stale writer is refused"
    );
}

fn first_image(state: &StateFile) -> String {
    state.objects.first().and_then(|o| o.attributes.get("image")).and_then(|v| v.as_str()).unwrap_or("").to_string()
}

fn locking(make: Make) {
    let first = make();
    let at = first.location();
    let held = first.lock("apply", "ana@laptop", "2026-11-27T10:00:00Z", Duration::ZERO).expect("an unheld lock");
    assert_eq!(first.lock_info().expect("lock info"), Some(held.info.clone()), "{at}: the holder is recorded");

    let second = make();
    match second.lock("plan", "bo@ci", "2026-11-27T10:00:01Z", Duration::ZERO) {
        Err(LockError::Held(info)) => assert_eq!(*info, held.info, "{at}: the refusal names the holder"),
        other => panic!("{at}: a held lock must be refused, got {other:?}"),
    }
    assert!(
        matches!(second.force_unlock("not-the-id"), Err(LockError::NoSuchLock(_))),
        "{at}: unlock needs the holder's id"
    );
    drop(held);
    assert_eq!(first.lock_info().expect("lock info"), None, "{at}: released on drop");

    // A waiter gets the lock once the holder lets go.
    let again = second.lock("plan", "bo@ci", "t", Duration::ZERO).expect("free again");
    let third = make();
    let waiter = std::thread::scope(|s| {
        let handle = s.spawn(|| third.lock("apply", "cy@ci", "t", Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(700));
        drop(again);
        handle.join().expect("the waiting thread")
    });
    let waited = waiter.expect("the waiter gets the lock");
    assert_eq!(waited.info.who, "cy@ci");
}

fn processes(make: Make, holder: &dyn Fn() -> Command) {
    let at = make().location();
    // Another process holds the lock: refused with its identity, then granted once it exits.
    let (mut child, info) = spawn_holder(holder);
    match make().lock("apply", "parent", "t", Duration::ZERO) {
        Err(LockError::Held(found)) => {
            assert_eq!(found.id, info.id, "{at}: the other process is named");
            assert_eq!(found.pid, child.id(), "{at}: with its pid");
        }
        other => panic!("{at}: another process's lock must be refused, got {other:?}"),
    }
    drop(child.stdin.take());
    let after = make().lock("apply", "parent", "t", Duration::from_secs(30)).expect("granted after the holder exits");
    assert!(child.wait().expect("the holder exits").success(), "{at}: the holder released cleanly");
    drop(after);

    // A holder killed outright leaves its lock information behind; its id breaks it.
    let (mut child, info) = spawn_holder(holder);
    child.kill().expect("kill -9 the holder");
    let _ = child.wait();
    let broken = make().force_unlock(&info.id).expect("a dead holder's lock is broken by its id");
    assert_eq!(broken.id, info.id);
    let _ = make().lock("apply", "parent", "t", Duration::ZERO).expect("free once broken");
}

/// Starts a holder and waits for the lock it announces.
fn spawn_holder(holder: &dyn Fn() -> Command) -> (std::process::Child, LockInfo) {
    let mut child = holder()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the holder process starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let info = loop {
        match lines.next() {
            Some(Ok(line)) => {
                // Anywhere in the line: a test harness may print the test's name before it.
                if let Some(json) = line.find(HOLDING).map(|i| &line[i + HOLDING.len()..]) {
                    break serde_json::from_str::<LockInfo>(json).expect("the holder's lock info");
                }
            }
            _ => {
                let _ = child.kill();
                panic!("the holder exited without taking the lock");
            }
        }
    };
    // Keep reading, so the holder's last words never meet a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, info)
}

/// The line prefix [`hold`] announces its lock with.
const HOLDING: &str = "drplan-state-holding ";

/// The other process of the suite: takes the lock, announces it on stdout, and keeps it
/// until stdin is closed.
pub fn hold(backend: &dyn Backend) {
    let lock = backend.lock("apply", "holder", "t", Duration::from_secs(30)).expect("the holder takes the lock");
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{HOLDING}{}", serde_json::to_string(&lock.info).unwrap_or_default());
    let _ = out.flush();
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    drop(lock);
}
