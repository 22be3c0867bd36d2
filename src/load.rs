//! Reading configuration files from disk: a directory's `*.hcl` files or one file.
//!
//! File problems become diagnostics like any other, so the user sees one kind of report.

use std::path::{Path, PathBuf};

use drplan_core::config::{self, Config};
use drplan_core::{Code, Diagnostic, Diagnostics, SourceFile};

pub struct Loaded {
    pub sources: Vec<SourceFile>,
    pub config: Option<Config>,
    pub diagnostics: Diagnostics,
}

/// The files of a configuration, in name order, or the diagnostic that explains why not.
pub fn files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let meta = std::fs::metadata(path).map_err(|e| read_error(path, &e))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|e| read_error(path, &e))?;
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| read_error(path, &e))?;
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "hcl") && p.is_file() {
            files.push(p);
        }
    }
    if files.is_empty() {
        return Err(Diagnostic::error(Code::NoConfiguration, format!("no configuration in {}", path.display()))
            .help("a configuration is a directory of *.hcl files or a single file; pass its path, e.g. `drplan validate examples/bot-core`"));
    }
    files.sort();
    Ok(files)
}

/// Reads one file as UTF-8 text.
pub fn read(path: &Path) -> Result<SourceFile, Diagnostic> {
    let bytes = std::fs::read(path).map_err(|e| read_error(path, &e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Diagnostic::error(Code::NotUtf8, format!("{} is not UTF-8 text", path.display())).help(format!(
            "configuration files are UTF-8 HCL; the bytes at offset {} are not valid UTF-8 (is this a binary file?)",
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(SourceFile::new(path.display().to_string(), text))
}

/// Reads and lowers the configuration at `path`, with the process environment for `env()`.
pub fn configuration(path: &Path) -> Loaded {
    let mut diagnostics = Diagnostics::default();
    let mut sources = Vec::new();
    match files(path) {
        Ok(found) => {
            for p in found {
                match read(&p) {
                    Ok(s) => sources.push(s),
                    Err(d) => diagnostics.push(d),
                }
            }
        }
        Err(d) => diagnostics.push(d),
    }
    if diagnostics.has_errors() {
        return Loaded { sources, config: None, diagnostics };
    }
    from_sources(sources)
}

/// Lowers configuration text already in memory (an edit not yet written, for instance).
pub fn from_sources(sources: Vec<SourceFile>) -> Loaded {
    let started = std::time::Instant::now();
    // Names only: values read through `env()` may be secrets and never reach the log.
    let env = |name: &str| {
        tracing::trace!(name = %name, "configuration reads an environment variable");
        std::env::var(name).ok()
    };
    let loaded = config::load(&sources, &env);
    let files = sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>();
    let bytes: usize = sources.iter().map(|s| s.text.len()).sum();
    match &loaded.config {
        Some(c) => {
            let regions = c.regions.iter().map(|r| format!("{}/{}/{}", r.name, r.cloud, r.role)).collect::<Vec<_>>();
            tracing::debug!(
                project = %c.project,
                files = ?files,
                bytes,
                regions = ?regions,
                warnings = loaded.diagnostics.warning_count(),
                elapsed = ?started.elapsed(),
                "configuration loaded"
            );
        }
        None => tracing::debug!(
            files = ?files,
            bytes,
            errors = loaded.diagnostics.error_count(),
            elapsed = ?started.elapsed(),
            "configuration has errors"
        ),
    }
    Loaded { sources, config: loaded.config, diagnostics: loaded.diagnostics }
}

/// The state backend of a configuration in `dir`. `allow_unreachable` declares the regions
/// of state copies that cannot be reached lost (`--allow-unreachable`).
pub fn state_backend(
    config: &Config,
    dir: &Path,
    allow_unreachable: bool,
) -> Result<Box<dyn drplan_state::Backend>, Diagnostic> {
    match &config.backend {
        config::Backend::Local { path } => {
            tracing::debug!(path = %dir.join(path).display(), "state backend: local file");
            Ok(Box::new(drplan_state::LocalBackend::new(dir.join(path))))
        }
        config::Backend::S3 { bucket, key, region, endpoint, replicas, lock_lease } => {
            let lease = lock_lease.map_or(drplan_state::DEFAULT_LEASE, |l| std::time::Duration::from_secs(l.as_secs()));
            tracing::debug!(bucket = %bucket, key = %key, region = %region, endpoint, replicas = replicas.len(), "state backend: S3 object");
            let at = |bucket: &str, region: &str| drplan_state::S3Location {
                bucket: bucket.to_string(),
                key: key.clone(),
                region: region.to_string(),
                endpoint: endpoint.clone(),
            };
            let backend: Result<Box<dyn drplan_state::Backend>, _> = if replicas.is_empty() {
                drplan_state::S3Backend::new(at(bucket, region)).map(|b| Box::new(b.with_lease(lease)) as _)
            } else {
                let copies = replicas.iter().map(|r| at(&r.bucket, &r.region)).collect();
                drplan_state::ReplicatedBackend::new(at(bucket, region), copies, allow_unreachable)
                    .map(|b| Box::new(b.with_lease(lease)) as _)
            };
            backend.map_err(|e| {
                Diagnostic::error(Code::BackendUnavailable, e.to_string())
                    .help("the S3 backend needs a working AWS configuration; check AWS_REGION and credentials")
            })
        }
    }
}

/// A state problem as a diagnostic that says the state is left alone.
pub fn state_diagnostic(e: &drplan_state::StateError, backend: &dyn drplan_state::Backend) -> Diagnostic {
    use drplan_state::StateError;
    match e {
        StateError::TooNew { .. } => {
            Diagnostic::error(Code::StateTooNew, e.to_string()).help("upgrade drplan; the state was left untouched")
        }
        StateError::Conflict { .. } => Diagnostic::error(Code::StateConflict, e.to_string()).help(
            "another run wrote the state meanwhile (was a lock broken?); run `drplan plan` again to see where things stand",
        ),
        StateError::Write { .. } => Diagnostic::error(Code::StateWrite, e.to_string())
            .help("the previous state is still in place; fix the cause and run again: what was applied is adopted"),
        StateError::Unreadable { .. } => Diagnostic::error(Code::State, e.to_string())
            .help(format!("the state was left untouched; {}", backend.restore_hint())),
        StateError::Unreachable { .. } => Diagnostic::error(Code::BackendUnavailable, e.to_string())
            .help("check that the state's location is reachable, then run again: a write that did not arrive is made again, and what was applied is adopted"),
        StateError::CopyUnreachable { region, .. } => Diagnostic::error(Code::CopyUnreachable, e.to_string()).help(
            copy_lost_help(region),
        ),
        StateError::Diverged { first, second, .. } => Diagnostic::error(Code::StateDiverged, e.to_string()).help(format!(
            "two runs wrote different copies (each declared the other's region lost?); nothing was changed. Choose the copy to keep, check it with `drplan state pull --copy {first}` (or `--copy {second}`) > state.json, then write it to every copy with `drplan state push --force state.json`"
        )),
        StateError::PushRefused { .. } => Diagnostic::error(Code::StateConflict, e.to_string())
            .help("nothing was written; `drplan state copies` shows what each copy holds"),
    }
}

/// What to do about a state copy that cannot be reached.
pub fn copy_lost_help(region: &str) -> String {
    format!(
        "nothing was changed: drplan reads, locks and writes every copy of the state. If {region} is lost, pass --allow-unreachable to run on the other copies; the lost copy is caught up by the first locked run once it is back"
    )
}

/// The known address closest to a mistyped `--target`.
pub fn closest_address<'a>(target: &str, known: &'a std::collections::BTreeSet<String>) -> Option<&'a str> {
    // Targets are often prefixes (`region.us-east-1`): offer those as well as full addresses.
    let prefixes = known.iter().flat_map(|a| a.match_indices(['.', '[']).map(move |(i, _)| &a[..i]));
    drplan_core::suggest::closest(target, known.iter().map(String::as_str).chain(prefixes))
}

fn read_error(path: &Path, e: &std::io::Error) -> Diagnostic {
    let help = match e.kind() {
        std::io::ErrorKind::NotFound => "check the path; PATH defaults to the current directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "check the file's permissions".to_string(),
        _ => format!("the system said: {e}"),
    };
    Diagnostic::error(Code::Read, format!("cannot read {}: {}", path.display(), plain_io(e))).help(help)
}

/// The OS error text without Rust's "(os error N)" suffix.
fn plain_io(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Replaces the file atomically (`drplan_state::atomic`, the one atomic write), keeping its
/// permissions, so an interrupted run leaves either the old file or the new one.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), Diagnostic> {
    use drplan_state::atomic::{Mode, write_atomically};
    write_atomically(path, text.as_bytes(), Mode::Keep).map_err(|e| {
        Diagnostic::error(Code::Write, format!("cannot write {}: {e}", path.display()))
            .help("check that the directory is writable; the original file is unchanged")
    })
}

/// A lock problem as a diagnostic that says what to do.
pub fn lock_diagnostic(e: &drplan_state::LockError) -> Diagnostic {
    use drplan_state::LockError;
    let help = match e {
        LockError::Held(info) => format!(
            "wait for it to finish (retry with --lock-timeout 5m), or, if that run died, break the lock with `drplan state unlock {}`",
            info.id
        ),
        LockError::HeldUnknown => "wait for the other drplan to finish, or retry with --lock-timeout".to_string(),
        LockError::NoSuchLock(_) => {
            "`drplan state unlock` takes the id printed by the run that holds the lock".to_string()
        }
        LockError::Io { .. } | LockError::Unreachable { .. } => {
            "check that the state's location is reachable and writable".to_string()
        }
        LockError::CopyUnreachable { region, .. } => copy_lost_help(region),
    };
    // Not reaching the lock is not the same as someone holding it.
    let code = match e {
        LockError::Io { .. } | LockError::Unreachable { .. } => Code::BackendUnavailable,
        LockError::CopyUnreachable { .. } => Code::CopyUnreachable,
        _ => Code::Locked,
    };
    Diagnostic::error(code, e.to_string()).help(help)
}

/// A line for each copy of the state that is not current: behind, caught up, or unreachable.
pub fn copy_notes(copies: &[drplan_state::CopyView]) -> Vec<String> {
    use drplan_state::CopyStatus;
    copies
        .iter()
        .filter_map(|c| {
            let at = format!("state copy `{}` ({}, {})", c.name, c.location, c.region);
            let serial = c.serial.map_or("no state".to_string(), |s| format!("serial {s}"));
            let detail = c.detail.as_deref().unwrap_or_default();
            match c.status {
                CopyStatus::Current | CopyStatus::Diverged => None,
                CopyStatus::Behind => {
                    Some(format!("Note: {at} is behind ({serial}; {detail}); the next write brings it up to date."))
                }
                CopyStatus::CaughtUp => Some(format!("Note: {at} was behind and was brought up to date: {detail}.")),
                CopyStatus::Unreachable => Some(format!(
                    "Note: {at} cannot be reached and its region was declared lost (--allow-unreachable): {detail}. It is left behind and caught up by the first locked run once it is back."
                )),
            }
        })
        .collect()
}
