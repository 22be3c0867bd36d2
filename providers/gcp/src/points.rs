//! Recovery points in Cloud Storage: the "folders" directly under a destination's prefix
//! (`objects.list` with `delimiter=/` answers them as `prefixes`, so the cost grows with the
//! number of points, not of objects), a point's objects with their `md5Hash` and `crc32c`,
//! and its manifest's content (`alt=media`).
//!
//! Objects in sub-folders of a point are included under their path relative to the point
//! (`db/part-0001`), so a manifest can vouch for them.

use base64::Engine as _;
use drplan_core::plan::Resource;
use drplan_core::provider::{ErrorClass, ProviderError};
use drplan_core::recovery::{ObjectMeta, PointContents};
use reqwest::Method;
use serde_json::Value as Json;

use crate::GcpProvider;
use crate::names::parse_rfc3339;

/// The largest manifest read: a manifest lists names, sizes and checksums, so anything
/// larger is not one and is not loaded.
pub const MANIFEST_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// Objects or prefixes per listing page: Cloud Storage's maximum.
const PAGE: &str = "1000";

impl GcpProvider {
    /// A destination's bucket and its prefix as a folder (`db/`; empty for the root). A
    /// prefix without a trailing `/` gets one: a point is a folder directly under it.
    fn destination<'a>(&self, bucket: &'a Resource) -> Result<(&'a str, String), ProviderError> {
        let invalid = |why: &str| ProviderError::new(ErrorClass::Invalid, why).at(&bucket.address);
        if bucket.str("cloud") != Some("gcp") {
            return Err(invalid("the gcp provider holds recovery points only in Cloud Storage"));
        }
        let name = bucket.str("bucket").ok_or_else(|| invalid("the backup destination names no bucket"))?;
        let prefix = bucket.str("prefix").unwrap_or_default();
        let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_owned() } else { format!("{prefix}/") };
        Ok((name, prefix))
    }

    /// One `objects.list` page of `bucket` under `prefix`, with a delimiter or without.
    async fn list_page(
        &self,
        bucket: &str,
        prefix: &str,
        delimited: bool,
        token: Option<String>,
    ) -> Result<Json, ProviderError> {
        let url = format!("{}/b/{bucket}/o", self.storage);
        let mut query = vec![("prefix", prefix.to_owned()), ("maxResults", PAGE.to_owned())];
        if delimited {
            query.push(("delimiter", "/".to_owned()));
        }
        if let Some(t) = token {
            query.push(("pageToken", t));
        }
        let what = format!("objects of gs://{bucket}/{prefix}");
        Ok(self.api.call(Method::GET, &url, &query, None, &what).await?.body)
    }

    pub(crate) async fn points_of(&self, bucket: &Resource) -> Result<(Vec<String>, u32), ProviderError> {
        let (name, prefix) = self.destination(bucket)?;
        let mut names = Vec::new();
        let mut calls = 0u32;
        let mut token = None;
        loop {
            calls += 1;
            let page = self.list_page(name, &prefix, true, token.take()).await?;
            names.extend(
                page["prefixes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Json::as_str)
                    .filter_map(|p| p.strip_prefix(prefix.as_str()))
                    .map(|p| p.trim_end_matches('/'))
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned),
            );
            match page["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok((names, calls))
    }

    pub(crate) async fn point_of(
        &self,
        bucket: &Resource,
        point: &str,
        manifest: Option<&str>,
    ) -> Result<PointContents, ProviderError> {
        let (name, prefix) = self.destination(bucket)?;
        let folder = format!("{prefix}{point}/");
        let mut objects = Vec::new();
        let mut token = None;
        loop {
            let page = self.list_page(name, &folder, false, token.take()).await?;
            objects.extend(page["items"].as_array().into_iter().flatten().filter_map(|o| meta(o, &folder)));
            match page["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        let manifest = match manifest.and_then(|m| objects.iter().find(|o| o.name == m)) {
            Some(m) => {
                let key = format!("{folder}{}", m.name);
                let what = format!("the manifest gs://{name}/{key}");
                if m.size > MANIFEST_MAX_BYTES {
                    return Err(ProviderError::new(
                        ErrorClass::Invalid,
                        format!("{what} is {} bytes, more than {MANIFEST_MAX_BYTES}: not read", m.size),
                    ));
                }
                Some(self.api.media(&self.object_url(name, &key)?, MANIFEST_MAX_BYTES, &what).await?)
            }
            None => None,
        };
        // Every Cloud Storage class is read at once: nothing is ever archived out of reach.
        Ok(PointContents { objects, manifest, manifest_archived: false })
    }

    /// `.../b/BUCKET/o/NAME` with the name as one path segment (its `/` escaped).
    fn object_url(&self, bucket: &str, key: &str) -> Result<String, ProviderError> {
        let mut url = reqwest::Url::parse(&format!("{}/b/{bucket}/o", self.storage)).map_err(|e| {
            ProviderError::new(ErrorClass::Invalid, format!("the Cloud Storage endpoint is not a URL: {e}"))
        })?;
        url.path_segments_mut()
            .map_err(|()| ProviderError::new(ErrorClass::Invalid, "the Cloud Storage endpoint is not a URL"))?
            .push(key);
        Ok(url.into())
    }
}

/// One listed object; `None` for a "folder" placeholder (a name ending in `/`).
fn meta(o: &Json, folder: &str) -> Option<ObjectMeta> {
    let name = o["name"].as_str()?.strip_prefix(folder)?;
    if name.is_empty() || name.ends_with('/') {
        return None;
    }
    Some(ObjectMeta {
        name: name.to_owned(),
        // The JSON API writes 64-bit numbers as strings.
        size: o["size"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0),
        md5: o["md5Hash"].as_str().and_then(hex_of_base64),
        crc32c: o["crc32c"].as_str().filter(|c| !c.is_empty()).map(str::to_owned),
        modified: o["updated"].as_str().or(o["timeCreated"].as_str()).and_then(parse_rfc3339).unwrap_or(0),
        class: o["storageClass"].as_str().map(str::to_owned),
    })
}

/// `md5Hash` is the digest in base64; the manifest and S3 write it in lowercase hex.
fn hex_of_base64(b64: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_described_relative_to_the_point() {
        let o = serde_json::json!({
            "name": "db/20261201_070000/base/dump.gpg", "size": "12",
            "md5Hash": "nhB9nTcrtoJr2B01QqQZ1g==", "crc32c": "yZRlqg==", "updated": "2026-12-01T07:00:05.120Z",
        });
        let m = meta(&o, "db/20261201_070000/").expect("an object");
        assert_eq!(m.name, "base/dump.gpg");
        assert_eq!(m.size, 12);
        assert_eq!(m.md5.as_deref(), Some("9e107d9d372bb6826bd81d3542a419d6"));
        assert_eq!(m.crc32c.as_deref(), Some("yZRlqg=="));
        assert_eq!(drplan_core::recovery::rfc3339(m.modified), "2026-12-01T07:00:05Z");
        assert!(meta(&serde_json::json!({"name": "db/20261201_070000/"}), "db/20261201_070000/").is_none());
    }
}
