//! Each of core's versioned formats has its JSON Schema, generated from its types, committed
//! under `docs/schemas/`, and it changes only with the version bump the change asks for
//! (`drplan_core::formats::check`). `UPDATE_EXPECT=1` rewrites the files, but never accepts a
//! change whose bump is too small.

use std::path::Path;

use drplan_core::formats::{self, Format};

/// Compares `format`'s schema with its committed file, or writes it under `UPDATE_EXPECT`.
pub fn snapshot(format: &Format) -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas").join(&format.file);
    let generated = format.text();
    let committed = std::fs::read_to_string(&path).ok();
    if let Some(committed) = &committed {
        if *committed == generated {
            return Ok(());
        }
        // Refused whatever the mode: accepting the file must not bless a missing bump.
        formats::check(format, committed)?;
    }
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        return std::fs::write(&path, &generated).map_err(|e| format!("cannot write {}: {e}", path.display()));
    }
    let diff = committed
        .as_deref()
        .map(|c| similar::TextDiff::from_lines(c, &generated).unified_diff().context_radius(2).to_string());
    Err(format!(
        "docs/schemas/{} is {} (UPDATE_EXPECT=1 accepts it):\n{}",
        format.file,
        if committed.is_some() { "out of date" } else { "missing" },
        diff.unwrap_or_default()
    ))
}

#[test]
fn the_committed_schemas_match_the_types_and_their_versions() {
    let failures: Vec<String> = formats::core_formats().iter().filter_map(|f| snapshot(f).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
