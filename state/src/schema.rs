//! The state file, format 3.0: what drplan recorded at its last apply. Its reference is the
//! JSON Schema `docs/schemas/state.json`, generated from these types and held to them (and
//! to the version rule below) by a test.
//!
//! The version is `format_version` (the major, an integer as older drplans read it) and
//! `format_minor`. A new optional field raises the minor: drplans of the same major read the
//! file, and write back the fields they do not know as they found them. A breaking change
//! (a field removed, retyped or newly required, a meaning changed) raises the major: older
//! drplans refuse the file ([`crate::StateError::TooNew`]) rather than misread it.

use std::collections::BTreeMap;

use drplan_core::config::Role;
use drplan_core::formats::{Contract, Format};
use drplan_core::plan::resource::{Kind, Resource, Value};
use drplan_core::plan::{Lost, Observed, Prior};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The major version: raised by a breaking change, which older drplans refuse. Version 2
/// added `lost`, version 3 `drills` and objects of type `restore`; older files read as having
/// none and are written back in this version.
pub const FORMAT_VERSION: u32 = 3;

/// The minor version: raised by an additive change (a new optional field), which drplans of
/// the same major read, keeping what they do not know. 3.3 added `switchover.id` and objects
/// of type `thaw` and `hook`; 3.4 `incidents`, objects of type `evidence`, `quarantine`,
/// `cordon` and `deny_all`, and `history` (the failovers with their downtime).
pub const FORMAT_MINOR: u32 = 4;

/// Fields a drplan does not know, from a file of a newer minor version: kept as read and
/// written back, so that an older drplan's write loses nothing of a newer one's.
pub type Unknown = serde_json::Map<String, serde_json::Value>;

/// The state file's format and schema (`docs/schemas/state.json`).
pub fn format() -> Format {
    Format::of::<StateFile>(
        "state",
        "drplan state file",
        &format!("{FORMAT_VERSION}.{FORMAT_MINOR}"),
        "`FORMAT_MINOR` (additive) or `FORMAT_VERSION` (breaking) in state/src/schema.rs",
        Contract::ReadBack,
    )
}

/// What drplan recorded at its last apply, for the next plan to start from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StateFile {
    /// The format's major version: older drplans refuse a newer one.
    pub format_version: u32,
    /// The format's minor version: drplans of the same major read a newer one. Absent when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub format_minor: u32,
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
    /// A planned failover under way (`drplan_core::watch::Switchover`): watchers observe
    /// only until the apply that carries it out completes. Since 3.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switchover: Option<drplan_core::watch::Switchover>,
    /// What drplan keeps about each database (`drplan_core::plan::data::Record`): when its
    /// writer was last seen, its promotions, and the instances renamed and kept instead of
    /// deleted. Since 3.2.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub databases: BTreeMap<String, drplan_core::plan::data::Record>,
    /// The incidents declared (`drplan_core::incident::Incident`), open and closed, oldest
    /// first: closed ones stay for the audit trail. Since 3.4.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incidents: Vec<drplan_core::incident::Incident>,
    /// The failovers carried out, newest last, with the downtime each took
    /// (`drplan_core::uptime::History`): the newest 100, and how many older ones were
    /// dropped, and how many drills were. Since 3.4.
    #[serde(default, skip_serializing_if = "drplan_core::uptime::History::is_empty")]
    pub history: drplan_core::uptime::History,
    /// What `drplan watch --once` keeps between runs.
    #[serde(default, skip_serializing_if = "is_default")]
    pub watch: drplan_core::watch::Counter,
    /// Fields of a newer minor version, kept and written back.
    #[serde(flatten)]
    pub extra: Unknown,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_default(c: &drplan_core::watch::Counter) -> bool {
    *c == drplan_core::watch::Counter::default()
}

/// A region declared lost by an apply that could not reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LostRegion {
    /// When the apply that declared it lost ran (RFC 3339).
    pub since: String,
    /// The addresses of the actions that apply skipped there: the fence still owed.
    pub owed: Vec<String>,
}

/// One managed object: its address, type, region, cloud id and attributes when last applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StateObject {
    pub address: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub region: Option<String>,
    pub id: String,
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Fields of a newer minor version, kept and written back.
    #[serde(flatten)]
    pub extra: Unknown,
}

impl StateFile {
    /// A first, empty state with a fresh lineage.
    pub fn new(project: &str, drplan_version: &str) -> StateFile {
        StateFile {
            format_version: FORMAT_VERSION,
            format_minor: FORMAT_MINOR,
            lineage: uuid::Uuid::new_v4().to_string(),
            serial: 0,
            drplan_version: drplan_version.to_string(),
            project: project.to_string(),
            roles: BTreeMap::new(),
            objects: Vec::new(),
            lost: BTreeMap::new(),
            drills: Vec::new(),
            override_: None,
            switchover: None,
            databases: BTreeMap::new(),
            incidents: Vec::new(),
            history: Default::default(),
            watch: Default::default(),
            extra: Unknown::new(),
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
        Ok(Prior {
            objects,
            roles,
            lost,
            drills: self.drills.clone(),
            override_: self.override_.clone(),
            switchover: self.switchover.clone(),
            databases: self.databases.clone(),
            incidents: self.incidents.clone(),
            history: self.history.clone(),
        })
    }

    /// Records `prior` as this state's content (objects in address order). The fields of a
    /// newer minor version that this drplan does not know are kept: the file's own, and an
    /// object's while it is the same object (same address and id); a replaced object's
    /// describe the one it replaced, and go with it.
    pub fn set_content(&mut self, prior: &Prior) {
        let mut unknown: BTreeMap<(String, String), Unknown> = std::mem::take(&mut self.objects)
            .into_iter()
            .filter(|o| !o.extra.is_empty())
            .map(|o| ((o.address, o.id), o.extra))
            .collect();
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
                extra: unknown.remove(&(o.resource.address.clone(), o.id.clone())).unwrap_or_default(),
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
        self.switchover = prior.switchover.clone();
        self.databases = prior.databases.clone();
        self.incidents = prior.incidents.clone();
        self.history = prior.history.clone();
        // Written in this drplan's format, whatever version it was read in; a newer minor
        // version stays, as its fields do.
        let newer_minor = self.format_version == FORMAT_VERSION && self.format_minor > FORMAT_MINOR;
        if !newer_minor {
            self.format_minor = FORMAT_MINOR;
        }
        self.format_version = FORMAT_VERSION;
    }
}
