//! The provider test kit: what every provider's tests and the CLI tests set up the same way.
//!
//! [`Topology`] builds configuration fixtures (HCL text, or a loaded [`Config`]);
//! [`converge`] is the engine's plan → apply → refresh loop against any [`Provider`];
//! [`Overlay`] puts one provider in front of another, so a provider that manages only some
//! kinds is tested inside plans of their real shape; [`AttrsExt`] reads typed attributes
//! off plans and snapshots. Tests only: this crate is never published.

mod topology;

pub use topology::{Backup, Counts, Failover, Region, Topology};

use drplan_core::SourceFile;
use drplan_core::config::{self, Config};
use drplan_core::plan::resource::{Kind, Value};
use drplan_core::plan::{Attrs, Change, Observed, Options, Plan, Prior, Resource, Snapshot, Step, desired};
use drplan_core::provider::{ApplyRequest, Provider, ProviderError, RefreshRequest, cloud_of};

/// Every change of the plan, for [`converge`]'s `limit`.
pub const ALL: usize = usize::MAX;

/// Loads one file of configuration text, panicking with the diagnostics when it does not.
pub fn load(text: &str) -> Config {
    let loaded = config::load(&[SourceFile::new("main.hcl", text.to_owned())], &|_| None);
    loaded.config.unwrap_or_else(|| panic!("the fixture does not load: {:#?}", loaded.diagnostics))
}

/// The regions of `config`, by name, as a refresh asks for them.
pub fn regions(config: &Config) -> Vec<String> {
    config.regions.iter().map(|r| r.name.clone()).collect()
}

/// The first desired object of `kind` (in a region, when given): the one a test acts on.
pub fn desired_of(config: &Config, kind: Kind, region: Option<&str>) -> Resource {
    desired::desired(config)
        .into_iter()
        .find(|r| r.kind == kind && region.is_none_or(|want| r.region.as_deref() == Some(want)))
        .unwrap_or_else(|| panic!("the configuration desires no {kind} (region {region:?})"))
}

/// The desired object at `address`.
pub fn desired_at(config: &Config, address: &str) -> Resource {
    desired::desired(config)
        .into_iter()
        .find(|r| r.address == address)
        .unwrap_or_else(|| panic!("the configuration desires nothing at {address}"))
}

/// A change of `r` as the planner would send it, with `r`'s attributes after it.
pub fn change(r: &Resource, action: drplan_core::plan::Action) -> Change {
    Change {
        address: r.address.clone(),
        kind: r.kind,
        region: r.region.clone(),
        action,
        before: None,
        after: Some(r.attrs.clone()),
        id: None,
        replace_paths: Vec::new(),
    }
}

/// The prior state of a run that applied `config` and left everything as desired: each
/// object under the id `id-ADDRESS`, each region in its role.
pub fn converged_prior(config: &Config) -> Prior {
    Prior {
        objects: desired::desired(config)
            .into_iter()
            .map(|r| (r.address.clone(), Observed { id: format!("id-{}", r.address), resource: r }))
            .collect(),
        roles: config.regions.iter().map(|r| (r.name.clone(), r.role)).collect(),
        ..Prior::default()
    }
}

/// Reads every region of `config` through `provider`.
pub async fn refresh<P: Provider>(provider: &P, config: &Config) -> Snapshot {
    let regions = regions(config);
    let want = desired::desired(config);
    provider
        .refresh(&RefreshRequest { project: &config.project, regions: &regions, desired: &want })
        .await
        .unwrap_or_else(|e| panic!("{}: refresh failed: {e}", provider.name()))
}

/// Refreshes, then plans against what was read.
pub async fn plan<P: Provider>(provider: &P, config: &Config, prior: &Prior) -> Plan {
    let live = refresh(provider, config).await;
    drplan_core::plan::plan(config, prior, Some(&live), &Options::default()).expect("the fixture plans")
}

/// The engine's loop without the CLI: refresh, plan, check that apply would accept the
/// plan, then run the first `limit` of the changes that `provider` manages in the graph's
/// order through the executor `drplan apply` runs (`drplan_exec`; health gates pass: the
/// clouds' checkers are not what these tests are about), recording each result in `prior`
/// as state would. When every change ran, the regions' roles are recorded too. Returns the
/// plan.
pub async fn converge<P: Provider>(
    provider: &P,
    config: &Config,
    prior: &mut Prior,
    plan_id: &str,
    limit: usize,
) -> Plan {
    let plan = plan(provider, config, prior).await;
    assert!(plan.can_apply(false), "{:#?}", plan.safety);
    apply_plan(provider, config, prior, plan, plan_id, limit).await
}

/// What the kit's runs record: the objects, as state would.
struct KitRecorder<'a> {
    prior: &'a mut Prior,
}

impl drplan_exec::Recorder for KitRecorder<'_> {
    fn record(&mut self, change: &Change, object: Option<Observed>) {
        match object {
            Some(o) => self.prior.objects.insert(change.address.clone(), o),
            None => self.prior.objects.remove(&change.address),
        };
    }

    fn save(&mut self) -> Result<(), drplan_exec::StepError> {
        Ok(())
    }
}

/// The second half of [`converge`], without its safety check: runs `plan` (made by
/// [`plan`]) through `provider`. For a fixture that gives one provider's regions all the
/// capacity and leaves another cloud's region serving nothing, which apply would refuse
/// but which tests of that one provider need.
pub async fn apply_plan<P: Provider>(
    provider: &P,
    config: &Config,
    prior: &mut Prior,
    plan: Plan,
    plan_id: &str,
    limit: usize,
) -> Plan {
    use drplan_core::plan::doc::{Origin, PlanDoc};
    let origin = Origin { drplan_version: "kit".into(), configuration_hash: plan_id.into(), prior_state: None };
    let mut doc = PlanDoc::new(&plan, origin, false);
    // The changes `provider` manages, the first `limit` of them in the graph's order, and the
    // gates between them; what another provider would perform is left out of this run.
    let mut keep = std::collections::BTreeSet::new();
    let (mut taken, mut cut_short) = (0, false);
    for node in &plan.graph {
        match node.step {
            Step::Change(i) => {
                let change = &plan.changes[i];
                if !provider.manages(change.kind, cloud_of(change)) {
                    continue;
                }
                if taken == limit {
                    cut_short = true;
                    break;
                }
                taken += 1;
                keep.insert(node.id.clone());
            }
            Step::HealthGate { .. } | Step::Barrier { .. } => {
                keep.insert(node.id.clone());
            }
        }
    }
    doc.actions.retain(|a| keep.contains(&a.id));
    for a in &mut doc.actions {
        a.depends_on.retain(|d| keep.contains(d));
    }
    let settings = drplan_exec::Settings {
        project: config.project.clone(),
        plan_id: plan_id.to_string(),
        parallelism: 1,
        skip_health_gate: true,
        rollout_timeout: std::time::Duration::from_secs(60),
        fence: None,
    };
    let mut recorder = KitRecorder { prior };
    let never = std::sync::atomic::AtomicBool::new(false);
    let summary = drplan_exec::execute(&doc, provider, &drplan_exec::NoGate, &settings, &mut recorder, &never, |_| {})
        .await
        .unwrap_or_else(|e| panic!("the plan cannot be executed: {e}"));
    assert!(summary.failed.is_empty(), "{}: {:#?}", provider.name(), summary.failed);
    for a in &plan.forget {
        prior.objects.remove(a);
    }
    if !cut_short {
        prior.roles = config.regions.iter().map(|r| (r.name.clone(), r.role)).collect();
    }
    plan
}

/// A new plan finds nothing to do and no drift.
pub async fn assert_converged<P: Provider>(provider: &P, config: &Config, prior: &Prior) {
    let plan = plan(provider, config, prior).await;
    assert!(!plan.has_changes(), "left over: {:#?}", plan.changes);
    assert!(plan.drift.is_empty(), "drift: {:#?}", plan.drift);
}

/// `first` for the kinds it manages, `rest` for everything else: a provider under test
/// with the fake standing in for the clouds behind the other kinds.
pub struct Overlay<'a, A, B> {
    pub first: &'a A,
    pub rest: &'a B,
}

impl<A: Provider, B: Provider> Provider for Overlay<'_, A, B> {
    fn name(&self) -> &str {
        self.first.name()
    }

    fn manages(&self, kind: Kind, cloud: Option<&str>) -> bool {
        self.first.manages(kind, cloud) || self.rest.manages(kind, cloud)
    }

    async fn refresh(&self, request: &RefreshRequest<'_>) -> Result<Snapshot, ProviderError> {
        let mut live = self.first.refresh(request).await?;
        let other = self.rest.refresh(request).await?;
        live.objects.extend(other.objects);
        live.unreachable.extend(other.unreachable);
        live.unreachable_objects.extend(other.unreachable_objects);
        live.newest_backup_age.extend(other.newest_backup_age);
        live.points.extend(other.points);
        Ok(live)
    }

    async fn apply(&self, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
        if self.first.manages(request.change.kind, cloud_of(request.change)) {
            self.first.apply(request).await
        } else {
            self.rest.apply(request).await
        }
    }
}

/// Typed reads of attribute maps (a change's `before`/`after`, an object's attributes),
/// as [`Resource::str`] and its siblings read a resource's.
pub trait AttrsExt {
    fn str(&self, name: &str) -> Option<&str>;
    fn int(&self, name: &str) -> Option<i64>;
    fn bool(&self, name: &str) -> Option<bool>;
}

impl AttrsExt for Attrs {
    fn str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    fn int(&self, name: &str) -> Option<i64> {
        match self.get(name) {
            Some(Value::Int(i)) => Some(*i),
            _ => None,
        }
    }

    fn bool(&self, name: &str) -> Option<bool> {
        match self.get(name) {
            Some(Value::Bool(b)) => Some(*b),
            _ => None,
        }
    }
}

impl AttrsExt for Option<Attrs> {
    fn str(&self, name: &str) -> Option<&str> {
        self.as_ref().and_then(|a| a.str(name))
    }

    fn int(&self, name: &str) -> Option<i64> {
        self.as_ref().and_then(|a| a.int(name))
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.as_ref().and_then(|a| a.bool(name))
    }
}
