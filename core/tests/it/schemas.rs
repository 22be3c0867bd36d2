//! Each of core's versioned formats has its JSON Schema, generated from its types, committed
//! under `docs/schemas/`, and it changes only with the version bump the change asks for
//! (`drplan_core::formats::check`). `UPDATE_EXPECT=1` rewrites the files, but never accepts a
//! change whose bump is too small.

use std::path::Path;

use drplan_core::formats::{self, Format};

/// Compares `format`'s schema with its committed file, or writes it under `UPDATE_EXPECT`.
fn snapshot(format: &Format) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas").join(&format.file);
    drplan_harness::snapshot_file(&path, &format.text(), |committed| formats::check(format, committed).map(|_| ()))
}

#[test]
fn the_committed_schemas_match_the_types_and_their_versions() {
    let failures: Vec<String> = formats::core_formats().iter().filter_map(|f| snapshot(f).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_plan_of_a_newer_minor_version_reads_and_another_major_is_refused() {
    use drplan_core::plan::doc::{FORMAT_VERSION, ParseError, PlanDoc};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans/03-no-op/expected.json");
    let text = std::fs::read_to_string(path).unwrap();
    let current = format!("\"format_version\": \"{FORMAT_VERSION}\"");
    assert!(text.contains(&current));
    let (major, minor) = formats::parse_version(FORMAT_VERSION).unwrap();
    let with = |version: String| text.replacen(&current, &format!("\"format_version\": \"{version}\""), 1);
    // A newer minor version's fields this drplan does not know are passed over.
    let newer = with(format!("{major}.{}", minor + 1)).replacen('{', "{\n  \"from_a_newer_drplan\": [1],", 1);
    let doc = PlanDoc::parse(&newer).expect("a newer minor version reads");
    assert_eq!(PlanDoc { format_version: FORMAT_VERSION.into(), ..doc }, PlanDoc::parse(&text).unwrap());
    for other in [format!("{}.0", major + 1), format!("{}.{minor}", major.saturating_sub(1))] {
        assert_eq!(PlanDoc::parse(&with(other.clone())), Err(ParseError::Version { found: other }));
    }
}
