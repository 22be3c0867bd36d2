//! Logs on stderr, off unless `DRPLAN_LOG` asks for them, so that no command's output
//! changes for someone who did not.
//!
//! A bare level (`DRPLAN_LOG=debug`) applies to drplan's own crates only, with the SDKs
//! held at warnings: whoever asks for debug wants drplan's story, not every HTTP exchange.
//! Anything else is an `EnvFilter` directive list, taken as written.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::time::Uptime;

/// The variable that turns logging on.
pub const VAR: &str = "DRPLAN_LOG";

/// Whether a subscriber was installed: log lines then share stderr with progress.
static ACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once logs are being written, so redrawn terminal lines (apply's bar) stay off.
pub fn active() -> bool {
    ACTIVE.load(std::sync::atomic::Ordering::Relaxed)
}

/// The crates whose events a bare level enables (targets are module paths, which start
/// with the crate name).
const OWN_CRATES: &[&str] = &[
    "drplan",
    "drplan_state",
    "drplan_retry",
    "drplan_exec",
    "drplan_provider_aws",
    "drplan_provider_gcp",
    "drplan_provider_kubernetes",
];

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// Installs the subscriber when `DRPLAN_LOG` is set. A value that cannot be understood
/// gets one warning and leaves logging off: a typo in a log setting must not stop a run.
pub fn init(out: &mut crate::output::Output) {
    let color = out.fancy;
    let Some(value) = std::env::var_os(VAR) else { return };
    let Some(value) = value.to_str() else {
        out.note(&format!("warning: {VAR} is not valid UTF-8; logging is off"));
        return;
    };
    let value = value.trim();
    if value.is_empty() {
        return;
    }
    let filter = match filter(value) {
        Ok(Some(f)) => f,
        Ok(None) => return,
        Err(why) => {
            out.note(&format!(
                "warning: {VAR}={value} is not understood ({why}); logging is off. Use a level ({}) or a filter such as `debug,aws_smithy_runtime=trace`",
                LEVELS[1..].join(", ")
            ));
            return;
        }
    };
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Its own report of a failed write is an `eprintln!`, which panics when stderr is
        // closed: a lost log line must not take the run down with it.
        .log_internal_errors(false)
        .with_ansi(color)
        .with_timer(Uptime::default())
        .with_target(true)
        .finish();
    // Only fails when a subscriber is already set, and then logs already go somewhere.
    if tracing::subscriber::set_global_default(subscriber).is_ok() {
        ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The filter a `DRPLAN_LOG` value stands for; `None` for `off`.
fn filter(value: &str) -> Result<Option<EnvFilter>, String> {
    let directives = if value.contains(['=', ',']) {
        value.to_string()
    } else {
        let level = value.to_ascii_lowercase();
        if !LEVELS.contains(&level.as_str()) {
            return Err(format!("`{value}` is not a level"));
        }
        if level == "off" {
            return Ok(None);
        }
        // Dependencies never say more than drplan itself was asked to.
        let dependencies = if level == "error" { "error" } else { "warn" };
        std::iter::once(dependencies.to_string())
            .chain(OWN_CRATES.iter().map(|c| format!("{c}={level}")))
            .collect::<Vec<_>>()
            .join(",")
    };
    EnvFilter::builder().parse(&directives).map(Some).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::filter;

    #[test]
    fn a_bare_level_is_for_drplan_and_dependencies_stay_at_warn() {
        let f = filter("DEBUG").ok().flatten().map(|f| f.to_string()).unwrap_or_default();
        for part in ["warn", "drplan=debug", "drplan_state=debug", "drplan_provider_aws=debug"] {
            assert!(f.split(',').any(|d| d == part), "{part} in {f}");
        }
        let f = filter("error").ok().flatten().map(|f| f.to_string()).unwrap_or_default();
        assert!(!f.contains("warn"), "{f}");
    }

    #[test]
    fn directives_are_taken_as_written_and_nonsense_is_refused() {
        assert!(matches!(filter("debug,aws_smithy_runtime=trace"), Ok(Some(_))));
        assert!(matches!(filter("off"), Ok(None)));
        assert!(filter("verbose").is_err());
        assert!(filter("drplan=loud").is_err());
        assert!(filter("debug,[{").is_err());
    }
}
