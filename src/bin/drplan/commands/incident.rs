//! `drplan incident declare --region R --since TIME --reason TEXT | list | close ID`: a
//! region declared compromised, recorded in state (a locked edit that changes no cloud
//! object); the next plan isolates it and keeps its evidence (docs/guide/incidents.md).

use std::path::PathBuf;
use std::time::Duration;

use drplan_core::{Code, Diagnostic, SourceFile, Span};

use super::{EXIT_ERROR, EXIT_OK};
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: IncidentCommand,
}

#[derive(Debug, clap::Subcommand)]
enum IncidentCommand {
    /// Declare REGION compromised since TIME: the next plan takes its evidence and isolates it.
    Declare {
        /// The region compromised.
        #[arg(long, value_name = "REGION")]
        region: String,
        /// When it stopped being trusted: RFC 3339 (`2026-12-06T09:30:00Z`) or a duration
        /// before now (`2h`). Backups written since are suspect.
        #[arg(long, value_name = "TIME")]
        since: String,
        /// Why, in a few words (kept in state, shown by every plan while it is open).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Isolate the region even while it serves (users are cut off until a failover).
        #[arg(long)]
        isolate_serving: bool,
        /// The configuration directory or file.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Wait this long for another drplan holding the state lock (e.g. `30s`).
        #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = super::parse_duration)]
        lock_timeout: Duration,
    },
    /// List the incidents, open and closed.
    List {
        /// The configuration directory or file.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Close incident ID: the next plan lifts the isolation; the evidence stays.
    Close {
        /// The incident, as `drplan incident list` names it (`inc-1`).
        id: String,
        /// Lift the isolation from the same instances (otherwise give the region's pools a
        /// new `image` first, so that they are replaced).
        #[arg(long)]
        keep_instances: bool,
        /// The configuration directory or file.
        #[arg(default_value = ".")]
        path: PathBuf,
        /// Wait this long for another drplan holding the state lock (e.g. `30s`).
        #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = super::parse_duration)]
        lock_timeout: Duration,
    },
}

/// The command line as a source, so that an error points at the argument it is about.
fn command_line() -> SourceFile {
    let words: Vec<String> = std::env::args()
        .enumerate()
        .map(|(i, a)| match i {
            0 => "drplan".to_string(),
            _ if a.is_empty() || a.contains(char::is_whitespace) => format!("{a:?}"),
            _ => a,
        })
        .collect();
    SourceFile::new("command line", words.join(" "))
}

/// The span of `value` in the command line, after `flag` when it is given.
fn span_of(line: &SourceFile, flag: Option<&str>, value: &str) -> Option<Span> {
    let from = flag.and_then(|f| line.text.find(f).map(|i| i + f.len())).unwrap_or(0);
    let quoted = format!("{value:?}");
    let (at, len) = match line.text[from..].find(value) {
        Some(i) => (from + i, value.len()),
        None => (from + line.text[from..].find(&quoted)?, quoted.len()),
    };
    Some(Span::new(drplan_core::FileId(0), at..at + len))
}

/// Reports `d` with a label on the argument it is about.
fn located(out: &mut Output, d: Diagnostic, flag: Option<&str>, value: &str, label: &str) -> u8 {
    let line = command_line();
    match span_of(&line, flag, value) {
        Some(span) => out.report(&[line], d.label(span, label)),
        None => out.report(&[], d),
    }
}

pub fn exec(args: Args, out: &mut Output) -> u8 {
    match run(args, out) {
        Ok(code) => code,
        Err(f) => {
            out.diagnostics(&f.sources, &f.diagnostics);
            EXIT_ERROR
        }
    }
}

/// The subcommand; what fails without a place on the command line to point at comes back
/// for [`exec`] to report.
fn run(args: Args, out: &mut Output) -> Result<u8, drplan::engine::Failed> {
    match args.command {
        IncidentCommand::Declare { region, since, reason, isolate_serving, path, lock_timeout } => {
            let now = drplan::clock::now_seconds();
            let at = match drplan_core::incident::parse_since(&since, now) {
                Ok(t) => t,
                Err(why) => {
                    let d = Diagnostic::error(Code::IncidentInput, format!("`--since {since}` is not usable: {why}"))
                        .help("give the time the region stopped being trusted: RFC 3339 with a zone (2026-12-06T09:30:00Z), or how long ago (2h); it cannot be in the future");
                    return Ok(located(out, d, Some("--since"), &since, "this time"));
                }
            };
            if reason.trim().is_empty() {
                let d = Diagnostic::error(Code::IncidentInput, "`--reason` is empty").help(
                    "say why in a few words: it is kept in state and shown by every plan while the incident is open",
                );
                return Ok(located(out, d, Some("--reason"), &reason, "empty"));
            }
            let config = drplan::incident::configuration(&path)?;
            if let Err(d) = drplan::incident::known_region(&config, &region) {
                return Ok(located(out, d, Some("--region"), &region, "not a region of this configuration"));
            }
            let i = drplan::incident::declare(&path, &config, &region, at, &reason, isolate_serving, lock_timeout)?;
            out.line(&format!("Incident {} declared on {} since {} ({}).", i.id, i.region, i.since, i.reason));
            let serving = config.active_region().is_some_and(|r| r.name == i.region);
            out.note(&match (serving, isolate_serving) {
                (true, false) => format!(
                    "{} serves: the next plan isolates it only with a failover away from it (`drplan failover --to REGION`). Its evidence is kept and backups written since {} are suspect from now on.",
                    i.region, i.since
                ),
                _ => format!(
                    "Nothing in the clouds has changed yet: `drplan plan` shows the isolation of {} (evidence first), and `drplan apply` carries it out.",
                    i.region
                ),
            });
            Ok(EXIT_OK)
        }
        IncidentCommand::List { path, json } => {
            let incidents = drplan::incident::list(&path, &drplan::incident::configuration(&path)?)?;
            if json {
                out.raw(&drplan_core::incident::Listing::new(incidents).to_json());
                return Ok(EXIT_OK);
            }
            if incidents.is_empty() {
                out.line("No incident recorded.");
            }
            for i in &incidents {
                let state = match &i.closed_at {
                    None => "OPEN".to_string(),
                    Some(at) => format!("closed {at}"),
                };
                out.line(&format!(
                    "{}  {}  {state}  since {}  declared by {} at {}: {}",
                    i.id, i.region, i.since, i.declared_by, i.declared_at, i.reason
                ));
                for e in &i.evidence {
                    out.line(&format!("      evidence {e}"));
                }
            }
            Ok(EXIT_OK)
        }
        IncidentCommand::Close { id, keep_instances, path, lock_timeout } => {
            let config = drplan::incident::configuration(&path)?;
            let i = match drplan::incident::close(&path, &config, &id, keep_instances, lock_timeout) {
                Ok(i) => i,
                Err(f) => match f.diagnostics.iter().find(|d| d.code == Code::UnknownIncident) {
                    Some(d) => return Ok(located(out, d.clone(), Some("close"), &id, "no such incident")),
                    None => return Err(f),
                },
            };
            out.line(&format!("Incident {} on {} closed.", i.id, i.region));
            if i.evidence.is_empty() {
                out.note("drplan took no snapshot for it.");
            } else {
                out.note(&format!(
                    "The evidence drplan took stays, and drplan never deletes it; delete it by hand once the investigation no longer needs it: {}",
                    i.evidence.join(", ")
                ));
            }
            out.note("The next `drplan apply` lifts the quarantine, cordons and NetworkPolicy, resumes the backup schedule and restores the expiry rules; the record stays in state.");
            Ok(EXIT_OK)
        }
    }
}
