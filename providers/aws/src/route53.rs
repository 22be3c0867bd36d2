//! Route 53: the failover record sets of the configured record, and the health checks
//! drplan tagged, read in a handful of list calls whatever the size of the topology.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_route53::Client;
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, HealthCheck, HealthCheckConfig, HealthCheckType, ResourceRecord,
    ResourceRecordSet, ResourceRecordSetFailover, RrType, Tag, TagResourceType,
};
use drplan_core::plan::resource::{Kind, address, attrs};
use drplan_core::plan::{Action, Attrs, Observed, Resource, Value};
use drplan_core::provider::{ApplyRequest, ErrorClass, ProviderError};

use std::future::Future;

use aws_sdk_route53::config::http::HttpResponse;
use aws_sdk_route53::error::{ProvideErrorMetadata, SdkError};
use drplan_retry::RetryPolicy;

use crate::error::sdk_error;
use crate::pace::Pace;
use crate::{TAG_PROJECT, TAG_SERVES};

/// How long a record change may take to reach every Route 53 server.
const INSYNC_TIMEOUT: Duration = Duration::from_secs(60);
const INSYNC_POLL: Duration = Duration::from_secs(2);
/// ListTagsForResources takes at most ten ids.
const TAG_BATCH: usize = 10;

/// The Route 53 client behind the account's request rate: the client is reachable only
/// through [`Route53::send`], so no request, and no retry, can skip its turn.
#[derive(Clone)]
pub struct Route53 {
    client: Client,
    pace: Arc<Pace>,
}

impl Route53 {
    pub fn new(client: Client, pace: Arc<Pace>) -> Route53 {
        Route53 { client, pace }
    }

    /// Sends one request (`request` builds and sends it afresh for each attempt) under the
    /// retry policy, every attempt, retries included, waiting for its turn first: a retry
    /// counts against the account's rate as much as the first attempt did.
    async fn send<T, E, F, Fut>(&self, operation: &str, request: F) -> Result<T, ProviderError>
    where
        F: Fn(&Client) -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        drplan_retry::run(&RetryPolicy::GLOBAL, || async {
            self.pace.wait().await;
            request(&self.client).await.map_err(|e| sdk_error(operation, &e))
        })
        .await
    }
}

/// A health check of this project, with the tags that say what it serves.
#[derive(Debug, Clone)]
struct Check {
    id: String,
    caller_reference: String,
    serves: String,
    observed: Observed,
}

pub async fn refresh(client: &Route53, project: &str, desired: &[Resource]) -> Result<Vec<Observed>, ProviderError> {
    let checks = health_checks(client, project).await?;
    let mut out: Vec<Observed> = checks.iter().map(|c| c.observed.clone()).collect();
    // Records: only the names the configuration uses, each in its zone.
    let mut wanted: BTreeMap<(String, String), ()> = BTreeMap::new();
    for r in desired.iter().filter(|r| r.kind == Kind::DnsRecord) {
        if let (Some(zone), Some(name)) = (r.str("zone"), r.str("name")) {
            wanted.insert((zone.to_owned(), name.to_owned()), ());
        }
    }
    let mut zones: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (zone, name) in wanted.keys() {
        if !zones.contains_key(zone) {
            zones.insert(zone.clone(), find_zone(client, zone).await?);
        }
        // A missing zone means no records yet; applying says what to do about it.
        let Some(Some(zone_id)) = zones.get(zone) else { continue };
        for set in record_sets(client, zone_id, name).await? {
            if let Some(o) = observe_record(&set, zone, zone_id, project, &checks, desired) {
                out.push(o);
            }
        }
    }
    Ok(out)
}

fn dotted(name: &str) -> String {
    format!("{}.", name.trim_end_matches('.'))
}

fn undotted(name: &str) -> String {
    name.trim_end_matches('.').to_owned()
}

/// The id of the hosted zone named `zone`, if it exists.
async fn find_zone(client: &Route53, zone: &str) -> Result<Option<String>, ProviderError> {
    let out = client
        .send(&format!("ListHostedZonesByName {zone}"), |c| {
            c.list_hosted_zones_by_name().dns_name(dotted(zone)).max_items(1).send()
        })
        .await?;
    Ok(out
        .hosted_zones()
        .iter()
        .find(|z| z.name().eq_ignore_ascii_case(&dotted(zone)))
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_owned()))
}

async fn zone_or_invalid(client: &Route53, zone: &str) -> Result<String, ProviderError> {
    find_zone(client, zone).await?.ok_or_else(|| {
        ProviderError::new(
            ErrorClass::Invalid,
            format!("hosted zone `{zone}` not found; drplan manages records, not zones: create the zone first"),
        )
    })
}

/// The record sets named `name`, starting the listing there so a large zone is not read whole.
async fn record_sets(client: &Route53, zone_id: &str, name: &str) -> Result<Vec<ResourceRecordSet>, ProviderError> {
    let want = dotted(name);
    let mut out = Vec::new();
    let mut start: Option<(String, RrType, Option<String>)> = Some((want.clone(), RrType::Cname, None));
    while let Some((start_name, start_type, start_id)) = start.take() {
        let page = client
            .send(&format!("ListResourceRecordSets {name}"), |c| {
                c.list_resource_record_sets()
                    .hosted_zone_id(zone_id)
                    .start_record_name(&start_name)
                    .start_record_type(start_type.clone())
                    .set_start_record_identifier(start_id.clone())
                    .send()
            })
            .await?;
        let mut past = false;
        for set in page.resource_record_sets() {
            if set.name().eq_ignore_ascii_case(&want) {
                out.push(set.clone());
            } else if !out.is_empty() {
                past = true;
            }
        }
        if page.is_truncated()
            && !past
            && let (Some(n), Some(t)) = (page.next_record_name(), page.next_record_type())
            && n.eq_ignore_ascii_case(&want)
        {
            start = Some((n.to_owned(), t.clone(), page.next_record_identifier().map(str::to_owned)));
        }
    }
    Ok(out)
}

fn observe_record(
    set: &ResourceRecordSet,
    zone: &str,
    zone_id: &str,
    project: &str,
    checks: &[Check],
    desired: &[Resource],
) -> Option<Observed> {
    if set.r#type() != &RrType::Cname {
        return None;
    }
    let failover = set.failover()?.as_str().to_owned();
    let set_id = set.set_identifier()?;
    // Other failover sets under the same name are someone else's.
    if !set_id.starts_with(&format!("{project}-")) {
        return None;
    }
    let name = undotted(set.name());
    let target = set.resource_records().first().map(|r| undotted(r.value())).unwrap_or_default();
    let check = set.health_check_id().and_then(|id| checks.iter().find(|c| c.id == id));
    let serves = match check {
        Some(c) => c.serves.clone(),
        None => desired
            .iter()
            .find(|r| r.kind == Kind::HealthCheck && r.str("fqdn") == Some(target.as_str()))
            .and_then(|r| r.str("serves"))
            .unwrap_or_default()
            .to_owned(),
    };
    let health_check = check.map(|c| address::health_check(&c.serves)).unwrap_or_default();
    let a = attrs([
        ("zone", undotted(zone).into()),
        ("name", name.as_str().into()),
        ("type", "CNAME".into()),
        ("ttl", set.ttl().unwrap_or_default().into()),
        ("failover", failover.as_str().into()),
        ("set_identifier", set_id.into()),
        ("target", target.into()),
        ("serves", serves.into()),
        ("health_check", health_check.into()),
    ]);
    Some(Observed {
        resource: Resource {
            address: address::dns_record(&name, &failover),
            kind: Kind::DnsRecord,
            region: None,
            attrs: a,
        },
        id: format!("{zone_id}/{name}/{set_id}"),
    })
}

/// Every health check tagged with this project: one listing, and one tag read per ten checks.
async fn health_checks(client: &Route53, project: &str) -> Result<Vec<Check>, ProviderError> {
    let mut all: Vec<HealthCheck> = Vec::new();
    // Page by page rather than through the SDK's paginator, so that each page waits its turn.
    let mut marker: Option<String> = None;
    loop {
        let page =
            client.send("ListHealthChecks", |c| c.list_health_checks().set_marker(marker.clone()).send()).await?;
        marker = page.next_marker().filter(|_| page.is_truncated()).map(str::to_owned);
        all.extend(page.health_checks);
        if marker.is_none() {
            break;
        }
    }
    let mut tags: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let ids: Vec<String> = all.iter().map(|h| h.id().to_owned()).collect();
    for batch in ids.chunks(TAG_BATCH) {
        let out = client
            .send("ListTagsForResources", |c| {
                c.list_tags_for_resources()
                    .resource_type(TagResourceType::Healthcheck)
                    .set_resource_ids(Some(batch.to_vec()))
                    .send()
            })
            .await?;
        for set in out.resource_tag_sets() {
            let Some(id) = set.resource_id() else { continue };
            let map = tags.entry(id.to_owned()).or_default();
            for t in set.tags() {
                if let (Some(k), Some(v)) = (t.key(), t.value()) {
                    map.insert(k.to_owned(), v.to_owned());
                }
            }
        }
    }
    let mut out = Vec::new();
    for h in &all {
        let Some(t) = tags.get(h.id()) else { continue };
        if t.get(TAG_PROJECT).map(String::as_str) != Some(project) {
            continue;
        }
        let Some(serves) = t.get(TAG_SERVES) else { continue };
        let Some(config) = h.health_check_config() else { continue };
        out.push(Check {
            id: h.id().to_owned(),
            caller_reference: h.caller_reference().to_owned(),
            serves: serves.clone(),
            observed: observe_check(h.id(), serves, config),
        });
    }
    Ok(out)
}

fn observe_check(id: &str, serves: &str, config: &HealthCheckConfig) -> Observed {
    let protocol = config.r#type().as_str().to_owned();
    let path = if config.r#type() == &HealthCheckType::Tcp { "" } else { config.resource_path().unwrap_or_default() };
    let a = attrs([
        ("serves", serves.into()),
        ("fqdn", config.fully_qualified_domain_name().unwrap_or_default().into()),
        ("protocol", protocol.into()),
        ("port", i64::from(config.port().unwrap_or_default()).into()),
        ("path", path.into()),
        ("interval", i64::from(config.request_interval().unwrap_or(30)).into()),
        ("threshold", i64::from(config.failure_threshold().unwrap_or(3)).into()),
    ]);
    Observed {
        resource: Resource { address: address::health_check(serves), kind: Kind::HealthCheck, region: None, attrs: a },
        id: id.to_owned(),
    }
}

fn text<'a>(a: &'a Attrs, name: &str) -> Result<&'a str, ProviderError> {
    match a.get(name) {
        Some(Value::Str(s)) => Ok(s),
        _ => Err(ProviderError::new(ErrorClass::Invalid, format!("`{name}` is missing"))),
    }
}

fn int(a: &Attrs, name: &str) -> Result<i32, ProviderError> {
    match a.get(name) {
        Some(Value::Int(i)) => {
            i32::try_from(*i).map_err(|_| ProviderError::new(ErrorClass::Invalid, format!("`{name}` is out of range")))
        }
        _ => Err(ProviderError::new(ErrorClass::Invalid, format!("`{name}` is missing"))),
    }
}

fn check_config(a: &Attrs) -> Result<HealthCheckConfig, ProviderError> {
    let protocol = HealthCheckType::from(text(a, "protocol")?);
    let tcp = protocol == HealthCheckType::Tcp;
    let mut b = HealthCheckConfig::builder()
        .r#type(protocol)
        .fully_qualified_domain_name(text(a, "fqdn")?)
        .port(int(a, "port")?)
        .request_interval(int(a, "interval")?)
        .failure_threshold(int(a, "threshold")?);
    if !tcp {
        b = b.resource_path(text(a, "path")?);
    }
    b.build().map_err(|e| ProviderError::new(ErrorClass::Invalid, format!("health check configuration: {e}")))
}

async fn get_check(client: &Route53, id: &str, serves: &str) -> Result<Option<Observed>, ProviderError> {
    match client.send(&format!("GetHealthCheck {id}"), |c| c.get_health_check().health_check_id(id).send()).await {
        Ok(out) => Ok(out.health_check().and_then(|h| h.health_check_config()).map(|c| observe_check(id, serves, c))),
        Err(err) => {
            if err.class == ErrorClass::NotFound {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

pub async fn apply_health_check(
    client: &Route53,
    request: &ApplyRequest<'_>,
) -> Result<Option<Observed>, ProviderError> {
    let change = request.change;
    let project = request.project;
    let id_or_not_found =
        || change.id.clone().ok_or_else(|| ProviderError::new(ErrorClass::NotFound, "the health check has no id"));
    match change.action {
        Action::Create | Action::Replace => {
            let after = change
                .after
                .as_ref()
                .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "a create needs attributes"))?;
            let serves = text(after, "serves")?;
            let existing = health_checks(client, project).await?;
            // Same token: a retried create. Same serves tag: made by a run that crashed
            // before recording it (a replacement must not adopt the check it replaces).
            let found = existing.iter().find(|c| c.caller_reference == request.idempotency_token).or_else(|| {
                (change.action == Action::Create).then(|| existing.iter().find(|c| c.serves == serves)).flatten()
            });
            let created = match found {
                Some(c) => c.observed.clone(),
                None => {
                    let config = check_config(after)?;
                    let out = client
                        .send("CreateHealthCheck", |c| {
                            c.create_health_check()
                                .caller_reference(request.idempotency_token)
                                .health_check_config(config.clone())
                                .send()
                        })
                        .await?;
                    let h = out.health_check().ok_or_else(|| {
                        ProviderError::new(ErrorClass::Failed, "CreateHealthCheck answered without the health check")
                    })?;
                    let config = h.health_check_config().ok_or_else(|| {
                        ProviderError::new(ErrorClass::Failed, "CreateHealthCheck answered without a configuration")
                    })?;
                    tag_check(client, h.id(), project, serves).await?;
                    observe_check(h.id(), serves, config)
                }
            };
            if change.action == Action::Replace
                && let Some(old) = change.id.as_deref().filter(|old| *old != created.id)
            {
                // Route 53 refuses to delete a check a record still uses (HealthCheckInUse):
                // move drplan's records onto the new check first.
                repoint_records(client, project, old, &created.id).await?;
                delete_check(client, old).await?;
            }
            Ok(Some(created))
        }
        Action::Update => {
            let id = id_or_not_found()?;
            let after = change
                .after
                .as_ref()
                .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "an update needs attributes"))?;
            let (fqdn, port, threshold) = (text(after, "fqdn")?, int(after, "port")?, int(after, "threshold")?);
            let path = if text(after, "protocol")? != "TCP" { Some(text(after, "path")?) } else { None };
            client
                .send(&format!("UpdateHealthCheck {id}"), |c| {
                    c.update_health_check()
                        .health_check_id(&id)
                        .fully_qualified_domain_name(fqdn)
                        .port(port)
                        .failure_threshold(threshold)
                        .set_resource_path(path.map(str::to_owned))
                        .send()
                })
                .await?;
            let serves = text(after, "serves")?;
            tag_check(client, &id, project, serves).await?;
            get_check(client, &id, serves)
                .await?
                .ok_or_else(|| ProviderError::new(ErrorClass::NotFound, format!("health check {id} does not exist")))
                .map(Some)
        }
        Action::Delete => {
            if let Some(id) = change.id.as_deref() {
                delete_check(client, id).await?;
            }
            Ok(None)
        }
        Action::Adopt => {
            let id = id_or_not_found()?;
            let serves = change.after.as_ref().map(|a| text(a, "serves")).transpose()?.unwrap_or_default();
            get_check(client, &id, serves)
                .await?
                .ok_or_else(|| ProviderError::new(ErrorClass::NotFound, format!("health check {id} does not exist")))
                .map(Some)
        }
    }
}

/// Points every failover record of `project` that uses health check `old` at `new` instead,
/// waiting for each change to be in sync. Scans the account's hosted zones: a replacement
/// (a protocol or interval change) is rare, and the record's zone is not part of the check.
async fn repoint_records(client: &Route53, project: &str, old: &str, new: &str) -> Result<(), ProviderError> {
    let mut zones = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = client.send("ListHostedZones", |c| c.list_hosted_zones().set_marker(marker.clone()).send()).await?;
        marker = page.next_marker().filter(|_| page.is_truncated()).map(str::to_owned);
        zones.extend(page.hosted_zones.into_iter().map(|z| z.id().trim_start_matches("/hostedzone/").to_owned()));
        if marker.is_none() {
            break;
        }
    }
    let prefix = format!("{project}-");
    for zone_id in zones {
        let mut start: Option<(String, RrType, Option<String>)> = None;
        loop {
            let out = client
                .send(&format!("ListResourceRecordSets {zone_id}"), |c| {
                    let mut req = c.list_resource_record_sets().hosted_zone_id(&zone_id);
                    if let Some((name, kind, set)) = &start {
                        req = req
                            .start_record_name(name)
                            .start_record_type(kind.clone())
                            .set_start_record_identifier(set.clone());
                    }
                    req.send()
                })
                .await?;
            for set in out.resource_record_sets() {
                let ours = set.set_identifier().is_some_and(|s| s.starts_with(&prefix));
                if ours && set.health_check_id() == Some(old) {
                    let mut moved = set.clone();
                    moved.health_check_id = Some(new.to_owned());
                    submit(client, &zone_id, ChangeAction::Upsert, moved, set.name().trim_end_matches('.')).await?;
                }
            }
            match (out.is_truncated(), out.next_record_name(), out.next_record_type()) {
                (true, Some(name), Some(kind)) => {
                    start = Some((name.to_owned(), kind.clone(), out.next_record_identifier().map(str::to_owned)))
                }
                _ => break,
            }
        }
    }
    Ok(())
}

async fn tag_check(client: &Route53, id: &str, project: &str, serves: &str) -> Result<(), ProviderError> {
    client
        .send(&format!("ChangeTagsForResource {id}"), |c| {
            c.change_tags_for_resource()
                .resource_type(TagResourceType::Healthcheck)
                .resource_id(id)
                .add_tags(Tag::builder().key(TAG_PROJECT).value(project).build())
                .add_tags(Tag::builder().key(TAG_SERVES).value(serves).build())
                .send()
        })
        .await?;
    Ok(())
}

async fn delete_check(client: &Route53, id: &str) -> Result<(), ProviderError> {
    match client.send(&format!("DeleteHealthCheck {id}"), |c| c.delete_health_check().health_check_id(id).send()).await
    {
        Ok(_) => Ok(()),
        Err(err) => {
            if err.class == ErrorClass::NotFound {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

pub async fn apply_record(client: &Route53, request: &ApplyRequest<'_>) -> Result<Option<Observed>, ProviderError> {
    let change = request.change;
    let project = request.project;
    let attrs = change
        .after
        .as_ref()
        .or(change.before.as_ref())
        .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "a record change needs attributes"))?;
    let zone = text(attrs, "zone")?;
    let name = text(attrs, "name")?;
    let set_id = text(attrs, "set_identifier")?;
    let zone_id = zone_or_invalid(client, zone).await?;
    let current = |sets: Vec<ResourceRecordSet>| {
        sets.into_iter().find(|s| s.r#type() == &RrType::Cname && s.set_identifier() == Some(set_id))
    };
    match change.action {
        Action::Delete => {
            // Route 53 deletes only an exact match: send the record as it is now.
            let Some(set) = current(record_sets(client, &zone_id, name).await?) else { return Ok(None) };
            submit(client, &zone_id, ChangeAction::Delete, set, name).await?;
            Ok(None)
        }
        Action::Adopt => {
            let checks = health_checks(client, project).await?;
            let set = current(record_sets(client, &zone_id, name).await?).ok_or_else(|| {
                ProviderError::new(ErrorClass::NotFound, format!("record {name} ({set_id}) does not exist"))
            })?;
            Ok(observe_record(&set, zone, &zone_id, project, &checks, &[]))
        }
        Action::Create | Action::Update | Action::Replace => {
            let checks = health_checks(client, project).await?;
            let check_address = text(attrs, "health_check").unwrap_or_default();
            let check_id = if check_address.is_empty() {
                None
            } else {
                let c = checks.iter().find(|c| address::health_check(&c.serves) == check_address).ok_or_else(|| {
                    ProviderError::new(ErrorClass::Invalid, format!("health check {check_address} does not exist yet"))
                })?;
                Some(c.id.clone())
            };
            let failover = ResourceRecordSetFailover::from(text(attrs, "failover")?);
            let target = text(attrs, "target")?;
            let record = ResourceRecord::builder()
                .value(target)
                .build()
                .map_err(|e| ProviderError::new(ErrorClass::Invalid, format!("record value: {e}")))?;
            let set = ResourceRecordSet::builder()
                .name(dotted(name))
                .r#type(RrType::Cname)
                .ttl(i64::from(int(attrs, "ttl")?))
                .set_identifier(set_id)
                .failover(failover)
                .set_health_check_id(check_id)
                .resource_records(record)
                .build()
                .map_err(|e| ProviderError::new(ErrorClass::Invalid, format!("record set: {e}")))?;
            submit(client, &zone_id, ChangeAction::Upsert, set, name).await?;
            let set = current(record_sets(client, &zone_id, name).await?).ok_or_else(|| {
                ProviderError::new(ErrorClass::Failed, format!("record {name} ({set_id}) is missing after UPSERT"))
            })?;
            Ok(observe_record(&set, zone, &zone_id, project, &checks, &[]))
        }
    }
}

/// Sends one change and waits until Route 53 reports it in sync everywhere.
async fn submit(
    client: &Route53,
    zone_id: &str,
    action: ChangeAction,
    set: ResourceRecordSet,
    name: &str,
) -> Result<(), ProviderError> {
    let op = format!("ChangeResourceRecordSets {} {name}", action.as_str());
    let change = Change::builder()
        .action(action)
        .resource_record_set(set)
        .build()
        .map_err(|e| ProviderError::new(ErrorClass::Invalid, format!("{op}: {e}")))?;
    let batch = ChangeBatch::builder()
        .changes(change)
        .build()
        .map_err(|e| ProviderError::new(ErrorClass::Invalid, format!("{op}: {e}")))?;
    let out = client
        .send(&op, |c| c.change_resource_record_sets().hosted_zone_id(zone_id).change_batch(batch.clone()).send())
        .await?;
    let Some(info) = out.change_info() else { return Ok(()) };
    let id = info.id().to_owned();
    let mut status = info.status().clone();
    let deadline = Instant::now() + INSYNC_TIMEOUT;
    while status != ChangeStatus::Insync {
        if Instant::now() >= deadline {
            return Err(ProviderError::new(
                ErrorClass::Failed,
                format!(
                    "{op}: change {id} was not INSYNC after {}s; Route 53 may still apply it",
                    INSYNC_TIMEOUT.as_secs()
                ),
            ));
        }
        tokio::time::sleep(INSYNC_POLL).await;
        let got = client.send(&format!("GetChange {id}"), |c| c.get_change().id(&id).send()).await?;
        status = got.change_info().map(|c| c.status().clone()).unwrap_or(ChangeStatus::Insync);
    }
    Ok(())
}

/// One Route 53 checker's latest observation of a health check.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub healthy: bool,
    /// When the checker took it, in seconds since the Unix epoch; `None` when not said.
    pub checked: Option<f64>,
    /// The checker's report (`Success: HTTP Status Code 200...`, `Failure: ...`).
    pub report: String,
}

/// What the gate makes of the checkers' observations: only those taken at or after `since`
/// (when the region's capacity and workloads were ready) count, and the check passes when
/// more than half of all the checkers report success in such a fresh observation. Route 53
/// itself calls an endpoint healthy when more than 18% of its checkers do; the gate asks
/// for a majority, on evidence no older than the region's readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub checkers: usize,
    pub fresh: usize,
    pub healthy: usize,
}

impl Verdict {
    pub fn of(observations: &[Observation], since: f64) -> Verdict {
        let fresh: Vec<&Observation> = observations.iter().filter(|o| o.checked.is_some_and(|t| t >= since)).collect();
        Verdict {
            checkers: observations.len(),
            fresh: fresh.len(),
            healthy: fresh.iter().filter(|o| o.healthy).count(),
        }
    }

    pub fn passes(&self) -> bool {
        self.checkers > 0 && self.healthy * 2 > self.checkers
    }
}

/// The checkers' latest observations of health check `id`.
pub async fn observations(client: &Route53, id: &str) -> Result<Vec<Observation>, ProviderError> {
    let out = client.send("GetHealthCheckStatus", |c| c.get_health_check_status().health_check_id(id).send()).await?;
    Ok(out
        .health_check_observations()
        .iter()
        .map(|o| {
            let report = o.status_report();
            let status = report.and_then(|r| r.status()).unwrap_or_default();
            Observation {
                healthy: status.starts_with("Success"),
                checked: report
                    .and_then(|r| r.checked_time())
                    .map(|t| t.secs() as f64 + f64::from(t.subsec_nanos()) / 1e9),
                report: status.to_owned(),
            }
        })
        .collect())
}

/// The health gate in front of a DNS move: waits until `region`'s health check passes on
/// observations taken at or after `since` ([`Verdict`]), polling every `every`, for at most
/// `timeout`. Observations older than `since` never pass it.
pub async fn wait_healthy(
    client: &Route53,
    project: &str,
    region: &str,
    since: std::time::SystemTime,
    every: std::time::Duration,
    timeout: std::time::Duration,
) -> Result<(), String> {
    let start = std::time::Instant::now();
    let since = since.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default();
    let check = health_checks(client, project)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|c| c.serves == region)
        .ok_or_else(|| {
            format!("no health check of project `{project}` serves {region}; it is created earlier in the plan")
        })?;
    loop {
        let last = match observations(client, &check.id).await {
            Ok(seen) => {
                let v = Verdict::of(&seen, since);
                tracing::debug!(
                    region = %region,
                    health_check = %check.id,
                    checkers = v.checkers,
                    fresh = v.fresh,
                    healthy = v.healthy,
                    elapsed = ?start.elapsed(),
                    "health gate poll"
                );
                if v.passes() {
                    return Ok(());
                }
                let failing = seen
                    .iter()
                    .filter(|o| !o.healthy && o.checked.is_some_and(|t| t >= since))
                    .map(|o| o.report.as_str())
                    .next()
                    .map(|r| format!("; a failing one said: {r}"))
                    .unwrap_or_default();
                format!(
                    "{} of {} checkers observed it since it was ready, {} healthy, {} failing{failing}",
                    v.fresh,
                    v.checkers,
                    v.healthy,
                    v.fresh - v.healthy
                )
            }
            Err(e) => e.to_string(),
        };
        if start.elapsed() + every > timeout {
            return Err(format!(
                "{region} did not pass its health check ({}) within {:.0?}: {last}. It passes when more than half of the checkers report it healthy after it was ready. DNS was not moved; fix the region, or pass --skip-health-gate in a declared emergency",
                check.id, timeout
            ));
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{Observation, Verdict};

    fn seen(healthy: bool, checked: f64) -> Observation {
        Observation { healthy, checked: Some(checked), report: String::new() }
    }

    /// Observations taken before the region was ready never count, however healthy.
    #[test]
    fn old_observations_never_pass() {
        let old = [seen(true, 90.0), seen(true, 95.0), seen(true, 99.9)];
        let v = Verdict::of(&old, 100.0);
        assert_eq!((v.checkers, v.fresh, v.healthy), (3, 0, 0));
        assert!(!v.passes());
    }

    /// A majority of all the checkers, not of the few that reported since: one fresh success
    /// among eight checkers is not enough; five are.
    #[test]
    fn a_majority_of_all_checkers_must_report_healthy_since_ready() {
        let mut eight: Vec<Observation> = (0..8).map(|_| seen(true, 50.0)).collect();
        eight[0] = seen(true, 101.0);
        assert!(!Verdict::of(&eight, 100.0).passes());
        for o in eight.iter_mut().take(5) {
            *o = seen(true, 102.0);
        }
        assert!(Verdict::of(&eight, 100.0).passes());
        eight[4] = seen(false, 103.0);
        assert!(!Verdict::of(&eight, 100.0).passes(), "four of eight is no majority");
        assert!(!Verdict::of(&[], 100.0).passes(), "no checker, no evidence");
        let undated = [Observation { healthy: true, checked: None, report: String::new() }];
        assert!(!Verdict::of(&undated, 0.0).passes(), "an observation without a time is not fresh");
    }
}
