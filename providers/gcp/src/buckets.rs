//! Cloud Storage backup buckets through the JSON API: one GET per desired bucket and one
//! objects listing for the newest backup's age; insert, patch and delete for apply.
//!
//! The prefix and retention live in the bucket's own lifecycle rule (Delete, `age`,
//! `matchesPrefix`), versioning in `versioning.enabled`: everything drplan compares is read
//! back from the bucket, and labels only mark it as drplan's.

use std::time::{SystemTime, UNIX_EPOCH};

use drplan_core::plan::resource::{Attrs, Kind, Resource, attrs};
use drplan_core::plan::{Observed, Value};
use drplan_core::provider::{ApplyRequest, ErrorClass, ProviderError};
use reqwest::Method;
use serde_json::{Value as Json, json};

use crate::names::{label_value, parse_rfc3339};
use crate::{GcpProvider, attr_int, attr_str};

/// `live` in the spelling `hint` uses when they differ only in case (Cloud Storage answers
/// `EUROPE-WEST1` to a bucket created in `europe-west1`).
fn spelled(live: &str, hint: Option<&str>) -> String {
    match hint {
        Some(h) if h.eq_ignore_ascii_case(live) => h.to_string(),
        _ => live.to_string(),
    }
}

/// The `createdBefore` date of a paused expiry rule: no object matches it.
const PAUSED_BEFORE: &str = "1970-01-01";

/// The bucket as drplan's object at `address`; `hint` is the desired or planned attributes,
/// used only to choose among lifecycle rules and for the spelling of case-insensitive values.
fn observe(bucket: &Json, address: &str, hint: &Attrs) -> Option<Observed> {
    let name = bucket["name"].as_str()?;
    let mut a = attrs([
        ("cloud", "gcp".into()),
        ("bucket", name.into()),
        ("location", spelled(bucket["location"].as_str().unwrap_or(""), attr_str(hint, "location")).into()),
        ("versioning", bucket["versioning"]["enabled"].as_bool().unwrap_or(false).into()),
    ]);
    if let Some(class) = bucket["storageClass"].as_str() {
        a.insert("storage_class".into(), spelled(class, attr_str(hint, "storage_class")).into());
    }
    let rules = bucket["lifecycle"]["rule"].as_array().cloned().unwrap_or_default();
    let deletes: Vec<&Json> = rules.iter().filter(|r| r["action"]["type"].as_str() == Some("Delete")).collect();
    let prefix_of = |r: &Json| r["condition"]["matchesPrefix"][0].as_str().map(str::to_string);
    let wanted_prefix = attr_str(hint, "prefix");
    let rule = deletes
        .iter()
        .find(|r| wanted_prefix.is_some() && prefix_of(r).as_deref() == wanted_prefix)
        .or_else(|| deletes.iter().find(|r| prefix_of(r).is_some()))
        .or(deletes.first());
    if let Some(rule) = rule {
        a.insert("prefix".into(), prefix_of(rule).unwrap_or_default().into());
        if let Some(age) = rule["condition"]["age"].as_i64() {
            a.insert("expire_days".into(), age.into());
        }
    }
    // Paused (see `body`): the rule and its age stay, and it matches nothing.
    let paused = rule.is_some_and(|r| r["condition"]["createdBefore"].as_str() == Some(PAUSED_BEFORE));
    a.insert("expiry_paused".into(), paused.into());
    Some(Observed {
        resource: Resource { address: address.to_string(), kind: Kind::Bucket, region: None, attrs: a },
        id: name.to_string(),
    })
}

/// The insert or patch body for `want`.
fn body(project: &str, address: &str, want: &Attrs, with_location: bool) -> Json {
    let mut b = json!({
        "versioning": {"enabled": matches!(want.get("versioning"), Some(Value::Bool(true)))},
        "labels": {
            "drplan-project": label_value(project),
            // The address does not fit label rules; its sanitized form still tells a person
            // which destination the bucket serves.
            "drplan-destination": label_value(address.trim_start_matches("backup.")),
        },
    });
    let mut condition = json!({});
    if let Some(days) = attr_int(want, "expire_days") {
        condition["age"] = json!(days);
    }
    if let Some(prefix) = attr_str(want, "prefix").filter(|p| !p.is_empty()) {
        condition["matchesPrefix"] = json!([prefix]);
    }
    // Cloud Storage's rules have no disabled state: while an incident holds retention the
    // rule keeps its age and also asks for objects created before 1970, which none is.
    if matches!(want.get("expiry_paused"), Some(Value::Bool(true))) {
        condition["createdBefore"] = json!(PAUSED_BEFORE);
    }
    b["lifecycle"] = json!({"rule": [{"action": {"type": "Delete"}, "condition": condition}]});
    if let Some(class) = attr_str(want, "storage_class") {
        b["storageClass"] = json!(class.to_ascii_uppercase());
    }
    if with_location {
        if let Some(location) = attr_str(want, "location") {
            b["location"] = json!(location);
        }
        if let Some(name) = attr_str(want, "bucket") {
            b["name"] = json!(name);
        }
    }
    b
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl GcpProvider {
    fn bucket_url(&self, name: &str) -> String {
        format!("{}/b/{name}", self.storage)
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<Json>, ProviderError> {
        let what = format!("bucket {name}");
        match self.api.call(Method::GET, &self.bucket_url(name), &[], None, &what).await {
            Ok(reply) => Ok(Some(reply.body)),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The age in seconds of the newest object under `prefix`. Listings come in name order,
    /// not time order, so every page is read (up to a cap that only a prefix shared with
    /// something else would reach: retention bounds what drplan's backups leave there).
    async fn newest_age(&self, name: &str, prefix: &str) -> Result<Option<u64>, ProviderError> {
        const PAGES: usize = 100;
        let url = format!("{}/o", self.bucket_url(name));
        let mut newest: Option<i64> = None;
        let mut token: Option<String> = None;
        for _ in 0..PAGES {
            let mut query = vec![("prefix", prefix.to_string()), ("maxResults", "1000".to_string())];
            if let Some(t) = token.take() {
                query.push(("pageToken", t));
            }
            let reply = self.api.call(Method::GET, &url, &query, None, &format!("objects of bucket {name}")).await?;
            let on_page = reply.body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["timeCreated"].as_str().and_then(parse_rfc3339))
                .max();
            newest = newest.max(on_page);
            match reply.body["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_string()),
                _ => break,
            }
        }
        Ok(newest.map(|t| (now_secs() - t).max(0) as u64))
    }

    /// The bucket a desired resource names, and its newest backup's age.
    pub(crate) async fn refresh_bucket(
        &self,
        desired: &Resource,
    ) -> Result<(Option<Observed>, Option<u64>), ProviderError> {
        let Some(name) = desired.str("bucket") else { return Ok((None, None)) };
        let Some(bucket) = self.get_bucket(name).await? else { return Ok((None, None)) };
        let Some(observed) = observe(&bucket, &desired.address, &desired.attrs) else { return Ok((None, None)) };
        let prefix = desired.str("prefix").unwrap_or("");
        let age = self.newest_age(name, prefix).await?;
        Ok((Some(observed), age))
    }

    fn bucket_name<'a>(request: &'a ApplyRequest<'_>) -> Result<&'a str, ProviderError> {
        let change = request.change;
        [change.after.as_ref(), change.before.as_ref()]
            .into_iter()
            .flatten()
            .find_map(|a| attr_str(a, "bucket"))
            .or(change.id.as_deref())
            .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "the change names no bucket"))
    }

    fn wanted<'a>(request: &'a ApplyRequest<'_>) -> Result<&'a Attrs, ProviderError> {
        request
            .change
            .after
            .as_ref()
            .ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "the change has no attributes"))
    }

    pub(crate) async fn create_bucket(&self, request: &ApplyRequest<'_>) -> Result<Observed, ProviderError> {
        let name = Self::bucket_name(request)?;
        let want = Self::wanted(request)?;
        let address = request.change.address.as_str();
        let url = format!("{}/b", self.storage);
        let query = [("project", self.gcp_project.clone())];
        let what = format!("bucket {name}");
        let created = match self
            .api
            .call(Method::POST, &url, &query, Some(&body(request.project, address, want, true)), &what)
            .await
        {
            Ok(reply) => reply.body,
            // Bucket names are global: a taken name is ours from a crashed run only if it
            // carries this project's label; then it is adopted and brought to `want`.
            Err(e) if e.class == ErrorClass::Conflict => {
                let existing = self.get_bucket(name).await?.unwrap_or(Json::Null);
                if existing["labels"]["drplan-project"].as_str() != Some(label_value(request.project).as_str()) {
                    return Err(ProviderError::new(
                        ErrorClass::Conflict,
                        format!("bucket name {name} is taken by a bucket that is not this project's"),
                    ));
                }
                return self.update_bucket(request).await;
            }
            Err(e) => return Err(e),
        };
        observe(&created, address, want)
            .ok_or_else(|| ProviderError::new(ErrorClass::Failed, format!("{what}: the insert answer has no name")))
    }

    pub(crate) async fn update_bucket(&self, request: &ApplyRequest<'_>) -> Result<Observed, ProviderError> {
        let name = Self::bucket_name(request)?;
        let want = Self::wanted(request)?;
        let address = request.change.address.as_str();
        let what = format!("bucket {name}");
        let reply = self
            .api
            .call(Method::PATCH, &self.bucket_url(name), &[], Some(&body(request.project, address, want, false)), &what)
            .await?;
        observe(&reply.body, address, want)
            .ok_or_else(|| ProviderError::new(ErrorClass::Failed, format!("{what}: the patch answer has no name")))
    }

    /// A bucket's location cannot change: a replacement deletes it (it must be empty) and
    /// creates it again where it should be.
    pub(crate) async fn replace_bucket(&self, request: &ApplyRequest<'_>) -> Result<Observed, ProviderError> {
        self.delete_bucket(request).await?;
        self.create_bucket(request).await
    }

    pub(crate) async fn delete_bucket(&self, request: &ApplyRequest<'_>) -> Result<(), ProviderError> {
        let name = request.change.id.as_deref().map(Ok).unwrap_or_else(|| Self::bucket_name(request))?;
        let what = format!("bucket {name}");
        match self.api.call(Method::DELETE, &self.bucket_url(name), &[], None, &what).await {
            Ok(_) => Ok(()),
            Err(e) if e.class == ErrorClass::NotFound => Ok(()),
            Err(e) if e.class == ErrorClass::Conflict => Err(ProviderError::new(
                ErrorClass::Conflict,
                format!("{what} still holds objects, which Cloud Storage does not delete with it: {}", e.message),
            )),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn adopt_bucket(&self, request: &ApplyRequest<'_>) -> Result<Observed, ProviderError> {
        let name = Self::bucket_name(request)?;
        let hint = request.change.after.clone().or_else(|| request.change.before.clone()).unwrap_or_default();
        let bucket = self
            .get_bucket(name)
            .await?
            .ok_or_else(|| ProviderError::new(ErrorClass::NotFound, format!("bucket {name} does not exist")))?;
        observe(&bucket, &request.change.address, &hint)
            .ok_or_else(|| ProviderError::new(ErrorClass::Failed, format!("bucket {name} has no name")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_read_back_from_lifecycle_and_versioning() {
        let hint = attrs([("location", "europe-west1".into()), ("prefix", "dr/".into())]);
        let bucket = json!({
            "name": "b", "location": "EUROPE-WEST1", "storageClass": "NEARLINE", "versioning": {"enabled": true},
            "lifecycle": {"rule": [
                {"action": {"type": "SetStorageClass"}, "condition": {"age": 1}},
                {"action": {"type": "Delete"}, "condition": {"age": 30, "matchesPrefix": ["dr/"]}},
            ]},
        });
        let o = observe(&bucket, "backup.db.destination.gcs", &hint).map(|o| o.resource.attrs).unwrap_or_default();
        assert_eq!(o.get("location"), Some(&"europe-west1".into()));
        assert_eq!(o.get("prefix"), Some(&"dr/".into()));
        assert_eq!(o.get("expire_days"), Some(&30i64.into()));
        assert_eq!(o.get("versioning"), Some(&true.into()));
        assert_eq!(o.get("storage_class"), Some(&"NEARLINE".into()));
    }
}
