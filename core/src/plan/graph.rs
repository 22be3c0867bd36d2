//! The action graph: the DAG apply executes exactly, built from the ordering rules that
//! make a failover safe (scale the new serving region up, pass its health gate, move DNS,
//! then scale the old one down and move the backup schedule). The rules are written against
//! the step table's phases and layers (`step.rs`), never against kinds.

use std::collections::{BTreeMap, BTreeSet};

use super::diff::{Action, Change};
use super::resource::{Natural, Value, address};
use super::step::{
    DataStep, Direction, HookPoint, Layer, Phase, direction, hook_point, is_promotion, retires_writer, stops_on_failure,
};

/// One step of the plan: a change, or the health gate in front of a DNS move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub step: Step,
    /// Positions (in the graph's order, all earlier than this node) of what must finish
    /// first, ascending. Indices, not names: a large failover has millions of edges.
    pub depends_on: Vec<usize>,
    /// Why apply will not run it (its region is unreachable, or a gate it needs cannot pass).
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Index into the plan's changes.
    Change(usize),
    /// Wait until the region's Route 53 health check reports healthy.
    HealthGate { region: String, health_check: String },
    /// Nothing to do: marks that the serving region has scaled up, so capacity elsewhere
    /// comes down only after it (the ordering a DNS move gives when there is one).
    Barrier { region: String },
}

pub fn barrier_id(region: &str) -> String {
    format!("barrier.scaled-up.{region}")
}

pub fn gate_id(region: &str) -> String {
    format!("gate.health.{region}")
}

fn failover_of(c: &Change) -> Option<&str> {
    match c.after.as_ref()?.get("failover")? {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

fn serves(c: &Change) -> Option<&str> {
    match c.after.as_ref()?.get("serves")? {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the plan's actions depend on each other in a cycle: {}", cycle.join(" → "))]
pub struct CycleError {
    pub cycle: Vec<String>,
}

/// Nodes under construction: changes first (same index as in `changes`), then gates.
struct Builder<'a> {
    changes: &'a [Change],
    ids: Vec<String>,
    steps: Vec<Step>,
    deps: Vec<Vec<u32>>,
}

impl Builder<'_> {
    fn select(&self, pred: impl Fn(&Change) -> bool) -> Vec<u32> {
        self.changes.iter().enumerate().filter(|(_, c)| pred(c)).map(|(i, _)| i as u32).collect()
    }

    /// Every node of `after` waits for every node of `before`.
    fn order(&mut self, before: &[u32], after: &[u32]) {
        for a in after {
            self.deps[*a as usize].extend(before.iter().filter(|b| *b != a));
        }
    }

    fn gate(&mut self, region: &str) -> u32 {
        let id = gate_id(region);
        if let Some(i) = self.ids[self.changes.len()..].iter().position(|g| *g == id) {
            return (self.changes.len() + i) as u32;
        }
        self.ids.push(id);
        self.steps.push(Step::HealthGate { region: region.to_string(), health_check: address::health_check(region) });
        self.deps.push(Vec::new());
        (self.ids.len() - 1) as u32
    }
}

/// What the ordering rules need beyond the changes themselves.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The region that is active once the plan is applied.
    pub serving: Option<&'a str>,
    /// Regions whose cloud or cluster cannot be reached, with the reason.
    pub unreachable: &'a BTreeMap<String, String>,
    /// Objects outside a region's cloud that cannot be reached (by address), with the reason.
    pub unreachable_objects: &'a BTreeMap<String, String>,
    /// Regions declared lost that are back and still owed their fence: there, everything
    /// that takes capacity down or stops a schedule runs before anything else.
    pub fenced: &'a BTreeSet<String>,
    /// Components that write to a database: where the writer moves, they start only once
    /// it is promoted, and they are not what the target brings up before writes stop.
    pub writers: &'a BTreeSet<String>,
}

static NOTHING: BTreeMap<String, String> = BTreeMap::new();
static NO_REGIONS: BTreeSet<String> = BTreeSet::new();

impl<'a> Context<'a> {
    /// Everything reachable, nothing owed.
    pub fn serving(serving: Option<&'a str>) -> Context<'a> {
        Context {
            serving,
            unreachable: &NOTHING,
            unreachable_objects: &NOTHING,
            fenced: &NO_REGIONS,
            writers: &NO_REGIONS,
        }
    }
}

/// Builds the graph in a deterministic topological order.
pub fn build(changes: &[Change], cx: Context<'_>) -> Result<Vec<Node>, CycleError> {
    let Context { serving, unreachable, unreachable_objects, fenced, writers } = cx;
    let mut b = Builder {
        changes,
        ids: changes.iter().map(|c| c.address.clone()).collect(),
        steps: (0..changes.len()).map(Step::Change).collect(),
        deps: vec![Vec::new(); changes.len()],
    };

    let regions: BTreeSet<&str> = changes.iter().filter_map(|c| c.region.as_deref()).collect();
    // Within a region, its stack layer by layer: machines before the data restored onto
    // them, both before the workloads that serve from them; going down, the reverse.
    let phase = |c: &Change| c.kind.spec().phase;
    let layer = |c: &Change| match phase(c) {
        Phase::Stack(l) => Some(l),
        _ => None,
    };
    let data_step = |c: &Change| match phase(c) {
        Phase::Data(s) => Some(s),
        _ => None,
    };
    let is_hook = |c: &Change| phase(c) == Phase::Hook;
    let layers = [Layer::Machines, Layer::Data, Layer::Workloads];
    for r in &regions {
        let in_r = |c: &Change| c.region.as_deref() == Some(*r);
        for (i, upper) in layers.iter().enumerate() {
            for lower in &layers[..i] {
                let lower_up = b.select(|c| in_r(c) && layer(c) == Some(*lower) && direction(c) == Direction::Up);
                let upper_up = b.select(|c| in_r(c) && layer(c) == Some(*upper) && direction(c) == Direction::Up);
                b.order(&lower_up, &upper_up);
                let upper_down = b.select(|c| in_r(c) && layer(c) == Some(*upper) && direction(c) == Direction::Down);
                let lower_down = b.select(|c| in_r(c) && layer(c) == Some(*lower) && direction(c) == Direction::Down);
                b.order(&upper_down, &lower_down);
            }
        }
        // An archived point is thawed before the restore that reads it; the machines come up
        // meanwhile.
        let thaws = b.select(|c| in_r(c) && phase(c) == Phase::Retrieve);
        let data_up = b.select(|c| in_r(c) && layer(c) == Some(Layer::Data) && direction(c) == Direction::Up);
        b.order(&thaws, &data_up);
        // A region back from being lost is fenced before anything else happens there, so
        // it never serves or runs backups beside the region that took over. Not when it is
        // the one serving again: its capacity then comes up first, as for any promotion.
        // An incident's evidence still comes first (below).
        if fenced.contains(*r) && serving != Some(*r) {
            let plain = |c: &Change| data_step(c).is_none() && !is_hook(c) && phase(c) != Phase::Evidence;
            let fence = b.select(|c| in_r(c) && direction(c) == Direction::Down && plain(c));
            let rest = b.select(|c| in_r(c) && direction(c) == Direction::Up && plain(c));
            b.order(&fence, &rest);
        }
        // An incident's evidence is taken before anything else touches the region; what
        // lifts an isolation waits for the region's new machines.
        let evidence = b.select(|c| in_r(c) && phase(c) == Phase::Evidence && c.action != Action::Delete);
        let touching = b.select(|c| in_r(c) && phase(c) != Phase::Evidence);
        b.order(&evidence, &touching);
        let machines_up = b.select(|c| in_r(c) && layer(c) == Some(Layer::Machines) && direction(c) == Direction::Up);
        let lifted = b.select(|c| in_r(c) && phase(c) == Phase::Isolate && c.action == Action::Delete);
        b.order(&machines_up, &lifted);
        // An instance's quarantine is lifted before it is terminated, not on its way out.
        let machines_down =
            b.select(|c| in_r(c) && layer(c) == Some(Layer::Machines) && direction(c) == Direction::Down);
        b.order(&lifted, &machines_down);
        // An old writer is fenced (renamed, kept) before anything else happens in its region:
        // a writer Deployment starting there must never find it accepting writes.
        let retire = b.select(|c| in_r(c) && retires_writer(c));
        let others = b.select(|c| in_r(c) && data_step(c).is_none() && !is_hook(c) && phase(c) != Phase::Evidence);
        b.order(&retire, &others);
    }

    // A database changing writer, in the order that loses nothing: the target's capacity
    // (but not its writers) up; writes stopped in the old region; the replica caught up;
    // promoted; then the writers start there and the other members follow the new writer.
    let is_writer = |c: &Change| {
        layer(c) == Some(Layer::Workloads)
            && [&c.after, &c.before]
                .iter()
                .find_map(|a| a.as_ref().and_then(|a| a.get("deployment")).and_then(Value::text))
                .is_some_and(|d| writers.contains(d))
    };
    let stops = b.select(|c| data_step(c) == Some(DataStep::StopWrites));
    if let Some(target) = serving {
        let ready_first = b.select(|c| {
            c.region.as_deref() == Some(target) && layer(c).is_some() && direction(c) == Direction::Up && !is_writer(c)
        });
        b.order(&ready_first, &stops);
    }
    let catch_ups = b.select(|c| data_step(c) == Some(DataStep::CatchUp));
    b.order(&stops, &catch_ups);
    let promotions = b.select(is_promotion);
    b.order(&stops, &promotions);
    b.order(&catch_ups, &promotions);
    // A compromised region is isolated before a replica elsewhere becomes the writer: its
    // old writers are cut off rather than stopped (stopping them would destroy evidence).
    // Not when it cannot be reached: its isolation is owed, and waits for it.
    let isolation = b.select(|c| {
        phase(c) == Phase::Isolate
            && c.action != Action::Delete
            && c.region.as_deref().is_none_or(|r| !unreachable.contains_key(r))
    });
    b.order(&isolation, &promotions);
    let followers = b.select(|c| data_step(c) == Some(DataStep::Member) && !is_promotion(c));
    b.order(&promotions, &followers);
    for &p in &promotions {
        let region = changes[p as usize].region.clone();
        let writers_there = b.select(|c| c.region == region && is_writer(c) && direction(c) == Direction::Up);
        b.order(&[p], &writers_there);
        // Without writes stopped (the old writer dark, or compromised), a restore there
        // writes into the new writer: after its promotion, never into a read-only replica.
        if stops.is_empty() {
            let restores_there =
                b.select(|c| c.region == region && layer(c) == Some(Layer::Data) && direction(c) == Direction::Up);
            b.order(&[p], &restores_there);
        }
    }
    let retirements = b.select(retires_writer);

    let is_dns_move =
        |c: &Change| phase(c) == Phase::Traffic && c.action != Action::Delete && c.action != Action::Adopt;
    let dns_moves = b.select(is_dns_move);
    for &m in &dns_moves {
        let c = &changes[m as usize];
        let Some(region) = serves(c) else { continue };
        let up_in_region = b.select(|o| {
            o.region.as_deref() == Some(region)
                && direction(o) == Direction::Up
                && !matches!(phase(o), Phase::Schedule | Phase::Hook)
        });
        let check = address::health_check(region);
        let check_change = b.select(|o| o.address == check && o.action != Action::Delete);
        if failover_of(c) == Some("PRIMARY") {
            // The serving region must be up and healthy before traffic moves to it, and its
            // database the writer, the old writer fenced.
            let gate = b.gate(region);
            b.order(&up_in_region, &[gate]);
            b.order(&check_change, &[gate]);
            b.order(&retirements, &[gate]);
            b.order(&[gate], &[m]);
        } else {
            b.order(&up_in_region, &[m]);
            b.order(&check_change, &[m]);
        }
    }
    // PRIMARY moves first: SECONDARY then points at the region that just stopped serving,
    // never at the one that serves.
    let primary_moves = b.select(|c| is_dns_move(c) && failover_of(c) == Some("PRIMARY"));
    let secondary_moves = b.select(|c| is_dns_move(c) && failover_of(c) == Some("SECONDARY"));
    b.order(&primary_moves, &secondary_moves);
    // Only once DNS has moved: capacity comes down and the backup schedule moves, the old
    // schedule suspended before the new one runs, so two never write at once.
    let down = b.select(|c| {
        direction(c) == Direction::Down
            && !matches!(phase(c), Phase::Storage | Phase::Probe | Phase::Data(_) | Phase::Hook)
    });
    for &m in &dns_moves {
        // A record moving to a region being fenced waits on that region's capacity, which
        // waits on its fence: the fence cannot also wait on the record.
        match serves(&changes[m as usize]).filter(|r| fenced.contains(*r) && serving != Some(*r)) {
            Some(r) => {
                let elsewhere: Vec<u32> =
                    down.iter().copied().filter(|d| changes[*d as usize].region.as_deref() != Some(r)).collect();
                b.order(&[m], &elsewhere);
            }
            None => b.order(&[m], &down),
        }
    }
    // Without a DNS move (no failover DNS managed, or none changing) nothing above keeps the
    // old capacity until the new is up: a barrier node does, in O(n) edges.
    if let (true, Some(region)) = (dns_moves.is_empty(), serving) {
        let up_serving = b.select(|c| {
            c.region.as_deref() == Some(region)
                && layer(c).is_some_and(Layer::is_capacity)
                && direction(c) == Direction::Up
        });
        let down_elsewhere = b.select(|c| {
            c.region.as_deref().is_some_and(|r| r != region)
                && layer(c).is_some_and(Layer::is_capacity)
                && direction(c) == Direction::Down
        });
        if !up_serving.is_empty() && !down_elsewhere.is_empty() {
            b.ids.push(barrier_id(region));
            b.steps.push(Step::Barrier { region: region.to_string() });
            b.deps.push(Vec::new());
            let barrier = (b.ids.len() - 1) as u32;
            b.order(&up_serving, &[barrier]);
            b.order(&[barrier], &down_elsewhere);
            // The backup schedule moves with the serving role, as it does after a DNS move.
            let jobs = b.select(|c| phase(c) == Phase::Schedule);
            b.order(&[barrier], &jobs);
        }
    }
    let jobs_down = b.select(|c| phase(c) == Phase::Schedule && direction(c) == Direction::Down);
    let jobs_up = b.select(|c| phase(c) == Phase::Schedule && direction(c) == Direction::Up);
    let buckets_up = b.select(|c| phase(c) == Phase::Storage && c.action != Action::Delete);
    b.order(&jobs_down, &jobs_up);
    // The schedule starts in a restored region only once its data is back: a backup of an
    // empty database would become the newest recovery point.
    let restores = b.select(|c| layer(c) == Some(Layer::Data));
    b.order(&restores, &jobs_up);
    b.order(&dns_moves, &jobs_up);
    b.order(&buckets_up, &jobs_up);
    // Health checks go only when no record points at them any more.
    let all_dns = b.select(|c| phase(c) == Phase::Traffic);
    let checks_gone = b.select(|c| phase(c) == Phase::Probe && c.action == Action::Delete);
    b.order(&all_dns, &checks_gone);
    // A bucket goes last, after its replacement exists and the jobs stopped writing to it.
    let buckets_gone = b.select(|c| phase(c) == Phase::Storage && c.action == Action::Delete);
    let jobs = b.select(|c| phase(c) == Phase::Schedule);
    b.order(&buckets_up, &buckets_gone);
    b.order(&jobs, &buckets_gone);

    // The team's hooks, each at its point of the failover from `old` to `target` (its own
    // attributes say which regions those are).
    let text = |c: &Change, k: &str| c.after.as_ref().and_then(|a| a.get(k)).and_then(Value::text).map(str::to_string);
    let primary_and_gates: Vec<u32> =
        primary_moves.iter().copied().chain(changes.len() as u32..b.ids.len() as u32).collect();
    for (i, c) in changes.iter().enumerate() {
        let Some(point) = hook_point(c) else { continue };
        let h = [i as u32];
        let (target, old) = (text(c, "target"), text(c, "old"));
        let in_t = |o: &Change| target.is_some() && o.region == target && !is_hook(o);
        let in_o = |o: &Change| old.is_some() && o.region == old && !is_hook(o);
        let old_down = |o: &Change| {
            in_o(o) && direction(o) == Direction::Down && (layer(o).is_some() || phase(o) == Phase::Schedule)
        };
        // Where traffic has moved: after the PRIMARY record's move, or, with none in this
        // plan (no failover DNS, or the record moved already), once the target is up and
        // its gates and barrier passed.
        let served: Vec<u32> = if primary_moves.is_empty() {
            let up = b.select(|o| {
                in_t(o)
                    && direction(o) == Direction::Up
                    && (layer(o).is_some() || phase(o) == Phase::Retrieve || is_promotion(o))
            });
            up.into_iter().chain(changes.len() as u32..b.ids.len() as u32).collect()
        } else {
            primary_moves.clone()
        };
        match point {
            // Before anything: every other change, gate and barrier waits for it.
            HookPoint::BeforeFailover => {
                let rest = b.select(|o| hook_point(o) != Some(HookPoint::BeforeFailover));
                b.order(&h, &rest);
                let nodes: Vec<u32> = (changes.len() as u32..b.ids.len() as u32).collect();
                b.order(&h, &nodes);
            }
            HookPoint::AfterRestore => {
                let before = b.select(|o| {
                    in_t(o)
                        && direction(o) == Direction::Up
                        && (matches!(layer(o), Some(Layer::Machines | Layer::Data)) || phase(o) == Phase::Retrieve)
                });
                let after =
                    b.select(|o| in_t(o) && layer(o) == Some(Layer::Workloads) && direction(o) == Direction::Up);
                b.order(&before, &h);
                b.order(&h, &after);
                b.order(&h, &primary_and_gates);
            }
            HookPoint::AfterCapacity => {
                let before = b.select(|o| {
                    in_t(o)
                        && direction(o) == Direction::Up
                        && (layer(o).is_some() || phase(o) == Phase::Retrieve || is_promotion(o))
                });
                b.order(&before, &h);
                b.order(&h, &primary_and_gates);
            }
            HookPoint::AfterTraffic => {
                b.order(&served, &h);
                // A `stop` hook holds the old active's demotion: the way back stays open.
                if stops_on_failure(c) {
                    let demotion = b.select(old_down);
                    b.order(&h, &demotion);
                }
            }
            HookPoint::AfterFence => {
                let fence = b.select(|o| old_down(o) || (in_o(o) && retires_writer(o)));
                b.order(&served, &h);
                b.order(&fence, &h);
            }
        }
    }

    for d in &mut b.deps {
        d.sort_unstable();
        d.dedup();
    }
    let ranks: Vec<u8> = b.steps.iter().map(|s| if matches!(s, Step::Change(_)) { 1 } else { 0 }).collect();
    let order = topological(&b.ids, &ranks, &b.deps)?;

    let mut position = vec![0usize; b.ids.len()];
    for (pos, &i) in order.iter().enumerate() {
        position[i as usize] = pos;
    }
    let mut ids: Vec<Option<String>> = b.ids.into_iter().map(Some).collect();
    let mut steps: Vec<Option<Step>> = b.steps.into_iter().map(Some).collect();
    let mut out: Vec<Node> = order
        .iter()
        .map(|&i| {
            let i = i as usize;
            let mut depends_on: Vec<usize> = b.deps[i].iter().map(|d| position[*d as usize]).collect();
            depends_on.sort_unstable();
            Node {
                id: ids[i].take().unwrap_or_default(),
                step: steps[i].take().unwrap_or(Step::Change(i)),
                depends_on,
                skipped: None,
            }
        })
        .collect();

    // Unreachable regions: their actions are skipped. Once the user declares such a region
    // lost (--allow-unreachable), its skipped actions are moot and the rest goes on, except
    // behind a skipped health gate: traffic never moves to a region that cannot prove it
    // is healthy.
    let mut blocked = vec![false; out.len()];
    for pos in 0..out.len() {
        let n = &out[pos];
        let own = match &n.step {
            Step::Change(i) => changes[*i]
                .region
                .as_ref()
                .and_then(|r| unreachable.get(r).map(|why| format!("region {r} is unreachable: {why}")))
                .or_else(|| {
                    let a = &changes[*i].address;
                    unreachable_objects.get(a).map(|why| format!("{a} is unreachable: {why}"))
                }),
            Step::HealthGate { region, .. } | Step::Barrier { region } => {
                unreachable.get(region).map(|why| format!("region {region} is unreachable: {why}"))
            }
        };
        let inherited =
            n.depends_on.iter().find(|d| blocked[**d]).map(|d| format!("waits on {}, which cannot pass", out[*d].id));
        // A gate that cannot pass blocks what waits on it, and so does a hook that must not
        // fail (`on_failure = "stop"`) and cannot run.
        let blocks = match &n.step {
            Step::Change(i) => phase(&changes[*i]) == Phase::Hook && stops_on_failure(&changes[*i]),
            _ => true,
        };
        blocked[pos] = inherited.is_some() || (blocks && own.is_some());
        out[pos].skipped = own.or(inherited);
    }
    Ok(out)
}

/// Kahn's algorithm with ties broken by rank and then id (in natural order), so the same plan always lists its
/// actions in the same order. Returns node indices in execution order.
fn topological(ids: &[String], ranks: &[u8], deps: &[Vec<u32>]) -> Result<Vec<u32>, CycleError> {
    let n = ids.len();
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<u32>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &before in d {
            dependents[before as usize].push(i as u32);
        }
    }
    let mut ready: BTreeSet<(u8, Natural, u32)> =
        (0..n).filter(|i| remaining[*i] == 0).map(|i| (ranks[i], Natural(ids[i].as_str()), i as u32)).collect();
    let mut out = Vec::with_capacity(n);
    while let Some((_, _, i)) = ready.pop_first() {
        out.push(i);
        for &d in &dependents[i as usize] {
            remaining[d as usize] -= 1;
            if remaining[d as usize] == 0 {
                ready.insert((ranks[d as usize], Natural(ids[d as usize].as_str()), d));
            }
        }
    }
    if out.len() == n {
        return Ok(out);
    }
    Err(CycleError { cycle: find_cycle(ids, deps, &remaining) })
}

/// A cycle among the nodes Kahn's algorithm could not order, as ids, first repeated last.
fn find_cycle(ids: &[String], deps: &[Vec<u32>], remaining: &[usize]) -> Vec<String> {
    let Some(start) = (0..ids.len()).find(|i| remaining[*i] > 0) else { return Vec::new() };
    let mut path: Vec<usize> = vec![start];
    loop {
        let current = *path.last().unwrap_or(&start);
        let Some(&next) = deps[current].iter().find(|d| remaining[**d as usize] > 0) else {
            return path.iter().map(|i| ids[*i].clone()).collect();
        };
        let next = next as usize;
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<String> = path[pos..].iter().rev().map(|i| ids[*i].clone()).collect();
            cycle.push(cycle[0].clone());
            return cycle;
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cycles_are_reported_with_their_members() {
        // a waits on c, b on a, c on b; d stands alone.
        let deps = vec![vec![2], vec![0], vec![1], vec![]];
        let err = topological(&ids(&["a", "b", "c", "d"]), &[1; 4], &deps).unwrap_err();
        assert_eq!(err.cycle.len(), 4, "{err}");
        assert_eq!(err.cycle.first(), err.cycle.last());
        assert!(err.to_string().contains("a") && err.to_string().contains("→"));
    }

    #[test]
    fn order_is_topological_and_deterministic() {
        // z first (no deps), y after z, a after y, b free.
        let names = ids(&["z", "y", "a", "b"]);
        let deps = vec![vec![], vec![0], vec![1], vec![]];
        let order: Vec<&str> =
            topological(&names, &[1; 4], &deps).unwrap().into_iter().map(|i| names[i as usize].as_str()).collect();
        assert_eq!(order, vec!["b", "z", "y", "a"]);
    }
}
