//! Drawing core diagnostics with miette: source snippets, labels, codes and help.

use std::fmt;

use drplan_core::{Diagnostic, Diagnostics, Severity, SourceFile};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};

/// Renders all diagnostics, then a one-line count.
pub fn diagnostics(sources: &[SourceFile], diagnostics: &Diagnostics, fancy: bool, width: usize) -> String {
    let theme = if fancy { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(width).with_links(false);
    let mut out = String::new();
    for d in diagnostics {
        let view = View::new(d, sources);
        // Rendering into a String cannot fail short of a bug in the handler; say so plainly.
        if handler.render_report(&mut out, &view).is_err() {
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
        out.push('\n');
    }
    let (errors, warnings) = (diagnostics.error_count(), diagnostics.warning_count());
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, w) => out.push_str(&format!("{}\n", plural(w, "warning"))),
        (e, 0) => out.push_str(&format!("{}\n", plural(e, "error"))),
        (e, w) => out.push_str(&format!("{}, {}\n", plural(e, "error"), plural(w, "warning"))),
    }
    out
}

/// A core diagnostic with the source of its primary file attached. Labels that point into
/// other files (a duplicate declared in another file) become related notes with theirs.
struct View {
    code: &'static str,
    message: String,
    severity: Severity,
    help: Option<String>,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    related: Vec<View>,
}

impl View {
    fn new(d: &Diagnostic, sources: &[SourceFile]) -> View {
        let primary = d.primary_span().map(|s| s.file);
        let mut labels = Vec::new();
        let mut related = Vec::new();
        for (i, l) in d.labels.iter().enumerate() {
            let span = (l.span.range.start, l.span.range.len());
            if Some(l.span.file) == primary {
                let text = Some(l.text.clone());
                labels.push(if i == 0 {
                    LabeledSpan::new_primary_with_span(text, span)
                } else {
                    LabeledSpan::new_with_span(text, span)
                });
            } else if let Some(src) = sources.get(l.span.file.0 as usize) {
                related.push(View {
                    code: "",
                    message: format!("{} (in {})", l.text, src.name),
                    severity: Severity::Warning,
                    help: None,
                    source: Some(NamedSource::new(&src.name, src.text.clone())),
                    labels: vec![LabeledSpan::new_primary_with_span(Some(l.text.clone()), span)],
                    related: Vec::new(),
                });
            }
        }
        let source = primary
            .and_then(|f| sources.get(f.0 as usize))
            .map(|s| NamedSource::new(&s.name, s.text.clone()).with_language("hcl"));
        View {
            code: d.code.as_str(),
            message: d.message.clone(),
            severity: d.severity,
            help: d.help.clone(),
            source,
            labels,
            related,
        }
    }
}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for View {}

impl miette::Diagnostic for View {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.code.is_empty()).then(|| Box::new(self.code) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match (self.severity, self.code.is_empty()) {
            (_, true) => miette::Severity::Advice,
            (Severity::Error, _) => miette::Severity::Error,
            (Severity::Warning, _) => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        (!self.labels.is_empty())
            .then(|| Box::new(self.labels.iter().cloned()) as Box<dyn Iterator<Item = LabeledSpan>>)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        (!self.related.is_empty()).then(|| {
            Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic))
                as Box<dyn Iterator<Item = &dyn miette::Diagnostic>>
        })
    }
}
