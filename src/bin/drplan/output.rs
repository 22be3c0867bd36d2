//! All terminal output goes through here: results to stdout, diagnostics and progress to
//! stderr, colour only on a terminal and never under `NO_COLOR`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use drplan_core::{Diagnostics, SourceFile};

use crate::render;

#[derive(Clone)]
pub struct Output {
    /// Say nothing (diagnostics included): for work whose result is reported otherwise.
    pub quiet: bool,
    /// Colour and Unicode art on stderr.
    pub fancy: bool,
    /// Colour in results on stdout.
    pub stdout_color: bool,
    /// Width diagnostics wrap at: the terminal's, or a fixed one so that logs and tests
    /// are stable.
    pub width: usize,
}

/// Width used when stderr is not a terminal.
const PLAIN_WIDTH: usize = 100;

/// Set once a write to stdout failed (`drplan apply --json | head -1` closed it).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `bytes` to stdout. A closed stdout never stops a command (an apply in flight
/// must finish and record what it did); it is remembered, and [`stdout_lost`] turns it into
/// a failed exit once the work is done. Later output is dropped.
pub fn stdout_write(bytes: &[u8]) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(bytes).and_then(|()| stdout.flush()).is_err() {
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Whether some output could not be written to stdout.
pub fn stdout_lost() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

impl Output {
    pub fn from_env() -> Output {
        let tty = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let width = if tty { terminal_width().unwrap_or(PLAIN_WIDTH) } else { PLAIN_WIDTH };
        let stdout_color = std::io::stdout().is_terminal() && !no_color;
        Output { quiet: false, fancy: tty && !no_color, stdout_color, width }
    }

    /// A result line on stdout.
    pub fn line(&mut self, text: &str) {
        stdout_write(format!("{text}\n").as_bytes());
    }

    /// Text on stdout exactly as given.
    pub fn raw(&mut self, text: &str) {
        stdout_write(text.as_bytes());
    }

    /// A message for the person at the terminal, on stderr.
    pub fn note(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }

    /// A question on stderr, the answer to be typed on the same line.
    pub fn prompt(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{text}");
        let _ = err.flush();
    }

    /// One diagnostic; returns the error exit code for convenience.
    pub fn report(&mut self, sources: &[SourceFile], d: drplan_core::Diagnostic) -> u8 {
        let mut all = Diagnostics::default();
        all.push(d);
        self.diagnostics(sources, &all);
        crate::commands::EXIT_ERROR
    }

    /// A unified diff of one file's edit on stdout, coloured on a terminal.
    pub fn diff(&mut self, name: &str, before: &str, after: &str) {
        let diff = similar::TextDiff::from_lines(before, after);
        let text = diff.unified_diff().context_radius(3).header(name, name).to_string();
        let text = if self.stdout_color {
            text.lines()
                .map(|l| match l.as_bytes().first() {
                    Some(b'+') if !l.starts_with("+++") => format!("\u{1b}[32m{l}\u{1b}[0m"),
                    Some(b'-') if !l.starts_with("---") => format!("\u{1b}[31m{l}\u{1b}[0m"),
                    Some(b'@') => format!("\u{1b}[36m{l}\u{1b}[0m"),
                    _ => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
                + "\n"
        } else {
            text
        };
        self.raw(&text);
        self.raw("\n");
    }

    /// A plan in the chosen rendering, on stdout.
    pub fn plan(&mut self, doc: &drplan_core::plan::doc::PlanDoc, json: bool, markdown: bool) {
        let text = if json {
            doc.to_json()
        } else if markdown {
            drplan_core::render::markdown(doc)
        } else {
            drplan_core::render::human(doc, self.stdout_color)
        };
        self.raw(&text);
    }

    /// What the engine's pipeline reports while it works: the configuration's diagnostics
    /// as soon as it is read, notes, the refresh starting and ending.
    pub fn pipeline(&mut self, event: &drplan::engine::Event<'_>) {
        use drplan::engine::Event;
        match event {
            Event::Loaded { sources, diagnostics } => self.diagnostics(sources, diagnostics),
            Event::Note(line) => self.note(line),
            Event::Refreshing => self.note("Reading the live state of the clouds..."),
            Event::Refreshed { objects, elapsed } => {
                self.note(&format!("Read {objects} objects in {:.1}s.", elapsed.as_secs_f64()));
            }
        }
    }

    pub fn diagnostics(&mut self, sources: &[SourceFile], diagnostics: &Diagnostics) {
        if diagnostics.is_empty() || (self.quiet && !diagnostics.has_errors()) {
            return;
        }
        let text = render::diagnostics(sources, diagnostics, self.fancy, self.width);
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

fn terminal_width() -> Option<usize> {
    std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).filter(|w: &usize| *w >= 40)
}
