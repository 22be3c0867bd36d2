//! Editing configuration text without losing anything: comments, blank lines and layout
//! stay byte for byte; only the values asked for change. (hcl-edit keeps every piece of
//! decoration, so an untouched file prints back exactly as it was read.)

use hcl_edit::Decorate;
use hcl_edit::expr::Expression;
use hcl_edit::structure::Body;

use super::model::Role;
use crate::source::SourceFile;

/// Sets the `role` of the named regions wherever they are declared. Returns the index and
/// new text of every file that changed.
pub fn set_roles(files: &[SourceFile], roles: &[(&str, Role)]) -> Result<Vec<(usize, String)>, String> {
    let mut changed = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let mut body: Body = hcl_edit::parser::parse_body(&f.text).map_err(|e| format!("{}: {e}", f.name))?;
        let mut touched = false;
        for block in body.blocks_mut() {
            if block.ident.as_str() != "region" {
                continue;
            }
            let Some(name) = block.labels.first().map(|l| l.as_str().to_string()) else { continue };
            let Some((_, role)) = roles.iter().find(|(r, _)| *r == name) else { continue };
            let Some(mut attr) = block.body.get_attribute_mut("role") else {
                return Err(format!("region `{name}` in {} has no `role` to change", f.name));
            };
            let value = attr.value_mut();
            if value.as_str() == Some(role.as_str()) {
                continue;
            }
            let decor = value.decor().clone();
            *value = Expression::from(role.as_str());
            *value.decor_mut() = decor;
            touched = true;
        }
        if touched {
            changed.push((i, body.to_string()));
        }
    }
    Ok(changed)
}

/// A failover as an edit of the configuration's text: `to` becomes active and `from`
/// standby, every comment and layout kept. The one role edit: `drplan failover` shows and
/// writes it, the watcher plans it in memory.
#[derive(Debug, Clone)]
pub struct RoleEdit {
    /// The index and new text of every file that changed.
    pub edits: Vec<(usize, String)>,
    /// Every file, with the edits made.
    pub sources: Vec<SourceFile>,
}

/// The edit making `to` active and `from` standby (none when `to` is active already).
pub fn edit_roles(files: &[SourceFile], to: &str, from: &str) -> Result<RoleEdit, String> {
    let edits = set_roles(files, &[(to, Role::Active), (from, Role::Standby)])?;
    let mut sources = files.to_vec();
    for (i, text) in &edits {
        sources[*i] = SourceFile::new(sources[*i].name.clone(), text.clone());
    }
    Ok(RoleEdit { edits, sources })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_only_the_roles() {
        let text = "# top\nregion \"a\" {\n  cloud = \"aws\"\n  role  = \"active\"   # serves\n}\n\n// b\nregion \"b\" {\n  role = \"standby\"\n}\n";
        let files = [SourceFile::new("main.hcl", text)];
        let out = set_roles(&files, &[("a", Role::Standby), ("b", Role::Active)]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].1,
            "# top\nregion \"a\" {\n  cloud = \"aws\"\n  role  = \"standby\"   # serves\n}\n\n// b\nregion \"b\" {\n  role = \"active\"\n}\n"
        );
    }

    #[test]
    fn files_without_those_regions_are_untouched() {
        let files = [SourceFile::new("a.hcl", "component \"x\" {\n  replicas = { active = 1 }\n}\n")];
        assert!(set_roles(&files, &[("a", Role::Active)]).unwrap().is_empty());
    }
}
