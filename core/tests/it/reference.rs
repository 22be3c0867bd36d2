//! `docs/configuration.md` is the schema rendered: every block and attribute the parser
//! accepts is documented, and nothing else is.

use drplan_core::config::schema;

#[test]
fn the_configuration_reference_matches_the_schema() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    let generated = schema::reference_markdown();
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "docs/configuration.md is out of date with core/src/config/schema.rs; \
         regenerate it with `UPDATE_EXPECT=1 cargo test -p drplan-core --test it reference`"
    );
}

#[test]
fn every_block_and_attribute_is_in_the_reference() {
    let text = schema::reference_markdown();
    for (path, block) in schema::walk() {
        assert!(text.contains(&format!("`{path}")), "block {path} missing");
        let variant_attrs = block.variants.iter().flat_map(|v| v.attrs.iter());
        for attr in block.attrs.iter().chain(variant_attrs) {
            assert!(text.contains(&format!("| `{}` |", attr.name)), "{path}.{} missing", attr.name);
        }
    }
}
