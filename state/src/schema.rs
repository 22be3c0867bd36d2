//! The state file, version 1: what drplan recorded at its last apply.

use std::collections::BTreeMap;

use drplan_core::config::Role;
use drplan_core::plan::resource::{Kind, Resource, Value};
use drplan_core::plan::{Lost, Observed, Prior};
use serde::{Deserialize, Serialize};

/// Bump when a field is added or its meaning changes; older drplans then refuse the file
/// instead of silently dropping what they do not know. Version 2 added `lost`, version 3
/// `drills` and objects of type `restore`; older files read as having none and are written
/// back in this version.
pub const FORMAT_VERSION: u32 = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub format_version: u32,
    /// Identity of this state's history: a plan made against another lineage is refused.
    pub lineage: String,
    /// Incremented on every write.
    pub serial: u64,
    pub drplan_version: String,
    pub project: String,
    /// Each region's role when last applied.
    pub roles: BTreeMap<String, String>,
    /// Managed objects, in address order.
    pub objects: Vec<StateObject>,
    /// Regions declared lost (`--allow-unreachable`) and still owed their fence.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lost: BTreeMap<String, LostRegion>,
    /// The drills run, oldest first: the record `drplan drill` writes (its shape is the drill
    /// report's, `drplan_core::drill::Drill`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drills: Vec<drplan_core::drill::Drill>,
    /// The failover a watcher made (`drplan_core::watch::Override`), until it is accepted.
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_: Option<drplan_core::watch::Override>,
    /// What `drplan watch --once` keeps between runs.
    #[serde(default, skip_serializing_if = "is_default")]
    pub watch: drplan_core::watch::Counter,
}

fn is_default(c: &drplan_core::watch::Counter) -> bool {
    *c == drplan_core::watch::Counter::default()
}

/// A region declared lost by an apply that could not reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostRegion {
    /// When the apply that declared it lost ran (RFC 3339).
    pub since: String,
    /// The addresses of the actions that apply skipped there: the fence still owed.
    pub owed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateObject {
    pub address: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub region: Option<String>,
    pub id: String,
    pub attributes: BTreeMap<String, serde_json::Value>,
}

impl StateFile {
    /// A first, empty state with a fresh lineage.
    pub fn new(project: &str, drplan_version: &str) -> StateFile {
        StateFile {
            format_version: FORMAT_VERSION,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            drplan_version: drplan_version.to_string(),
            project: project.to_string(),
            roles: BTreeMap::new(),
            objects: Vec::new(),
            lost: BTreeMap::new(),
            drills: Vec::new(),
            override_: None,
            watch: Default::default(),
        }
    }

    /// Core's view of this state. Objects of a kind this drplan does not know are an error
    /// rather than silently dropped (they would then be planned as missing).
    pub fn to_prior(&self) -> Result<Prior, String> {
        let mut objects = BTreeMap::new();
        for o in &self.objects {
            let kind =
                Kind::parse(&o.kind).ok_or_else(|| format!("object {} has an unknown type `{}`", o.address, o.kind))?;
            let mut attrs = BTreeMap::new();
            for (k, v) in &o.attributes {
                let v = match v {
                    serde_json::Value::String(s) => Value::Str(s.clone()),
                    serde_json::Value::Bool(b) => Value::Bool(*b),
                    serde_json::Value::Number(n) => {
                        Value::Int(n.as_i64().ok_or_else(|| format!("{}.{k} is not a whole number", o.address))?)
                    }
                    other => return Err(format!("{}.{k} has an unsupported value {other}", o.address)),
                };
                attrs.insert(k.clone(), v);
            }
            let resource = Resource { address: o.address.clone(), kind, region: o.region.clone(), attrs };
            objects.insert(o.address.clone(), Observed { resource, id: o.id.clone() });
        }
        let mut roles = BTreeMap::new();
        for (region, role) in &self.roles {
            roles.insert(
                region.clone(),
                Role::parse(role).ok_or_else(|| format!("region {region} has an unknown role `{role}`"))?,
            );
        }
        let lost =
            self.lost.iter().map(|(r, l)| (r.clone(), Lost { since: l.since.clone(), owed: l.owed.clone() })).collect();
        Ok(Prior { objects, roles, lost, drills: self.drills.clone(), override_: self.override_.clone() })
    }

    /// Records `prior` as this state's content (objects in address order).
    pub fn set_content(&mut self, prior: &Prior) {
        self.objects = prior
            .objects
            .values()
            .map(|o| StateObject {
                address: o.resource.address.clone(),
                kind: o.resource.kind.as_str().to_string(),
                region: o.resource.region.clone(),
                id: o.id.clone(),
                attributes: o
                    .resource
                    .attrs
                    .iter()
                    .map(|(k, v)| (k.clone(), drplan_core::plan::doc::value_to_json(v)))
                    .collect(),
            })
            .collect();
        self.roles = prior.roles.iter().map(|(r, role)| (r.clone(), role.to_string())).collect();
        self.lost = prior
            .lost
            .iter()
            .map(|(r, l)| (r.clone(), LostRegion { since: l.since.clone(), owed: l.owed.clone() }))
            .collect();
        let keep = prior.drills.len().saturating_sub(drplan_core::drill::KEPT);
        self.drills = prior.drills[keep..].to_vec();
        self.override_ = prior.override_.clone();
        // Written in this drplan's format, whatever version it was read in.
        self.format_version = FORMAT_VERSION;
    }
}
