//! Apply's progress: a line per action event (or a JSON line with `--json`), and on a
//! terminal one overall bar kept at the bottom, redrawn after every line.
//!
//! Shared between the driver's event callback and the interrupt watcher, so that a message
//! printed on Ctrl-C never lands in the middle of the bar.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use drplan::apply::Event;

const BAR_WIDTH: usize = 30;
/// Erases the current terminal line and returns to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";

pub struct Progress {
    json: bool,
    /// Draw the bar: stderr is a terminal, events are not JSON and no logs are written.
    bar: bool,
    started: Instant,
    total: usize,
    settled: usize,
    failed: usize,
    /// Started and not yet finished or failed: what a second interrupt may cut short.
    running: BTreeSet<String>,
    bar_shown: bool,
}

impl Progress {
    pub fn new(json: bool, total: usize) -> Progress {
        Progress {
            json,
            // Log lines would be printed into the bar: with logs on, lines only.
            bar: !json && std::io::stderr().is_terminal() && !crate::logging::active(),
            started: Instant::now(),
            total,
            settled: 0,
            failed: 0,
            running: BTreeSet::new(),
            bar_shown: false,
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// The actions started and not yet settled, in id order.
    pub fn running(&self) -> Vec<String> {
        let mut running: Vec<String> = self.running.iter().cloned().collect();
        running.sort_by(|a, b| drplan_core::plan::resource::natural_cmp(a, b));
        running
    }

    pub fn event(&mut self, e: &Event) {
        match e {
            Event::Started { id } => {
                self.running.insert(id.clone());
            }
            Event::Finished { id, .. } => {
                self.running.remove(id);
                self.settled += 1;
            }
            Event::Failed { id, .. } => {
                self.running.remove(id);
                self.settled += 1;
                self.failed += 1;
            }
            Event::Skipped { .. } => self.settled += 1,
            Event::Progress { .. } => {}
        }
        let at = self.started.elapsed().as_secs_f64();
        if self.json {
            let v = match e {
                Event::Started { id } => serde_json::json!({"type": "started", "id": id, "at": at}),
                Event::Finished { id, elapsed } => {
                    serde_json::json!({"type": "done", "id": id, "seconds": elapsed.as_secs_f64(), "at": at})
                }
                Event::Failed { id, error } => {
                    serde_json::json!({"type": "failed", "id": id, "error": error, "at": at})
                }
                Event::Skipped { id, why } => serde_json::json!({"type": "skipped", "id": id, "reason": why, "at": at}),
                Event::Progress { id, message } => {
                    serde_json::json!({"type": "progress", "id": id, "message": message, "at": at})
                }
            };
            crate::output::stdout_write(format!("{v}\n").as_bytes());
            return;
        }
        let (settled, total) = (self.settled, self.total);
        let line = match e {
            Event::Started { id } => format!("  started  {id}"),
            Event::Finished { id, elapsed } => {
                format!("  done     {id} ({:.1}s) [{settled}/{total}]", elapsed.as_secs_f64())
            }
            Event::Failed { id, error } => format!("  FAILED   {id}: {error} [{settled}/{total}]"),
            Event::Skipped { id, why } => format!("  skipped  {id}: {why} [{settled}/{total}]"),
            Event::Progress { id, message } => format!("  waiting  {id}: {message}"),
        };
        self.message(&line);
    }

    /// Prints a line of text above the bar.
    pub fn message(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.bar_shown {
            let _ = write!(err, "{CLEAR_LINE}");
        }
        let _ = writeln!(err, "{text}");
        if self.bar {
            let line =
                bar(self.settled, self.total, self.running.len(), self.failed, self.started.elapsed(), BAR_WIDTH);
            let _ = write!(err, "{line}");
            self.bar_shown = true;
        }
        let _ = err.flush();
    }

    /// Removes the bar, before the summary.
    pub fn finish(&mut self) {
        if self.bar_shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{CLEAR_LINE}");
            let _ = err.flush();
            self.bar_shown = false;
        }
    }
}

/// The overall bar: `[#########---------] 34/216 done, 10 running, 1 failed, 12s`.
fn bar(settled: usize, total: usize, running: usize, failed: usize, elapsed: Duration, width: usize) -> String {
    // An empty plan is complete.
    let filled = (settled * width).checked_div(total).unwrap_or(width).min(width);
    let failed = if failed == 0 { String::new() } else { format!(", {failed} failed") };
    format!(
        "[{}{}] {settled}/{total} done, {running} running{failed}, {}s",
        "#".repeat(filled),
        "-".repeat(width - filled),
        elapsed.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bar_fills_with_settled_actions_and_names_failures() {
        let d = Duration::from_millis(12_400);
        assert_eq!(bar(0, 10, 3, 0, d, 10), "[----------] 0/10 done, 3 running, 12s");
        assert_eq!(bar(5, 10, 2, 1, d, 10), "[#####-----] 5/10 done, 2 running, 1 failed, 12s");
        assert_eq!(bar(10, 10, 0, 0, d, 10), "[##########] 10/10 done, 0 running, 12s");
        assert_eq!(bar(0, 0, 0, 0, d, 4), "[####] 0/0 done, 0 running, 12s", "an empty plan is complete");
    }
}
