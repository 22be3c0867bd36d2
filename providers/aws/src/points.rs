//! Recovery points in S3: the "folders" directly under a destination's prefix, each point's
//! objects as ListObjectsV2 describes them, and its manifest's content.
//!
//! Discovery lists with `delimiter=/`, so S3 answers one common prefix per point (up to
//! 1,000 per page) instead of every object. A point is read with one listing of its folder
//! (all pages, no delimiter: objects in sub-folders are included under their path relative
//! to the point, `db/part-0001`, so a manifest can vouch for them) and one GetObject of the
//! manifest when it is there. ListObjectsV2 does not return checksum values, only the
//! algorithm, so `crc32c` stays `None`: a single-part upload is verified by its ETag (its
//! MD5), a multipart upload by its size.
//!
//! The listing gives each object's storage class. An archived object (Glacier Flexible
//! Retrieval, Deep Archive) cannot be read before it is thawed, so an archived manifest is
//! read only once a HeadObject shows its thaw finished; otherwise the point is judged by
//! its listing alone (see `recovery::PointStatus::Archived`).

use aws_sdk_s3::Client;
use aws_sdk_s3::types::Object;
use drplan_core::plan::Resource;
use drplan_core::provider::{ErrorClass, ProviderError};
use drplan_core::recovery::{ObjectMeta, PointContents};

use crate::client::send;
use drplan_retry::RetryPolicy;

/// The largest manifest read. A manifest lists names, sizes and checksums: even thousands
/// of objects fit in far less, so anything larger is not a manifest and is not loaded.
pub const MANIFEST_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// A destination's bucket and its prefix as a folder (`dr/`; empty for the bucket's root).
/// A prefix without a trailing `/` gets one: a point is a folder directly under it.
pub fn location(bucket: &Resource) -> Result<(&str, String), ProviderError> {
    let name = bucket.str("bucket").ok_or_else(|| {
        ProviderError::new(ErrorClass::Invalid, "the backup destination names no bucket").at(&bucket.address)
    })?;
    Ok((name, folder(bucket.str("prefix").unwrap_or_default())))
}

fn folder(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') { prefix.to_owned() } else { format!("{prefix}/") }
}

/// The names of the folders directly under the prefix, and the ListObjectsV2 calls made.
pub async fn list_points(client: &Client, bucket: &str, prefix: &str) -> Result<(Vec<String>, u32), ProviderError> {
    let mut names = Vec::new();
    let mut calls = 0u32;
    let mut token: Option<String> = None;
    loop {
        calls += 1;
        let page = token.take();
        let out = send(&RetryPolicy::DEFAULT, &format!("ListObjectsV2 {bucket}/{prefix}"), || {
            client
                .list_objects_v2()
                .bucket(bucket)
                .prefix(prefix)
                .delimiter("/")
                .set_continuation_token(page.clone())
                .send()
        })
        .await?;
        names.extend(
            out.common_prefixes()
                .iter()
                .filter_map(|p| p.prefix())
                .filter_map(|p| p.strip_prefix(prefix))
                .map(|p| p.trim_end_matches('/'))
                // `dr//x` makes an empty folder name: nothing a backup writes.
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
        );
        match out.next_continuation_token() {
            Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_owned()),
            _ => break,
        }
    }
    Ok((names, calls))
}

/// Every object under `folder`, sub-folders included: all pages of ListObjectsV2, no
/// delimiter.
pub async fn list_folder(client: &Client, bucket: &str, folder: &str) -> Result<Vec<Object>, ProviderError> {
    let mut objects = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = token.take();
        let out = send(&RetryPolicy::DEFAULT, &format!("ListObjectsV2 {bucket}/{folder}"), || {
            client.list_objects_v2().bucket(bucket).prefix(folder).set_continuation_token(page.clone()).send()
        })
        .await?;
        objects.extend(out.contents().iter().cloned());
        match out.next_continuation_token() {
            Some(next) if out.is_truncated() == Some(true) => token = Some(next.to_owned()),
            _ => break,
        }
    }
    Ok(objects)
}

/// The objects of `point` (names relative to its folder) and, when `manifest` names one of
/// them, its content.
pub async fn read_point(
    client: &Client,
    bucket: &str,
    prefix: &str,
    point: &str,
    manifest: Option<&str>,
) -> Result<PointContents, ProviderError> {
    let folder = format!("{prefix}{point}/");
    let objects: Vec<ObjectMeta> =
        list_folder(client, bucket, &folder).await?.iter().filter_map(|o| meta(o, &folder)).collect();
    let mut manifest_archived = false;
    let manifest = match manifest.and_then(|m| objects.iter().find(|o| o.name == m)) {
        Some(m) if m.archived().is_some() && !thawed(client, bucket, &format!("{folder}{}", m.name)).await? => {
            manifest_archived = true;
            None
        }
        Some(m) => Some(read_manifest(client, bucket, &format!("{folder}{}", m.name), m.size).await?),
        None => None,
    };
    Ok(PointContents { objects, manifest, manifest_archived })
}

/// Whether the archived object `key` has a thawed copy to read (its `Restore` header says
/// the request finished), by one HeadObject.
pub async fn thawed(client: &Client, bucket: &str, key: &str) -> Result<bool, ProviderError> {
    Ok(restore_status(client, bucket, key).await? == Restore::Done)
}

/// Where an archived object's thaw stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    /// Never asked for (or its copy expired).
    None,
    /// Asked for, not finished: `ongoing-request="true"`.
    Ongoing,
    /// A thawed copy can be read: `ongoing-request="false"`.
    Done,
}

/// The `x-amz-restore` header of `key`, read by HeadObject (which archived objects answer).
pub async fn restore_status(client: &Client, bucket: &str, key: &str) -> Result<Restore, ProviderError> {
    let out = send(&RetryPolicy::DEFAULT, &format!("HeadObject {bucket}/{key}"), || {
        client.head_object().bucket(bucket).key(key).send()
    })
    .await?;
    Ok(parse_restore(out.restore()))
}

/// Reads `ongoing-request="true"` / `ongoing-request="false", expiry-date="…"`.
pub fn parse_restore(header: Option<&str>) -> Restore {
    match header {
        None => Restore::None,
        Some(h) if h.replace(' ', "").contains("ongoing-request=\"false\"") => Restore::Done,
        Some(_) => Restore::Ongoing,
    }
}

/// One listed object; `None` for a "folder" marker (a key ending in `/`, as consoles create).
fn meta(o: &Object, folder: &str) -> Option<ObjectMeta> {
    let name = o.key()?.strip_prefix(folder)?;
    if name.is_empty() || name.ends_with('/') {
        return None;
    }
    Some(ObjectMeta {
        name: name.to_owned(),
        size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        md5: o.e_tag().and_then(md5_of_etag),
        crc32c: None,
        modified: o.last_modified().map(|t| t.secs()).unwrap_or(0),
        class: o.storage_class().map(|c| c.as_str().to_owned()),
    })
}

/// The MD5 an ETag stands for: only a single-part upload's ETag is the content's MD5 (a
/// multipart upload's is `<md5 of the parts' md5s>-<parts>`; SSE-KMS objects' is neither,
/// and those are not told apart by the listing, which the manifest's size check still covers).
pub fn md5_of_etag(etag: &str) -> Option<String> {
    let hex = etag.trim_matches('"');
    (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hex.to_ascii_lowercase())
}

async fn read_manifest(client: &Client, bucket: &str, key: &str, listed: u64) -> Result<Vec<u8>, ProviderError> {
    let too_large = |size: u64| {
        ProviderError::new(
            ErrorClass::Invalid,
            format!(
                "the manifest s3://{bucket}/{key} is {size} bytes, more than a manifest holds \
                 ({MANIFEST_MAX_BYTES} at most): not read"
            ),
        )
    };
    if listed > MANIFEST_MAX_BYTES {
        return Err(too_large(listed));
    }
    let out = send(&RetryPolicy::DEFAULT, &format!("GetObject {bucket}/{key}"), || {
        client.get_object().bucket(bucket).key(key).send()
    })
    .await?;
    // Rewritten since it was listed: the length the answer announces is checked again.
    if let Some(size) = out.content_length().and_then(|s| u64::try_from(s).ok())
        && size > MANIFEST_MAX_BYTES
    {
        return Err(too_large(size));
    }
    let mut body = out.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.try_next().await.map_err(|e| {
        ProviderError::new(ErrorClass::Unreachable, format!("GetObject {bucket}/{key}: the answer was cut short: {e}"))
    })? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > MANIFEST_MAX_BYTES {
            return Err(too_large(bytes.len() as u64));
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::{Restore, folder, md5_of_etag, parse_restore};

    #[test]
    fn restore_headers_say_where_a_thaw_stands() {
        assert_eq!(parse_restore(None), Restore::None);
        assert_eq!(parse_restore(Some("ongoing-request=\"true\"")), Restore::Ongoing);
        assert_eq!(
            parse_restore(Some("ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\"")),
            Restore::Done
        );
    }

    #[test]
    fn only_single_part_etags_are_md5s() {
        assert_eq!(
            md5_of_etag("\"9E107D9D372BB6826BD81D3542A419D6\"").as_deref(),
            Some("9e107d9d372bb6826bd81d3542a419d6")
        );
        assert_eq!(md5_of_etag("\"d41d8cd98f00b204e9800998ecf8427e-3\""), None);
        assert_eq!(md5_of_etag("\"\""), None);
    }

    #[test]
    fn a_prefix_is_a_folder() {
        assert_eq!(folder("dr/"), "dr/");
        assert_eq!(folder("dr"), "dr/");
        assert_eq!(folder(""), "");
    }
}
