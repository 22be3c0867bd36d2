//! No input makes lowering or formatting panic: truncated, byte-mutated and spliced
//! variants of every example must come back as a result or as diagnostics.

use drplan_core::SourceFile;
use drplan_core::config;
use proptest::prelude::*;

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

/// Lowers and formats `bytes` the way the binary would; panics only if drplan does.
fn exercise(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        // The binary turns non-UTF-8 into a diagnostic before core sees it.
        return;
    };
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
}

#[test]
fn every_truncation_of_every_example() {
    for text in examples() {
        let mut cut = 0;
        while cut < text.len() {
            if text.is_char_boundary(cut) {
                exercise(&text.as_bytes()[..cut]);
            }
            cut += 7;
        }
    }
}

/// Bytes HCL cares about, so mutations reach deep into the grammar.
const SIGNIFICANT: &[u8] = b"{}[]()\"=,#/*\n $-<>!.0123456789abcdefghijklmnopqrstuvwxyz";

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples(
        which in 0usize..64,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>(), 0u8..4, any::<u8>()), 1..8),
    ) {
        let texts = examples();
        let mut bytes = texts[which % texts.len()].clone().into_bytes();
        for (at, other, op, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            let b = SIGNIFICANT[byte as usize % SIGNIFICANT.len()];
            match op {
                0 => bytes[i] = b,
                1 => bytes.insert(i, b),
                2 => {
                    bytes.remove(i);
                }
                _ => {
                    // Splice a copy of another part of the file in.
                    let j = other.index(bytes.len());
                    let chunk: Vec<u8> = bytes[i.min(j)..i.max(j)].iter().take(40).copied().collect();
                    bytes.splice(i..i, chunk);
                }
            }
        }
        exercise(&bytes);
    }

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        exercise(&bytes);
    }
}
