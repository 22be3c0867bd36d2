//! Locks on state for a whole plan or apply, and the local kind: an OS file lock, which the
//! system releases if the process dies, plus a lock-info file that names the holder for others.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Who holds a lock, shown to whoever waits for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub id: String,
    pub who: String,
    pub operation: String,
    /// When it was taken, as the holder's clock said (RFC 3339 UTC).
    pub created: String,
    pub pid: u32,
    /// The lease, in seconds, of a lock in a store (S3): a live holder renews it within this
    /// time, and another run may take over a lock left unchanged for a whole lease. Absent:
    /// a lock that never expires (a local one, or one an older drplan took).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_seconds: Option<u64>,
    /// How often the holder renewed the lease: each renewal changes the object (and so its
    /// ETag), which is how a taker sees that the holder lives.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub renewals: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Whether a held lock's lease still holds: `Err` says why not (lost to a run that took
/// over, or not renewed in time). Checked before every change an apply makes.
pub type LeaseCheck = std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the state is locked by {} ({}, since {}, lock id {})", .0.who, .0.operation, .0.created, .0.id)]
    Held(Box<LockInfo>),
    #[error("the state is locked by another process (no lock information was left)")]
    HeldUnknown,
    #[error("cannot lock the state at {location}: {reason}")]
    Io { location: String, reason: String },
    #[error("no lock with id {0} is held")]
    NoSuchLock(String),
    /// The store did not answer at all, as opposed to answering with an error.
    #[error("cannot lock the state at {location}: {reason}")]
    Unreachable { location: String, reason: String },
    /// A copy of a replicated state cannot be reached and its region was not declared lost.
    #[error("cannot lock the state copy `{copy}` ({location}, in {region}): {reason}")]
    CopyUnreachable { copy: String, location: String, region: String, reason: String },
}

/// A held lock of any backend, released when dropped (or by [`Lock::release`], which says
/// whether that worked).
pub struct Lock {
    pub info: LockInfo,
    /// An `Option` so that dropping the lock can give it back before saying it did.
    release: Option<Releaser>,
    taken: Instant,
    /// The lease's check, for a lock that has one.
    lease: Option<LeaseCheck>,
    /// The holder whose lease expired and whose lock this run took over.
    pub took_over: Option<LockInfo>,
}

/// How a lock is given back.
enum Releaser {
    /// Dropping the value releases it, and cannot fail (an OS file lock).
    Guard(Box<dyn Send + Sync>),
    /// A call that can fail (a lock object in a store that may not answer), shared with
    /// [`release_all`] so that a process exiting at once can still give it back.
    Call(SharedRelease),
}

type ReleaseCall = Box<dyn FnOnce() -> Result<(), String> + Send + Sync>;
type SharedRelease = std::sync::Arc<std::sync::Mutex<Option<ReleaseCall>>>;

/// Every lock of a store this process holds, by id: what [`release_all`] gives back.
static HELD: std::sync::Mutex<Vec<(String, SharedRelease)>> = std::sync::Mutex::new(Vec::new());

/// Gives back every lock of a store this process holds, now: for a process about to exit
/// at once (a second interrupt), whose locks would otherwise outlive it until their lease
/// ran out. Returns what could not be given back, as `(lock id, why)`.
pub fn release_all() -> Vec<(String, String)> {
    let held: Vec<(String, SharedRelease)> = HELD.lock().map(|mut h| std::mem::take(&mut *h)).unwrap_or_default();
    let mut failed = Vec::new();
    for (id, call) in held {
        let call = call.lock().ok().and_then(|mut c| c.take());
        if let Some(Err(why)) = call.map(|release| release()) {
            failed.push((id, why));
        }
    }
    failed
}

impl Lock {
    /// A lock whose `release` value gives it back when dropped.
    pub fn new(info: LockInfo, release: impl Send + Sync + 'static) -> Lock {
        Lock {
            info,
            release: Some(Releaser::Guard(Box::new(release))),
            taken: Instant::now(),
            lease: None,
            took_over: None,
        }
    }

    /// A lock given back by calling `release`, which says why it could not be.
    pub fn fallible(info: LockInfo, release: impl FnOnce() -> Result<(), String> + Send + Sync + 'static) -> Lock {
        let call: SharedRelease = std::sync::Arc::new(std::sync::Mutex::new(Some(Box::new(release))));
        if let Ok(mut held) = HELD.lock() {
            held.push((info.id.clone(), call.clone()));
        }
        Lock { info, release: Some(Releaser::Call(call)), taken: Instant::now(), lease: None, took_over: None }
    }

    /// The same lock, held under a lease that `check` judges.
    pub fn with_lease(mut self, check: LeaseCheck) -> Lock {
        self.lease = Some(check);
        self
    }

    /// The lease's check; `None` for a lock without one, which holds until released.
    pub fn lease(&self) -> Option<LeaseCheck> {
        self.lease.clone()
    }

    /// Whether the lock still holds (always, for a lock without a lease).
    pub fn valid(&self) -> Result<(), String> {
        self.lease.as_ref().map_or(Ok(()), |check| check())
    }

    /// Gives the lock back now; `Err` says why it is still held (then `drplan state unlock`
    /// with its id breaks it).
    pub fn release(mut self) -> Result<(), String> {
        self.give_back()
    }

    fn give_back(&mut self) -> Result<(), String> {
        let result = match self.release.take() {
            None => return Ok(()),
            Some(Releaser::Guard(guard)) => {
                drop(guard);
                Ok(())
            }
            Some(Releaser::Call(call)) => {
                if let Ok(mut held) = HELD.lock() {
                    held.retain(|(_, c)| !std::sync::Arc::ptr_eq(c, &call));
                }
                // Taken already by `release_all`: given back then.
                let release = call.lock().ok().and_then(|mut c| c.take());
                release.map_or(Ok(()), |release| release())
            }
        };
        match &result {
            Ok(()) => tracing::debug!(
                operation = %self.info.operation,
                id = %self.info.id,
                held = ?self.taken.elapsed(),
                "state lock released"
            ),
            Err(why) => tracing::warn!(id = %self.info.id, why = %why, "state lock not released"),
        }
        result
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Nothing to report to here: a lock left behind names its holder and can be broken
        // with `drplan state unlock`.
        let _ = self.give_back();
    }
}

/// Logs a lock just taken at `location` after waiting since `started`.
pub(crate) fn taken(lock: Lock, location: &str, started: Instant) -> Lock {
    tracing::debug!(
        location = %location,
        operation = %lock.info.operation,
        id = %lock.info.id,
        waited = ?started.elapsed(),
        "state lock taken"
    );
    lock
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lock").field("info", &self.info).finish_non_exhaustive()
    }
}

/// A new lock's identity, stamped with who takes it and when.
pub fn new_info(operation: &str, who: &str, now: &str) -> LockInfo {
    LockInfo {
        id: uuid::Uuid::new_v4().to_string(),
        who: who.to_string(),
        operation: operation.to_string(),
        created: now.to_string(),
        pid: std::process::id(),
        lease_seconds: None,
        renewals: 0,
    }
}

/// Holds the local lock until dropped.
#[derive(Debug)]
struct LocalGuard {
    file: File,
    info_path: PathBuf,
}

impl Drop for LocalGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.info_path);
        let _ = self.file.unlock();
    }
}

fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    state.with_file_name(name)
}

fn info_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock.json");
    state.with_file_name(name)
}

/// Opens (creating) the lock file, readable and writable by its owner only, as the state is.
fn open_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)?;
    // A lock file left by an older drplan may be wider; the mode is only applied on creation.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Writes the lock information (who holds the lock, from where), owner-only and whole: a
/// reader never sees half of it.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    crate::atomic::write_atomically(path, text.as_bytes(), crate::atomic::Mode::Private)
}

pub fn read_info(state: &Path) -> Option<LockInfo> {
    serde_json::from_slice(&std::fs::read(info_path(state)).ok()?).ok()
}

/// Takes the lock of the state at `state`, waiting up to `timeout` for another holder.
/// `now` is the caller's clock in RFC 3339, recorded for whoever waits next.
pub fn acquire(state: &Path, operation: &str, who: &str, now: &str, timeout: Duration) -> Result<Lock, LockError> {
    let path = lock_path(state);
    let io = |e: std::io::Error| LockError::Io { location: path.display().to_string(), reason: e.to_string() };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let file = open_private(&path).map_err(io)?;
    let started = Instant::now();
    let deadline = started + timeout;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Err(TryLockError::WouldBlock) => {
                return Err(read_info(state).map_or(LockError::HeldUnknown, |info| LockError::Held(Box::new(info))));
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    let info = new_info(operation, who, now);
    let info_path = info_path(state);
    let text = serde_json::to_string_pretty(&info).map_err(|e| io(std::io::Error::other(e)))?;
    write_private(&info_path, &text).map_err(io)?;
    Ok(taken(Lock::new(info, LocalGuard { file, info_path }), &path.display().to_string(), started))
}

/// Breaks a lock left behind, only with its id. An OS lock still held by a live process
/// cannot be broken: that process is still working.
pub fn force_unlock(state: &Path, id: &str) -> Result<LockInfo, LockError> {
    let info = read_info(state).filter(|i| i.id == id).ok_or_else(|| LockError::NoSuchLock(id.to_string()))?;
    let path = lock_path(state);
    let io = |e: std::io::Error| LockError::Io { location: path.display().to_string(), reason: e.to_string() };
    let file = open_private(&path).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            std::fs::remove_file(info_path(state)).map_err(io)?;
            let _ = file.unlock();
            Ok(info)
        }
        Err(TryLockError::WouldBlock) => Err(LockError::Held(Box::new(info))),
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_named() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(".drplan/state.json");
        let first = acquire(&state, "apply", "ana@laptop", "2026-11-27T10:00:00Z", Duration::ZERO).unwrap();
        match acquire(&state, "plan", "bo@ci", "2026-11-27T10:00:01Z", Duration::from_millis(300)) {
            Err(LockError::Held(info)) => {
                assert_eq!(*info, first.info);
                let message = LockError::Held(info).to_string();
                assert!(
                    message.contains("ana@laptop") && message.contains("apply") && message.contains(&first.info.id),
                    "{message}"
                );
            }
            other => panic!("expected the lock to be held, got {other:?}"),
        }
        drop(first);
        let again = acquire(&state, "plan", "bo@ci", "2026-11-27T10:00:02Z", Duration::ZERO).unwrap();
        assert_eq!(read_info(&state).unwrap(), again.info);
    }

    #[test]
    fn lock_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        // A lock file an older drplan left readable by everyone is narrowed too.
        std::fs::write(lock_path(&state), "").unwrap();
        std::fs::set_permissions(lock_path(&state), std::fs::Permissions::from_mode(0o644)).unwrap();
        let held = acquire(&state, "apply", "ana@laptop", "t", Duration::ZERO).unwrap();
        for p in [lock_path(&state), info_path(&state)] {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} has mode {mode:o}", p.display());
        }
        drop(held);
    }

    #[test]
    fn waiting_gets_the_lock_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let first = acquire(&state, "apply", "a", "t", Duration::ZERO).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        let second = acquire(&state, "apply", "b", "t", Duration::from_secs(5));
        releaser.join().unwrap();
        assert!(second.is_ok(), "{second:?}");
    }

    #[test]
    fn unlock_needs_the_matching_id_and_a_dead_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.json");
        let held = acquire(&state, "apply", "a", "t", Duration::ZERO).unwrap();
        let id = held.info.id.clone();
        assert!(matches!(force_unlock(&state, "wrong-id"), Err(LockError::NoSuchLock(_))));
        assert!(matches!(force_unlock(&state, &id), Err(LockError::Held(_))), "a live holder keeps its lock");
        // A crashed holder leaves its info behind; the OS lock is gone with the process.
        let info_file = info_path(&state);
        let text = std::fs::read(&info_file).unwrap();
        drop(held);
        std::fs::write(&info_file, text).unwrap();
        assert_eq!(force_unlock(&state, &id).unwrap().id, id);
        assert!(read_info(&state).is_none());
    }
}
