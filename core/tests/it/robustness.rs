//! No input makes lowering or formatting panic: truncated and mutated examples, random
//! configurations built from the schema and random token soup must come back as a result or
//! as diagnostics. Inputs are text, as the binary hands core text (it rejects non-UTF-8
//! itself), and most of them parse, so that the semantic pass (`build`) really runs on them.
//!
//! Each property counts the cases that parsed, so that lowering ran on their blocks, prints
//! the share (`--nocapture`) and asserts a floor well under the share measured when it was
//! written (cases are random, 384 per property): truncations at every 7th character 20% (335
//! of 1669) and at every line 23% (110 of 486); one to five line, name, value and token edits
//! of the examples 30-37%; configurations generated from the schema 84-88%; token soup, which is
//! there for the parser, 1-3%. Measured the same way, the byte mutations this replaced
//! reached lowering in 26% of cases (99 of 384) and the random bytes in none.

use std::sync::atomic::{AtomicUsize, Ordering};

use drplan_core::config::{self, schema};
use drplan_core::{Code, SourceFile};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};

fn examples() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut texts = Vec::new();
    for dir in std::fs::read_dir(root).expect("examples/ exists") {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "hcl") {
                texts.push(std::fs::read_to_string(f).unwrap());
            }
        }
    }
    assert!(!texts.is_empty());
    texts.sort();
    texts
}

/// Lowers and formats `text` the way the binary would; panics only if drplan does.
/// Returns whether the text parsed, so that lowering ran on its blocks.
fn exercise(text: &str) -> bool {
    let loaded = config::load(&[SourceFile::new("fuzz.hcl", text)], &|_| None);
    // Either a model or at least one error: never silence.
    assert!(loaded.config.is_some() || loaded.diagnostics.has_errors());
    for d in loaded.diagnostics.iter() {
        for l in &d.labels {
            assert!(
                l.span.range.start <= l.span.range.end && l.span.range.end <= text.len(),
                "label out of bounds: {d:?}"
            );
            assert!(
                text.is_char_boundary(l.span.range.start) && text.is_char_boundary(l.span.range.end),
                "label splits a character: {d:?}"
            );
        }
    }
    if let Ok(formatted) = drplan_core::fmt::format(text) {
        assert_eq!(
            drplan_core::fmt::format(&formatted).ok().as_deref(),
            Some(formatted.as_str()),
            "fmt is not idempotent on:\n{text}"
        );
    }
    !loaded.diagnostics.iter().any(|d| d.code == Code::Syntax)
}

/// Cases run and cases that reached lowering, for one property.
#[derive(Default)]
struct Reach {
    cases: AtomicUsize,
    lowered: AtomicUsize,
}

impl Reach {
    fn exercise(&self, text: &str) {
        self.cases.fetch_add(1, Ordering::Relaxed);
        if exercise(text) {
            self.lowered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Prints the share (visible with `--nocapture`) and fails below `floor`.
    fn at_least(&self, what: &str, floor: f64) {
        let (cases, lowered) = (self.cases.load(Ordering::Relaxed), self.lowered.load(Ordering::Relaxed));
        let share = lowered as f64 / cases.max(1) as f64;
        eprintln!("{what}: {lowered} of {cases} cases reached lowering ({:.0}%)", share * 100.0);
        assert!(cases > 0 && share >= floor, "{what}: only {:.0}% of {cases} cases reached lowering", share * 100.0);
    }
}

fn runner() -> TestRunner {
    TestRunner::new(RunnerConfig { cases: 384, failure_persistence: None, ..RunnerConfig::default() })
}

#[test]
fn every_truncation_of_every_example() {
    let (chars, lines) = (Reach::default(), Reach::default());
    for text in examples() {
        let mut cut = 0;
        while cut < text.len() {
            if text.is_char_boundary(cut) {
                chars.exercise(&text[..cut]);
            }
            cut += 7;
        }
        for (i, _) in text.match_indices('\n') {
            lines.exercise(&text[..=i]);
        }
    }
    chars.at_least("truncations at every 7th character", 0.1);
    lines.at_least("truncations at every line", 0.15);
}

/// Values of every type the schema knows, valid and not.
const VALUES: &[&str] = &[
    "\"active\"",
    "\"standby\"",
    "\"cold\"",
    "\"manual\"",
    "\"automatic\"",
    "\"aws\"",
    "\"gcp\"",
    "\"us-east-1\"",
    "\"eu-west-1\"",
    "\"1h\"",
    "\"30s\"",
    "\"2 hours\"",
    "\"0 * * * *\"",
    "\"*/5 * * * * *\"",
    "\"\"",
    "\"ümlaut ✓\"",
    "0",
    "-1",
    "3",
    "99.9",
    "1e400",
    "true",
    "false",
    "null",
    "[]",
    "[\"us-east-1\", \"us-east-1\"]",
    "{ active = 3, standby = 1, cold = 0 }",
    "{ active = -1 }",
    "{}",
    "env(\"HOME\")",
    "env(\"DRPLAN_UNSET\", \"fallback\")",
    "env()",
    "upper(\"x\")",
    "\"${var.x}\"",
    "a.b",
    "1 + 2",
];

/// Every block and attribute name the schema knows, plus near misses.
fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = schema::walk()
        .into_iter()
        .flat_map(|(_, b)| std::iter::once(b.name).chain(b.attrs.iter().map(|a| a.name)))
        .collect();
    names.extend(["regoin", "rol", "instance_typ", "x", "drplan", "label"]);
    names.sort_unstable();
    names.dedup();
    names
}

/// One edit of a configuration's lines: whole lines moved, copied or dropped, a value or a
/// name replaced, a token inserted. Each keeps the text valid UTF-8 and mostly parseable.
#[derive(Debug, Clone)]
enum Edit {
    DropLine(prop::sample::Index),
    CopyLine(prop::sample::Index, prop::sample::Index),
    SwapLines(prop::sample::Index, prop::sample::Index),
    Value(prop::sample::Index, prop::sample::Index),
    Name(prop::sample::Index, prop::sample::Index),
    Token(prop::sample::Index, prop::sample::Index, prop::sample::Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let i = any::<prop::sample::Index>;
    prop_oneof![
        i().prop_map(Edit::DropLine),
        (i(), i()).prop_map(|(a, b)| Edit::CopyLine(a, b)),
        (i(), i()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (i(), i()).prop_map(|(a, b)| Edit::Value(a, b)),
        (i(), i()).prop_map(|(a, b)| Edit::Name(a, b)),
        (i(), i(), i()).prop_map(|(a, b, c)| Edit::Token(a, b, c)),
    ]
}

/// Tokens HCL has, for insertions and soup.
const TOKENS: &[&str] =
    &["{", "}", "[", "]", "(", ")", "=", ",", "\"", "#", "//", "/*", "*/", "\n", ".", "${", "<<EOF\n"];

fn apply(text: &str, edits: &[Edit], names: &[&str]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        if lines.is_empty() {
            break;
        }
        let n = lines.len();
        match e {
            Edit::DropLine(a) => {
                lines.remove(a.index(n));
            }
            Edit::CopyLine(a, b) => {
                let line = lines[a.index(n)].clone();
                lines.insert(b.index(n), line);
            }
            Edit::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
            Edit::Value(a, v) => {
                // The value of an attribute line (`name = value`); other lines stay.
                let line = &mut lines[a.index(n)];
                if let Some(at) = line.find(" = ") {
                    line.replace_range(at + 3.., v.get::<&str>(VALUES));
                }
            }
            Edit::Name(a, v) => {
                let line = &mut lines[a.index(n)];
                let start = line.len() - line.trim_start().len();
                let end = line[start..].find([' ', '=']).map_or(line.len(), |i| start + i);
                line.replace_range(start..end, v.get::<&str>(names));
            }
            Edit::Token(a, at, t) => {
                let line = &mut lines[a.index(n)];
                let boundaries: Vec<usize> = (0..=line.len()).filter(|i| line.is_char_boundary(*i)).collect();
                line.insert_str(*at.get(&boundaries), t.get::<&str>(TOKENS));
            }
        }
    }
    lines.join("\n") + "\n"
}

#[test]
fn edited_examples() {
    let (texts, names) = (examples(), names());
    let reach = Reach::default();
    let strategy = (any::<prop::sample::Index>(), prop::collection::vec(edit(), 1..6));
    runner()
        .run(&strategy, |(which, edits)| {
            reach.exercise(&apply(which.get::<String>(&texts), &edits, &names));
            Ok(())
        })
        .unwrap();
    reach.at_least("line and value edits of the examples", 0.2);
}

/// A random configuration shaped by the schema: its blocks (labelled or not, nested as the
/// schema nests them, or not) with its attributes set to values of any type.
fn generated(names: &[&'static str]) -> impl Strategy<Value = String> {
    let blocks: Vec<(String, &'static schema::Block)> = schema::walk();
    let item = (any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..3, any::<prop::sample::Index>());
    let names = names.to_vec();
    prop::collection::vec(
        (
            item,
            prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<bool>()), 0..6),
        ),
        0..12,
    )
    .prop_map(move |items| {
        let mut out = String::new();
        for ((b, label, nest, inner), attrs) in items {
            let (_, block) = b.get(&blocks);
            let labels = match block.labels.len() {
                0 => String::new(),
                _ => format!(
                    " \"{}\"",
                    label.get(&["us-east-1", "eu-west-1", "api", "aws", "s3", "local", "nodes", "db"])
                ),
            };
            out.push_str(&format!("{}{labels} {{\n", block.name));
            for (a, v, known) in attrs {
                let name = if known && !block.attrs.is_empty() { a.get(block.attrs).name } else { *a.get(&names) };
                out.push_str(&format!("  {name} = {}\n", v.get(VALUES)));
            }
            if nest > 0 && !block.blocks.is_empty() {
                let child = inner.get(block.blocks).block;
                out.push_str(&format!("  {} {{\n  }}\n", child.name));
            }
            out.push_str("}\n\n");
        }
        out
    })
}

#[test]
fn configurations_generated_from_the_schema() {
    let names = names();
    let reach = Reach::default();
    runner()
        .run(&generated(&names), |text| {
            reach.exercise(&text);
            Ok(())
        })
        .unwrap();
    reach.at_least("configurations generated from the schema", 0.6);
}

#[test]
fn token_soup() {
    let names = names();
    let words: Vec<&str> = TOKENS.iter().chain(VALUES).chain(names.iter()).copied().collect();
    let reach = Reach::default();
    let strategy = prop::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 0..60);
    runner()
        .run(&strategy, |picks| {
            let text: String = picks
                .iter()
                .map(|(w, newline)| format!("{}{}", w.get(&words), if *newline { "\n" } else { " " }))
                .collect();
            reach.exercise(&text);
            Ok(())
        })
        .unwrap();
    reach.at_least("token soup", 0.0);
}
