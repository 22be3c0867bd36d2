//! The state's format: its JSON Schema, generated from its types, is committed as
//! `docs/schemas/state.json` and changes only with the version bump the change asks for
//! (`UPDATE_EXPECT=1` rewrites it, but never accepts a change whose bump is too small); and
//! at run time a newer minor version reads, its unknown fields written back as found, while
//! a newer major version is refused with a message that says to upgrade.

use std::path::Path;

use drplan_core::formats::{self, Format};
use drplan_state::{FORMAT_MINOR, FORMAT_VERSION, StateError};

/// Compares `format`'s schema with its committed file, or writes it under `UPDATE_EXPECT`.
fn snapshot(format: &Format) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas").join(&format.file);
    drplan_harness::snapshot_file(&path, &format.text(), |committed| formats::check(format, committed).map(|_| ()))
}

#[test]
fn the_committed_state_schema_matches_the_types_and_the_version() {
    let format = drplan_state::format();
    assert_eq!(format.version, format!("{FORMAT_VERSION}.{FORMAT_MINOR}"));
    if let Err(e) = snapshot(&format) {
        panic!("{e}");
    }
}

/// A state of format 3.0, as this drplan writes it.
const V3_0: &str = r#"{
  "format_version": 3,
  "lineage": "l",
  "serial": 0,
  "drplan_version": "0.1.0",
  "project": "demo",
  "roles": {
    "a": "active"
  },
  "objects": [
    {
      "address": "region.a.compute.web[0]",
      "type": "instance",
      "region": "a",
      "id": "i-1",
      "attributes": {
        "image": "ami-1"
      }
    }
  ]
}
"#;

/// The same state as a drplan of format 3.7 may write it, with fields this drplan does not
/// know: one of the file, one of an object.
const V3_7: &str = r#"{
  "format_version": 3,
  "format_minor": 7,
  "lineage": "l",
  "serial": 0,
  "drplan_version": "0.1.0",
  "project": "demo",
  "roles": {
    "a": "active"
  },
  "objects": [
    {
      "address": "region.a.compute.web[0]",
      "type": "instance",
      "region": "a",
      "id": "i-1",
      "attributes": {
        "image": "ami-1"
      },
      "checksum": "abc"
    }
  ],
  "future": {
    "kept": true
  }
}
"#;

#[test]
fn a_state_of_minor_zero_reads_and_is_written_as_before() {
    let text = V3_0;
    let state = drplan_state::parse(text.as_bytes(), "s").unwrap();
    assert_eq!((state.format_version, state.format_minor), (3, 0));
    assert!(state.extra.is_empty() && state.objects[0].extra.is_empty());
    assert_eq!(drplan_state::to_text(&state, "s").unwrap(), text);
}

#[test]
fn a_newer_minor_version_reads_and_its_unknown_fields_are_written_back() {
    let text = V3_7;
    let mut state = drplan_state::parse(text.as_bytes(), "s").unwrap();
    assert_eq!((state.format_version, state.format_minor), (3, 7));
    assert_eq!(state.extra.get("future"), Some(&serde_json::json!({"kept": true})));
    assert_eq!(drplan_state::to_text(&state, "s").unwrap(), text);
    // Through an apply of this drplan: the version stays the newer one and so do the unknown
    // fields, an object's while it is the same object.
    let mut prior = state.to_prior().unwrap();
    state.set_content(&prior);
    assert_eq!(drplan_state::to_text(&state, "s").unwrap(), text);
    prior.objects.values_mut().for_each(|o| o.id = "i-2".into());
    state.set_content(&prior);
    let written = drplan_state::to_text(&state, "s").unwrap();
    assert_eq!(written, text.replace("\"i-1\"", "\"i-2\"").replace(",\n      \"checksum\": \"abc\"", ""));
}

#[test]
fn a_newer_major_version_is_refused_and_names_the_drplan_that_wrote_it() {
    let text = V3_7.replace("\"format_version\": 3", &format!("\"format_version\": {}", FORMAT_VERSION + 1));
    let text = text.replace("\"0.1.0\"", "\"9.1.0\"");
    let err = drplan_state::parse(text.as_bytes(), "s3://b/k").unwrap_err();
    assert!(matches!(err, StateError::TooNew { found, supported: FORMAT_VERSION, .. } if found == FORMAT_VERSION + 1));
    assert_eq!(
        err.to_string(),
        format!(
            "the state at s3://b/k has format version {}, newer than this drplan reads ({FORMAT_VERSION}): it was \
             written by drplan 9.1.0; upgrade drplan to 9.1.0 or later to read it",
            FORMAT_VERSION + 1
        )
    );
    // No usable drplan_version: still refused as newer, not as garbage.
    let err = drplan_state::parse(br#"{"format_version": 99, "drplan_version": 4}"#, "s").unwrap_err();
    assert!(err.to_string().ends_with("written by a newer drplan; upgrade drplan to read it"), "{err}");
}
