//! Copies of the S3 state in buckets of several regions, so that the state survives the
//! loss of any one region. drplan writes every copy itself, each with `If-Match` on the ETag
//! it read from that copy (never through asynchronous bucket replication, which would leave
//! a copy silently behind), the primary first.
//!
//! - **Read**: every reachable copy; they must share the lineage; the highest serial wins and
//!   a copy found behind is caught up at once when this run holds the lock, else by the next
//!   write. The same serial with other content, or a copy written after a run declared it
//!   lost, is divergence: refused, never merged.
//! - **Lock**: the lock object is created in every copy, in order, with one id; a copy held by
//!   another run releases what was taken and names the holder.
//! - **Unreachable copy**: refused, unless its region was declared lost
//!   (`--allow-unreachable`). Then the run works on the other copies, and every state it
//!   writes records in its object metadata which copies it could not write and the highest
//!   serial each could hold: when such a copy comes back above that serial, another run wrote
//!   it meanwhile (a partition where each side declared the other lost) and the copies have
//!   diverged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::lock::{Lock, LockError, LockInfo, new_info, taken};
use crate::s3::Lost;
use crate::{Backend, CopyStatus, CopyView, S3Backend, S3Location, StateError, StateFile};

/// The primary copy and its replicas, each an S3 object of the same key.
pub struct ReplicatedBackend {
    copies: Vec<S3Backend>,
    allow_unreachable: bool,
    /// How many of this backend's locks are held: a read under one catches copies up.
    locks: Arc<AtomicUsize>,
    run: Mutex<Run>,
}

/// What this run learned of the copies.
#[derive(Default)]
struct Run {
    /// Copies found unreachable, by index, with why: not asked again in this run.
    lost: BTreeMap<usize, String>,
    /// The copies the newest state's writer could not write, carried by the next write.
    record: Lost,
    /// The serial of the state last read or written.
    serial: Option<u64>,
    views: Vec<CopyView>,
}

/// One copy's answer to a read.
#[allow(clippy::large_enum_variant, reason = "one per copy, moved once: boxing buys nothing")]
enum Found {
    State(Option<StateFile>, Lost),
    Unreachable(String),
}

impl ReplicatedBackend {
    /// The copies at `primary` and then `replicas` (the same key, other buckets and regions).
    /// `allow_unreachable` declares the regions of copies that cannot be reached lost.
    pub fn new(
        primary: S3Location,
        replicas: Vec<S3Location>,
        allow_unreachable: bool,
    ) -> Result<ReplicatedBackend, StateError> {
        ReplicatedBackend::with_credentials(primary, replicas, allow_unreachable, None)
    }

    /// Like [`ReplicatedBackend::new`], every copy with these credentials when given.
    pub fn with_credentials(
        primary: S3Location,
        replicas: Vec<S3Location>,
        allow_unreachable: bool,
        credentials: Option<crate::StaticCredentials>,
    ) -> Result<ReplicatedBackend, StateError> {
        let copies = std::iter::once(primary)
            .chain(replicas)
            .map(|at| S3Backend::with_credentials(at, credentials.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReplicatedBackend {
            copies,
            allow_unreachable,
            locks: Arc::new(AtomicUsize::new(0)),
            run: Mutex::new(Run::default()),
        })
    }

    /// The same backend, the lock of every copy held under `lease`.
    pub fn with_lease(mut self, lease: std::time::Duration) -> ReplicatedBackend {
        self.copies = self.copies.into_iter().map(|c| c.with_lease(lease)).collect();
        self
    }

    fn run(&self) -> MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn name(&self, i: usize) -> &str {
        &self.copies[i].at().bucket
    }

    fn view(&self, i: usize, status: CopyStatus, state: Option<&StateFile>, detail: Option<String>) -> CopyView {
        CopyView {
            name: self.name(i).to_string(),
            primary: i == 0,
            location: self.copies[i].location(),
            region: self.copies[i].at().region.clone(),
            status,
            lineage: state.map(|s| s.lineage.clone()),
            serial: state.map(|s| s.serial),
            detail,
        }
    }

    /// Copy `i` cannot be reached: remembered as lost when that is allowed, refused otherwise.
    fn lose(&self, i: usize, reason: String) -> Result<(), StateError> {
        if !self.allow_unreachable {
            return Err(self.refuse(i, reason));
        }
        tracing::warn!(copy = %self.name(i), reason = %reason, "state copy unreachable; declared lost");
        self.run().lost.insert(i, reason);
        Ok(())
    }

    fn refuse(&self, i: usize, reason: String) -> StateError {
        let at = self.copies[i].at();
        StateError::CopyUnreachable {
            copy: at.bucket.clone(),
            location: self.copies[i].location(),
            region: at.region.clone(),
            reason,
        }
    }

    fn lost(&self, i: usize) -> bool {
        self.run().lost.contains_key(&i)
    }

    /// Every copy's state, unreachable ones as such (without asking again those already lost).
    fn read_all(&self) -> Result<Vec<Found>, StateError> {
        let mut found = Vec::new();
        for (i, copy) in self.copies.iter().enumerate() {
            if let Some(why) = self.run().lost.get(&i) {
                found.push(Found::Unreachable(why.clone()));
                continue;
            }
            found.push(match copy.read_recorded() {
                Ok((state, lost)) => Found::State(state, lost),
                Err(StateError::Unreachable { reason, .. }) => Found::Unreachable(reason),
                Err(e) => return Err(e),
            });
        }
        Ok(found)
    }

    /// Every copy is lost: nothing to run on, flag or not.
    fn all_lost(&self) -> StateError {
        let why: Vec<String> = self.run().lost.iter().map(|(i, r)| format!("{}: {r}", self.name(*i))).collect();
        StateError::Unreachable {
            location: self.location(),
            reason: format!("no copy can be reached ({})", why.join("; ")),
        }
    }

    /// Writes `state` to copy `i` only, recording `lost` with it.
    fn write_one(&self, i: usize, state: &StateFile, lost: &Lost) -> Result<bool, StateError> {
        match self.copies[i].write_recorded(state, lost) {
            Ok(()) => Ok(true),
            Err(StateError::Unreachable { reason, .. }) => self.lose(i, reason).map(|()| false),
            Err(e) => Err(e),
        }
    }

    /// The record a write leaves: each copy not written, with the highest serial it may hold.
    fn record_for(&self, run: &Run, skipped: impl Iterator<Item = usize>) -> Lost {
        skipped
            .map(|i| {
                let name = self.name(i).to_string();
                let bound = run.record.get(&name).copied().or(run.serial).unwrap_or(0);
                (name, bound)
            })
            .collect()
    }
}

/// Divergence between the newest state and the copies, or `None`.
fn diverged(
    names: &[&str],
    states: &[(usize, &StateFile)],
    winner: (usize, &StateFile),
    record: &Lost,
) -> Option<StateError> {
    let (w, newest) = winner;
    let err = |other: usize, reason: String| StateError::Diverged {
        first: names[w].to_string(),
        second: names[other].to_string(),
        reason,
    };
    for &(i, s) in states {
        if s.lineage != newest.lineage {
            return Some(err(
                i,
                format!("lineage {} in `{}`, {} in `{}`", newest.lineage, names[w], s.lineage, names[i]),
            ));
        }
    }
    for &(i, s) in states.iter().filter(|(i, _)| *i != w) {
        if s.serial == newest.serial && s != newest {
            return Some(err(i, format!("both are at serial {} with different content", s.serial)));
        }
        if let Some(bound) = record.get(names[i]).filter(|b| s.serial > **b && s != newest) {
            return Some(err(
                i,
                format!(
                    "`{}` was written without `{}` after a run declared it lost at serial {bound} (it is at serial {}, `{}` at {})",
                    names[i], names[w], s.serial, names[w], newest.serial
                ),
            ));
        }
    }
    None
}

/// Every copy's lock, given back the primary last.
struct Held {
    locks: Vec<Lock>,
    count: Arc<AtomicUsize>,
}

impl Held {
    /// Releases every copy's lock; the copies that kept theirs, and why.
    fn release(mut self) -> Result<(), String> {
        let mut failed = Vec::new();
        while let Some(lock) = self.locks.pop() {
            if let Err(why) = lock.release() {
                failed.push(why);
            }
        }
        if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        while let Some(lock) = self.locks.pop() {
            drop(lock);
        }
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Backend for ReplicatedBackend {
    fn location(&self) -> String {
        let others: Vec<String> = self.copies[1..].iter().map(|c| format!("s3://{}", c.at().bucket)).collect();
        format!("{} (copies in {})", self.copies[0].location(), others.join(", "))
    }

    fn restore_hint(&self) -> String {
        format!(
            "with versioning on the buckets, an earlier version of {} can be restored from S3's version list, then pushed to every copy with `drplan state push --force FILE`",
            self.copies[0].location()
        )
    }

    fn read_bytes(&self) -> Result<Option<Vec<u8>>, StateError> {
        match self.read()? {
            Some(state) => crate::to_text(&state, &self.location()).map(|t| Some(t.into_bytes())),
            None => Ok(None),
        }
    }

    fn read(&self) -> Result<Option<StateFile>, StateError> {
        let started = Instant::now();
        let found = self.read_all()?;
        for (i, f) in found.iter().enumerate() {
            if let Found::Unreachable(why) = f
                && !self.lost(i)
            {
                self.lose(i, why.clone())?;
            }
        }
        let states: Vec<(usize, &StateFile)> = found
            .iter()
            .enumerate()
            .filter_map(|(i, f)| match f {
                Found::State(Some(s), _) => Some((i, s)),
                _ => None,
            })
            .collect();
        if found.iter().all(|f| matches!(f, Found::Unreachable(_))) {
            return Err(self.all_lost());
        }
        let names: Vec<&str> = (0..self.copies.len()).map(|i| self.name(i)).collect();
        // The highest serial wins; among equals, the first in order.
        let winner = states.iter().copied().fold(None, |best: Option<(usize, &StateFile)>, (i, s)| match best {
            Some((_, b)) if b.serial >= s.serial => best,
            _ => Some((i, s)),
        });
        let record = match winner {
            Some((w, _)) => match &found[w] {
                Found::State(_, lost) => lost.clone(),
                Found::Unreachable(_) => Lost::new(),
            },
            None => Lost::new(),
        };
        if let Some(winner) = winner
            && let Some(e) = diverged(&names, &states, winner, &record)
        {
            return Err(e);
        }
        let newest = winner.map(|(_, s)| s.clone());
        let mut views = Vec::new();
        let mut behind = Vec::new();
        for (i, f) in found.iter().enumerate() {
            views.push(match f {
                Found::Unreachable(why) => self.view(i, CopyStatus::Unreachable, None, Some(why.clone())),
                Found::State(state, _) => {
                    let current = state.as_ref() == newest.as_ref();
                    if !current {
                        behind.push(i);
                    }
                    let detail = (!current).then(|| match &newest {
                        Some(n) => format!(
                            "the newest state is at serial {} in `{}`",
                            n.serial,
                            names[winner.map_or(0, |w| w.0)]
                        ),
                        None => String::new(),
                    });
                    self.view(i, if current { CopyStatus::Current } else { CopyStatus::Behind }, state.as_ref(), detail)
                }
            });
        }
        {
            let mut run = self.run();
            run.record = record.clone();
            run.serial = newest.as_ref().map(|s| s.serial);
        }
        // Under the lock, a copy found behind is caught up before anything else happens.
        if let Some(state) = newest.as_ref().filter(|_| self.locks.load(Ordering::SeqCst) > 0) {
            for i in behind {
                let mut rest = record.clone();
                rest.remove(self.name(i));
                if self.write_one(i, state, &rest)? {
                    tracing::info!(copy = %self.name(i), serial = state.serial, "state copy caught up");
                    views[i].status = CopyStatus::CaughtUp;
                    views[i].detail = Some(format!(
                        "was at {}, now at serial {} like `{}`",
                        views[i].serial.map_or("no state".to_string(), |s| format!("serial {s}")),
                        state.serial,
                        names[winner.map_or(0, |w| w.0)]
                    ));
                    views[i].lineage = Some(state.lineage.clone());
                    views[i].serial = Some(state.serial);
                } else {
                    views[i] = self.view(i, CopyStatus::Unreachable, None, self.run().lost.get(&i).cloned());
                }
            }
        }
        tracing::debug!(
            copies = self.copies.len(),
            serial = newest.as_ref().map(|s| s.serial),
            elapsed = ?started.elapsed(),
            "replicated state read"
        );
        self.run().views = views;
        Ok(newest)
    }

    fn write(&self, state: &StateFile) -> Result<(), StateError> {
        let lost = {
            let run = self.run();
            self.record_for(&run, run.lost.keys().copied())
        };
        let mut written = 0;
        for i in 0..self.copies.len() {
            if self.lost(i) {
                continue;
            }
            if self.write_one(i, state, &lost)? {
                written += 1;
            }
        }
        if written == 0 {
            return Err(self.all_lost());
        }
        let mut run = self.run();
        run.record = self.record_for(&run, run.lost.keys().copied());
        run.serial = Some(state.serial);
        Ok(())
    }

    fn lock(&self, operation: &str, who: &str, now: &str, timeout: Duration) -> Result<Lock, LockError> {
        let mut info = new_info(operation, who, now);
        // Every copy's lock object carries the same lease.
        info.lease_seconds = self.copies.first().map(|c| c.lease().as_secs());
        let started = Instant::now();
        let deadline = started + timeout;
        let mut locks = Vec::new();
        for (i, copy) in self.copies.iter().enumerate() {
            if self.lost(i) {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match copy.lock_as(info.clone(), left) {
                Ok(lock) => locks.push(lock),
                Err(LockError::Unreachable { reason, location }) => {
                    if let Err(StateError::CopyUnreachable { copy, region, .. }) = self.lose(i, reason.clone()) {
                        // What was taken is given back by dropping it.
                        return Err(LockError::CopyUnreachable { copy, location, region, reason });
                    }
                }
                // Held elsewhere (the holder named), or a store that answered with an error.
                Err(e) => return Err(e),
            }
        }
        if locks.is_empty() {
            return Err(LockError::Unreachable {
                location: self.location(),
                reason: "no copy of the state can be reached".into(),
            });
        }
        self.locks.fetch_add(1, Ordering::SeqCst);
        // One lease over every copy held: a renewal that failed on any copy voids it.
        let checks: Vec<crate::lock::LeaseCheck> = locks.iter().filter_map(Lock::lease).collect();
        let took_over = locks.iter().find_map(|l| l.took_over.clone());
        let held = Held { locks, count: self.locks.clone() };
        let mut lock = Lock::fallible(info, move || held.release());
        if !checks.is_empty() {
            lock = lock.with_lease(std::sync::Arc::new(move || checks.iter().try_for_each(|check| check())));
        }
        lock.took_over = took_over;
        Ok(taken(lock, &self.location(), started))
    }

    fn lock_info(&self) -> Result<Option<LockInfo>, LockError> {
        for (i, copy) in self.copies.iter().enumerate() {
            if self.lost(i) {
                continue;
            }
            match copy.lock_info() {
                Ok(Some(info)) => return Ok(Some(info)),
                Ok(None) => {}
                Err(LockError::Unreachable { reason, location }) => {
                    if let Err(StateError::CopyUnreachable { copy, region, .. }) = self.lose(i, reason.clone()) {
                        return Err(LockError::CopyUnreachable { copy, location, region, reason });
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    fn force_unlock(&self, id: &str) -> Result<LockInfo, LockError> {
        let mut broken = None;
        for (i, copy) in self.copies.iter().enumerate() {
            if self.lost(i) {
                continue;
            }
            match copy.force_unlock(id) {
                Ok(info) => broken = Some(info),
                Err(LockError::NoSuchLock(_)) => {}
                Err(LockError::Unreachable { reason, location }) => {
                    if let Err(StateError::CopyUnreachable { copy, region, .. }) = self.lose(i, reason.clone()) {
                        return Err(LockError::CopyUnreachable { copy, location, region, reason });
                    }
                }
                Err(e) => return Err(e),
            }
        }
        broken.ok_or_else(|| LockError::NoSuchLock(id.to_string()))
    }

    fn copies(&self) -> Vec<CopyView> {
        self.run().views.clone()
    }

    fn survey(&self) -> Vec<CopyView> {
        let mut read: Vec<(usize, Result<Option<StateFile>, StateError>)> = Vec::new();
        for (i, copy) in self.copies.iter().enumerate() {
            read.push((i, copy.read()));
        }
        let states: Vec<&StateFile> =
            read.iter().filter_map(|(_, r)| r.as_ref().ok().and_then(Option::as_ref)).collect();
        let newest = states.iter().map(|s| s.serial).max();
        let disagrees = |s: &StateFile, t: &StateFile| s.lineage != t.lineage || (s.serial == t.serial && s != t);
        read.iter()
            .map(|(i, r)| match r {
                Err(e) => {
                    let why = match e {
                        StateError::Unreachable { reason, .. } => reason.clone(),
                        other => other.to_string(),
                    };
                    self.view(*i, CopyStatus::Unreachable, None, Some(why))
                }
                Ok(state) => {
                    let status = match state {
                        Some(s) if states.iter().any(|t| disagrees(s, t)) => CopyStatus::Diverged,
                        Some(s) if Some(s.serial) == newest => CopyStatus::Current,
                        None if newest.is_none() => CopyStatus::Current,
                        _ => CopyStatus::Behind,
                    };
                    self.view(*i, status, state.as_ref(), None)
                }
            })
            .collect()
    }

    fn read_copy(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        match self.copies.iter().find(|c| c.at().bucket == name) {
            Some(copy) => copy.read_bytes(),
            None => Ok(None),
        }
    }

    fn copy_names(&self) -> Vec<String> {
        self.copies.iter().map(|c| c.at().bucket.clone()).collect()
    }

    fn push(&self, state: &StateFile, force: bool) -> Result<StateFile, StateError> {
        // Each copy on its own: a diverged pair is exactly what a forced push repairs.
        let mut highest = None;
        for (i, copy) in self.copies.iter().enumerate() {
            if self.lost(i) {
                continue;
            }
            match copy.read_recorded() {
                Ok((current, _)) => {
                    if let Some(reason) = crate::push_refusal(current.as_ref(), state).filter(|_| !force) {
                        return Err(StateError::PushRefused { location: copy.location(), reason });
                    }
                    highest = highest.max(current.map(|c| c.serial));
                }
                Err(StateError::Unreachable { reason, .. }) => self.lose(i, reason)?,
                Err(e) => return Err(e),
            }
        }
        let mut out = state.clone();
        out.serial = out.serial.max(highest.map_or(0, |h| h + 1));
        {
            let mut run = self.run();
            run.serial = highest;
            run.record.clear();
        }
        self.write(&out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(lineage: &str, serial: u64, project: &str) -> StateFile {
        let mut s = StateFile::new(project, "test");
        s.lineage = lineage.into();
        s.serial = serial;
        s
    }

    const NAMES: [&str; 3] = ["p", "r1", "r2"];

    #[test]
    fn behind_copies_of_one_lineage_are_not_divergence() {
        let (a, b) = (state("l", 7, "x"), state("l", 5, "x"));
        assert!(diverged(&NAMES, &[(0, &a), (1, &b)], (0, &a), &Lost::new()).is_none());
        // Declared lost at serial 5 and still there: only behind.
        let record = Lost::from([("r1".to_string(), 5)]);
        assert!(diverged(&NAMES, &[(0, &a), (1, &b)], (0, &a), &record).is_none());
    }

    #[test]
    fn same_serial_other_content_or_lineage_is_divergence() {
        let (a, b) = (state("l", 7, "x"), state("l", 7, "y"));
        let e = diverged(&NAMES, &[(0, &a), (1, &b)], (0, &a), &Lost::new()).unwrap().to_string();
        assert!(e.contains("`p` and `r1`") && e.contains("serial 7"), "{e}");
        let c = state("other", 3, "x");
        let e = diverged(&NAMES, &[(0, &a), (2, &c)], (0, &a), &Lost::new()).unwrap().to_string();
        assert!(e.contains("lineage"), "{e}");
    }

    #[test]
    fn a_copy_written_after_it_was_declared_lost_is_divergence() {
        // Both sides of a partition wrote: `p` twice (declaring r1 lost at 5), r1 once.
        let (a, b) = (state("l", 7, "x"), state("l", 6, "y"));
        let record = Lost::from([("r1".to_string(), 5)]);
        let e = diverged(&NAMES, &[(0, &a), (1, &b)], (0, &a), &record).unwrap().to_string();
        assert!(e.contains("declared it lost at serial 5"), "{e}");
        // Caught up since (the same state): no longer divergence.
        assert!(diverged(&NAMES, &[(0, &a), (1, &a)], (0, &a), &record).is_none());
    }
}
