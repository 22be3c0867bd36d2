//! The provider conformance suite: what the engine relies on from every provider, checked
//! against a real API (an emulator) by each provider crate and against the fake here.
//!
//! Six shapes of object, six checks: [`check`] for what drplan creates and deletes
//! (instances, health checks, buckets, backup schedules), [`check_dns_record`] for records,
//! which are written whole (an update of one that is gone writes it again) and share their
//! name with the other failover set, [`check_scale_only`] for what another system creates
//! and drplan only scales (the pipeline's Deployments), [`check_database_member`] for
//! databases, which drplan promotes and never deletes, and [`check_thaw`] for the thaw of
//! an archived recovery point, asked for once however often it is applied, and
//! [`check_incident_step`] for an incident's evidence and isolation, taken once and lifted
//! by a delete (evidence never deleted).

use drplan_core::plan::resource::{Attrs, Value, address};
use drplan_core::plan::{Action, Change, Observed, Resource};
use drplan_core::provider::{ApplyRequest, ErrorClass, Provider, RefreshRequest, idempotency_token};

/// One object the provider manages, and an attribute it can change in place.
pub struct Fixture {
    pub project: String,
    /// The regions to refresh (include the resource's region).
    pub regions: Vec<String>,
    pub resource: Resource,
    pub update: (String, Value),
}

fn change(r: &Resource, action: Action, before: Option<Attrs>, after: Option<Attrs>, id: Option<String>) -> Change {
    Change {
        address: r.address.clone(),
        kind: r.kind,
        region: r.region.clone(),
        action,
        before,
        after,
        id,
        replace_paths: Vec::new(),
    }
}

async fn snapshot<P: Provider>(
    provider: &P,
    refresh: &RefreshRequest<'_>,
    stage: &str,
) -> Result<drplan_core::plan::Snapshot, String> {
    provider.refresh(refresh).await.map_err(|e| format!("{stage}: refresh failed: {e}"))
}

fn req<'a>(f: &'a Fixture, change: &'a Change, token: &'a str) -> ApplyRequest<'a> {
    ApplyRequest { project: &f.project, change, idempotency_token: token }
}

/// Runs every check in order; the first broken promise is returned as the error.
pub async fn check<P: Provider>(provider: &P, f: &Fixture) -> Result<(), String> {
    let update = lifecycle(provider, f).await?;
    let token = idempotency_token("conformance", &f.resource.address);
    match provider.apply(&req(f, &update, &token)).await {
        Err(e) if e.class == ErrorClass::NotFound => Ok(()),
        Err(e) => Err(format!("updating a deleted object must be classified not found, was {:?}: {e}", e.class)),
        Ok(o) => Err(format!("updating a deleted object succeeded: {o:?}")),
    }
}

/// A failover record (`dns.NAME.primary`): the lifecycle of [`check`], with the record of
/// the other failover set under the same name beside it all along, untouched by every
/// change to this one. An update of a deleted record may write it again (an UPSERT), so
/// that is not checked; the engine plans a create there anyway.
pub async fn check_dns_record<P: Provider>(provider: &P, f: &Fixture) -> Result<(), String> {
    let r = &f.resource;
    let name = r.str("name").ok_or("a record fixture needs a `name`")?;
    let other = match r.str("failover") {
        Some("PRIMARY") => "SECONDARY",
        Some("SECONDARY") => "PRIMARY",
        other => return Err(format!("a record fixture needs `failover` PRIMARY or SECONDARY, has {other:?}")),
    };
    let mut sibling = r.clone();
    sibling.address = address::dns_record(name, other);
    sibling.attrs.insert("failover".into(), other.into());
    // Set identifiers start with the project, as the engine names them.
    let set = format!("{}-{}", f.project, other.to_ascii_lowercase());
    sibling.attrs.insert("set_identifier".into(), set.into());
    sibling.attrs.insert("target".into(), format!("sibling.{name}").into());
    let token = idempotency_token("conformance", &sibling.address);
    let create = change(&sibling, Action::Create, None, Some(sibling.attrs.clone()), None);
    let made = provider
        .apply(&req(f, &create, &token))
        .await
        .map_err(|e| format!("creating the other failover set's record failed: {e}"))?
        .ok_or("creating the other failover set's record returned no object")?;

    lifecycle(provider, f).await?;

    let desired = [r.clone(), sibling.clone()];
    let refresh = RefreshRequest { project: &f.project, regions: &f.regions, desired: &desired };
    let seen = snapshot(provider, &refresh, "after the record's delete").await?;
    match seen.objects.get(&sibling.address) {
        Some(o) if o.id == made.id && sibling.attrs.iter().all(|(k, v)| o.resource.attrs.get(k) == Some(v)) => {}
        other => {
            return Err(format!("the other failover set's record {} was changed: {other:?}", sibling.address));
        }
    }
    let delete = change(&sibling, Action::Delete, Some(sibling.attrs.clone()), None, Some(made.id));
    provider.apply(&req(f, &delete, &token)).await.map_err(|e| format!("deleting the other record failed: {e}"))?;
    Ok(())
}

/// An object another system creates and drplan only scales: it is there before drplan
/// runs, an update changes it in place under the same id, a repeated update is harmless,
/// and a delete stops managing it without removing it.
pub async fn check_scale_only<P: Provider>(provider: &P, f: &Fixture) -> Result<(), String> {
    let r = &f.resource;
    let desired = std::slice::from_ref(r);
    let refresh = RefreshRequest { project: &f.project, regions: &f.regions, desired };
    if !provider.manages(r.kind, r.str("cloud")) {
        return Err(format!("{} says it does not manage the fixture's {}", provider.name(), r.kind));
    }
    let seen = snapshot(provider, &refresh, "before scaling").await?;
    let Some(found) = seen.objects.get(&r.address).cloned() else {
        return Err(format!("refresh does not find {}, which exists before drplan runs", r.address));
    };
    let token = idempotency_token("conformance", &r.address);
    let mut updated = found.resource.attrs.clone();
    updated.insert(f.update.0.clone(), f.update.1.clone());
    let update =
        change(r, Action::Update, Some(found.resource.attrs.clone()), Some(updated.clone()), Some(found.id.clone()));
    for attempt in ["update", "repeated update"] {
        let scaled = provider
            .apply(&req(f, &update, &token))
            .await
            .map_err(|e| format!("{attempt} failed: {e}"))?
            .ok_or(format!("{attempt} returned no object"))?;
        if scaled.id != found.id || scaled.resource.attrs.get(&f.update.0) != Some(&f.update.1) {
            return Err(format!(
                "{attempt} returned {scaled:?}, wanted {} = {} on {}",
                f.update.0, f.update.1, found.id
            ));
        }
        match snapshot(provider, &refresh, &format!("after the {attempt}")).await?.objects.get(&r.address) {
            Some(o) if o.id == found.id && o.resource.attrs.get(&f.update.0) == Some(&f.update.1) => {}
            other => return Err(format!("after the {attempt}, refresh reads {other:?}")),
        }
    }
    let delete = change(r, Action::Delete, Some(updated), None, Some(found.id.clone()));
    if provider.apply(&req(f, &delete, &token)).await.map_err(|e| format!("delete failed: {e}"))?.is_some() {
        return Err("delete returned an object".into());
    }
    match snapshot(provider, &refresh, "after delete").await?.objects.get(&r.address) {
        Some(o) if o.id == found.id => Ok(()),
        other => Err(format!("a delete must leave what drplan did not create in place, refresh reads {other:?}")),
    }
}

/// Create, read, create again, update, delete, delete again; returns the update, for the
/// caller's check of what an update of a deleted object does.
async fn lifecycle<P: Provider>(provider: &P, f: &Fixture) -> Result<Change, String> {
    let r = &f.resource;
    let desired = std::slice::from_ref(r);
    let refresh = RefreshRequest { project: &f.project, regions: &f.regions, desired };
    let contains = |have: &Attrs, want: &Attrs| want.iter().all(|(k, v)| have.get(k) == Some(v));

    if !provider.manages(r.kind, r.str("cloud")) {
        return Err(format!("{} says it does not manage the fixture's {}", provider.name(), r.kind));
    }
    if snapshot(provider, &refresh, "before create").await?.objects.contains_key(&r.address) {
        return Err(format!("{} exists before it was created: start from an empty account", r.address));
    }

    let token = idempotency_token("conformance", &r.address);
    let create = change(r, Action::Create, None, Some(r.attrs.clone()), None);
    let created = provider
        .apply(&req(f, &create, &token))
        .await
        .map_err(|e| format!("create failed: {e}"))?
        .ok_or("create returned no object")?;
    if created.id.is_empty() {
        return Err("create returned an object without an id".into());
    }
    if !contains(&created.resource.attrs, &r.attrs) {
        return Err(format!("create returned {:?}, wanted at least {:?}", created.resource.attrs, r.attrs));
    }
    let seen = snapshot(provider, &refresh, "after create").await?;
    let Some(found) = seen.objects.get(&r.address) else {
        return Err(format!(
            "refresh does not find {} after creating it (are its tags or labels read back?)",
            r.address
        ));
    };
    if found.id != created.id || !contains(&found.resource.attrs, &r.attrs) {
        return Err(format!("refresh reads {found:?}, created {created:?}"));
    }

    // A retried or crashed create must not make a second object.
    let again = provider
        .apply(&req(f, &create, &token))
        .await
        .map_err(|e| format!("repeated create failed: {e}"))?
        .ok_or("repeated create returned no object")?;
    if again.id != created.id {
        return Err(format!("a repeated create made a second object ({} besides {})", again.id, created.id));
    }

    let mut updated = r.attrs.clone();
    updated.insert(f.update.0.clone(), f.update.1.clone());
    let update =
        change(r, Action::Update, Some(found.resource.attrs.clone()), Some(updated.clone()), Some(created.id.clone()));
    provider.apply(&req(f, &update, &token)).await.map_err(|e| format!("update failed: {e}"))?;
    let seen = snapshot(provider, &refresh, "after update").await?;
    match seen.objects.get(&r.address) {
        Some(o) if o.resource.attrs.get(&f.update.0) == Some(&f.update.1) => {}
        other => return Err(format!("after updating {} to {}, refresh reads {other:?}", f.update.0, f.update.1)),
    }

    let delete = change(r, Action::Delete, Some(updated.clone()), None, Some(created.id.clone()));
    if provider.apply(&req(f, &delete, &token)).await.map_err(|e| format!("delete failed: {e}"))?.is_some() {
        return Err("delete returned an object".into());
    }
    if snapshot(provider, &refresh, "after delete").await?.objects.contains_key(&r.address) {
        return Err(format!("{} is still there after delete", r.address));
    }
    provider
        .apply(&req(f, &delete, &token))
        .await
        .map_err(|e| format!("deleting what is gone must succeed (a retried delete): {e}"))?;
    Ok(update)
}

/// A database member (a replica, there before drplan runs): found by its declared name,
/// adopted as it is; a promotion (an update to `role = "writer"`, its source dropped) makes
/// it the writer under the same id, and a repeated one is harmless; a delete is refused and
/// leaves it where it was: drplan never deletes a database.
pub async fn check_database_member<P: Provider>(provider: &P, f: &Fixture) -> Result<(), String> {
    let r = &f.resource;
    let desired = std::slice::from_ref(r);
    let refresh = RefreshRequest { project: &f.project, regions: &f.regions, desired };
    if !provider.manages(r.kind, r.str("cloud")) {
        return Err(format!("{} says it does not manage the fixture's {}", provider.name(), r.kind));
    }
    let seen = snapshot(provider, &refresh, "before promoting").await?;
    let Some(found) = seen.objects.get(&r.address).cloned() else {
        return Err(format!("refresh does not find {}, which exists before drplan runs", r.address));
    };
    if found.resource.str("role") != Some("replica") {
        return Err(format!("the fixture's member must start as a replica, refresh reads {found:?}"));
    }
    let token = idempotency_token("conformance", &r.address);
    let adopt =
        change(r, Action::Adopt, Some(found.resource.attrs.clone()), Some(r.attrs.clone()), Some(found.id.clone()));
    match provider.apply(&req(f, &adopt, &token)).await.map_err(|e| format!("adopt failed: {e}"))? {
        Some(o) if o.id == found.id => {}
        other => return Err(format!("adopt returned {other:?}, wanted the object {}", found.id)),
    }
    let mut promoted = r.attrs.clone();
    promoted.remove("source");
    promoted.insert("role".into(), Value::Str("writer".into()));
    let promote =
        change(r, Action::Update, Some(found.resource.attrs.clone()), Some(promoted.clone()), Some(found.id.clone()));
    for attempt in ["promotion", "repeated promotion"] {
        let o = provider
            .apply(&req(f, &promote, &token))
            .await
            .map_err(|e| format!("{attempt} failed: {e}"))?
            .ok_or(format!("{attempt} returned no object"))?;
        if o.id != found.id || o.resource.str("role") != Some("writer") {
            return Err(format!("{attempt} returned {o:?}, wanted the writer {}", found.id));
        }
    }
    match snapshot(provider, &refresh, "after the promotion").await?.objects.get(&r.address) {
        Some(o) if o.id == found.id && o.resource.str("role") == Some("writer") => {}
        other => return Err(format!("after the promotion, refresh reads {other:?}")),
    }
    let delete = change(r, Action::Delete, Some(promoted), None, Some(found.id.clone()));
    if let Ok(o) = provider.apply(&req(f, &delete, &token)).await {
        return Err(format!("a delete of a database must be refused, it returned {o:?}"));
    }
    match snapshot(provider, &refresh, "after the refused delete").await?.objects.get(&r.address) {
        Some(o) if o.id == found.id => Ok(()),
        other => Err(format!("a database must still be there after a delete was asked, refresh reads {other:?}")),
    }
}

/// The fixture's resource, its token and its create, once `provider` says it manages it.
fn managed<'a, P: Provider>(provider: &P, f: &'a Fixture) -> Result<(&'a Resource, String, Change), String> {
    let r = &f.resource;
    if !provider.manages(r.kind, r.str("cloud")) {
        return Err(format!("{} says it does not manage the fixture's {}", provider.name(), r.kind));
    }
    let token = idempotency_token("conformance", &r.address);
    Ok((r, token, change(r, Action::Create, None, Some(r.attrs.clone()), None)))
}

/// A thaw of an archived recovery point (`f.resource` holds the thaw's attributes; its
/// folder holds archived objects): asked for, waited for, and asked again without asking
/// S3 a second time for any object (the record says every object was found asked for);
/// its removal (a drill's) touches nothing.
pub async fn check_thaw<P: Provider>(provider: &P, f: &Fixture) -> Result<(), String> {
    let (r, token, create) = managed(provider, f)?;
    let first = provider
        .apply(&req(f, &create, &token))
        .await
        .map_err(|e| format!("the thaw failed: {e}"))?
        .ok_or("the thaw returned no object")?;
    let objects = first.resource.int("objects").unwrap_or(0);
    if objects == 0 || first.resource.int("asked") != Some(objects) {
        return Err(format!("the thaw must ask for each archived object once, it returned {first:?}"));
    }
    let progress = |_: String| {};
    let ready = drplan_core::provider::ReadyRequest {
        project: &f.project,
        change: &create,
        timeout: std::time::Duration::from_secs(60),
        progress: &progress,
    };
    provider.wait_ready(&ready).await.map_err(|e| format!("waiting for the thaw failed: {e}"))?;
    let again = provider
        .apply(&req(f, &create, &token))
        .await
        .map_err(|e| format!("the repeated thaw failed: {e}"))?
        .ok_or("the repeated thaw returned no object")?;
    if again.resource.int("asked") != Some(0) || again.resource.int("found_asked") != Some(objects) {
        return Err(format!(
            "a repeated thaw must ask for nothing and find every object asked for, it returned {again:?}"
        ));
    }
    let delete = change(r, Action::Delete, Some(r.attrs.clone()), None, Some(first.id.clone()));
    match provider.apply(&req(f, &delete, &token)).await {
        Ok(None) => Ok(()),
        other => Err(format!("removing a thaw must do nothing and return no object, it returned {other:?}")),
    }
}

/// An incident's step (`f.resource`: evidence, a quarantine, a cordon, a deny-all policy):
/// taken once however often it is asked (a run killed midway asks again), and, unless it is
/// kept, lifted by its delete, a second delete doing nothing. Evidence is never deleted: its
/// delete is refused.
pub async fn check_incident_step<P: Provider>(provider: &P, f: &Fixture) -> Result<Observed, String> {
    let (r, token, create) = managed(provider, f)?;
    let first = provider
        .apply(&req(f, &create, &token))
        .await
        .map_err(|e| format!("the {} failed: {e}", r.kind))?
        .ok_or_else(|| format!("the {} returned no object", r.kind))?;
    let again = provider
        .apply(&req(f, &create, &token))
        .await
        .map_err(|e| format!("the repeated {} failed: {e}", r.kind))?
        .ok_or_else(|| format!("the repeated {} returned no object", r.kind))?;
    if again != first {
        return Err(format!(
            "a repeated {} must find what the first took, not take more: {first:?} then {again:?}",
            r.kind
        ));
    }
    let delete = change(r, Action::Delete, Some(first.resource.attrs.clone()), None, Some(first.id.clone()));
    match (r.kind.spec().kept, provider.apply(&req(f, &delete, &token)).await) {
        (true, Err(_)) => Ok(first),
        (true, other) => Err(format!("a delete of {} must be refused, it returned {other:?}", r.kind)),
        (false, Ok(None)) => match provider.apply(&req(f, &delete, &token)).await {
            Ok(None) => Ok(first),
            other => Err(format!("lifting a lifted {} must do nothing, it returned {other:?}", r.kind)),
        },
        (false, other) => Err(format!("lifting a {} must return no object, it returned {other:?}", r.kind)),
    }
}
