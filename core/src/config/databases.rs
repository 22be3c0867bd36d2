//! The data tier's configuration: top-level `database` blocks, each region's member of
//! them, and the rules that span both (a writer in the active region, no member in a cold
//! one, a kind that fits the region's cloud and the engine, `max_lag` within the RPO).

use super::build::Builder;
use super::duration::Duration;
use super::model::*;
use super::tree::{Node, Val, Value, block_title, list};
use crate::diagnostics::{Code, Diagnostic};
use crate::suggest::closest;

/// How long a planned failover waits for a replica to catch up, unless told.
pub const DEFAULT_CATCH_UP_TIMEOUT: u64 = 300;

impl Builder<'_> {
    /// A region's `database` blocks: each names exactly one kind, fitting the region.
    pub(super) fn members(&mut self, r: &Node, cloud: Option<Cloud>) -> Option<Vec<Member>> {
        let mut out = Vec::new();
        let mut ok = true;
        for m in r.children("database") {
            let Some((name, _)) = m.label() else {
                ok = false;
                continue;
            };
            let given: Vec<(MemberKind, &str, &Value)> =
                MemberKind::ALL.into_iter().filter_map(|k| m.str(k.as_str()).map(|(s, v)| (k, s, v))).collect();
            let kinds = list(MemberKind::ALL.iter().map(|k| k.as_str()));
            match given.as_slice() {
                [] => {
                    // A kind written with the wrong type is reported already.
                    if !MemberKind::ALL.iter().any(|k| m.has(k.as_str())) {
                        self.diags.push(
                            Diagnostic::error(Code::DatabaseKind, "database member without a kind")
                                .label(
                                    m.ident_span.clone(),
                                    format!("{} says nothing of how the region holds it", block_title(m)),
                                )
                                .help(format!(
                                    "give exactly one of {kinds}, such as `rds_instance = \"{name}-{}\"`",
                                    r.label().map_or("", |l| l.0.as_str())
                                )),
                        );
                    }
                    ok = false;
                }
                [(kind, identifier, v)] => {
                    let fits = match kind {
                        MemberKind::RdsInstance | MemberKind::AuroraCluster => cloud != Some(Cloud::Gcp),
                        MemberKind::CloudNativePg => true,
                    };
                    if !fits {
                        self.diags.push(
                            Diagnostic::error(Code::DatabaseKind, "database kind does not fit the cloud")
                                .label(v.span.clone(), format!("`{}` is an AWS service, and `{}` is a GCP region", kind.as_str(), r.label().map_or("", |l| l.0.as_str())))
                                .help("in a GCP region, run the database in the region's cluster: `cloudnativepg = \"NAME\"`"),
                        );
                        ok = false;
                    } else if *kind == MemberKind::CloudNativePg && r.child("kubernetes").is_none() {
                        self.diags.push(
                            Diagnostic::error(Code::DatabaseWithoutCluster, "CloudNativePG without a cluster")
                                .label(
                                    v.span.clone(),
                                    "a CloudNativePG Cluster lives in the region's Kubernetes namespace",
                                )
                                .label(r.ident_span.clone(), format!("{} has no `kubernetes` block", block_title(r)))
                                .help("add `kubernetes { context = \"...\", namespace = \"...\" }` to the region"),
                        );
                        ok = false;
                    } else if identifier.is_empty() {
                        self.diags.push(
                            Diagnostic::error(Code::InvalidValue, "invalid value")
                                .label(v.span.clone(), "an empty identifier names nothing")
                                .help(
                                    "write the identifier of the region's instance, cluster or CloudNativePG Cluster",
                                ),
                        );
                        ok = false;
                    } else {
                        out.push(Member { database: name.clone(), kind: *kind, identifier: identifier.to_string() });
                    }
                }
                [(first, _, v1), (second, _, v2), ..] => {
                    self.diags.push(
                        Diagnostic::error(Code::DatabaseKind, "database member with two kinds")
                            .label(v2.span.clone(), format!("`{}` here", second.as_str()))
                            .label(v1.span.clone(), format!("and `{}` here", first.as_str()))
                            .help(format!("a region holds its member one way: keep one of {kinds}")),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// The top-level `database` blocks, with the rules that span them and the regions.
    pub(super) fn databases(
        &mut self,
        root: &Node,
        rpo: Option<Duration>,
        rpo_value: Option<&Value>,
    ) -> Option<Vec<Database>> {
        let components: Vec<&str> =
            root.children("component").filter_map(|c| c.label().map(|l| l.0.as_str())).collect();
        let mut out = Vec::new();
        let mut ok = true;
        for d in root.children("database") {
            let name = d.label().map(|l| l.0.clone());
            let engine = self.keyword(d, "engine", Engine::parse, Engine::NAMES);
            let mut writers = Vec::new();
            if let Some(Value { val: Val::List(items), .. }) = d.get("writers") {
                for item in items {
                    let Some(w) = item.as_str() else { continue };
                    if components.contains(&w) {
                        writers.push(w.to_string());
                        continue;
                    }
                    let mut diag = Diagnostic::error(Code::UnknownComponent, "unknown component")
                        .label(item.span.clone(), format!("no component is named `{w}`"));
                    diag = match closest(w, components.iter().copied()) {
                        Some(s) => diag.help(format!("did you mean `{s}`?")),
                        None if components.is_empty() => {
                            diag.help("`writers` names `component` blocks; this configuration declares none")
                        }
                        None => diag.help(format!("declared components: {}", list(components.iter().copied()))),
                    };
                    self.diags.push(diag);
                    ok = false;
                }
            }
            let max_lag = match d.get("max_lag") {
                Some(_) => match self.duration(d, "max_lag") {
                    Some(lag) => {
                        if let (Some(rpo), Some(rpo_value), Some((_, v))) = (rpo, rpo_value, d.str("max_lag"))
                            && lag > rpo
                        {
                            self.diags.push(
                                Diagnostic::error(Code::LagExceedsRpo, "max_lag exceeds the RPO")
                                    .label(v.span.clone(), format!("a promotion could lose {lag}"))
                                    .label(rpo_value.span.clone(), format!("but the RPO is {rpo}"))
                                    .help(format!("lower `max_lag` to {rpo} or less, or leave it out to use the RPO")),
                            );
                            ok = false;
                        }
                        Some(lag)
                    }
                    None => {
                        ok = false;
                        None
                    }
                },
                None => rpo,
            };
            let catch_up_timeout = match d.get("catch_up_timeout") {
                Some(_) => self.duration(d, "catch_up_timeout"),
                None => Some(Duration::from_secs(DEFAULT_CATCH_UP_TIMEOUT)),
            };
            match (name, engine, catch_up_timeout) {
                (Some(name), Some(engine), Some(catch_up_timeout)) => {
                    out.push(Database { name, engine, writers, max_lag, catch_up_timeout })
                }
                _ => ok = false,
            }
        }
        ok &= self.members_fit(root, &out);
        ok.then_some(out)
    }

    /// Each region member names a declared database, in a region that can hold one, of a
    /// kind its engine has, the same kind in every region; and the active region holds each.
    fn members_fit(&mut self, root: &Node, databases: &[Database]) -> bool {
        let mut ok = true;
        let declared: Vec<&str> = databases.iter().map(|d| d.name.as_str()).collect();
        let declared_all: Vec<&str> =
            root.children("database").filter_map(|d| d.label().map(|l| l.0.as_str())).collect();
        // (database, kind, where the first member of that database names its kind)
        let mut first_kind: Vec<(String, MemberKind, crate::source::Span, String)> = Vec::new();
        for r in root.children("region") {
            let region = r.label().map_or("", |l| l.0.as_str());
            let role = r.str("role").map(|(s, v)| (s, v.span.clone()));
            for m in r.children("database") {
                let Some((name, name_span)) = m.label() else { continue };
                if !declared_all.contains(&name.as_str()) {
                    let mut diag = Diagnostic::error(Code::UnknownDatabase, "unknown database")
                        .label(name_span.clone(), format!("no top-level `database \"{name}\"` is declared"));
                    diag = match closest(name, declared_all.iter().copied()) {
                        Some(s) => diag.help(format!("did you mean `{s}`?")),
                        None => diag.help(format!("declare it at the top level: `database \"{name}\" {{ engine = \"postgres\", writers = [...] }}`")),
                    };
                    self.diags.push(diag);
                    ok = false;
                    continue;
                }
                if let Some((role_name, role_span)) = role.as_ref().filter(|(s, _)| *s == "cold") {
                    self.diags.push(
                        Diagnostic::error(Code::DatabaseInColdRegion, "database member in a cold region")
                            .label(m.ident_span.clone(), format!("`{region}` holds a member of `{name}`"))
                            .label(role_span.clone(), format!("but the region is {role_name}"))
                            .help("a cold site gets its data by restore when promoted (a backup's `restore` block); make the region \"standby\" to keep a live replica there, or remove this block"),
                    );
                    ok = false;
                }
                let Some(engine) = databases.iter().find(|d| d.name == *name).map(|d| d.engine) else { continue };
                let given =
                    MemberKind::ALL.into_iter().find_map(|k| m.str(k.as_str()).map(|(_, v)| (k, v.span.clone())));
                let Some((kind, span)) = given else { continue };
                let refusal = match (kind, engine) {
                    (MemberKind::AuroraCluster, Engine::Postgres) => Some(
                        "Aurora PostgreSQL has no cross-region replica clusters outside a global database, which drplan does not manage yet; use `rds_instance` read replicas",
                    ),
                    (MemberKind::AuroraCluster, Engine::Mariadb) => {
                        Some("Aurora has no MariaDB engine; use `rds_instance`")
                    }
                    (MemberKind::RdsInstance | MemberKind::AuroraCluster, Engine::Mongodb) => {
                        Some("RDS and Aurora do not run MongoDB")
                    }
                    (MemberKind::CloudNativePg, e) if e != Engine::Postgres => {
                        Some("CloudNativePG runs PostgreSQL only")
                    }
                    _ => None,
                };
                if let Some(why) = refusal {
                    self.diags.push(
                        Diagnostic::error(Code::DatabaseKind, "database kind does not fit the engine")
                            .label(span.clone(), format!("`{}` cannot hold a {engine} database", kind.as_str()))
                            .help(why),
                    );
                    ok = false;
                }
                match first_kind.iter().find(|(d, ..)| d == name) {
                    Some((_, k, at, other)) if *k != kind => {
                        self.diags.push(
                            Diagnostic::error(Code::DatabaseKind, "database regions mix kinds")
                                .label(span.clone(), format!("`{region}` holds `{name}` as `{}`", kind.as_str()))
                                .label(at.clone(), format!("`{other}` holds it as `{}`", k.as_str()))
                                .help("a replica replicates from a writer of its own kind: declare every region's member of one database the same way"),
                        );
                        ok = false;
                    }
                    Some(_) => {}
                    None => first_kind.push((name.clone(), kind, span, region.to_string())),
                }
            }
        }
        if !self.complete {
            return ok;
        }
        let active = root.children("region").find(|r| r.str("role").is_some_and(|(s, _)| s == "active"));
        if let Some(active) = active {
            for d in root.children("database").filter(|d| d.label().is_some_and(|l| declared.contains(&l.0.as_str()))) {
                let Some((name, span)) = d.label() else { continue };
                if active.children("database").any(|m| m.label().is_some_and(|l| l.0 == *name)) {
                    continue;
                }
                let region = active.label().map_or("", |l| l.0.as_str());
                // A region promoted from cold gets its data by restore: the database is then
                // left alone until a member is declared there.
                let restored = root.children("backup").find(|b| b.child("restore").is_some());
                match restored.and_then(|b| b.label()) {
                    Some((backup, _)) => self.diags.push(
                        Diagnostic::warning(Code::DatabaseWithoutWriter, "database without a writer")
                            .label(span.clone(), format!("`{name}` has no member in the active region"))
                            .label(active.ident_span.clone(), format!("`{region}` is active"))
                            .help(format!("its data comes from restoring backup `{backup}`; drplan leaves `{name}`'s members alone until `{region}` declares one: add `database \"{name}\" {{ ... }}` to region `{region}`")),
                    ),
                    None => {
                        self.diags.push(
                            Diagnostic::error(Code::DatabaseWithoutWriter, "database without a writer")
                                .label(span.clone(), format!("`{name}` has no member in the active region"))
                                .label(active.ident_span.clone(), format!("`{region}` is active"))
                                .help(format!("the active region holds the writer: add `database \"{name}\" {{ rds_instance = \"...\" }}` to region `{region}`")),
                        );
                        ok = false;
                    }
                }
            }
        }
        ok
    }
}
