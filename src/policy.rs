//! Policy as code: the team's Rego rules, loaded with `regorus` (in-process: no OPA server,
//! no extra binary) and evaluated against the plan document, conftest's way — the `deny`,
//! `violation` and `warn` rules of package `main` or of the packages named. `drplan policy
//! test` runs their `test_*` rules, OPA's way. Core records what the rules said
//! ([`drplan_core::policy`]); this module only runs them.

use std::path::{Path, PathBuf};

use drplan_core::plan::doc::PlanDoc;
use drplan_core::policy::{Level, PolicyResult};
use drplan_core::source::{FileId, Span};
use drplan_core::{Code, Diagnostic, Diagnostics, SourceFile};

/// The conftest rules that produce results, in the order they are reported.
const RULES: &[&str] = &["deny", "violation", "warn"];

/// Policies loaded and compiled, ready to evaluate.
pub struct Policies {
    engine: regorus::Engine,
    /// Every `.rego` file, for diagnostics that point into them.
    pub sources: Vec<SourceFile>,
    /// The package of each file, by index in `sources` (e.g. `main`, `drplan.capacity`).
    packages: Vec<String>,
}

/// Why policies could not be used, with the files the diagnostics point into.
#[derive(Debug)]
pub struct Failed {
    pub sources: Vec<SourceFile>,
    pub diagnostics: Diagnostics,
}

impl Failed {
    fn one(d: Diagnostic) -> Failed {
        let mut diagnostics = Diagnostics::default();
        diagnostics.push(d);
        Failed { sources: Vec::new(), diagnostics }
    }
}

/// Every `*.rego` file under `dir` (recursively), in a stable order; a file is taken as is.
fn rego_files(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    if dir.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| {
            Diagnostic::error(Code::Read, format!("cannot read the policy directory {}: {e}", d.display()))
                .help("`--policy` and `policy { paths }` name directories of `*.rego` files")
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rego") {
                found.push(path);
            }
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(Diagnostic::error(Code::NoPolicies, format!("no policies in {}", dir.display())).help(
            "a policy directory must hold at least one `*.rego` file; a directory without any would let every plan pass unchecked",
        ));
    }
    Ok(found)
}

/// Loads and compiles every `*.rego` file under `dirs`. Every file is read before the
/// first error is returned, so that all syntax errors are reported at once.
pub fn load(dirs: &[PathBuf]) -> Result<Policies, Failed> {
    let mut engine = regorus::Engine::new();
    let mut sources = Vec::new();
    let mut packages = Vec::new();
    let mut diagnostics = Diagnostics::default();
    for dir in dirs {
        for path in rego_files(dir).map_err(Failed::one)? {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Failed::one(
                    Diagnostic::error(Code::Read, format!("cannot read {name}: {e}"))
                        .help("check the file's permissions"),
                )
            })?;
            let file = FileId(u32::try_from(sources.len()).unwrap_or(u32::MAX));
            match engine.add_policy(name.clone(), text.clone()) {
                Ok(package) => packages.push(package.trim_start_matches("data.").to_string()),
                Err(e) => {
                    diagnostics.push(located(
                        Code::PolicySyntax,
                        "Rego syntax error",
                        &e.to_string(),
                        file,
                        &name,
                        &text,
                    ));
                    packages.push(String::new());
                }
            }
            sources.push(SourceFile::new(name, text));
        }
    }
    if diagnostics.has_errors() {
        return Err(Failed { sources, diagnostics });
    }
    Ok(Policies { engine, sources, packages })
}

/// A regorus error as a diagnostic: its `--> file:line:col` becomes the span (one
/// character, in the file that has it), its last line the label.
fn located(code: Code, message: &str, error: &str, file: FileId, name: &str, text: &str) -> Diagnostic {
    let what = error.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(error).trim();
    let what = what.strip_prefix("error: ").unwrap_or(what).to_string();
    let location = error.lines().find_map(|l| l.trim().strip_prefix("--> ")).and_then(|loc| {
        let mut parts = loc.rsplitn(3, ':');
        let col: usize = parts.next()?.parse().ok()?;
        let line: usize = parts.next()?.parse().ok()?;
        Some((parts.next()?.to_string(), line, col))
    });
    let help = match code {
        Code::PolicySyntax => "fix the rule; `drplan policy test DIR` checks the policies alone, without a plan",
        _ => "the rule failed while evaluating the plan document; `drplan plan --json` shows the input it received",
    };
    let d = Diagnostic::error(code, message).help(help);
    match location {
        Some((f, line, col)) if f == name => {
            let start = offset(text, line, col);
            let end = text[start..].chars().next().map_or(start, |c| start + c.len_utf8());
            d.label(Span::new(file, start..end), what)
        }
        Some((f, line, col)) => Diagnostic { message: format!("{message} at {f}:{line}:{col}: {what}"), ..d },
        None => Diagnostic { message: format!("{message} in {name}: {what}"), ..d },
    }
}

/// The byte offset of 1-based `line` and `col` (in characters) in `text`, clamped.
fn offset(text: &str, line: usize, col: usize) -> usize {
    let start: usize = text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum();
    let rest = &text[start.min(text.len())..];
    let line_text = rest.split('\n').next().unwrap_or_default();
    start + line_text.char_indices().nth(col.saturating_sub(1)).map_or(line_text.len(), |(i, _)| i)
}

impl Policies {
    /// The results of the `deny`, `violation` and `warn` rules of `namespaces` (default
    /// `main`) with the plan document as `input`.
    pub fn evaluate(&mut self, doc: &PlanDoc, namespaces: &[String]) -> Result<Vec<PolicyResult>, Failed> {
        let input = regorus::Value::from_json_str(&doc.to_json()).map_err(|e| {
            Failed::one(Diagnostic::error(Code::PolicyEvaluation, format!("cannot pass the plan to the policies: {e}")))
        })?;
        self.engine.set_input(input);
        let main = ["main".to_string()];
        let namespaces = if namespaces.is_empty() { &main[..] } else { namespaces };
        let mut results = Vec::new();
        for ns in namespaces {
            for rule in RULES {
                let Some(level) = Level::of_rule(rule) else { continue };
                for value in self.query(&format!("data.{ns}.{rule}"))? {
                    let items = match value {
                        serde_json::Value::Array(items) => items,
                        // A complete rule (`deny := "..."`) or a boolean: one result when truthy.
                        serde_json::Value::Bool(false) | serde_json::Value::Null => continue,
                        serde_json::Value::Bool(true) => {
                            vec![serde_json::Value::String(format!("{ns}.{rule} is true"))]
                        }
                        other => vec![other],
                    };
                    results.extend(items.iter().filter_map(|v| drplan_core::policy::result(level, ns, rule, v)));
                }
            }
        }
        Ok(results)
    }

    /// The values of `query`, as JSON; none when it is undefined.
    fn query(&mut self, query: &str) -> Result<Vec<serde_json::Value>, Failed> {
        let results = self.engine.eval_query(query.to_string(), false).map_err(|e| self.failure(&e.to_string()))?;
        Ok(results
            .result
            .iter()
            .flat_map(|r| r.expressions.iter())
            .filter(|e| e.value != regorus::Value::Undefined)
            .filter_map(|e| serde_json::to_value(&e.value).ok())
            .collect())
    }

    /// An evaluation error, located in the policy file it names.
    fn failure(&self, error: &str) -> Failed {
        let (file, name, text) = self
            .sources
            .iter()
            .enumerate()
            .find(|(_, s)| error.contains(&format!("--> {}:", s.name)))
            .map_or((FileId(0), "", ""), |(i, s)| {
                (FileId(u32::try_from(i).unwrap_or(0)), s.name.as_str(), s.text.as_str())
            });
        let mut diagnostics = Diagnostics::default();
        diagnostics.push(located(Code::PolicyEvaluation, "Rego evaluation error", error, file, name, text));
        Failed { sources: self.sources.clone(), diagnostics }
    }

    /// Runs every `test_*` rule of every package, in file order: `(rule, passed, why)`.
    pub fn test(&mut self) -> Vec<TestResult> {
        let mut seen = std::collections::BTreeSet::new();
        let mut tests = Vec::new();
        for (source, package) in self.sources.iter().zip(&self.packages) {
            for name in test_rules(&source.text) {
                let rule = format!("data.{package}.{name}");
                if seen.insert(rule.clone()) {
                    tests.push((source.name.clone(), rule));
                }
            }
        }
        tests
            .into_iter()
            .map(|(file, rule)| {
                let outcome = match self.engine.eval_query(rule.clone(), false) {
                    Ok(r) => {
                        let values: Vec<&regorus::Value> =
                            r.result.iter().flat_map(|r| r.expressions.iter()).map(|e| &e.value).collect();
                        match values.as_slice() {
                            [regorus::Value::Bool(true)] => Ok(()),
                            [] | [regorus::Value::Undefined] => {
                                Err("undefined: a condition of the test does not hold".to_string())
                            }
                            [other, ..] => Err(format!("evaluated to {other}, not true")),
                        }
                    }
                    Err(e) => Err(e
                        .to_string()
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or_default()
                        .trim()
                        .to_string()),
                };
                TestResult { file, rule, outcome }
            })
            .collect()
    }
}

/// One `test_*` rule run by `drplan policy test`.
pub struct TestResult {
    pub file: String,
    /// `data.PACKAGE.test_NAME`.
    pub rule: String,
    pub outcome: Result<(), String>,
}

/// The names of the `test_*` rules a policy file defines (at the start of a line, as OPA's
/// formatter writes rules).
fn test_rules(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with("test_"))
        .map(|l| l.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .collect();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_lines_and_characters() {
        let text = "package main\n\ndeny é x\n";
        assert_eq!(offset(text, 1, 1), 0);
        assert_eq!(offset(text, 3, 1), 14);
        assert_eq!(&text[offset(text, 3, 8)..], "x\n");
        assert_eq!(offset(text, 9, 9), text.len());
    }

    #[test]
    fn test_rules_are_found_at_the_start_of_lines() {
        let text = "package main\n\ntest_one if {\n  true\n}\n\ntest_two := true\n  test_indented if { true }\n";
        assert_eq!(test_rules(text), ["test_one", "test_two"]);
    }

    fn loaded(text: &str) -> Result<Policies, Failed> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.rego"), text).unwrap();
        load(&[dir.path().to_path_buf()])
    }

    #[test]
    fn a_syntax_error_points_at_its_line_and_column() {
        let Err(failed) = loaded("package main\n\ndeny contains msg if {\n  msg := \n}\n") else { panic!("loaded") };
        let d = failed.diagnostics.iter().next().unwrap();
        assert_eq!(d.code, Code::PolicySyntax);
        let span = &d.labels[0].span;
        let text = &failed.sources[0].text;
        let line = text[..span.range.start].matches('\n').count() + 1;
        assert!(line == 4 || line == 5, "line {line}: {d:?}");
        assert!(d.help.is_some());
    }

    #[test]
    fn an_empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let Err(failed) = load(&[dir.path().to_path_buf()]) else { panic!("loaded") };
        assert_eq!(failed.diagnostics.iter().next().unwrap().code, Code::NoPolicies);
    }
}
