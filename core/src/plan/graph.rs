//! The action graph: the DAG apply executes exactly, built from the ordering rules that
//! make a failover safe (scale the new serving region up, pass its health gate, move DNS,
//! then scale the old one down and move the backup schedule).

use std::collections::{BTreeMap, BTreeSet};

use super::diff::{Action, Change};
use super::resource::{Kind, address};

/// One step of the plan: a change, or the health gate in front of a DNS move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub step: Step,
    /// Ids of the nodes that must finish first.
    pub depends_on: BTreeSet<String>,
    /// Why apply will not run it (its region is unreachable, or something it needs is).
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Index into the plan's changes.
    Change(usize),
    /// Wait until the region's Route 53 health check reports healthy.
    HealthGate { region: String, health_check: String },
}

pub fn gate_id(region: &str) -> String {
    format!("gate.health.{region}")
}

/// Whether a change adds serving capacity (before DNS) or removes it (after DNS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

fn direction(c: &Change) -> Direction {
    let int = |a: &Option<super::resource::Attrs>, k: &str| a.as_ref().and_then(|a| a.get(k)).cloned();
    match (c.kind, c.action) {
        (_, Action::Delete) => Direction::Down,
        (Kind::Workload, _) => match (int(&c.before, "replicas"), int(&c.after, "replicas")) {
            (Some(b), Some(a)) if a < b => Direction::Down,
            _ => Direction::Up,
        },
        (Kind::BackupJob, _) => {
            let suspended =
                c.after.as_ref().and_then(|a| a.get("suspend")) == Some(&super::resource::Value::Bool(true));
            if suspended { Direction::Down } else { Direction::Up }
        }
        _ => Direction::Up,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the plan's actions depend on each other in a cycle: {}", cycle.join(" → "))]
pub struct CycleError {
    pub cycle: Vec<String>,
}

/// Builds the graph in a deterministic topological order.
pub fn build(changes: &[Change], unreachable: &BTreeMap<String, String>) -> Result<Vec<Node>, CycleError> {
    let mut nodes: BTreeMap<String, Node> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                c.address.clone(),
                Node { id: c.address.clone(), step: Step::Change(i), depends_on: BTreeSet::new(), skipped: None },
            )
        })
        .collect();
    let ids = |pred: &dyn Fn(&Change) -> bool| -> Vec<String> {
        changes.iter().filter(|c| pred(c)).map(|c| c.address.clone()).collect()
    };
    let mut edges: Vec<(String, String)> = Vec::new(); // (before, after)
    let mut add = |before: &[String], after: &[String]| {
        for b in before {
            for a in after {
                if a != b {
                    edges.push((b.clone(), a.clone()));
                }
            }
        }
    };

    let regions: BTreeSet<&str> = changes.iter().filter_map(|c| c.region.as_deref()).collect();
    // Within a region: machines before the workloads that need them, and workloads off
    // the machines before those go.
    for r in &regions {
        let in_r = |c: &Change| c.region.as_deref() == Some(*r);
        let compute_up = ids(&|c| in_r(c) && c.kind == Kind::Instance && direction(c) == Direction::Up);
        let compute_down = ids(&|c| in_r(c) && c.kind == Kind::Instance && direction(c) == Direction::Down);
        let work_up = ids(&|c| in_r(c) && c.kind == Kind::Workload && direction(c) == Direction::Up);
        let work_down = ids(&|c| in_r(c) && c.kind == Kind::Workload && direction(c) == Direction::Down);
        add(&compute_up, &work_up);
        add(&work_down, &compute_down);
    }

    let is_dns_move = |c: &Change| c.kind == Kind::DnsRecord && c.action != Action::Delete && c.action != Action::Adopt;
    let dns_moves = ids(&|c| is_dns_move(c));
    let all_dns = ids(&|c| c.kind == Kind::DnsRecord);
    for c in changes.iter().filter(|c| is_dns_move(c)) {
        let Some(after) = &c.after else { continue };
        let serves = match after.get("serves") {
            Some(super::resource::Value::Str(s)) => s.clone(),
            _ => continue,
        };
        let up_in_region = ids(&|o| {
            o.region.as_deref() == Some(serves.as_str()) && direction(o) == Direction::Up && o.kind != Kind::BackupJob
        });
        let check = address::health_check(&serves);
        let check_change = ids(&|o| o.address == check && o.action != Action::Delete);
        let primary = after.get("failover") == Some(&super::resource::Value::Str("PRIMARY".into()));
        if primary {
            // The serving region must be up and healthy before traffic moves to it.
            let gate = gate_id(&serves);
            nodes.entry(gate.clone()).or_insert_with(|| Node {
                id: gate.clone(),
                step: Step::HealthGate { region: serves.clone(), health_check: check.clone() },
                depends_on: BTreeSet::new(),
                skipped: None,
            });
            add(&up_in_region, std::slice::from_ref(&gate));
            add(&check_change, std::slice::from_ref(&gate));
            add(&[gate], std::slice::from_ref(&c.address));
        } else {
            add(&up_in_region, std::slice::from_ref(&c.address));
            add(&check_change, std::slice::from_ref(&c.address));
        }
    }
    // PRIMARY moves first: SECONDARY then points at the region that just stopped serving,
    // never at the one that serves.
    let is_failover = |c: &Change, which: &str| {
        c.after.as_ref().and_then(|a| a.get("failover")) == Some(&super::resource::Value::Str(which.into()))
    };
    let primary_moves = ids(&|c| is_dns_move(c) && is_failover(c, "PRIMARY"));
    let secondary_moves = ids(&|c| is_dns_move(c) && is_failover(c, "SECONDARY"));
    add(&primary_moves, &secondary_moves);
    // Only once DNS has moved: capacity comes down and the backup schedule moves, the old
    // schedule suspended before the new one runs, so two never write at once.
    let down = ids(&|c| direction(c) == Direction::Down && c.kind != Kind::Bucket && c.kind != Kind::HealthCheck);
    add(&dns_moves, &down);
    let jobs_down = ids(&|c| c.kind == Kind::BackupJob && direction(c) == Direction::Down);
    let jobs_up = ids(&|c| c.kind == Kind::BackupJob && direction(c) == Direction::Up);
    let buckets_up = ids(&|c| c.kind == Kind::Bucket && c.action != Action::Delete);
    add(&jobs_down, &jobs_up);
    add(&dns_moves, &jobs_up);
    add(&buckets_up, &jobs_up);
    // Health checks go only when no record points at them any more.
    let checks_gone = ids(&|c| c.kind == Kind::HealthCheck && c.action == Action::Delete);
    add(&all_dns, &checks_gone);
    // A bucket goes last, after its replacement exists and the jobs stopped writing to it.
    let buckets_gone = ids(&|c| c.kind == Kind::Bucket && c.action == Action::Delete);
    let jobs = ids(&|c| c.kind == Kind::BackupJob);
    add(&buckets_up, &buckets_gone);
    add(&jobs, &buckets_gone);

    for (before, after) in edges {
        if let Some(n) = nodes.get_mut(&after) {
            n.depends_on.insert(before);
        }
    }
    let ordered = topological(&nodes)?;
    let mut out: Vec<Node> =
        ordered.into_iter().map(|id| nodes.remove(&id).expect("ordered ids come from the map")).collect();

    // Unreachable regions: their actions are skipped. Once the user declares such a region
    // lost (--allow-unreachable), its skipped actions are moot and the rest goes on, except
    // behind a skipped health gate: traffic never moves to a region that cannot prove it
    // is healthy.
    let mut blocked: BTreeSet<String> = BTreeSet::new();
    for n in &mut out {
        let own = match &n.step {
            Step::Change(i) => changes[*i]
                .region
                .as_ref()
                .and_then(|r| unreachable.get(r).map(|why| format!("region {r} is unreachable: {why}"))),
            Step::HealthGate { region, .. } => {
                unreachable.get(region).map(|why| format!("region {region} is unreachable: {why}"))
            }
        };
        let inherited =
            n.depends_on.iter().find(|d| blocked.contains(*d)).map(|d| format!("waits on {d}, which cannot pass"));
        let is_gate = matches!(n.step, Step::HealthGate { .. });
        if inherited.is_some() || (is_gate && own.is_some()) {
            blocked.insert(n.id.clone());
        }
        n.skipped = own.or(inherited);
    }
    Ok(out)
}

/// Kahn's algorithm with ties broken by a fixed rank and then id, so the same plan always
/// lists its actions in the same order.
fn topological(nodes: &BTreeMap<String, Node>) -> Result<Vec<String>, CycleError> {
    let rank = |n: &Node| match n.step {
        Step::HealthGate { .. } => 0,
        Step::Change(_) => 1,
    };
    let mut remaining: BTreeMap<&str, usize> = nodes
        .iter()
        .map(|(id, n)| (id.as_str(), n.depends_on.iter().filter(|d| nodes.contains_key(*d)).count()))
        .collect();
    let mut dependents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, n) in nodes {
        for d in &n.depends_on {
            dependents.entry(d.as_str()).or_default().push(id.as_str());
        }
    }
    let mut ready: BTreeSet<(usize, &str)> =
        remaining.iter().filter(|(_, c)| **c == 0).map(|(id, _)| (rank(&nodes[*id]), *id)).collect();
    let mut out = Vec::with_capacity(nodes.len());
    while let Some(next) = ready.pop_first() {
        out.push(next.1.to_string());
        for dep in dependents.get(next.1).into_iter().flatten() {
            let count = remaining.get_mut(dep).expect("every dependent is a node");
            *count -= 1;
            if *count == 0 {
                ready.insert((rank(&nodes[*dep]), dep));
            }
        }
    }
    if out.len() == nodes.len() {
        return Ok(out);
    }
    Err(CycleError { cycle: find_cycle(nodes, &out) })
}

fn find_cycle(nodes: &BTreeMap<String, Node>, done: &[String]) -> Vec<String> {
    let done: BTreeSet<&str> = done.iter().map(String::as_str).collect();
    let Some(start) = nodes.keys().find(|k| !done.contains(k.as_str())) else { return Vec::new() };
    // Walk dependencies among the unfinished nodes until one repeats.
    let mut path: Vec<&str> = vec![start];
    loop {
        let current = *path.last().expect("path is never empty");
        let Some(next) =
            nodes[current].depends_on.iter().map(String::as_str).find(|d| !done.contains(d) && nodes.contains_key(*d))
        else {
            return path.iter().map(|s| s.to_string()).collect();
        };
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<String> = path[pos..].iter().rev().map(|s| s.to_string()).collect();
            cycle.push(cycle[0].clone());
            return cycle;
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, deps: &[&str]) -> (String, Node) {
        (
            id.to_string(),
            Node {
                id: id.into(),
                step: Step::Change(0),
                depends_on: deps.iter().map(|d| d.to_string()).collect(),
                skipped: None,
            },
        )
    }

    #[test]
    fn cycles_are_reported_with_their_members() {
        let nodes: BTreeMap<String, Node> =
            [node("a", &["c"]), node("b", &["a"]), node("c", &["b"]), node("d", &[])].into_iter().collect();
        let err = topological(&nodes).unwrap_err();
        assert_eq!(err.cycle.len(), 4, "{err}");
        assert_eq!(err.cycle.first(), err.cycle.last());
        assert!(err.to_string().contains("a") && err.to_string().contains("→"));
    }

    #[test]
    fn order_is_topological_and_deterministic() {
        let nodes: BTreeMap<String, Node> =
            [node("z", &[]), node("y", &["z"]), node("a", &["y"]), node("b", &[])].into_iter().collect();
        assert_eq!(topological(&nodes).unwrap(), vec!["b", "z", "y", "a"]);
    }
}
