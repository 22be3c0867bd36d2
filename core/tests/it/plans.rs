//! Data-driven plan tests: a configuration, a prior state and a live snapshot in; the human
//! and JSON renderings of the plan out, compared with `expected.txt` / `expected.json`
//! beside each case (`UPDATE_EXPECT=1` rewrites them).
//!
//! A case's `case.json` builds its inputs from configurations rather than spelling every
//! object: state and live start as the resources a configuration converges to, then
//! mutations edit them (an instance terminated by hand, a record edited, a region down).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use drplan_core::SourceFile;
use drplan_core::config::{self, Config, Role};
use drplan_core::plan::doc::{Origin, PlanDoc, StateRef};
use drplan_core::plan::resource::{Kind, Value};
use drplan_core::plan::{self, Observed, Options, Prior, Snapshot, desired};
use drplan_core::render;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// The configuration being planned, relative to `tests/plans`.
    config: String,
    /// State: converged from a configuration, then mutated. Absent: no state yet.
    prior: Option<World>,
    /// Live: `from_prior` copies the (mutated) prior state, or converged from a configuration.
    /// Absent: `--refresh=false`.
    live: Option<World>,
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    allow_unreachable: bool,
    /// Regions the prior state records as declared lost, with the actions owed to them.
    #[serde(default)]
    lost: BTreeMap<String, Vec<String>>,
    /// The planning time (RFC 3339): recovery points' ages are measured from it.
    now: Option<String>,
    /// `--restore-point` (RFC 3339).
    restore_point: Option<String>,
    #[serde(default)]
    accept_data_loss: bool,
    /// Incidents the prior state records (open unless `closed_at`).
    #[serde(default)]
    incidents: Vec<drplan_core::incident::Incident>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct World {
    converged: Option<String>,
    #[serde(default)]
    from_prior: bool,
    #[serde(default)]
    mutations: Vec<Mutation>,
}

#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Mutation {
    Remove {
        address: String,
    },
    Set {
        address: String,
        attr: String,
        value: serde_json::Value,
    },
    /// An object like `like`, under another address (an orphan with drplan's tags).
    Add {
        address: String,
        like: String,
        #[serde(default)]
        attrs: BTreeMap<String, serde_json::Value>,
    },
    Unreachable {
        region: String,
        reason: String,
    },
    /// An object outside a region that cannot be read (a bucket in a lost region).
    UnreachableObject {
        address: String,
        reason: String,
    },
    Age {
        address: String,
        seconds: u64,
    },
    /// The recovery points a backup destination holds (newest first), as discovery judged them.
    Points {
        address: String,
        cloud: String,
        uri: String,
        points: Vec<PointCase>,
        /// The destination's thaw tier (`Expedited`, `Standard`, `Bulk`; default Standard).
        #[serde(default)]
        tier: Option<String>,
    },
    /// A destination whose points could not be listed.
    PointsUnreachable {
        address: String,
        cloud: String,
        reason: String,
    },
    /// An object of any kind at `address` (its region from the address), with these attributes.
    Object {
        address: String,
        kind: String,
        attrs: BTreeMap<String, serde_json::Value>,
    },
    /// A database replica's last lag sample: `seconds` behind (absent: unknown), taken at `at`
    /// (RFC 3339).
    Lag {
        address: String,
        seconds: Option<u64>,
        at: String,
    },
    /// A restore Job found in a region's cluster.
    Job {
        address: String,
        attrs: BTreeMap<String, serde_json::Value>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointCase {
    name: String,
    /// `verified`, `unverified`, `incomplete`, `corrupt`, `not examined`.
    status: String,
    objects: Option<u64>,
    /// The archive class its objects must be thawed from (`GLACIER`), if any.
    #[serde(default)]
    archive: Option<String>,
    /// Written during an open incident, by the storage's times.
    #[serde(default)]
    suspect: bool,
}

fn plans_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/plans")
}

/// `configs.json`: the variants of the bot-core example the cases plan, as edits of it.
#[derive(Deserialize)]
struct Variants {
    base: String,
    variants: BTreeMap<String, Vec<Edit>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Edit {
    /// Replace the first occurrence.
    Replace([String; 2]),
    ReplaceAll([String; 2]),
    /// Remove from the first marker up to (not including) the second.
    Cut([String; 2]),
}

fn variant_text(name: &str) -> String {
    let variants: Variants =
        serde_json::from_str(&std::fs::read_to_string(plans_dir().join("configs.json")).unwrap()).unwrap();
    let mut text = std::fs::read_to_string(plans_dir().join(&variants.base)).unwrap();
    let edits = variants.variants.get(name).unwrap_or_else(|| panic!("configs.json has no variant {name}"));
    for edit in edits {
        let found = |s: &str, text: &str| {
            text.find(s).unwrap_or_else(|| panic!("{name}: `{s}` is not in the example any more"))
        };
        text = match edit {
            Edit::Replace([from, to]) => {
                found(from, &text);
                text.replacen(from.as_str(), to, 1)
            }
            Edit::ReplaceAll([from, to]) => {
                found(from, &text);
                text.replace(from.as_str(), to)
            }
            Edit::Cut([start, end]) => {
                let (i, j) = (found(start, &text), found(end, &text));
                format!("{}{}", &text[..i], &text[j..])
            }
        };
    }
    text
}

fn load(path: &str) -> Config {
    let text = variant_text(path.trim_start_matches("configs/"));
    let loaded = config::load(&[SourceFile::new(path, text)], &|_| None);
    loaded.config.unwrap_or_else(|| panic!("{path} is invalid: {:?}", loaded.diagnostics))
}

fn to_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Int(n.as_i64().expect("whole numbers only")),
        serde_json::Value::String(s) => Value::Str(s.clone()),
        other => panic!("unsupported attribute value {other}"),
    }
}

/// The objects a configuration converges to, with ids derived from their addresses.
fn converged(config: &Config) -> BTreeMap<String, Observed> {
    desired::desired(config)
        .into_iter()
        .map(|r| {
            let id = match r.kind {
                Kind::Instance => format!("i-{:08x}", fnv(&r.address)),
                Kind::HealthCheck => format!("hc-{:08x}", fnv(&r.address)),
                _ => r.address.clone(),
            };
            (r.address.clone(), Observed { resource: r, id })
        })
        .collect()
}

fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

fn mutate(objects: &mut BTreeMap<String, Observed>, snapshot: &mut Snapshot, mutations: &[Mutation]) {
    for m in mutations {
        match m {
            Mutation::Remove { address } => {
                objects.remove(address).unwrap_or_else(|| panic!("remove: no object {address}"));
            }
            Mutation::Set { address, attr, value } => {
                let o = objects.get_mut(address).unwrap_or_else(|| panic!("set: no object {address}"));
                o.resource.attrs.insert(attr.clone(), to_value(value));
            }
            Mutation::Add { address, like, attrs } => {
                let mut o = objects.get(like).unwrap_or_else(|| panic!("add: no object {like}")).clone();
                o.resource.address = address.clone();
                o.id = format!("i-{:08x}", fnv(address));
                for (k, v) in attrs {
                    o.resource.attrs.insert(k.clone(), to_value(v));
                }
                objects.insert(address.clone(), o);
            }
            Mutation::Unreachable { region, reason } => {
                snapshot.unreachable.insert(region.clone(), reason.clone());
            }
            Mutation::UnreachableObject { address, reason } => {
                snapshot.unreachable_objects.insert(address.clone(), reason.clone());
            }
            Mutation::Age { address, seconds } => {
                snapshot.newest_backup_age.insert(address.clone(), *seconds);
            }
            Mutation::Points { address, cloud, uri, points, tier } => {
                use drplan_core::recovery::{Catalog, Point, PointFormat, PointStatus};
                let format = PointFormat::default();
                let points = points
                    .iter()
                    .map(|p| Point {
                        name: p.name.clone(),
                        time: format.time_of(&p.name),
                        status: match p.status.as_str() {
                            "verified" => PointStatus::Verified,
                            "unverified" => PointStatus::Unverified,
                            "incomplete" => PointStatus::Incomplete,
                            "archived" => PointStatus::Archived,
                            "corrupt" => PointStatus::Corrupt("db.dump is 6 bytes, the manifest says 5".into()),
                            _ => PointStatus::NotExamined,
                        },
                        objects: p.objects,
                        bytes: p.objects.map(|n| n * 1_000),
                        archive: p.archive.clone(),
                        suspect: p.suspect,
                        ..Point::default()
                    })
                    .collect();
                let catalog = Catalog {
                    destination: address.clone(),
                    cloud: cloud.clone(),
                    uri: uri.clone(),
                    points,
                    unreachable: None,
                    calls: 1,
                    tier: tier.as_deref().and_then(drplan_core::recovery::Tier::parse).unwrap_or_default(),
                };
                snapshot.points.insert(address.clone(), catalog);
            }
            Mutation::PointsUnreachable { address, cloud, reason } => {
                let catalog = drplan_core::recovery::Catalog {
                    destination: address.clone(),
                    cloud: cloud.clone(),
                    uri: String::new(),
                    points: Vec::new(),
                    unreachable: Some(reason.clone()),
                    calls: 0,
                    tier: Default::default(),
                };
                snapshot.points.insert(address.clone(), catalog);
            }
            Mutation::Object { address, kind, attrs } => {
                let region = address.split('.').nth(1).map(str::to_string);
                let resource = drplan_core::plan::Resource {
                    address: address.clone(),
                    kind: Kind::parse(kind).unwrap_or_else(|| panic!("object: no kind {kind}")),
                    region,
                    attrs: attrs.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
                };
                objects.insert(address.clone(), Observed { resource, id: format!("id/{address}") });
            }
            Mutation::Lag { address, seconds, at } => {
                let at = drplan_core::recovery::parse_rfc3339(at).expect("RFC 3339");
                snapshot.replication.insert(address.clone(), plan::data::Lag { seconds: *seconds, at: Some(at) });
            }
            Mutation::Job { address, attrs } => {
                let region = address.split('.').nth(1).map(str::to_string);
                let resource = drplan_core::plan::Resource {
                    address: address.clone(),
                    kind: Kind::Restore,
                    region,
                    attrs: attrs.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
                };
                objects.insert(address.clone(), Observed { resource, id: format!("job/{address}") });
            }
        }
    }
}

struct Outcome {
    human: String,
    json: String,
    doc: PlanDoc,
}

fn run_case(dir: &Path) -> Outcome {
    let case: Case = serde_json::from_str(&std::fs::read_to_string(dir.join("case.json")).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let config = load(&case.config);
    let mut scratch = Snapshot::default();
    let prior = match &case.prior {
        None => Prior::default(),
        Some(w) => {
            let base = load(w.converged.as_deref().expect("prior needs `converged`"));
            let mut objects = converged(&base);
            mutate(&mut objects, &mut scratch, &w.mutations);
            let roles: BTreeMap<String, Role> = base.regions.iter().map(|r| (r.name.clone(), r.role)).collect();
            let lost = case
                .lost
                .iter()
                .map(|(r, owed)| (r.clone(), plan::Lost { since: "2026-12-01T09:00:00Z".into(), owed: owed.clone() }))
                .collect();
            Prior { objects, roles, lost, incidents: case.incidents.clone(), ..Prior::default() }
        }
    };
    let time =
        |t: &Option<String>| t.as_ref().map(|t| drplan_core::recovery::parse_point_time(t, 0).expect("RFC 3339"));
    let live = case.live.as_ref().map(|w| {
        let mut snapshot = Snapshot::default();
        let mut objects = match (&w.converged, w.from_prior) {
            (Some(c), false) => converged(&load(c)),
            (None, true) => prior.objects.clone(),
            _ => panic!("live needs exactly one of `converged` and `from_prior`"),
        };
        // Every replica read has a fresh lag sample of 0 unless a mutation says otherwise.
        for (address, o) in &objects {
            if o.resource.kind == Kind::Database && o.resource.str("role") == Some("replica") {
                let at = time(&case.now).unwrap_or(1_764_583_200);
                snapshot.replication.insert(address.clone(), plan::data::Lag { seconds: Some(0), at: Some(at) });
            }
        }
        mutate(&mut objects, &mut snapshot, &w.mutations);
        snapshot.objects = objects;
        snapshot
    });
    let options = Options {
        targets: case.targets.clone(),
        now: time(&case.now),
        restore_point: time(&case.restore_point),
        accept_data_loss: case.accept_data_loss,
        ..Options::default()
    };
    let plan = plan::plan(&config, &prior, live.as_ref(), &options).expect("no cycles");
    let origin = Origin {
        drplan_version: "test".into(),
        configuration_hash: "test".into(),
        prior_state: case
            .prior
            .as_ref()
            .map(|_| StateRef { lineage: "00000000-0000-4000-8000-000000000000".into(), serial: 7 }),
    };
    let doc = PlanDoc::new(&plan, origin, case.allow_unreachable);
    Outcome { human: render::human(&doc, false), json: doc.to_json(), doc }
}

fn cases() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(plans_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.json").exists())
        .collect();
    out.sort();
    out
}

fn check(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual);
        failures.push(format!(
            "{} differs (UPDATE_EXPECT=1 accepts):\n{}",
            path.display(),
            diff.unified_diff().context_radius(2)
        ));
    }
}

#[test]
fn plan_cases_render_as_expected() {
    let cases = cases();
    assert!(cases.len() >= 30, "only {} plan cases", cases.len());
    let mut failures = Vec::new();
    for dir in &cases {
        let out = run_case(dir);
        check(&dir.join("expected.txt"), &out.human, &mut failures);
        check(&dir.join("expected.json"), &out.json, &mut failures);
        // The document is the contract: it reads back as what was written.
        let back: PlanDoc = serde_json::from_str(&out.json).expect("plan JSON parses");
        assert_eq!(back, out.doc, "{}", dir.display());
        assert!(render::markdown(&out.doc).len() < render::MARKDOWN_LIMIT);
    }
    assert!(failures.is_empty(), "{} mismatches:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn the_same_inputs_render_byte_identical_output() {
    for dir in cases() {
        let (a, b) = (run_case(&dir), run_case(&dir));
        assert_eq!(a.human, b.human, "{}", dir.display());
        assert_eq!(a.json, b.json, "{}", dir.display());
        assert_eq!(render::markdown(&a.doc), render::markdown(&b.doc), "{}", dir.display());
    }
}

/// Every case asserts something beyond its snapshot: its `asserts.json` (optional) names
/// facts the snapshot must keep, so an accepted regression still fails here.
#[test]
fn case_assertions_hold() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Asserts {
        #[serde(default)]
        applyable: Option<bool>,
        #[serde(default)]
        actions: BTreeMap<String, String>,
        #[serde(default)]
        order: Vec<(String, String)>,
        #[serde(default)]
        safety: Vec<String>,
        #[serde(default)]
        drift: BTreeMap<String, String>,
        #[serde(default)]
        no_changes: bool,
        #[serde(default)]
        rto_ok: Option<bool>,
        #[serde(default)]
        rpo_ok: Option<bool>,
        /// Region → whether its pending fence is carried out by this plan (it is back).
        #[serde(default)]
        fences: BTreeMap<String, bool>,
        #[serde(default)]
        skipped: Vec<String>,
        /// Backup → the destinations the RPO check could not read.
        #[serde(default)]
        unreachable_destinations: BTreeMap<String, Vec<String>>,
        /// Restore address → `DESTINATION POINT` it restores.
        #[serde(default)]
        restores: BTreeMap<String, String>,
    }
    for dir in cases() {
        let Ok(text) = std::fs::read_to_string(dir.join("asserts.json")) else { continue };
        let a: Asserts = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let out = run_case(&dir);
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        if let Some(applyable) = a.applyable {
            assert_eq!(out.doc.applyable, applyable, "{name}: applyable");
        }
        for (address, action) in &a.actions {
            let rc = out
                .doc
                .resource_changes
                .iter()
                .find(|rc| &rc.address == address)
                .unwrap_or_else(|| panic!("{name}: no change for {address}"));
            assert_eq!(&rc.change.actions.join(","), action, "{name}: {address}");
        }
        let position = |id: &str| {
            out.doc.actions.iter().position(|n| n.id == id).unwrap_or_else(|| panic!("{name}: no action {id}"))
        };
        for (first, then) in &a.order {
            assert!(position(first) < position(then), "{name}: {first} must come before {then}");
        }
        let codes: Vec<&str> = out.doc.safety.iter().map(|s| s.code.as_str()).collect();
        for code in &a.safety {
            assert!(codes.contains(&code.as_str()), "{name}: expected safety finding {code}, got {codes:?}");
        }
        if a.safety.is_empty() {
            assert!(codes.is_empty(), "{name}: unexpected safety findings {codes:?}");
        }
        for (address, action) in &a.drift {
            let d = out
                .doc
                .resource_drift
                .iter()
                .find(|d| &d.address == address)
                .unwrap_or_else(|| panic!("{name}: no drift for {address}"));
            assert_eq!(&d.change.actions.join(","), action, "{name}: drift {address}");
        }
        if let Some(ok) = a.rto_ok {
            assert_eq!(out.doc.posture.rto.as_ref().map(|r| r.ok), Some(ok), "{name}: RTO");
        }
        if let Some(ok) = a.rpo_ok {
            assert_eq!(out.doc.posture.rpo.iter().all(|r| r.ok), ok, "{name}: RPO");
        }
        if a.no_changes {
            assert!(!out.doc.has_changes(), "{name}: expected no changes");
        }
        let fences: BTreeMap<String, bool> = out.doc.fences.iter().map(|f| (f.region.clone(), f.reachable)).collect();
        if !a.fences.is_empty() {
            assert_eq!(fences, a.fences, "{name}: fences");
        }
        for id in &a.skipped {
            let node = out.doc.actions.iter().find(|n| &n.id == id).unwrap_or_else(|| panic!("{name}: no action {id}"));
            assert!(node.skipped.is_some(), "{name}: {id} should be skipped");
        }
        let restores: BTreeMap<String, String> =
            out.doc.restores.iter().map(|r| (r.address.clone(), format!("{} {}", r.destination, r.point))).collect();
        if !a.restores.is_empty() {
            assert_eq!(restores, a.restores, "{name}: restores");
        }
        for (backup, want) in &a.unreachable_destinations {
            let r = out.doc.posture.rpo.iter().find(|r| &r.backup == backup).expect("an RPO check per backup");
            assert_eq!(&r.unreachable, want, "{name}: unreachable destinations of {backup}");
        }
    }
}

#[test]
fn markdown_stays_under_the_comment_limit_on_huge_plans() {
    let text = variant_text("bot-core.hcl").replace(
        "count         = { active = 3, standby = 1, cold = 0 }",
        "count         = { active = 3000, standby = 1000, cold = 0 }",
    );
    let config = config::load(&[SourceFile::new("big.hcl", text)], &|_| None).config.expect("valid");
    let plan = plan::plan(&config, &Prior::default(), None, &Options::default()).unwrap();
    let doc = PlanDoc::new(
        &plan,
        Origin { drplan_version: "t".into(), configuration_hash: "t".into(), prior_state: None },
        false,
    );
    let md = render::markdown(&doc);
    assert!(md.len() < render::MARKDOWN_LIMIT, "{} characters", md.len());
    assert!(md.contains("more lines not shown"), "a truncated plan says so");
    assert!(
        md.starts_with("### drplan plan: `bot-core`\n\n**Active region:** `us-east-1` (unchanged)"),
        "{}",
        &md[..200]
    );
}

#[test]
fn changes_read_back_from_the_document_are_the_planned_ones() {
    use drplan_core::plan::doc::value_to_json;
    let json = |a: &Option<drplan_core::plan::Attrs>| {
        a.as_ref().map(|a| a.iter().map(|(k, v)| (k.clone(), value_to_json(v))).collect::<BTreeMap<_, _>>())
    };
    for dir in cases() {
        let out = run_case(&dir);
        let doc: PlanDoc = serde_json::from_str(&out.json).unwrap();
        for rc in &doc.resource_changes {
            let change = rc.to_change().unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            assert_eq!(
                (change.address.as_str(), change.kind.as_str(), &change.region, &change.id),
                (rc.address.as_str(), rc.kind.as_str(), &rc.region, &rc.id)
            );
            assert_eq!(json(&change.before), rc.change.before, "{}", rc.address);
            assert_eq!(json(&change.after), rc.change.after, "{}", rc.address);
            let replace = change.action.as_str() == "replace";
            assert_eq!(replace, rc.change.actions == ["create", "delete"], "{}", rc.address);
        }
    }
}
