//! Thawing an archived recovery point: every archived object under the point's folder asked
//! back with RestoreObject (the destination's tier, a few days), then waited for until each
//! one's `Restore` header reads `ongoing-request="false"`.
//!
//! Crash-safe without a record of its own: before asking, each object's HeadObject says
//! whether a thaw was asked for already (ongoing or done), and then it is not asked again.
//! A RestoreObject that races another (`RestoreAlreadyInProgress`) counts as asked.

use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{GlacierJobParameters, RestoreRequest, Tier};
use drplan_core::plan::{Attrs, Change, Observed, Resource, Value};
use drplan_core::provider::{ErrorClass, ProviderError, ReadyRequest};
use drplan_retry::RetryPolicy;

use crate::client::send;
use crate::points::{self, Restore};

/// The first wait between two looks at the objects; it doubles up to [`POLL_MAX`]. A thaw
/// takes minutes to hours: the first looks are quick (a thaw already done, an emulator),
/// the later ones cheap.
const POLL_FIRST: Duration = Duration::from_secs(1);
const POLL_MAX: Duration = Duration::from_secs(60);

/// What a thaw change names: the bucket, the point's folder, the tier and the days.
struct Target<'a> {
    bucket: &'a str,
    prefix: &'a str,
    tier: Tier,
    days: i32,
    timeout: Duration,
}

fn target(change: &Change) -> Result<Target<'_>, ProviderError> {
    let attrs =
        change.after.as_ref().ok_or_else(|| ProviderError::new(ErrorClass::Invalid, "a thaw has no attributes"))?;
    let text = |k: &str| match attrs.get(k) {
        Some(Value::Str(s)) if !s.is_empty() => Ok(s.as_str()),
        _ => Err(ProviderError::new(ErrorClass::Invalid, format!("a thaw names no `{k}`"))),
    };
    let int = |k: &str| match attrs.get(k) {
        Some(Value::Int(n)) if *n > 0 => Ok(*n),
        _ => Err(ProviderError::new(ErrorClass::Invalid, format!("a thaw names no `{k}`"))),
    };
    Ok(Target {
        bucket: text("bucket")?,
        prefix: text("prefix")?,
        tier: Tier::from(text("tier")?),
        days: i32::try_from(int("days")?).unwrap_or(i32::MAX),
        timeout: Duration::from_secs(int("timeout")? as u64),
    })
}

/// The keys under the point's folder whose storage class needs a thaw.
async fn archived(client: &Client, bucket: &str, prefix: &str) -> Result<Vec<String>, ProviderError> {
    Ok(points::list_folder(client, bucket, prefix)
        .await?
        .iter()
        .filter(|o| o.storage_class().is_some_and(|c| drplan_core::recovery::needs_thaw(c.as_str())))
        .filter_map(|o| o.key().map(str::to_owned))
        .collect())
}

/// Asks for every archived object of the point that has no thaw asked for yet. Returns the
/// thaw as it now stands: its attributes, with how many objects were asked for now and how
/// many were found asked for already.
pub async fn apply(client: &Client, change: &Change) -> Result<Option<Observed>, ProviderError> {
    let t = target(change)?;
    let keys = archived(client, t.bucket, t.prefix).await?;
    let (mut asked, mut found) = (0i64, 0i64);
    for key in &keys {
        if points::restore_status(client, t.bucket, key).await? != Restore::None {
            found += 1;
            continue;
        }
        let request = RestoreRequest::builder()
            .days(t.days)
            .glacier_job_parameters(
                GlacierJobParameters::builder()
                    .tier(t.tier.clone())
                    .build()
                    .map_err(|e| ProviderError::new(ErrorClass::Invalid, format!("RestoreObject {key}: {e}")))?,
            )
            .build();
        let sent = send(&RetryPolicy::DEFAULT, &format!("RestoreObject {}/{key}", t.bucket), || {
            client.restore_object().bucket(t.bucket).key(key).restore_request(request.clone()).send()
        })
        .await;
        match sent {
            Ok(_) => asked += 1,
            // Asked for by another run between the look and the request.
            Err(e) if e.class == ErrorClass::Conflict && e.message.contains("RestoreAlreadyInProgress") => found += 1,
            Err(e) => return Err(e),
        }
    }
    let mut attrs: Attrs = change.after.clone().unwrap_or_default();
    attrs.insert("objects".into(), (keys.len() as i64).into());
    attrs.insert("asked".into(), asked.into());
    attrs.insert("found_asked".into(), found.into());
    tracing::info!(bucket = t.bucket, prefix = t.prefix, objects = keys.len(), asked, found, "thaw asked for");
    Ok(Some(Observed {
        resource: Resource { address: change.address.clone(), kind: change.kind, region: change.region.clone(), attrs },
        id: format!("s3://{}/{}", t.bucket, t.prefix),
    }))
}

/// Waits until every archived object of the point can be read, within the thaw's own
/// `timeout`, reporting `3/12 objects thawed` as it goes. An object whose thaw is gone
/// (never asked, or its copy expired) is an error: waiting would never end.
pub async fn wait(client: &Client, request: &ReadyRequest<'_>) -> Result<(), ProviderError> {
    let t = target(request.change)?;
    let keys = archived(client, t.bucket, t.prefix).await?;
    let started = Instant::now();
    let mut pending: Vec<&String> = keys.iter().collect();
    let mut poll = POLL_FIRST;
    let mut said = String::new();
    loop {
        let mut still = Vec::new();
        for key in pending {
            match points::restore_status(client, t.bucket, key).await? {
                Restore::Done => {}
                Restore::Ongoing => still.push(key),
                Restore::None => {
                    return Err(ProviderError::new(
                        ErrorClass::Conflict,
                        format!(
                            "s3://{}/{key} has no thaw under way (its thawed copy may have expired): apply again to ask for it",
                            t.bucket
                        ),
                    ));
                }
            }
        }
        pending = still;
        let now = format!("{}/{} objects thawed", keys.len() - pending.len(), keys.len());
        if now != said {
            (request.progress)(format!("{now} ({}s)", started.elapsed().as_secs()));
            said = now;
        }
        if pending.is_empty() {
            return Ok(());
        }
        if started.elapsed() + poll > t.timeout {
            return Err(ProviderError::new(
                ErrorClass::Failed,
                format!(
                    "the thaw of s3://{}/{} did not finish within {}s: {said}; S3 keeps thawing, and the next apply waits for it again",
                    t.bucket,
                    t.prefix,
                    t.timeout.as_secs()
                ),
            ));
        }
        tokio::time::sleep(poll).await;
        poll = (poll * 2).min(POLL_MAX);
    }
}
