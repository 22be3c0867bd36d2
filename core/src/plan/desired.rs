//! The desired resources of a configuration: what should exist given each region's role.

use super::resource::{Kind, Resource, Value, address, attrs};
use crate::config::{Cloud, Config, Role, Target};

/// Every resource the configuration asks for, in address order.
pub fn desired(config: &Config) -> Vec<Resource> {
    let mut out = Vec::new();
    for region in &config.regions {
        for pool in &region.compute {
            for index in 0..pool.count.for_role(region.role) {
                let mut a = attrs([
                    ("cloud", region.cloud.as_str().into()),
                    ("pool", pool.name.as_str().into()),
                    ("index", index.into()),
                    ("instance_type", pool.instance_type.as_str().into()),
                    ("image", pool.image.as_str().into()),
                    ("state", "running".into()),
                ]);
                if let (Cloud::Gcp, Some(zone)) = (region.cloud, &region.location) {
                    a.insert("zone".into(), zone.as_str().into());
                }
                out.push(Resource {
                    address: address::instance(&region.name, &pool.name, index),
                    kind: Kind::Instance,
                    region: Some(region.name.clone()),
                    attrs: a,
                });
            }
        }
        if let Some(k8s) = &region.kubernetes {
            for c in &config.components {
                out.push(Resource {
                    address: address::workload(&region.name, &c.name),
                    kind: Kind::Workload,
                    region: Some(region.name.clone()),
                    attrs: attrs([
                        ("context", k8s.context.as_str().into()),
                        ("namespace", k8s.namespace.as_str().into()),
                        ("deployment", c.name.as_str().into()),
                        ("replicas", c.replicas.for_role(region.role).into()),
                    ]),
                });
            }
            // The backup schedule runs where the active region is; standby clusters keep it
            // suspended so promotion only flips a flag. Cold clusters have nothing.
            if region.role != Role::Cold {
                for b in &config.backups {
                    let destinations: Vec<String> = b.destinations.iter().map(|d| d.target.uri()).collect();
                    let mut a = attrs([
                        ("context", k8s.context.as_str().into()),
                        ("namespace", k8s.namespace.as_str().into()),
                        ("name", format!("drplan-backup-{}", b.name).into()),
                        ("schedule", b.schedule.as_str().into()),
                        ("image", b.image.as_str().into()),
                        ("type", b.kind.as_str().into()),
                        ("retention", b.retention.to_string().into()),
                        ("destinations", destinations.join(",").into()),
                        ("suspend", (region.role != Role::Active).into()),
                        // `DRPLAN_RETENTION_HOLD=1` while an incident is open.
                        ("retention_hold", false.into()),
                    ]);
                    if let Some(gpg) = &b.gpg_recipient {
                        a.insert("gpg_recipient".into(), gpg.as_str().into());
                    }
                    // The team's own tool, run as it is: its command, environment and Secrets;
                    // always compared, so one removed from the configuration goes from the
                    // CronJob too.
                    a.insert("command".into(), serde_json::to_string(&b.command).unwrap_or_default().into());
                    a.insert("env".into(), serde_json::to_string(&b.env).unwrap_or_default().into());
                    a.insert(
                        "env_from_secret".into(),
                        serde_json::to_string(&b.env_from_secret).unwrap_or_default().into(),
                    );
                    out.push(Resource {
                        address: address::backup_job(&region.name, &b.name),
                        kind: Kind::BackupJob,
                        region: Some(region.name.clone()),
                        attrs: a,
                    });
                }
            }
        }
    }
    out.extend(super::data::members(config));
    if let Some(f) = &config.failover
        && let Some(dns) = &f.dns
    {
        let hc = &f.health_check;
        let mut records = Vec::new();
        if let Some(active) = config.active_region() {
            records.push(("PRIMARY", active));
        }
        if let Some(secondary) = secondary_region(config) {
            records.push(("SECONDARY", secondary));
        }
        // Every region that could take over is judged on its own check: the active and each
        // standby (a failed first standby is passed over for the next healthy one). Only the
        // PRIMARY and SECONDARY regions' checks are attached to records.
        let health_check = |region: &crate::config::Region| Resource {
            address: address::health_check(&region.name),
            kind: Kind::HealthCheck,
            region: None,
            attrs: attrs([
                ("serves", region.name.as_str().into()),
                ("fqdn", region.endpoint.clone().unwrap_or_default().into()),
                ("protocol", hc.protocol.as_str().into()),
                ("port", i64::from(hc.port).into()),
                (
                    "path",
                    if hc.protocol == crate::config::Protocol::Tcp {
                        Value::Str(String::new())
                    } else {
                        hc.path.as_str().into()
                    },
                ),
                ("interval", (hc.interval.as_secs() as i64).into()),
                ("threshold", hc.threshold.into()),
            ]),
        };
        for (failover, region) in &records {
            let endpoint = region.endpoint.clone().unwrap_or_default();
            let check = address::health_check(&region.name);
            out.push(health_check(region));
            out.push(Resource {
                address: address::dns_record(&dns.record, failover),
                kind: Kind::DnsRecord,
                region: None,
                attrs: attrs([
                    ("zone", dns.zone.as_str().into()),
                    ("name", dns.record.as_str().into()),
                    ("type", "CNAME".into()),
                    ("ttl", dns.ttl.into()),
                    ("failover", (*failover).into()),
                    ("set_identifier", format!("{}-{}", config.project, failover.to_ascii_lowercase()).into()),
                    ("target", endpoint.as_str().into()),
                    ("serves", region.name.as_str().into()),
                    ("health_check", check.into()),
                ]),
            });
        }
        let recorded: Vec<&str> = records.iter().map(|(_, r)| r.name.as_str()).collect();
        for region in config.regions.iter().filter(|r| r.role == Role::Standby && !recorded.contains(&r.name.as_str()))
        {
            out.push(health_check(region));
        }
    }
    for b in &config.backups {
        for d in &b.destinations {
            let (cloud, bucket, prefix, location, class) = match &d.target {
                Target::S3 { bucket, prefix, region, storage_class, .. } => {
                    ("aws", bucket, prefix, region, storage_class)
                }
                Target::Gcs { bucket, prefix, location, storage_class } => {
                    ("gcp", bucket, prefix, location, storage_class)
                }
                Target::Nas { .. } => continue,
            };
            let mut a = attrs([
                ("cloud", cloud.into()),
                ("bucket", bucket.as_str().into()),
                ("prefix", prefix.as_str().into()),
                ("location", location.as_str().into()),
                ("versioning", true.into()),
                ("expire_days", ((b.retention.as_secs().div_ceil(86_400)) as i64).into()),
                // Paused (the rule kept, its expiry stopped) while an incident is open.
                ("expiry_paused", false.into()),
            ]);
            if let Some(class) = class {
                a.insert("storage_class".into(), class.as_str().into());
            }
            out.push(Resource {
                address: address::bucket(&b.name, &d.name),
                kind: Kind::Bucket,
                region: None,
                attrs: a,
            });
        }
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    out
}

/// The region DNS SECONDARY points at: the first standby in `failover.order` (the active
/// region skipped), then standby regions not listed, in declaration order.
pub fn secondary_region(config: &Config) -> Option<&crate::config::Region> {
    let listed = config.failover.iter().flat_map(|f| f.order.iter()).filter_map(|n| config.region(n));
    let unlisted =
        config.regions.iter().filter(|r| config.failover.as_ref().is_none_or(|f| !f.order.contains(&r.name)));
    listed.chain(unlisted).find(|r| r.role == Role::Standby)
}
