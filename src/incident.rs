//! Declaring, listing and closing incidents: locked state edits ([`engine::edit_state`])
//! that change no cloud object. The next plan isolates the region, or lifts the isolation
//! (`drplan_core::plan::incident`).

use std::path::Path;
use std::time::Duration;

use drplan_core::config::Config;
use drplan_core::incident::{self, Incident};
use drplan_core::plan::Kind;
use drplan_core::{Code, Diagnostic};

use crate::engine::{self, Edit, Failed};
use crate::load;

/// The configuration at `path`, or its diagnostics with the files they point into.
pub fn configuration(path: &Path) -> Result<Config, Failed> {
    let loaded = load::configuration(path);
    loaded.config.ok_or(Failed { diagnostics: loaded.diagnostics, sources: loaded.sources })
}

/// The state backend of the configuration at `path`.
fn backend(path: &Path, config: &Config) -> Result<Box<dyn drplan_state::Backend>, Failed> {
    Ok(load::state_backend(config, &engine::configuration_dir(path), false)?)
}

/// Records a new open incident on `region` since `since` (seconds since the epoch, already
/// checked not to be in the future). Refused when one is already open there.
pub fn declare(
    path: &Path,
    config: &Config,
    region: &str,
    since: i64,
    reason: &str,
    isolate_serving: bool,
    lock_timeout: Duration,
) -> Result<Incident, Failed> {
    let backend = backend(path, config)?;
    engine::edit_state(backend.as_ref(), "incident declare", lock_timeout, "the incident", |state| {
        let state = state.get_or_insert_with(|| engine::empty_state(config));
        if let Some(open) = incident::open_in(&state.incidents, region) {
            return Err(Failed::from(
                Diagnostic::error(Code::IncidentInput, format!("incident {} is already open on {region}", open.id))
                    .help(format!("one incident per region: `drplan incident list` shows it; close it first with `drplan incident close {}`", open.id)),
            ));
        }
        let declared = Incident {
            id: incident::next_id(&state.incidents),
            region: region.to_string(),
            since: drplan_core::recovery::rfc3339(since),
            reason: reason.to_string(),
            declared_by: crate::clock::who(),
            declared_at: crate::clock::now_rfc3339(),
            isolate_serving,
            closed_at: None,
            closed_by: None,
            keep_instances: false,
            evidence: Vec::new(),
        };
        state.incidents.push(declared.clone());
        Ok(Edit::Changed(declared))
    })
}

/// Every incident state records, oldest first (no lock: read-only).
pub fn list(path: &Path, config: &Config) -> Result<Vec<Incident>, Failed> {
    let backend = backend(path, config)?;
    let (state, _) = engine::read_state(backend.as_ref(), &mut |_| {})?;
    Ok(state.map(|s| s.incidents).unwrap_or_default())
}

/// Closes incident `id`: its record stays, with the evidence drplan took listed in it. A
/// compromised host does not go back into service as it is: refused unless the region's
/// instances are being replaced (a pool's `image` differs from the one they run) or
/// `keep_instances`.
pub fn close(
    path: &Path,
    config: &Config,
    id: &str,
    keep_instances: bool,
    lock_timeout: Duration,
) -> Result<Incident, Failed> {
    let backend = backend(path, config)?;
    engine::edit_state(backend.as_ref(), "incident close", lock_timeout, "the closed incident", |state| {
        let known: Vec<String> = state.iter().flat_map(|s| s.incidents.iter().map(|i| i.id.clone())).collect();
        let Some(state) = state.as_mut().filter(|s| s.incidents.iter().any(|i| i.id == id)) else {
            let list = match known.is_empty() {
                true => "no incident is recorded".to_string(),
                false => format!("recorded: {}", known.join(", ")),
            };
            return Err(Failed::from(
                Diagnostic::error(Code::UnknownIncident, format!("no incident is named `{id}`"))
                    .help(format!("{list}; `drplan incident list` shows them")),
            ));
        };
        let objects = &state.objects;
        let Some(record) = state.incidents.iter_mut().find(|i| i.id == id) else { unreachable!("checked above") };
        if !record.is_open() {
            return Err(Failed::from(
                Diagnostic::error(
                    Code::IncidentInput,
                    format!("incident {id} was already closed at {}", record.closed_at.as_deref().unwrap_or_default()),
                )
                .help("its record stays in state for the audit trail; nothing is left to close"),
            ));
        }
        // The images the region's instances run, against those its pools now declare.
        let declared: Vec<&str> = config
            .region(&record.region)
            .map(|r| r.compute.iter().map(|p| p.image.as_str()).collect())
            .unwrap_or_default();
        let running: Vec<&str> = objects
            .iter()
            .filter(|o| o.kind == Kind::Instance.as_str() && o.region.as_deref() == Some(record.region.as_str()))
            .filter_map(|o| o.attributes.get("image").and_then(|v| v.as_str()))
            .collect();
        let replaced = !running.is_empty() && running.iter().any(|i| !declared.contains(i));
        if !replaced && !keep_instances {
            return Err(Failed::from(
                Diagnostic::error(Code::IncidentInput, format!("the instances of {} would go back into service as they are", record.region))
                    .help(format!("a compromised host is replaced, not trusted again: give the region's compute pools a new `image` and close it then (the next apply replaces them and lifts the isolation), or keep them with `drplan incident close {id} --keep-instances`")),
            ));
        }
        record.evidence = objects
            .iter()
            .filter(|o| o.kind == Kind::Evidence.as_str())
            .filter(|o| o.attributes.get("incident").and_then(|v| v.as_str()) == Some(id))
            .flat_map(|o| {
                ["snapshots", "copies"].into_iter().filter_map(|k| o.attributes.get(k).and_then(|v| v.as_str()))
            })
            .flat_map(|list| list.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>())
            .collect();
        record.closed_at = Some(crate::clock::now_rfc3339());
        record.closed_by = Some(crate::clock::who());
        record.keep_instances = keep_instances;
        Ok(Edit::Changed(record.clone()))
    })
}

/// Checks `--region` against the configuration: the region's name, or an error with the
/// closest name and the list.
pub fn known_region(config: &Config, region: &str) -> Result<(), Diagnostic> {
    if config.region(region).is_some() {
        return Ok(());
    }
    let names = config.regions.iter().map(|r| r.name.as_str());
    let hint = drplan_core::suggest::closest(region, names.clone())
        .map(|s| format!("did you mean `{s}`? "))
        .unwrap_or_default();
    let all: Vec<&str> = names.collect();
    Err(Diagnostic::error(Code::UnknownRegion, format!("no region is named `{region}`"))
        .help(format!("{hint}regions of this configuration: {}", all.join(", "))))
}
