//! The semantic pass: the checked tree → the typed model, with every value-level rule
//! (enums, ranges, names, durations, cron) and the rules that span blocks (one active
//! region, providers, failover order, RPO vs schedule, 3-2-1).

use super::cron::Cron;
use super::duration::Duration;
use super::model::*;
use super::tree::{Node, Val, Value, block_title, list};
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::recovery::{Tier, needs_thaw};
use crate::source::Span;
use crate::suggest::closest;

pub(crate) struct Builder<'a> {
    pub diags: &'a mut Diagnostics,
    /// False when a file did not parse: rules about the whole configuration are skipped
    /// then, since the blocks they would count may be in the broken file.
    pub complete: bool,
}

const DURATION_HELP: &str =
    "write a whole number and a unit (s, m, h, d, w), such as \"30s\", \"15m\", \"2h\" or \"30d\"";

impl Builder<'_> {
    pub fn build(&mut self, root: &Node) -> Option<Config> {
        let drplan = root.child("drplan");
        let project = drplan.and_then(|d| self.name(d, "project", NameRule::Project));
        let backend = drplan.map(|d| self.backend(d));
        let objectives = root.child("objectives").map(|o| self.objectives(o)).unwrap_or_default();
        let (mut aws, mut gcp) = (None, None);
        for p in root.children("provider") {
            match p.label().map(|(l, _)| l.as_str()) {
                Some("aws") => {
                    aws =
                        Some(AwsProvider { endpoint: self.api_url(p, "endpoint"), profile: self.opt_str(p, "profile") })
                }
                Some("gcp") => gcp = self.gcp(p),
                _ => {}
            }
        }
        let components: Vec<Option<Component>> =
            root.children("component").enumerate().map(|(i, c)| self.component(c, i)).collect();
        let regions: Vec<Option<Region>> = root.children("region").map(|r| self.region(r, &aws, &gcp)).collect();
        let rpo = root.child("objectives").and_then(|o| o.get("rpo")).filter(|_| objectives.rpo.is_some());
        let backups: Vec<Option<Backup>> =
            root.children("backup").map(|b| self.backup(b, objectives.rpo, rpo)).collect();
        let failover = root.child("failover").map(|f| self.failover(f, root));
        let databases = self.databases(root, objectives.rpo, rpo);
        let hooks = self.hooks(root);
        let contacts = self.contacts(root);

        if self.complete {
            self.active_regions(root, drplan);
        }
        if let Some(Some(f)) = &failover
            && f.dns.is_some()
        {
            for r in root.children("region").filter(|r| !r.has("endpoint")) {
                self.diags.push(
                        Diagnostic::error(Code::MissingEndpoint, "missing endpoint")
                            .label(r.ident_span.clone(), format!("{} has no `endpoint`", block_title(r)))
                            .help("failover DNS points the record at the serving region's endpoint: add `endpoint = \"host.example.com\"`"),
                    );
            }
        }

        self.restore_needs_cluster(&regions, &backups);
        if self.diags.has_errors() {
            return None;
        }
        // Warnings judge the whole model, so they wait until it is free of errors.
        let components_ok: Vec<&Component> = components.iter().flatten().collect();
        for r in regions.iter().flatten() {
            self.standby_capacity(r, &components_ok);
        }
        for b in backups.iter().flatten() {
            self.three_two_one(b, root);
        }
        self.dns_without_health_check(root);
        Some(Config {
            project: project?,
            backend: backend?,
            objectives,
            aws,
            gcp,
            components: components.into_iter().collect::<Option<_>>()?,
            regions: regions.into_iter().collect::<Option<_>>()?,
            backups: backups.into_iter().collect::<Option<_>>()?,
            databases: databases?,
            failover: failover.flatten(),
            policy: drplan.map(policy_paths).unwrap_or_default(),
            hooks: hooks?,
            contacts,
        })
    }

    // --- blocks -------------------------------------------------------------------------

    fn backend(&mut self, drplan: &Node) -> Backend {
        let Some(b) = drplan.child("backend") else {
            return Backend::Local { path: ".drplan/state.json".into() };
        };
        match b.label().map(|(l, _)| l.as_str()) {
            Some("s3") => Backend::S3 {
                bucket: self.bucket(b, "bucket", false).unwrap_or_default(),
                key: self.opt_str(b, "key").unwrap_or_default(),
                region: self.aws_region(b, "region").unwrap_or_default(),
                endpoint: self.api_url(b, "endpoint"),
                replicas: self.replicas(b),
                lock_lease: self.lock_lease(b),
            },
            _ => {
                for r in b.children("replica") {
                    self.diags.push(
                        Diagnostic::error(Code::UnknownBlock, "unknown block")
                            .label(r.ident_span.clone(), "`replica` is not a block of backend \"local\"")
                            .help("copies of the state are S3 buckets in other regions: use `backend \"s3\"` with `replica` blocks"),
                    );
                }
                Backend::Local { path: self.opt_str(b, "path").unwrap_or_else(|| ".drplan/state.json".into()) }
            }
        }
    }

    /// The `replica` blocks of an S3 backend: each a bucket of its own, in a region of its own.
    fn replicas(&mut self, b: &Node) -> Vec<Replica> {
        let mut replicas = Vec::new();
        // Every copy's bucket and region so far, with where each was written, the primary first.
        let mut seen: Vec<(&str, &str, Span)> = ["bucket", "region"]
            .into_iter()
            .filter_map(|attr| b.str(attr).map(|(s, v)| (attr, s, v.span.clone())))
            .collect();
        for r in b.children("replica") {
            let bucket = self.bucket(r, "bucket", false);
            let region = self.aws_region(r, "region");
            for (attr, valid) in [("bucket", bucket.is_some()), ("region", region.is_some())] {
                let Some((name, v)) = r.str(attr).filter(|_| valid) else { continue };
                let first = seen.iter().find(|(a, n, _)| *a == attr && *n == name).map(|(_, _, s)| s.clone());
                seen.push((attr, name, v.span.clone()));
                let Some(first) = first else { continue };
                let d = if attr == "bucket" {
                    Diagnostic::error(Code::DuplicateName, "duplicate name")
                        .label(v.span.clone(), format!("bucket `{name}` already holds a copy of the state"))
                        .label(first, "first used here")
                        .help("each copy of the state needs a bucket of its own, in another region")
                } else {
                    Diagnostic::error(Code::InvalidValue, "invalid value")
                        .label(v.span.clone(), format!("a copy of the state is already in `{name}`"))
                        .label(first, "that copy's region")
                        .help("a copy in the same region is lost with it: put each replica in another region")
                };
                self.diags.push(d);
            }
            if let (Some(bucket), Some(region)) = (bucket, region) {
                replicas.push(Replica { bucket, region });
            }
        }
        replicas
    }

    fn objectives(&mut self, o: &Node) -> Objectives {
        let uptime = o.get("uptime").and_then(|v| match v.val {
            Val::Num(n) if n > 0.0 && n <= 100.0 => Some(n),
            Val::Num(n) => {
                self.diags.push(
                    Diagnostic::error(Code::InvalidPercentage, "invalid percentage")
                        .label(v.span.clone(), format!("{n} is not a percentage above 0 and at most 100"))
                        .help("uptime is a percentage such as 99.9"),
                );
                None
            }
            _ => None,
        });
        let estimates = o
            .child("estimates")
            .map(|e| Estimates {
                instance: self.duration(e, "instance"),
                workload: self.duration(e, "workload"),
                health_check: self.duration(e, "health_check"),
                dns: self.duration(e, "dns"),
                bucket: self.duration(e, "bucket"),
                backup_job: self.duration(e, "backup_job"),
                restore: self.duration(e, "restore"),
                health_gate: self.duration(e, "health_gate"),
                hook: self.duration(e, "hook"),
            })
            .unwrap_or_default();
        Objectives {
            rto: self.duration(o, "rto"),
            rpo: self.duration(o, "rpo"),
            uptime,
            drill_every: self.duration(o, "drill_every"),
            estimates,
        }
    }

    /// The `contact` blocks: free text, each with a way to reach the person.
    fn contacts(&mut self, root: &Node) -> Vec<Contact> {
        let mut out = Vec::new();
        for c in root.children("contact") {
            let Some((name, _)) = c.label() else { continue };
            if !c.has("phone") && !c.has("email") {
                self.diags.push(
                    Diagnostic::error(Code::MissingAttribute, "missing attribute")
                        .label(c.ident_span.clone(), format!("{} gives no way to reach them", block_title(c)))
                        .help(
                            "add `phone = \"...\"` or `email = \"...\"`: the DR plan lists how to reach each contact",
                        ),
                );
            }
            out.push(Contact {
                name: name.clone(),
                role: self.opt_str(c, "role"),
                phone: self.opt_str(c, "phone"),
                email: self.opt_str(c, "email"),
            });
        }
        out
    }

    fn gcp(&mut self, p: &Node) -> Option<GcpProvider> {
        let anonymous = match p.str("credentials") {
            None => false,
            Some(("anonymous", _)) => true,
            Some((other, v)) => {
                self.diags.push(
                    Diagnostic::error(Code::InvalidValue, "invalid value")
                        .label(v.span.clone(), format!("`{other}` is not a credentials mode"))
                        .help("the only value is \"anonymous\" (for emulators); leave it out to use application default credentials — credentials never belong in configuration"),
                );
                false
            }
        };
        let endpoint = self.api_url(p, "endpoint");
        Some(GcpProvider { project: self.opt_str(p, "project")?, endpoint, anonymous })
    }

    fn component(&mut self, c: &Node, index: usize) -> Option<Component> {
        let name = self.label_name(c, NameRule::Dns(63));
        let priority = match c.get("priority") {
            Some(_) => self.int_in(c, "priority", 1, 1_000)?,
            None => index as u64 + 1,
        } as u32;
        let replicas = self.role_counts(c, "replicas");
        Some(Component { name: name?, priority, replicas: replicas? })
    }

    fn region(&mut self, r: &Node, aws: &Option<AwsProvider>, gcp: &Option<GcpProvider>) -> Option<Region> {
        let name = self.label_name(r, NameRule::Dns(63));
        let cloud = self.keyword(r, "cloud", Cloud::parse, Cloud::NAMES);
        let role = self.keyword(r, "role", Role::parse, Role::NAMES);
        let endpoint = self.hostname(r, "endpoint");
        let location = self.opt_str(r, "location");
        if let (Some(cloud), Some((_, cloud_value))) = (cloud, r.str("cloud")) {
            let configured = match cloud {
                Cloud::Aws => aws.is_some(),
                Cloud::Gcp => gcp.is_some(),
            };
            if !configured {
                let example = match cloud {
                    Cloud::Aws => "provider \"aws\" {}",
                    Cloud::Gcp => "provider \"gcp\" { project = \"...\" }",
                };
                self.diags.push(
                    Diagnostic::error(Code::MissingProvider, "missing provider")
                        .label(
                            cloud_value.span.clone(),
                            format!("no `provider \"{cloud}\"` block configures this cloud"),
                        )
                        .help(format!("add `{example}`")),
                );
            }
            match (cloud, r.get("location")) {
                (Cloud::Gcp, None) if !r.has("location") => self.diags.push(
                    Diagnostic::error(Code::MissingLocation, "missing location")
                        .label(r.ident_span.clone(), format!("GCP {} has no `location`", block_title(r)))
                        .help("add the GCP zone the region runs in, such as `location = \"asia-east1-a\"`"),
                ),
                (Cloud::Gcp, Some(v)) => {
                    if let Some(s) = v.as_str().filter(|s| !is_gcp_zone(s)) {
                        self.diags.push(
                            Diagnostic::error(Code::InvalidName, "invalid name")
                                .label(v.span.clone(), format!("`{s}` is not a GCP zone"))
                                .help("a zone looks like `asia-east1-a`: region, then a zone letter"),
                        );
                    }
                }
                (Cloud::Aws, Some(v)) => self.diags.push(
                    Diagnostic::error(Code::InvalidValue, "invalid value")
                        .label(v.span.clone(), "`location` applies to GCP regions only")
                        .help("an AWS region is named by its label, such as `region \"eu-west-1\"`; remove `location`"),
                ),
                _ => {}
            }
            if cloud == Cloud::Aws
                && let Some((n, s)) = r.label().filter(|(n, _)| !is_aws_region(n))
            {
                self.diags.push(
                    Diagnostic::error(Code::InvalidName, "invalid name")
                        .label(s.clone(), format!("`{n}` is not an AWS region name"))
                        .help("an AWS region's label is the AWS region it runs in, such as `us-east-1` or `eu-west-1`"),
                );
            }
        }
        let mut compute = Vec::new();
        let mut compute_ok = true;
        for pool in r.children("compute") {
            let name = self.label_name(pool, NameRule::Dns(63));
            let instance_type = self.opt_str(pool, "instance_type");
            let image = self.opt_str(pool, "image");
            let count = self.role_counts(pool, "count");
            match (name, instance_type, image, count) {
                (Some(name), Some(instance_type), Some(image), Some(count)) => {
                    compute.push(ComputePool { name, instance_type, image, count })
                }
                _ => compute_ok = false,
            }
        }
        let kubernetes = r.child("kubernetes").map(|k| {
            let namespace = match k.str("namespace") {
                Some((ns, v)) => {
                    self.check_name(ns, v, NameRule::Dns(63));
                    ns.to_string()
                }
                None => "default".to_string(),
            };
            Kubernetes { context: self.opt_str(k, "context").unwrap_or_default(), namespace }
        });
        let databases = self.members(r, cloud);
        let (_, role_value) = r.str("role")?;
        Some(Region {
            name: name?,
            span: r.label()?.1.clone(),
            cloud: cloud?,
            role: role?,
            role_span: role_value.span.clone(),
            endpoint,
            location,
            compute: compute_ok.then_some(compute)?,
            kubernetes,
            databases: databases?,
        })
    }

    fn backup(&mut self, b: &Node, rpo: Option<Duration>, rpo_value: Option<&Value>) -> Option<Backup> {
        let name = self.label_name(b, NameRule::Dns(38));
        let schedule = b.get("schedule").and_then(|v| {
            let text = v.as_str()?;
            match Cron::parse(text) {
                Ok(c) => Some((c, v)),
                Err(e) => {
                    let at = e.range.clone().map_or(v.span.clone(), |r| v.sub_span(r));
                    self.diags.push(
                        Diagnostic::error(Code::InvalidCron, "invalid cron expression").label(at, e.message).help(
                            "five fields: minute hour day-of-month month day-of-week, such as \"0 */1 * * *\" (hourly)",
                        ),
                    );
                    None
                }
            }
        });
        if let (Some((cron, v)), Some(rpo), Some(rpo_value)) = (&schedule, rpo, rpo_value)
            && let Some(gap) = cron.max_gap_minutes().filter(|g| g * 60 > rpo.as_secs())
        {
            let gap = Duration::from_secs(gap * 60);
            self.diags.push(
                Diagnostic::error(Code::ScheduleExceedsRpo, "backup schedule exceeds the RPO")
                    .label(v.span.clone(), format!("runs can be {gap} apart"))
                    .label(rpo_value.span.clone(), format!("but the RPO is {rpo}"))
                    .help(format!("schedule backups at least every {rpo}, or raise `objectives.rpo` to {gap} or more")),
            );
        }
        let kind = match b.get("type") {
            Some(_) => self.keyword(b, "type", BackupType::parse, BackupType::NAMES),
            None => Some(BackupType::Full),
        };
        let retention = self.duration(b, "retention");
        let image = self.opt_str(b, "image");
        let gpg_recipient = b.child("encryption").and_then(|e| self.opt_str(e, "gpg_recipient"));
        let mut destinations = Vec::new();
        let mut ok = true;
        for d in b.children("destination") {
            match self.destination(d) {
                Some(dest) => destinations.push(dest),
                None => ok = false,
            }
        }
        let point_format = match b.str("point_format") {
            None => Some(crate::recovery::PointFormat::default()),
            Some((text, v)) => match crate::recovery::PointFormat::parse(text) {
                Ok(f) => Some(f),
                Err(e) => {
                    self.diags.push(
                        Diagnostic::error(Code::InvalidPointFormat, "invalid point format")
                            .label(v.span.clone(), e)
                            .help("name points by the time the backup ran, strftime-style, to the minute at least, such as \"%Y%m%d_%H%M%S\" (`20261201_070000`)"),
                    );
                    None
                }
            },
        };
        let manifest = match b.str("manifest") {
            Some((m, v)) if m.is_empty() || m.contains('/') => {
                self.diags.push(
                    Diagnostic::error(Code::InvalidValue, "invalid value")
                        .label(v.span.clone(), format!("`{m}` is not an object name inside a point"))
                        .help(
                            "name the object the backup writes last into its point folder, such as \"manifest.json\"",
                        ),
                );
                None
            }
            Some((m, _)) => Some(Some(m.to_string())),
            None => Some(None),
        };
        let restore = match b.child("restore") {
            Some(r) => self.restore(r, image.as_deref()).map(Some),
            None => Some(None),
        };
        let (command, env, env_from_secret) = self.container(b);
        Some(Backup {
            command,
            env: env?,
            env_from_secret,
            name: name?,
            schedule: schedule?.0,
            kind: kind?,
            retention: retention?,
            image: image?,
            gpg_recipient,
            destinations: ok.then_some(destinations)?,
            point_format: point_format?,
            manifest: manifest?,
            restore: restore?,
        })
    }

    fn restore(&mut self, r: &Node, backup_image: Option<&str>) -> Option<Restore> {
        let image = self.opt_str(r, "image").or_else(|| backup_image.map(str::to_string));
        let command: Vec<String> = match r.get("command") {
            Some(Value { val: Val::List(items), .. }) => {
                items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect()
            }
            _ => Vec::new(),
        };
        let timeout = match r.get("timeout") {
            Some(_) => {
                let t = self.duration(r, "timeout")?;
                if t.as_secs() == 0 {
                    let (_, v) = r.str("timeout")?;
                    self.diags.push(
                        Diagnostic::error(Code::InvalidDuration, "invalid duration")
                            .label(v.span.clone(), "a restore cannot finish in no time")
                            .help("give the longest a restore may take, such as \"1h\""),
                    );
                    return None;
                }
                t
            }
            None => Duration::from_secs(3_600),
        };
        let mut when = Vec::new();
        let mut when_ok = true;
        match r.get("when") {
            Some(Value { val: Val::List(items), .. }) => {
                for item in items {
                    let Some(text) = item.as_str() else { continue };
                    match Role::parse(text) {
                        Some(Role::Active) => {
                            self.diags.push(
                                Diagnostic::error(Code::InvalidValue, "invalid value")
                                    .label(item.span.clone(), "no region is promoted to active from `active`")
                                    .help("list the roles a promoted region comes from: \"cold\", \"standby\""),
                            );
                            when_ok = false;
                        }
                        Some(role) if !when.contains(&role) => when.push(role),
                        Some(_) => {}
                        None => {
                            let mut d = Diagnostic::error(Code::InvalidValue, "invalid value")
                                .label(item.span.clone(), format!("`{text}` is not a role"));
                            d = match closest(text, ["standby", "cold"]) {
                                Some(s) => d.help(format!("did you mean `{s}`? a restore runs when a region is promoted from \"cold\" or \"standby\"")),
                                None => d.help("a restore runs when a region is promoted from \"cold\" or \"standby\""),
                            };
                            self.diags.push(d);
                            when_ok = false;
                        }
                    }
                }
                if when_ok && when.is_empty() {
                    let v = r.get("when")?;
                    self.diags.push(
                        Diagnostic::error(Code::InvalidValue, "invalid value")
                            .label(v.span.clone(), "`when` names no role, so this restore never runs")
                            .help("list the roles that need it, such as [\"cold\"], or remove the `restore` block"),
                    );
                    when_ok = false;
                }
            }
            _ => when.push(Role::Cold),
        }
        if !when_ok {
            return None;
        }
        Some(Restore { image: image?, command, timeout, when })
    }

    fn destination(&mut self, d: &Node) -> Option<Destination> {
        let name = self.label_name(d, NameRule::Dns(63));
        let kinds: Vec<&Node> = d.children.iter().collect();
        if kinds.len() != 1 {
            let (name, at) = d.label()?;
            let help = "give exactly one of `s3 { ... }`, `gcs { ... }` or `nas { ... }`; use several destinations for several copies";
            let diag = if kinds.is_empty() {
                Diagnostic::error(Code::MissingBlock, "missing block")
                    .label(at.clone(), format!("destination `{name}` has no target"))
                    .help(help)
            } else {
                let mut diag = Diagnostic::error(Code::ConflictingBlocks, "conflicting blocks")
                    .label(
                        kinds[1].ident_span.clone(),
                        format!("destination `{name}` already writes to `{}`", kinds[0].schema.name),
                    )
                    .label(kinds[0].ident_span.clone(), "first target here");
                for extra in kinds.iter().skip(2) {
                    diag = diag.label(extra.ident_span.clone(), "another target");
                }
                diag.help(help)
            };
            self.diags.push(diag);
            return None;
        }
        let t = kinds[0];
        let target = match t.schema.name {
            "s3" => Target::S3 {
                bucket: self.bucket(t, "bucket", false)?,
                prefix: self.opt_str(t, "prefix").unwrap_or_default(),
                region: self.aws_region(t, "region")?,
                storage_class: self.storage_class(t, S3_CLASSES)?,
                restore_tier: self.restore_tier(t)?,
            },
            "gcs" => Target::Gcs {
                bucket: self.bucket(t, "bucket", true)?,
                prefix: self.opt_str(t, "prefix").unwrap_or_default(),
                location: self.opt_str(t, "location")?,
                storage_class: self.storage_class(t, GCS_CLASSES)?,
            },
            _ => self.nas(t)?,
        };
        Some(Destination { name: name?, target })
    }

    fn failover(&mut self, f: &Node, root: &Node) -> Option<Failover> {
        let mode = match f.get("mode") {
            Some(_) => self.keyword(f, "mode", FailoverMode::parse, FailoverMode::NAMES),
            None => Some(FailoverMode::Manual),
        };
        if mode == Some(FailoverMode::Automatic)
            && f.child("health_check").is_none()
            && let Some((_, v)) = f.str("mode")
        {
            // The watcher decides on Route 53's checks of exactly that endpoint: a default
            // check of `/` could pass while the service is down.
            self.diags.push(
                Diagnostic::error(Code::AutomaticWithoutHealthCheck, "automatic failover without a health check")
                    .label(v.span.clone(), "automatic failover decides on the regions' health checks")
                    .help("add `health_check { protocol = \"HTTPS\", port = 443, path = \"/health\" }` to the `failover` block with your service's real health endpoint, or write `mode = \"manual\"`"),
            );
        }
        let known: Vec<&str> = root.children("region").filter_map(|r| r.label().map(|(l, _)| l.as_str())).collect();
        let mut order = Vec::new();
        let mut order_ok = true;
        if let Some(Value { val: Val::List(items), .. }) = f.get("order") {
            for item in items {
                let Some(name) = item.as_str() else { continue };
                if !known.contains(&name) {
                    let mut d = Diagnostic::error(Code::UnknownRegion, "unknown region")
                        .label(item.span.clone(), format!("no region is named `{name}`"));
                    d = match closest(name, known.iter().copied()) {
                        Some(s) => d.help(format!("did you mean `{s}`?")),
                        None => d.help(format!("declared regions: {}", list(known.iter().copied()))),
                    };
                    self.diags.push(d);
                    order_ok = false;
                } else if let Some(first) =
                    items.iter().take_while(|i| !std::ptr::eq(*i, item)).find(|i| i.as_str() == Some(name))
                {
                    self.diags.push(
                        Diagnostic::error(Code::DuplicateName, "duplicate name")
                            .label(item.span.clone(), format!("`{name}` is listed a second time here"))
                            .label(first.span.clone(), "first listed here")
                            .help("list each region once, in the order they take over"),
                    );
                    order_ok = false;
                } else {
                    order.push(name.to_string());
                }
            }
        }
        let dns = f.child("dns").and_then(|d| self.dns(d));
        let health_check = match f.child("health_check") {
            Some(h) => self.health_check(h)?,
            None => HealthCheck::default(),
        };
        if !order_ok || (f.child("dns").is_some() && dns.is_none()) {
            return None;
        }
        let automatic = match f.child("automatic") {
            Some(a) => Some(self.automatic(a)?),
            None => None,
        };
        Some(Failover { mode: mode?, order, dns, health_check, automatic })
    }

    fn automatic(&mut self, a: &Node) -> Option<Automatic> {
        let d = Automatic::default();
        let interval = match a.get("interval") {
            Some(_) => self.duration(a, "interval")?,
            None => d.interval,
        };
        if let Some((_, v)) = a.str("interval").filter(|_| interval.as_secs() < 10) {
            self.diags.push(
                Diagnostic::warning(Code::ShortWatchInterval, "watch interval below Route 53's")
                    .label(v.span.clone(), format!("rounds every {interval}, but Route 53 checks every 10s at best"))
                    .help("rounds faster than the checkers only read the same observations again; use \"10s\" or more outside tests"),
            );
        }
        let cooldown = match a.get("cooldown") {
            Some(_) => self.duration(a, "cooldown")?,
            None => d.cooldown,
        };
        let quorum = match a.get("quorum") {
            Some(_) => self.int_in(a, "quorum", 1, 99)? as u32,
            None => d.quorum,
        };
        let allow_cold = match a.get("allow_cold") {
            Some(v) => matches!(v.val, Val::Bool(true)),
            None => d.allow_cold,
        };
        Some(Automatic { interval, cooldown, quorum, allow_cold })
    }

    fn dns(&mut self, d: &Node) -> Option<Dns> {
        let zone = self.hostname(d, "zone");
        let record = self.hostname(d, "record");
        let ttl = match d.get("ttl") {
            Some(_) => self.int_in(d, "ttl", 1, 172_800)? as u32,
            None => 60,
        };
        let (zone, record) = (zone?, record?);
        let z = zone.trim_end_matches('.');
        let r = record.trim_end_matches('.');
        if r != z && !r.ends_with(&format!(".{z}")) {
            let (_, v) = d.str("record")?;
            let (_, zv) = d.str("zone")?;
            self.diags.push(
                Diagnostic::error(Code::RecordOutsideZone, "record outside its zone")
                    .label(v.span.clone(), format!("`{record}` is not inside the zone"))
                    .label(zv.span.clone(), format!("zone `{zone}`"))
                    .help(format!("Route 53 records of zone `{zone}` end in `.{z}`, such as `api.{z}`")),
            );
            return None;
        }
        Some(Dns { zone, record, ttl })
    }

    fn health_check(&mut self, h: &Node) -> Option<HealthCheck> {
        let d = HealthCheck::default();
        let protocol = match h.get("protocol") {
            Some(_) => self.keyword(h, "protocol", Protocol::parse, Protocol::NAMES),
            None => Some(d.protocol),
        };
        let port = match h.get("port") {
            Some(_) => self.int_in(h, "port", 1, 65_535).map(|p| p as u16),
            None => Some(d.port),
        };
        let path = match h.str("path") {
            Some((p, v)) if !p.starts_with('/') => {
                self.diags.push(
                    Diagnostic::error(Code::InvalidValue, "invalid value")
                        .label(v.span.clone(), format!("`{p}` does not start with `/`"))
                        .help("write the request path from the root, such as \"/health\""),
                );
                None
            }
            Some((p, _)) => Some(p.to_string()),
            None => Some(d.path.clone()),
        };
        let interval = match h.get("interval") {
            Some(v) => self.duration(h, "interval").and_then(|i| {
                if i.as_secs() == 10 || i.as_secs() == 30 {
                    Some(i)
                } else {
                    self.diags.push(
                        Diagnostic::error(Code::InvalidValue, "invalid value")
                            .label(v.span.clone(), format!("Route 53 cannot check every {i}"))
                            .help("Route 53 health checks run every \"10s\" or \"30s\""),
                    );
                    None
                }
            }),
            None => Some(d.interval),
        };
        let threshold = match h.get("threshold") {
            Some(_) => self.int_in(h, "threshold", 1, 10).map(|t| t as u32),
            None => Some(d.threshold),
        };
        Some(HealthCheck { protocol: protocol?, port: port?, path: path?, interval: interval?, threshold: threshold? })
    }

    // --- rules across blocks ------------------------------------------------------------

    fn active_regions(&mut self, root: &Node, drplan: Option<&Node>) {
        let regions: Vec<&Node> = root.children("region").collect();
        let roles: Vec<(&Node, &Value)> = regions.iter().filter_map(|r| r.get("role").map(|v| (*r, v))).collect();
        // A region whose role is missing or invalid is already reported; count only the rest.
        if roles.len() != regions.len() && roles.iter().all(|(_, v)| v.as_str() != Some("active")) {
            return;
        }
        let active: Vec<&(&Node, &Value)> = roles.iter().filter(|(_, v)| v.as_str() == Some("active")).collect();
        if active.len() == 1 {
            return;
        }
        let mut d = Diagnostic::error(Code::ActiveRegions, "not exactly one active region");
        if active.is_empty() {
            if roles.is_empty() {
                let at = drplan.map_or(root.ident_span.clone(), |d| d.ident_span.clone());
                d = d.label(at, "this configuration declares no region").help(
                    "declare the region that serves traffic: `region \"us-east-1\" { cloud = \"aws\", role = \"active\", ... }`",
                );
            } else {
                for (r, v) in &roles {
                    d = d.label(
                        v.span.clone(),
                        format!("region `{}` is {}", r.label().map_or("", |l| &l.0), v.as_str().unwrap_or("?")),
                    );
                }
                d = d.help("exactly one region serves traffic: set `role = \"active\"` on it");
            }
        } else {
            for (i, (r, v)) in active.iter().enumerate() {
                let text = if i == 0 { "active here" } else { "and active here too" };
                let name = r.label().map_or("", |l| l.0.as_str());
                d = d.label(v.span.clone(), format!("{text} (`{name}`)"));
            }
            d = d.help("two serving regions would split writes between them; make one active and the others \"standby\" or \"cold\"");
        }
        self.diags.push(d);
    }

    fn three_two_one(&mut self, b: &Backup, root: &Node) {
        let Some(first) = b.destinations.first().map(|d| d.target.site()) else { return };
        if b.destinations.iter().any(|d| d.target.site() != first) {
            return;
        }
        let Some((_, at)) = root.children("backup").filter_map(|n| n.label()).find(|(l, _)| *l == b.name) else {
            return;
        };
        let where_ = if b.destinations.len() == 1 { "its only destination" } else { "all its destinations" };
        self.diags.push(
            Diagnostic::warning(Code::SingleCloudBackups, "backups kept in one place")
                .label(at.clone(), format!("backup `{}` keeps {where_} in {first}", b.name))
                .help("the 3-2-1 rule: keep copies in at least two places (another cloud, or a `nas` destination), so one outage cannot take every copy"),
        );
    }

    /// Failover DNS with no `health_check` block gets Route 53 checks of `HTTPS :443 /`,
    /// which may not reflect the service: a PRIMARY record whose check does not fail when
    /// the service does never fails over, and the health gate then proves nothing.
    fn dns_without_health_check(&mut self, root: &Node) {
        let Some(failover) = root.child("failover") else { return };
        let (Some(dns), None) = (failover.child("dns"), failover.child("health_check")) else { return };
        self.diags.push(
            Diagnostic::warning(Code::DnsWithoutHealthCheck, "failover DNS without a health check block")
                .label(dns.ident_span.clone(), "the failover records' health checks probe `HTTPS :443 /` by default")
                .help("Route 53 fails a PRIMARY record over only when its health check fails, and apply's health gate trusts the same check: add `health_check { protocol = \"HTTPS\", port = 443, path = \"/health\" }` to the `failover` block with your service's real health endpoint"),
        );
    }

    /// A restore runs as a Job in the promoted region's cluster: every region that can be
    /// promoted from a role a restore is declared for needs one.
    fn restore_needs_cluster(&mut self, regions: &[Option<Region>], backups: &[Option<Backup>]) {
        for r in regions.iter().flatten().filter(|r| r.kubernetes.is_none()) {
            let Some(b) =
                backups.iter().flatten().find(|b| b.restore.as_ref().is_some_and(|x| x.when.contains(&r.role)))
            else {
                continue;
            };
            self.diags.push(
                Diagnostic::error(Code::RestoreWithoutCluster, "restore without a cluster")
                    .label(r.role_span.clone(), format!("`{}` is {}, and backup `{}` is restored into a region promoted from {}", r.name, r.role, b.name, r.role))
                    .label(r.span.clone(), format!("region `{}` has no `kubernetes` block", r.name))
                    .help(format!("the restore runs as a Kubernetes Job in the promoted region's cluster: add `kubernetes {{ context = \"...\", namespace = \"...\" }}` to region `{}`, or leave `{}` out of the restore's `when`", r.name, r.role)),
            );
        }
    }

    fn standby_capacity(&mut self, r: &Region, components: &[&Component]) {
        if r.role != Role::Standby {
            return;
        }
        let vms: u32 = r.compute.iter().map(|p| p.count.standby).sum();
        let replicas: u32 =
            if r.kubernetes.is_some() { components.iter().map(|c| c.replicas.standby).sum() } else { 0 };
        if vms == 0 && replicas == 0 {
            self.diags.push(
                Diagnostic::warning(Code::StandbyWithoutCapacity, "standby without capacity")
                    .label(r.span.clone(), format!("standby region `{}` runs nothing in its role", r.name))
                    .help("a warm standby keeps some capacity running (`count = { standby = 1, ... }`); otherwise declare the region \"cold\""),
            );
        }
    }

    // --- values -------------------------------------------------------------------------

    pub(super) fn opt_str(&mut self, n: &Node, attr: &str) -> Option<String> {
        n.str(attr).map(|(s, _)| s.to_string())
    }

    pub(super) fn keyword<E>(
        &mut self,
        n: &Node,
        attr: &str,
        parse: impl Fn(&str) -> Option<E>,
        names: &[&str],
    ) -> Option<E> {
        let (s, v) = n.str(attr)?;
        if let Some(e) = parse(s) {
            return Some(e);
        }
        let folded = names.iter().find(|c| c.eq_ignore_ascii_case(s)).copied();
        let hint = folded.or_else(|| closest(s, names.iter().copied()));
        let mut d = Diagnostic::error(Code::InvalidValue, "invalid value")
            .label(v.span.clone(), format!("`{s}` is not a valid `{attr}`"));
        d = match hint {
            Some(h) => d.help(format!("did you mean `{h}`? expected one of: {}", list(names.iter().copied()))),
            None => d.help(format!("expected one of: {}", list(names.iter().copied()))),
        };
        self.diags.push(d);
        None
    }

    pub(super) fn duration(&mut self, n: &Node, attr: &str) -> Option<Duration> {
        let (s, v) = n.str(attr)?;
        match Duration::parse(s) {
            Ok(d) => Some(d),
            Err(e) => {
                self.diags.push(
                    Diagnostic::error(Code::InvalidDuration, "invalid duration")
                        .label(v.span.clone(), format!("`{s}`: {e}"))
                        .help(DURATION_HELP),
                );
                None
            }
        }
    }

    /// `lock_lease`: at least 3 s, so that a renewal every third of it has time to arrive.
    fn lock_lease(&mut self, n: &Node) -> Option<Duration> {
        let lease = self.duration(n, "lock_lease")?;
        if lease.as_secs() < 3 {
            if let Some((_, v)) = n.str("lock_lease") {
                self.diags.push(
                    Diagnostic::error(Code::InvalidValue, "lock lease too short")
                        .label(v.span.clone(), format!("`{lease}` is shorter than 3s"))
                        .help("the holder renews the lease every third of it; give it at least `3s` (the default is `60s`)"),
                );
            }
            return None;
        }
        Some(lease)
    }

    pub(super) fn int_in(&mut self, n: &Node, attr: &str, lo: u64, hi: u64) -> Option<u64> {
        let v = n.get(attr)?;
        let Val::Num(x) = v.val else { return None };
        if x >= lo as f64 && x <= hi as f64 {
            return Some(x as u64);
        }
        self.diags.push(
            Diagnostic::error(Code::InvalidValue, "invalid value")
                .label(v.span.clone(), format!("`{attr}` must be between {lo} and {hi}, found {x}"))
                .help(format!("write a whole number from {lo} to {hi}")),
        );
        None
    }

    fn role_counts(&mut self, n: &Node, attr: &str) -> Option<RoleCounts> {
        let v = n.get(attr)?;
        let Val::Map(entries) = &v.val else { return None };
        let mut counts = RoleCounts::default();
        let mut ok = true;
        let mut has_active = false;
        for (key, key_span, value) in entries {
            let Some(role) = Role::parse(key) else {
                let mut d = Diagnostic::error(Code::UnknownAttribute, "unknown attribute")
                    .label(key_span.clone(), format!("`{key}` is not a role"));
                d = match closest(key, Role::NAMES.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`? roles: `active`, `standby`, `cold`")),
                    None => d.help("roles: `active`, `standby`, `cold`"),
                };
                self.diags.push(d);
                ok = false;
                continue;
            };
            let n = match value.val {
                Val::Num(x) if x.fract() == 0.0 && (0.0..=10_000.0).contains(&x) => x as u32,
                Val::Num(x) => {
                    self.diags.push(
                        Diagnostic::error(Code::InvalidValue, "invalid value")
                            .label(value.span.clone(), format!("{x} is not a count from 0 to 10000"))
                            .help("counts are whole numbers, 0 or more"),
                    );
                    ok = false;
                    continue;
                }
                _ => {
                    self.diags.push(
                        Diagnostic::error(Code::WrongType, "wrong type")
                            .label(value.span.clone(), format!("the count for `{key}` must be a whole number"))
                            .help("write a number without quotes, such as `active = 3`"),
                    );
                    ok = false;
                    continue;
                }
            };
            match role {
                Role::Active => {
                    has_active = true;
                    counts.active = n
                }
                Role::Standby => counts.standby = n,
                Role::Cold => counts.cold = n,
            }
        }
        if ok && !has_active {
            self.diags.push(
                Diagnostic::error(Code::MissingAttribute, "missing attribute")
                    .label(v.span.clone(), format!("`{attr}` has no count for `active`"))
                    .help("add `active = N`; `standby` and `cold` default to 0"),
            );
            ok = false;
        }
        ok.then_some(counts)
    }

    /// A NAS: mounted where drplan runs (`path`), or reached through an S3-compatible
    /// endpoint (`s3_endpoint` and `bucket`), one of the two.
    fn nas(&mut self, t: &Node) -> Option<Target> {
        let path = match t.str("path") {
            Some((path, v)) if !path.starts_with('/') => {
                self.diags.push(
                    Diagnostic::error(Code::InvalidValue, "invalid value")
                        .label(v.span.clone(), format!("`{path}` is not an absolute path"))
                        .help("write the mount point from the root, such as \"/mnt/nas/backups\""),
                );
                return None;
            }
            other => other.map(|(p, _)| p.to_string()),
        };
        let s3 = match (t.get("s3_endpoint"), t.get("bucket")) {
            (Some(_), Some(_)) => Some(NasS3 {
                endpoint: self.api_url(t, "s3_endpoint")?,
                bucket: self.bucket(t, "bucket", false)?,
                prefix: self.opt_str(t, "prefix").unwrap_or_default(),
                region: self.opt_str(t, "region").unwrap_or_else(|| "us-east-1".to_string()),
            }),
            (None, None) => None,
            (endpoint, _) => {
                let (missing, given) =
                    if endpoint.is_some() { ("bucket", "s3_endpoint") } else { ("s3_endpoint", "bucket") };
                let at = t.get(given).map(|v| v.span.clone()).unwrap_or_else(|| t.ident_span.clone());
                self.diags.push(
                    Diagnostic::error(Code::MissingAttribute, "missing attribute")
                        .label(at, format!("`{given}` without `{missing}`"))
                        .help("a NAS reached through its S3-compatible endpoint needs both `s3_endpoint` and `bucket`"),
                );
                return None;
            }
        };
        match (&path, &s3) {
            (None, None) => {
                self.diags.push(
                    Diagnostic::error(Code::MissingAttribute, "missing attribute")
                        .label(t.ident_span.clone(), "the NAS says neither where it is mounted nor how to reach it")
                        .help("give `path` (the share as mounted where drplan runs) or `s3_endpoint` and `bucket` (its S3-compatible endpoint, as MinIO or TrueNAS expose it)"),
                );
                return None;
            }
            (Some(_), Some(_)) => {
                let at = t.get("s3_endpoint").map(|v| v.span.clone()).unwrap_or_else(|| t.ident_span.clone());
                self.diags.push(
                    Diagnostic::error(Code::InvalidValue, "invalid value")
                        .label(at, "`s3_endpoint` beside `path`: two ways to read one share")
                        .help("keep one: `path` when the share is mounted where drplan runs, `s3_endpoint` otherwise"),
                );
                return None;
            }
            _ => {}
        }
        let restore_from = matches!(t.get("restore_from").map(|v| &v.val), Some(Val::Bool(true)));
        let claim = self.opt_str(t, "claim");
        // A share mounted where drplan runs is not in the restore Job: it needs the claim.
        if restore_from && path.is_some() && claim.is_none() {
            let at = t.get("restore_from").map(|v| v.span.clone()).unwrap_or_else(|| t.ident_span.clone());
            self.diags.push(
                Diagnostic::error(Code::MissingAttribute, "missing attribute")
                    .label(at, "restores read this share, and the restore Job does not have it mounted")
                    .help("give `claim`, the PersistentVolumeClaim of the share in the clusters: restore Jobs mount it at `path`"),
            );
            return None;
        }
        Some(Target::Nas { path, s3, restore_from, claim })
    }

    /// `restore_tier`, judged against the class points land in: a class read at once needs
    /// no thaw (a warning: the setting does nothing), and Deep Archive has no Expedited tier.
    fn restore_tier(&mut self, n: &Node) -> Option<Tier> {
        if n.get("restore_tier").is_none() {
            return Some(Tier::default());
        }
        let tier = self.keyword(n, "restore_tier", Tier::parse, &Tier::ALL)?;
        let Some((_, v)) = n.str("restore_tier") else { return Some(tier) };
        let span = v.span.clone();
        let class = n.str("storage_class").map(|(c, _)| c.to_string());
        match class.as_deref() {
            Some("DEEP_ARCHIVE") if tier == Tier::Expedited => {
                self.diags.push(
                    Diagnostic::error(Code::UnavailableRestoreTier, "S3 Deep Archive has no Expedited retrieval")
                        .label(span, "`Expedited` is not offered for `DEEP_ARCHIVE`")
                        .help("use `Standard` (up to 12h) or `Bulk` (up to 48h), or a class thawed faster, such as `GLACIER` (Expedited: up to 5m)"),
                );
                return None;
            }
            Some(c) if !needs_thaw(c) => self.diags.push(
                Diagnostic::warning(Code::NeedlessRestoreTier, "this storage class needs no thaw")
                    .label(span, format!("`{c}` objects are read at once: `restore_tier` does nothing"))
                    .help("remove `restore_tier`, or set `storage_class` to `GLACIER` or `DEEP_ARCHIVE`"),
            ),
            // No class set: objects stay in the bucket's class (STANDARD) unless a rule of the
            // team's moves them, so the tier may still matter.
            _ => {}
        }
        Some(tier)
    }

    fn storage_class(&mut self, n: &Node, classes: &[&str]) -> Option<Option<String>> {
        match n.get("storage_class") {
            None => Some(None),
            Some(_) => self
                .keyword(n, "storage_class", |s| Some(s.to_string()).filter(|s| classes.contains(&s.as_str())), classes)
                .map(Some),
        }
    }

    /// An API address: an http(s) URL with a host. Anything else would only fail at the
    /// first request, as an unreachable cloud.
    fn api_url(&mut self, n: &Node, attr: &str) -> Option<String> {
        let (s, v) = n.str(attr)?;
        let host = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
        let valid = host.is_some_and(|h| {
            let authority = h.split('/').next().unwrap_or_default();
            !authority.is_empty() && !h.contains(char::is_whitespace)
        });
        if !valid {
            self.diags.push(
                Diagnostic::error(Code::InvalidValue, "invalid value")
                    .label(v.span.clone(), format!("`{s}` is not an http(s) URL"))
                    .help("an API address is a URL with a host, such as \"https://s3.eu-west-1.amazonaws.com\", or \"http://127.0.0.1:5000\" for an emulator; leave `endpoint` out to use the cloud's own"),
            );
            return None;
        }
        Some(s.to_string())
    }

    fn hostname(&mut self, n: &Node, attr: &str) -> Option<String> {
        let (s, v) = n.str(attr)?;
        let valid = !s.is_empty()
            && s.len() <= 253
            && s.trim_end_matches('.').split('.').all(|l| {
                !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if !valid {
            let help = if s.contains("://") {
                "write the host name alone, without a scheme or path, such as \"use1.example.com\""
            } else {
                "a host name is labels of letters, digits and `-` joined by dots, such as \"use1.example.com\""
            };
            self.diags.push(
                Diagnostic::error(Code::InvalidName, "invalid name")
                    .label(v.span.clone(), format!("`{s}` is not a host name"))
                    .help(help),
            );
            return None;
        }
        Some(s.to_string())
    }

    fn bucket(&mut self, n: &Node, attr: &str, underscores: bool) -> Option<String> {
        let (s, v) = n.str(attr)?;
        let ends_ok = s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && s.bytes().last().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let chars_ok = s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.' || (underscores && b == b'_')
        });
        if (3..=63).contains(&s.len()) && ends_ok && chars_ok && !s.contains("..") {
            return Some(s.to_string());
        }
        let allowed = if underscores {
            "lowercase letters, digits, `-`, `_` and `.`"
        } else {
            "lowercase letters, digits, `-` and `.`"
        };
        self.diags.push(
            Diagnostic::error(Code::InvalidName, "invalid name")
                .label(v.span.clone(), format!("`{s}` is not a valid bucket name"))
                .help(format!(
                    "bucket names are 3 to 63 characters of {allowed}, starting and ending with a letter or digit"
                )),
        );
        None
    }

    fn aws_region(&mut self, n: &Node, attr: &str) -> Option<String> {
        let (s, v) = n.str(attr)?;
        if is_aws_region(s) {
            return Some(s.to_string());
        }
        self.diags.push(
            Diagnostic::error(Code::InvalidName, "invalid name")
                .label(v.span.clone(), format!("`{s}` is not an AWS region name"))
                .help("AWS regions are named like `us-east-1` or `eu-west-1`"),
        );
        None
    }

    pub(super) fn label_name(&mut self, n: &Node, rule: NameRule) -> Option<String> {
        let (name, at) = n.label()?;
        let ok = self.check_name_at(name, at.clone(), rule, n.schema.name);
        ok.then(|| name.clone())
    }

    fn name(&mut self, n: &Node, attr: &str, rule: NameRule) -> Option<String> {
        let (s, v) = n.str(attr)?;
        self.check_name(s, v, rule).then(|| s.to_string())
    }

    fn check_name(&mut self, s: &str, v: &Value, rule: NameRule) -> bool {
        self.check_name_at(s, v.span.clone(), rule, "name")
    }

    fn check_name_at(&mut self, s: &str, at: Span, rule: NameRule, what: &str) -> bool {
        let (max, extra, help): (usize, &[u8], String) = match rule {
            NameRule::Project => (63, b"-_", "it is stamped on every object as a tag and a GCE label: use lowercase letters, digits, `-` and `_`, starting with a letter, at most 63 characters".into()),
            NameRule::Dns(max) => (max, b"-", format!("it names cloud and Kubernetes objects: use lowercase letters, digits and `-`, starting with a letter and ending with a letter or digit, at most {max} characters")),
        };
        let ok = !s.is_empty()
            && s.len() <= max
            && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && s.bytes().last().is_some_and(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || (rule == NameRule::Project && b == b'_')
            })
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || extra.contains(&b));
        if !ok {
            self.diags.push(
                Diagnostic::error(Code::InvalidName, "invalid name")
                    .label(at, format!("`{s}` is not a valid {what} name"))
                    .help(help),
            );
        }
        ok
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum NameRule {
    Project,
    Dns(usize),
}

const S3_CLASSES: &[&str] =
    &["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"];
const GCS_CLASSES: &[&str] = &["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"];

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `ap-southeast-4`.
fn is_aws_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[0].len() == 2
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `asia-east1-a`, `us-central1-f`, `europe-west4-b`.
fn is_gcp_zone(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts[0].bytes().all(|b| b.is_ascii_lowercase())
        && !parts[0].is_empty()
        && parts[1].bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && parts[1].bytes().last().is_some_and(|b| b.is_ascii_digit())
        && parts[1].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && parts[2].len() == 1
        && parts[2].bytes().all(|b| b.is_ascii_lowercase())
}

/// The `paths` of `drplan { policy { ... } }`; the schema has checked their type.
fn policy_paths(drplan: &Node) -> Vec<String> {
    match drplan.child("policy").and_then(|p| p.get("paths")) {
        Some(Value { val: Val::List(items), .. }) => {
            items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::{is_aws_region, is_gcp_zone};

    #[test]
    fn region_and_zone_shapes() {
        for ok in ["us-east-1", "eu-west-1", "us-gov-west-1", "ap-southeast-4"] {
            assert!(is_aws_region(ok), "{ok}");
        }
        for bad in ["us-east", "useast1", "US-EAST-1", "asia-pacific-1a", "us-east-x"] {
            assert!(!is_aws_region(bad), "{bad}");
        }
        for ok in ["asia-east1-a", "us-central1-f", "europe-west4-b"] {
            assert!(is_gcp_zone(ok), "{ok}");
        }
        for bad in ["asia-east1", "asia-east-a", "us-central1-ab"] {
            assert!(!is_gcp_zone(bad), "{bad}");
        }
    }
}
