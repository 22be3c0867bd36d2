//! The local backend: `.drplan/state.json` next to the configuration (or the configured
//! path), written atomically with the previous copy kept beside it.

use crate::atomic::Mode;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::lock::{self, Lock, LockError, LockInfo};
use crate::{Backend, StateError, StateFile};

pub struct LocalBackend {
    path: PathBuf,
    /// The (lineage, serial) this backend last read or wrote: `None` before the first read,
    /// `Some(None)` when there was no state.
    seen: Mutex<Option<Option<(String, u64)>>>,
}

impl LocalBackend {
    pub fn new(path: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend { path: path.into(), seen: Mutex::new(None) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the copy of the previous state is kept.
    pub fn backup_path(&self) -> PathBuf {
        let mut name = self.path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".backup");
        self.path.with_file_name(name)
    }

    /// The state, or `None` when there is none yet (see [`Backend::read`]).
    pub fn read(&self) -> Result<Option<StateFile>, StateError> {
        Backend::read(self)
    }

    /// Writes `state` with the serial it carries: temp file, fsync, keep the previous file
    /// as the backup, rename. Mode 0600: state names infrastructure.
    pub fn write(&self, state: &StateFile) -> Result<(), StateError> {
        let started = std::time::Instant::now();
        let location = self.location();
        let fail = |e: std::io::Error| StateError::Write { location: location.clone(), reason: e.to_string() };
        // Read once: compared with what this run saw, then kept as the backup.
        let previous = self.read_bytes()?;
        if let Some(expected) = self.seen.lock().map_err(|_| fail(std::io::Error::other("poisoned")))?.clone() {
            let now = self.identity(previous.as_deref())?;
            if now != expected {
                return Err(StateError::Conflict { location, reason: describe_change(&expected, &now) });
            }
        }
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let text = crate::to_text(state, &location)?;
        // The previous file is kept as the backup first: a crash after it leaves both.
        if let Some(previous) = &previous {
            crate::atomic::write_atomically(&self.backup_path(), previous, Mode::Private).map_err(fail)?;
        }
        crate::atomic::write_atomically(&self.path, text.as_bytes(), Mode::Private).map_err(fail)?;
        self.remember(Some((state.lineage.clone(), state.serial)));
        tracing::debug!(
            location = %location,
            serial = state.serial,
            bytes = text.len(),
            elapsed = ?started.elapsed(),
            "state written"
        );
        Ok(())
    }

    fn remember(&self, identity: Option<(String, u64)>) {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(identity);
        }
    }

    /// The lineage and serial of stored state bytes, parsing only what is needed to compare.
    fn identity(&self, bytes: Option<&[u8]>) -> Result<Option<(String, u64)>, StateError> {
        #[derive(serde::Deserialize)]
        struct Identity {
            lineage: String,
            serial: u64,
        }
        let Some(bytes) = bytes else { return Ok(None) };
        let id: Identity = serde_json::from_slice(bytes).map_err(|e| StateError::Conflict {
            location: self.location(),
            reason: format!("it is no longer a readable state file: {e}"),
        })?;
        Ok(Some((id.lineage, id.serial)))
    }
}

/// What changed between the state a run saw and the one stored now, in words.
pub(crate) fn describe_change(expected: &Option<(String, u64)>, now: &Option<(String, u64)>) -> String {
    match (expected, now) {
        (None, Some((_, serial))) => format!("there was none; now there is one at serial {serial}"),
        (Some(_), None) => "it was deleted".to_string(),
        (Some((l1, _)), Some((l2, _))) if l1 != l2 => format!("its lineage is now {l2}, not {l1}"),
        (Some((_, s1)), Some((_, s2))) => format!("serial {s1} then, {s2} now"),
        (None, None) => "it changed".to_string(),
    }
}

impl Backend for LocalBackend {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn restore_hint(&self) -> String {
        format!("restore it from {} or from version control", self.backup_path().display())
    }

    fn read_bytes(&self) -> Result<Option<Vec<u8>>, StateError> {
        match std::fs::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::Unreadable { location: self.location(), reason: e.to_string() }),
        }
    }

    fn read(&self) -> Result<Option<StateFile>, StateError> {
        let started = std::time::Instant::now();
        match self.read_bytes()? {
            None => {
                self.remember(None);
                tracing::debug!(location = %self.location(), elapsed = ?started.elapsed(), "no state yet");
                Ok(None)
            }
            Some(bytes) => {
                let state = crate::parse(&bytes, &self.location())?;
                self.remember(Some((state.lineage.clone(), state.serial)));
                tracing::debug!(
                    location = %self.location(),
                    serial = state.serial,
                    bytes = bytes.len(),
                    elapsed = ?started.elapsed(),
                    "state read"
                );
                Ok(Some(state))
            }
        }
    }

    fn write(&self, state: &StateFile) -> Result<(), StateError> {
        LocalBackend::write(self, state)
    }

    fn lock(&self, operation: &str, who: &str, now: &str, timeout: Duration) -> Result<Lock, LockError> {
        lock::acquire(&self.path, operation, who, now, timeout)
    }

    fn lock_info(&self) -> Result<Option<LockInfo>, LockError> {
        Ok(lock::read_info(&self.path))
    }

    fn force_unlock(&self, id: &str) -> Result<LockInfo, LockError> {
        lock::force_unlock(&self.path, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(serial: u64) -> StateFile {
        let mut s = StateFile::new("demo", "0.1.0");
        s.serial = serial;
        s
    }

    #[test]
    fn missing_state_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LocalBackend::new(dir.path().join(".drplan/state.json")).read().unwrap().is_none());
    }

    #[test]
    fn writes_round_trip_keep_a_backup_and_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join(".drplan/state.json"));
        let first = state(1);
        backend.write(&first).unwrap();
        let mut second = first.clone();
        second.serial = 2;
        backend.write(&second).unwrap();
        assert_eq!(backend.read().unwrap(), Some(second));
        let backup: StateFile = serde_json::from_str(&std::fs::read_to_string(backend.backup_path()).unwrap()).unwrap();
        assert_eq!(backup, first);
        for p in [backend.path().to_path_buf(), backend.backup_path()] {
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600, "{}", p.display());
        }
        // No temporary file is left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path().join(".drplan"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn truncated_state_is_an_error_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("state.json"));
        backend.write(&state(3)).unwrap();
        let text = std::fs::read_to_string(backend.path()).unwrap();
        std::fs::write(backend.path(), &text[..text.len() / 2]).unwrap();
        let err = backend.read().unwrap_err();
        assert!(matches!(err, StateError::Unreadable { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(backend.path()).unwrap(), text[..text.len() / 2]);
    }

    #[test]
    fn newer_format_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(dir.path().join("state.json"));
        std::fs::write(backend.path(), r#"{"format_version": 9, "whatever": true}"#).unwrap();
        let err = backend.read().unwrap_err();
        assert!(matches!(err, StateError::TooNew { found: 9, .. }), "{err}");
    }

    #[test]
    fn content_round_trips_through_core() {
        use drplan_core::config::Role;
        use drplan_core::plan::resource::{Kind, Resource, attrs};
        use drplan_core::plan::{Observed, Prior};
        let mut prior = Prior::default();
        let r = Resource {
            address: "region.us-east-1.compute.nodes[0]".into(),
            kind: Kind::Instance,
            region: Some("us-east-1".into()),
            attrs: attrs([("index", 0i64.into()), ("image", "ami-1".into()), ("x", true.into())]),
        };
        prior.objects.insert(r.address.clone(), Observed { resource: r, id: "i-1".into() });
        prior.roles.insert("us-east-1".into(), Role::Active);
        let mut file = StateFile::new("demo", "0.1.0");
        file.set_content(&prior);
        let text = serde_json::to_string(&file).unwrap();
        let back: StateFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back.to_prior().unwrap(), prior);
    }
}
