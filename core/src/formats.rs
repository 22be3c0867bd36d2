//! The versioned documents drplan writes, each one's JSON Schema derived from its Rust types,
//! and the rule that keeps a format from changing without its version.
//!
//! The schemas are committed under `docs/schemas/`; a test regenerates them and compares.
//! What a change asks for is computed from the two schemas ([`changes`]): an additive change
//! (a new optional field) raises the minor version, a breaking one (a field removed or newly
//! required, a type changed) the major, and a change with too small a bump is refused
//! ([`check`]). Pure: the tests read and write the files.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

/// The top-level key of a schema file that carries its format's version (`MAJOR.MINOR`).
pub const VERSION_KEY: &str = "x-drplan-format-version";

/// Who reads a format, which decides what a change of it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// drplan reads it back (the state, a saved plan), and drplans of one major version read
    /// each other's documents. Its schema is what drplan accepts (serde's deserializing
    /// side): a field newly required breaks the reading of older documents, a field no
    /// longer required the reading of newer ones by older drplans.
    ReadBack,
    /// Only other programs read it (reports, events). Its schema is what drplan writes
    /// (serde's serializing side): a new field is additive even when always present, a field
    /// that may now be absent breaks its readers.
    Output,
}

/// One versioned format and its schema as generated from its types.
#[derive(Debug, Clone)]
pub struct Format {
    /// For messages: `state`, `plan`, `drift`, ...
    pub name: &'static str,
    /// Its file's name under `docs/schemas/`: `NAME.json`.
    pub file: String,
    /// `MAJOR.MINOR`.
    pub version: String,
    /// Where the version is set, for the message that asks for a bump.
    pub version_at: &'static str,
    pub contract: Contract,
    pub schema: Value,
}

impl Format {
    /// The format `name` of documents of type `T`, titled `title`, in `docs/schemas/NAME.json`.
    pub fn of<T: JsonSchema + ?Sized>(
        name: &'static str,
        title: &str,
        version: &str,
        version_at: &'static str,
        contract: Contract,
    ) -> Format {
        let settings = match contract {
            Contract::ReadBack => SchemaSettings::draft2020_12().for_deserialize(),
            Contract::Output => SchemaSettings::draft2020_12().for_serialize(),
        };
        let mut schema = settings.into_generator().into_root_schema_for::<T>().to_value();
        if let Value::Object(m) = &mut schema {
            m.insert("title".into(), title.into());
            m.insert(VERSION_KEY.into(), version.into());
        }
        Format { name, file: format!("{name}.json"), version: version.to_string(), version_at, contract, schema }
    }

    /// The schema file's text: pretty-printed in a fixed order whatever order serde_json's
    /// maps keep (a schema's keywords in reading order, `$defs` last, names sorted), with one
    /// trailing newline, so that it diffs well and never changes by itself.
    pub fn text(&self) -> String {
        // A tree of plain JSON values with string keys: serializing cannot fail.
        serde_json::to_string_pretty(&Ordered { value: &self.schema, role: Role::Schema }).unwrap_or_default() + "\n"
    }
}

/// The formats whose types are core's: the plan document, the drift, backups, status and
/// drill reports, the incidents' listing, and the events of `drplan watch`. The state's is drplan-state's.
pub fn core_formats() -> Vec<Format> {
    use crate::{backups, drift, drill, plan::doc, status, watch};
    vec![
        Format::of::<doc::PlanDoc>(
            "plan",
            "drplan plan document",
            doc::FORMAT_VERSION,
            "`FORMAT_VERSION` in core/src/plan/doc.rs",
            Contract::ReadBack,
        ),
        Format::of::<drift::Report>(
            "drift",
            "drplan drift report",
            drift::FORMAT_VERSION,
            "`FORMAT_VERSION` in core/src/drift.rs",
            Contract::Output,
        ),
        Format::of::<backups::Report>(
            "backups",
            "drplan backups report",
            backups::FORMAT_VERSION,
            "`FORMAT_VERSION` in core/src/backups.rs",
            Contract::Output,
        ),
        Format::of::<status::Report>(
            "status",
            "drplan status report",
            status::FORMAT_VERSION,
            "`FORMAT_VERSION` in core/src/status.rs",
            Contract::Output,
        ),
        Format::of::<drill::Report<'static>>(
            "drill",
            "drplan drill report",
            drill::FORMAT_VERSION,
            "`FORMAT_VERSION` in core/src/drill.rs",
            Contract::Output,
        ),
        Format::of::<crate::incident::Listing>(
            "incidents",
            "drplan incident list",
            crate::incident::FORMAT_VERSION,
            "`FORMAT_VERSION` in core/src/incident.rs",
            Contract::Output,
        ),
        Format::of::<watch::EventLine>(
            "watch-event",
            "drplan watch event",
            watch::EVENT_FORMAT_VERSION,
            "`EVENT_FORMAT_VERSION` in core/src/watch.rs",
            Contract::Output,
        ),
    ]
}

/// `MAJOR.MINOR` as numbers.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The version bump a change asks for, smallest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Bump {
    None,
    Minor,
    Major,
}

/// One difference between two schemas, named by the path of the data it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `objects[].attributes`, `drills[].steps[].seconds`, `roles.*` (any key of a map);
    /// empty for the document itself.
    pub path: String,
    /// `added`, `removed`, `type changed from string to integer`, ...
    pub what: String,
    pub breaking: bool,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "the document: {}", self.what)?;
        } else {
            write!(f, "field `{}` {}", self.path, self.what)?;
        }
        if self.breaking { f.write_str(" (breaking)") } else { Ok(()) }
    }
}

/// The bump `changes` ask for: major for any breaking one, minor for additive ones.
pub fn needed(changes: &[Change]) -> Bump {
    if changes.iter().any(|c| c.breaking) {
        Bump::Major
    } else if changes.is_empty() {
        Bump::None
    } else {
        Bump::Minor
    }
}

/// What changed from schema `old` to schema `new`, by the path of the data: properties added
/// and removed, required or not, types, formats and allowed values, followed through `$ref`
/// into `$defs`, array items and map values. Descriptions and titles are not changes.
pub fn changes(old: &Value, new: &Value, contract: Contract) -> Vec<Change> {
    let mut walk = Walk { old_root: old, new_root: new, contract, seen: BTreeSet::new(), out: Vec::new() };
    walk.node("", old, new, 0);
    walk.out
}

/// Whether `format`'s generated schema may replace the `committed` one: `Ok` with the changes
/// (none when only descriptions changed, or nothing) when its version was raised enough for
/// them, `Err` with the reason otherwise.
pub fn check(format: &Format, committed: &str) -> Result<Vec<Change>, String> {
    let old: Value = serde_json::from_str(committed)
        .map_err(|e| format!("docs/schemas/{} is not JSON ({e}): restore it from git", format.file))?;
    let old_version = old.get(VERSION_KEY).and_then(Value::as_str).unwrap_or_default().to_string();
    let Some((old_major, old_minor)) = parse_version(&old_version) else {
        return Err(format!("docs/schemas/{} has no `{VERSION_KEY}` of the form MAJOR.MINOR", format.file));
    };
    let Some((major, minor)) = parse_version(&format.version) else {
        return Err(format!("the {} format's version `{}` is not MAJOR.MINOR", format.name, format.version));
    };
    if (major, minor) < (old_major, old_minor) {
        return Err(format!(
            "the {} format's version went back from {old_version} to {}: versions only rise",
            format.name, format.version
        ));
    }
    let given = if major > old_major {
        Bump::Major
    } else if minor > old_minor {
        Bump::Minor
    } else {
        Bump::None
    };
    let changes = changes(&old, &format.schema, format.contract);
    let need = needed(&changes);
    if given >= need {
        return Ok(changes);
    }
    let listed: Vec<String> = changes.iter().map(Change::to_string).collect();
    let minor_next = format!("{old_major}.{old_minor} → {old_major}.{}", old_minor + 1);
    let major_next = format!("{old_major}.{old_minor} → {}.0", old_major + 1);
    let rule = if need == Bump::Major {
        format!("a breaking change raises the major version ({major_next})")
    } else {
        format!("an additive change raises the minor version ({minor_next}), a breaking one the major ({major_next})")
    };
    let head = if given == Bump::None {
        format!("the {} schema changed without a version bump", format.name)
    } else {
        format!(
            "the {} schema changed incompatibly with only a minor version bump ({old_version} → {})",
            format.name, format.version
        )
    };
    Err(format!(
        "{head}: {}; {rule}. Raise {}, then accept the schema with UPDATE_EXPECT=1.",
        listed.join("; "),
        format.version_at
    ))
}

/// A schema node's constraints gathered through `$ref`, `anyOf`, `oneOf` and `allOf`.
#[derive(Default)]
struct Shape<'a> {
    types: BTreeSet<String>,
    formats: BTreeSet<&'a str>,
    /// The allowed values (`const`, `enum`) as JSON text; empty when not limited.
    values: BTreeSet<String>,
    properties: BTreeMap<&'a str, &'a Value>,
    required: BTreeSet<&'a str>,
    items: Option<&'a Value>,
    tuple: Vec<&'a Value>,
    /// A map's values (`additionalProperties` as a schema).
    map: Option<&'a Value>,
    refs: Vec<&'a str>,
}

/// Deeper than any of drplan's types nest: a guard against a self-referring `$ref`.
const MAX_DEPTH: usize = 64;

fn gather<'a>(root: &'a Value, node: &'a Value, into: &mut Shape<'a>, depth: usize) {
    let Value::Object(m) = node else { return };
    if depth > MAX_DEPTH {
        return;
    }
    if let Some(r) = m.get("$ref").and_then(Value::as_str) {
        into.refs.push(r);
        if let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p)) {
            gather(root, target, into, depth + 1);
        }
    }
    match m.get("type") {
        Some(Value::String(t)) => {
            into.types.insert(t.clone());
        }
        Some(Value::Array(ts)) => into.types.extend(ts.iter().filter_map(Value::as_str).map(str::to_string)),
        _ => {}
    }
    let consts = m.get("const").into_iter().chain(m.get("enum").and_then(Value::as_array).into_iter().flatten());
    for v in consts {
        into.values.insert(v.to_string());
        into.types.insert(json_type(v).to_string());
    }
    if let Some(f) = m.get("format").and_then(Value::as_str) {
        into.formats.insert(f);
    }
    for (name, schema) in m.get("properties").and_then(Value::as_object).into_iter().flatten() {
        into.properties.entry(name.as_str()).or_insert(schema);
    }
    into.required.extend(m.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str));
    if let Some(i) = m.get("items") {
        into.items.get_or_insert(i);
    }
    if let Some(Value::Array(p)) = m.get("prefixItems")
        && into.tuple.is_empty()
    {
        into.tuple.extend(p);
    }
    if let Some(a @ Value::Object(_)) = m.get("additionalProperties") {
        into.map.get_or_insert(a);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for branch in m.get(key).and_then(Value::as_array).into_iter().flatten() {
            gather(root, branch, into, depth + 1);
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn listed<T: AsRef<str>>(set: &BTreeSet<T>) -> String {
    if set.is_empty() {
        return "anything".into();
    }
    set.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" or ")
}

struct Walk<'a> {
    old_root: &'a Value,
    new_root: &'a Value,
    contract: Contract,
    /// The pairs of definitions compared already: each is compared once, at the first path
    /// that reaches it, and a type that contains itself ends.
    seen: BTreeSet<(Vec<&'a str>, Vec<&'a str>)>,
    out: Vec<Change>,
}

impl<'a> Walk<'a> {
    fn push(&mut self, path: &str, what: impl Into<String>, breaking: bool) {
        self.out.push(Change { path: path.to_string(), what: what.into(), breaking });
    }

    fn node(&mut self, path: &str, old: &'a Value, new: &'a Value, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let (mut o, mut n) = (Shape::default(), Shape::default());
        gather(self.old_root, old, &mut o, 0);
        gather(self.new_root, new, &mut n, 0);
        let defined = !o.refs.is_empty() || !n.refs.is_empty();
        if defined && !self.seen.insert((o.refs.clone(), n.refs.clone())) {
            return;
        }
        if o.types != n.types {
            let what = format!("type changed from {} to {}", listed(&o.types), listed(&n.types));
            return self.push(path, what, true);
        }
        if o.formats != n.formats {
            let what = format!("format changed from {} to {}", listed(&o.formats), listed(&n.formats));
            return self.push(path, what, true);
        }
        self.values(path, &o, &n);
        self.properties(path, &o, &n, depth);
        if let (Some(oi), Some(ni)) = (o.items, n.items) {
            self.node(&format!("{path}[]"), oi, ni, depth + 1);
        }
        if o.tuple.len() != n.tuple.len() {
            let what = format!("changed from {} to {} elements", o.tuple.len(), n.tuple.len());
            self.push(path, what, true);
        } else {
            for (i, (oi, ni)) in o.tuple.iter().zip(&n.tuple).enumerate() {
                self.node(&format!("{path}[{i}]"), oi, ni, depth + 1);
            }
        }
        if let (Some(om), Some(nm)) = (o.map, n.map) {
            self.node(&format!("{path}.*"), om, nm, depth + 1);
        }
    }

    fn values(&mut self, path: &str, o: &Shape<'a>, n: &Shape<'a>) {
        if o.values == n.values {
            return;
        }
        if o.values.is_empty() || n.values.is_empty() {
            let what = format!("values changed from {} to {}", listed(&o.values), listed(&n.values));
            return self.push(path, what, true);
        }
        let removed: BTreeSet<&String> = o.values.difference(&n.values).collect();
        let added: BTreeSet<&String> = n.values.difference(&o.values).collect();
        if !removed.is_empty() {
            self.push(path, format!("no longer takes {}", listed(&removed)), true);
        }
        if !added.is_empty() {
            // An older drplan cannot read a value it does not know; another program reading a
            // report is expected to pass over one.
            self.push(path, format!("takes the new value {}", listed(&added)), self.contract == Contract::ReadBack);
        }
    }

    fn properties(&mut self, path: &str, o: &Shape<'a>, n: &Shape<'a>, depth: usize) {
        let child = |name: &str| if path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
        for (name, old) in &o.properties {
            let at = child(name);
            let Some(new) = n.properties.get(name) else {
                self.push(&at, "removed", true);
                continue;
            };
            match (o.required.contains(name), n.required.contains(name), self.contract) {
                (true, false, Contract::ReadBack) => self.push(&at, "is no longer required", true),
                (true, false, Contract::Output) => self.push(&at, "may now be absent", true),
                (false, true, Contract::ReadBack) => self.push(&at, "is now required", true),
                (false, true, Contract::Output) => self.push(&at, "is now always present", false),
                _ => {}
            }
            self.node(&at, old, new, depth + 1);
        }
        for name in n.properties.keys().filter(|k| !o.properties.contains_key(*k)) {
            let required = n.required.contains(name) && self.contract == Contract::ReadBack;
            self.push(&child(name), if required { "added as required" } else { "added" }, required);
        }
    }
}

/// What a JSON value is within a schema, for the order of its keys.
#[derive(Clone, Copy)]
enum Role {
    /// A schema: its keywords in reading order.
    Schema,
    /// A map of names to schemas (`properties`, `$defs`): sorted by name.
    Names,
    /// Data (`const`, `enum`, `default`, `required`): sorted.
    Data,
}

struct Ordered<'a> {
    value: &'a Value,
    role: Role,
}

fn keyword_rank(key: &str) -> u8 {
    match key {
        "$schema" => 0,
        "$id" => 1,
        "title" => 2,
        "description" => 3,
        VERSION_KEY => 4,
        "type" => 5,
        "format" => 6,
        "$ref" => 7,
        "properties" => 9,
        "required" => 10,
        "additionalProperties" => 11,
        "$defs" => 12,
        _ => 8,
    }
}

fn child_role(parent: Role, key: &str) -> Role {
    match parent {
        Role::Names => Role::Schema,
        Role::Data => Role::Data,
        Role::Schema => match key {
            "properties" | "$defs" | "patternProperties" | "dependentSchemas" => Role::Names,
            "const" | "enum" | "default" | "examples" | "required" => Role::Data,
            _ => Role::Schema,
        },
    }
}

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.value {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                match self.role {
                    Role::Schema => keys.sort_by_key(|k| (keyword_rank(k), k.as_str())),
                    Role::Names | Role::Data => keys.sort(),
                }
                let mut map = s.serialize_map(Some(keys.len()))?;
                for k in keys {
                    map.serialize_entry(k, &Ordered { value: &m[k], role: child_role(self.role, k) })?;
                }
                map.end()
            }
            // The elements of `anyOf` are schemas, those of `enum` data: the array's role.
            Value::Array(a) => s.collect_seq(a.iter().map(|v| Ordered { value: v, role: self.role })),
            other => other.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(props: Value, required: &[&str]) -> Value {
        json!({"type": "object", "properties": props, "required": required})
    }

    fn whats(c: &[Change]) -> Vec<String> {
        c.iter().map(Change::to_string).collect()
    }

    #[test]
    fn an_optional_field_added_is_additive_and_a_required_one_breaks_what_drplan_reads_back() {
        let old = object(json!({"a": {"type": "string"}}), &["a"]);
        let new = object(json!({"a": {"type": "string"}, "b": {"type": "integer"}}), &["a"]);
        let c = changes(&old, &new, Contract::ReadBack);
        assert_eq!(whats(&c), ["field `b` added"]);
        assert_eq!(needed(&c), Bump::Minor);
        let new = object(json!({"a": {"type": "string"}, "b": {"type": "integer"}}), &["a", "b"]);
        let c = changes(&old, &new, Contract::ReadBack);
        assert_eq!(whats(&c), ["field `b` added as required (breaking)"]);
        assert_eq!(needed(&c), Bump::Major);
        // A report's reader only meets a new field: additive even when always present.
        assert_eq!(needed(&changes(&old, &new, Contract::Output)), Bump::Minor);
    }

    #[test]
    fn a_field_removed_retyped_or_no_longer_required_breaks() {
        let old = object(json!({"a": {"type": "string"}, "b": {"type": "integer"}}), &["a", "b"]);
        let removed = object(json!({"a": {"type": "string"}}), &["a"]);
        assert_eq!(whats(&changes(&old, &removed, Contract::Output)), ["field `b` removed (breaking)"]);
        let retyped = object(json!({"a": {"type": ["string", "null"]}, "b": {"type": "integer"}}), &["a", "b"]);
        assert_eq!(
            whats(&changes(&old, &retyped, Contract::ReadBack)),
            ["field `a` type changed from string to null or string (breaking)"]
        );
        let optional = object(json!({"a": {"type": "string"}, "b": {"type": "integer"}}), &["a"]);
        assert_eq!(needed(&changes(&old, &optional, Contract::ReadBack)), Bump::Major);
        assert_eq!(needed(&changes(&old, &optional, Contract::Output)), Bump::Major);
        assert_eq!(needed(&changes(&old, &old, Contract::ReadBack)), Bump::None);
    }

    #[test]
    fn changes_are_followed_through_defs_arrays_maps_and_options() {
        let doc = |step: Value, kinds: Value| {
            json!({
                "type": "object",
                "properties": {
                    "drills": {"type": "array", "items": {"$ref": "#/$defs/Drill"}},
                    "by_region": {"type": "object", "additionalProperties": {"anyOf": [{"$ref": "#/$defs/Drill"}, {"type": "null"}]}},
                    "level": {"$ref": "#/$defs/Level"}
                },
                "$defs": {
                    "Drill": {"type": "object", "properties": {"steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}}}},
                    "Step": step,
                    "Level": kinds,
                }
            })
        };
        let old = doc(object(json!({"seconds": {"type": "number"}}), &["seconds"]), json!({"enum": ["deny", "warn"]}));
        let new = doc(
            object(json!({"seconds": {"type": "number"}, "detail": {"type": ["string", "null"]}}), &["seconds"]),
            json!({"oneOf": [{"const": "deny"}, {"const": "warn"}, {"const": "info"}]}),
        );
        // Each definition is compared once, at the first path that reaches it (properties in
        // name order: `by_region` before `drills`).
        assert_eq!(
            whats(&changes(&old, &new, Contract::Output)),
            ["field `by_region.*.steps[].detail` added", "field `level` takes the new value \"info\""]
        );
        assert_eq!(needed(&changes(&old, &new, Contract::ReadBack)), Bump::Major);
        let retyped = doc(object(json!({"seconds": {"type": "integer"}}), &["seconds"]), json!({"enum": ["deny"]}));
        assert_eq!(
            whats(&changes(&old, &retyped, Contract::Output)),
            [
                "field `by_region.*.steps[].seconds` type changed from number to integer (breaking)",
                "field `level` no longer takes \"warn\" (breaking)"
            ]
        );
    }

    fn format(version: &str, schema: Value) -> Format {
        let mut schema = schema;
        schema[VERSION_KEY] = json!(version);
        Format {
            name: "state",
            file: "state.json".into(),
            version: version.into(),
            version_at: "`FORMAT_MINOR` in state/src/schema.rs",
            contract: Contract::ReadBack,
            schema,
        }
    }

    #[test]
    fn a_change_needs_its_bump_and_a_larger_one_will_do() {
        let old = format("3.0", object(json!({"a": {"type": "string"}}), &["a"]));
        let committed = old.text();
        let added = object(json!({"a": {"type": "string"}, "b": {"type": "string"}}), &["a"]);
        let err = check(&format("3.0", added.clone()), &committed).unwrap_err();
        assert!(
            err.starts_with(
                "the state schema changed without a version bump: field `b` added; an additive change raises the \
                 minor version (3.0 → 3.1), a breaking one the major (3.0 → 4.0). Raise `FORMAT_MINOR`"
            ),
            "{err}"
        );
        assert_eq!(check(&format("3.1", added.clone()), &committed).map(|c| c.len()), Ok(1));
        assert!(check(&format("4.0", added), &committed).is_ok());
        let removed = object(json!({}), &[]);
        let err = check(&format("3.1", removed.clone()), &committed).unwrap_err();
        assert!(err.contains("incompatibly with only a minor version bump (3.0 → 3.1): field `a` removed"), "{err}");
        assert!(check(&format("4.0", removed), &committed).is_ok());
        // A description is no change; a version going back is refused whatever changed.
        let described =
            json!({"type": "object", "description": "x", "properties": {"a": {"type": "string"}}, "required": ["a"]});
        assert_eq!(check(&format("3.0", described), &committed), Ok(Vec::new()));
        assert!(check(&format("2.9", old.schema.clone()), &committed).unwrap_err().contains("went back"));
        assert!(check(&old, "not json").is_err());
    }

    #[test]
    fn the_text_is_ordered_whatever_the_map_order() {
        let f = format(
            "1.0",
            json!({"$defs": {"B": {}, "A": {}}, "type": "object", "title": "t", "properties": {"type": {"type": "string", "description": "d"}}, "$schema": "s"}),
        );
        assert_eq!(
            f.text(),
            "{\n  \"$schema\": \"s\",\n  \"title\": \"t\",\n  \"x-drplan-format-version\": \"1.0\",\n  \"type\": \"object\",\n  \
             \"properties\": {\n    \"type\": {\n      \"description\": \"d\",\n      \"type\": \"string\"\n    }\n  },\n  \
             \"$defs\": {\n    \"A\": {},\n    \"B\": {}\n  }\n}\n"
        );
    }

    #[test]
    fn every_core_format_is_versioned_and_named_once() {
        let formats = core_formats();
        let files: BTreeSet<&str> = formats.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(files.len(), formats.len());
        for f in &formats {
            assert!(parse_version(&f.version).is_some(), "{}: {}", f.name, f.version);
            assert_eq!(f.schema[VERSION_KEY], json!(f.version));
        }
    }
}
