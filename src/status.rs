//! What `drplan status` reads, without the state lock and without writing anything: the
//! configuration, the state, one bulk refresh (the engine's, recovery points included) and
//! one `GetHealthCheckStatus` per region that has a health check. Core's
//! [`drplan_core::status::report`] makes the report of it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use drplan_core::config::Config;
use drplan_core::plan::resource::address;
use drplan_core::plan::{Prior, Snapshot};
use drplan_core::status::{Checkers, Inputs};
use drplan_core::{Diagnostic, Diagnostics, SourceFile};

use crate::engine::{Event, Failed, configuration_dir, read_state, refresh_with};
use crate::load;

/// Everything the status report is made from.
pub struct StatusInput {
    pub config: Config,
    pub sources: Vec<SourceFile>,
    pub prior: Prior,
    pub snapshot: Snapshot,
    /// Each region's health check read, by region.
    pub health: BTreeMap<String, Result<Checkers, String>>,
    /// Seconds since the epoch: when the clouds were read.
    pub now: i64,
}

impl StatusInput {
    /// The pure report's inputs.
    pub fn inputs(&self) -> Inputs<'_> {
        Inputs {
            config: &self.config,
            prior: &self.prior,
            snapshot: &self.snapshot,
            health: &self.health,
            now: self.now,
        }
    }
}

/// Loads the configuration at `path`, reads the state (no lock), refreshes once and reads
/// each region's health check status. `now` is the time recovery points are aged from.
pub fn status(path: &Path, now: i64, observe: &mut dyn FnMut(Event<'_>)) -> Result<StatusInput, Failed> {
    let loaded = load::configuration(path);
    observe(Event::Loaded { sources: &loaded.sources, diagnostics: &loaded.diagnostics });
    let Some(config) = loaded.config else { return Err(Failed::new(Diagnostics::default())) };
    let backend = load::state_backend(&config, &configuration_dir(path), false)?;
    let (_, prior) = read_state(backend.as_ref(), observe)?;
    let runtime = crate::runtime::shared()?;
    let started = Instant::now();
    observe(Event::Refreshing);
    let (snapshot, health) = runtime.block_on(async {
        let clouds = crate::clouds::Clouds::connect(&config).await?;
        let suspect = drplan_core::incident::suspect_windows(&prior.incidents);
        let snapshot = refresh_with(&clouds, &config, now, None, &suspect).await?;
        let health = region_health(&clouds, &config, &snapshot).await;
        Ok::<_, Diagnostic>((snapshot, health))
    })?;
    observe(Event::Refreshed { objects: snapshot.objects.len(), elapsed: started.elapsed() });
    Ok(StatusInput { config, sources: loaded.sources, prior, snapshot, health, now })
}

/// Each region's health check read once, by region: the one reader of a region's health
/// (`status`, the watcher through it, and a drill's check of the active region), judged by
/// [`Checkers::healthy`], Route 53's rule. Regions without a health check are absent; all
/// reads go at once (Route 53's pace spaces them).
pub async fn region_health(
    clouds: &crate::clouds::Clouds,
    config: &Config,
    snapshot: &Snapshot,
) -> BTreeMap<String, Result<Checkers, String>> {
    let reads = config.regions.iter().filter_map(|r| {
        let id = snapshot.objects.get(&address::health_check(&r.name))?.id.clone();
        Some(async move { (r.name.clone(), clouds.health_check_status(&id).await) })
    });
    futures_util::future::join_all(reads).await.into_iter().collect()
}

/// The team's policies evaluated on the plan of the configuration as it is, against this
/// read's snapshot: the readiness checklist's "policies passing". `None` when they could
/// not be evaluated (the checklist then says so).
pub fn policies(input: &StatusInput, path: &Path) -> Option<Vec<drplan_core::policy::PolicyResult>> {
    let options = drplan_core::plan::Options { now: Some(input.now), ..Default::default() };
    let plan = drplan_core::plan::plan(&input.config, &input.prior, Some(&input.snapshot), &options).ok()?;
    let origin = drplan_core::plan::doc::Origin {
        drplan_version: env!("CARGO_PKG_VERSION").to_string(),
        configuration_hash: crate::engine::configuration_hash(&input.sources),
        prior_state: None,
    };
    let doc = drplan_core::plan::doc::PlanDoc::new(&plan, origin, false);
    let policy = crate::engine::Policy::resolve(&input.config, path, &crate::engine::PolicyRequest::default());
    policy.evaluate(&doc).ok()
}

/// The readiness checklist of this read, its policies evaluated: what `drplan status` and
/// `drplan doc` show.
pub fn checklist(
    input: &StatusInput,
    report: &drplan_core::status::Report,
    path: &Path,
) -> Vec<drplan_core::document::Check> {
    drplan_core::document::checklist(&input.inputs(), report, policies(input, path).as_deref())
}

/// The status read of a plan: its configuration, state and refresh, with each region's
/// health check read now. `None` for a plan made without a refresh.
pub fn of_plan(planned: &crate::engine::Planned, now: i64) -> Result<Option<StatusInput>, Failed> {
    let Some(snapshot) = planned.live.clone() else { return Ok(None) };
    let runtime = crate::runtime::shared()?;
    let health = runtime.block_on(async {
        let clouds = crate::clouds::Clouds::connect(&planned.config).await?;
        Ok::<_, Diagnostic>(region_health(&clouds, &planned.config, &snapshot).await)
    })?;
    Ok(Some(StatusInput {
        config: planned.config.clone(),
        sources: planned.sources.clone(),
        prior: planned.prior.clone(),
        snapshot,
        health,
        now,
    }))
}
