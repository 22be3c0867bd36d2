//! The S3 backend: the state is one object, written only if its ETag is still the one this
//! run read (`If-Match`), and locked by a second object created only if absent
//! (`If-None-Match: *`). S3 does the compare-and-swap, so no lock table is needed.
//!
//! The backend is called from synchronous code and from inside apply's async runtime, so it
//! owns a small runtime of its own and drives each request on a scoped thread: blocking on a
//! runtime from within another one would panic.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use drplan_retry::RetryPolicy;

use crate::local::describe_change;
use crate::lock::{LeaseCheck, Lock, LockError, LockInfo, new_info, taken};
use crate::{Backend, StateError, StateFile};

/// Where the state object is, as the `backend "s3"` block says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    pub key: String,
    pub region: String,
    /// An S3-compatible endpoint instead of AWS (an emulator, MinIO); implies path-style URLs.
    pub endpoint: Option<String>,
}

/// How often a waiting lock asks again.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// The lease of a lock object unless the configuration sets one (`lock_lease`): longer than
/// the longest single call drplan makes (20 s, the attempt timeout) plus clock drift between
/// a holder's pauses, as Patroni sizes its leader key's TTL against its loop.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// When a taker first saw each lock object (bucket, key) unchanged under an ETag: expiry is
/// judged on the taker's own monotonic clock from then, never by comparing clocks across
/// machines (as Kubernetes' leader election does). Kept for the process, so a watcher's
/// rounds keep counting.
static SEEN_HELD: Mutex<BTreeMap<LockKey, (Option<String>, Instant)>> = Mutex::new(BTreeMap::new());

/// A lock object: its bucket and key.
type LockKey = (String, String);

/// The user metadata of a state object naming the copies its write could not reach, each
/// with the serial it was at most at then: `bucket=serial,bucket=serial`.
const LOST_METADATA: &str = "drplan-lost";

/// Copies a write could not reach, by name, each with the highest serial it could hold then.
pub(crate) type Lost = BTreeMap<String, u64>;

/// A failed request in words, and whether the store answered at all.
#[derive(Debug)]
pub(crate) struct Failure {
    pub reason: String,
    pub unreachable: bool,
}

pub struct S3Backend {
    inner: Arc<Inner>,
}

/// What a state object looked like when this backend last read or wrote it.
#[derive(Debug, Clone)]
struct Seen {
    etag: Option<String>,
    identity: (String, u64),
}

struct Inner {
    at: S3Location,
    /// The lease of the lock objects this backend takes.
    lease: Duration,
    client: aws_sdk_s3::Client,
    runtime: Option<tokio::runtime::Runtime>,
    /// `None` before the first read; `Some(None)` when there was no state object.
    seen: Mutex<Option<Option<Seen>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Dropping a runtime may happen inside apply's runtime, where blocking is refused.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl S3Backend {
    /// A backend for `at`, with credentials from the usual AWS chain (environment, profiles,
    /// SSO, instance metadata). Nothing is sent until the state is read.
    pub fn new(at: S3Location) -> Result<S3Backend, StateError> {
        S3Backend::with_credentials(at, None)
    }

    /// Like [`S3Backend::new`], with these credentials instead of the chain's when given
    /// (an emulator's static keys, without touching the process environment).
    pub fn with_credentials(at: S3Location, credentials: Option<StaticCredentials>) -> Result<S3Backend, StateError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("drplan-state-s3")
            .enable_all()
            .build()
            .map_err(|e| StateError::Unreadable {
                location: url(&at),
                reason: format!("cannot start a runtime: {e}"),
            })?;
        let client = on_runtime(&runtime, client(&at, credentials)).map_err(|_| StateError::Unreadable {
            location: url(&at),
            reason: "cannot load AWS configuration".into(),
        })?;
        Ok(S3Backend {
            inner: Arc::new(Inner { at, lease: DEFAULT_LEASE, client, runtime: Some(runtime), seen: Mutex::new(None) }),
        })
    }

    /// The same backend, its locks held under `lease` (at least 3 s: a renewal every third
    /// of it must have time to arrive).
    pub fn with_lease(mut self, lease: Duration) -> S3Backend {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.lease = lease.max(Duration::from_secs(3));
        }
        self
    }

    /// The lease of the lock objects this backend takes.
    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    pub fn at(&self) -> &S3Location {
        &self.inner.at
    }
}

/// Runs `f` to completion on `rt` from any context: on a scoped thread of its own, since
/// blocking on a runtime from inside another one (apply's) would panic. `Err` carries a panic.
fn on_runtime<T: Send>(rt: &tokio::runtime::Runtime, f: impl Future<Output = T> + Send) -> std::thread::Result<T> {
    let handle = rt.handle().clone();
    std::thread::scope(|s| s.spawn(move || handle.block_on(f)).join())
}

/// An access key pair given explicitly, in place of the credential chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl StaticCredentials {
    pub fn new(access_key_id: &str, secret_access_key: &str) -> StaticCredentials {
        StaticCredentials { access_key_id: access_key_id.into(), secret_access_key: secret_access_key.into() }
    }
}

async fn client(at: &S3Location, credentials: Option<StaticCredentials>) -> aws_sdk_s3::Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(Region::new(at.region.clone()));
    if let Some(endpoint) = &at.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(c) = credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            c.access_key_id,
            c.secret_access_key,
            None,
            None,
            "drplan-static",
        ));
    }
    let base = loader.load().await;
    // State requests are few and small; a slow S3 should fail a run in seconds, not hang it.
    // The SDK does not retry: [`send`] does, under core's one policy.
    let config = aws_sdk_s3::config::Builder::from(&base)
        .force_path_style(at.endpoint.is_some())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        )
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

fn url(at: &S3Location) -> String {
    format!("s3://{}/{}", at.bucket, at.key)
}

impl Inner {
    fn lock_key(&self) -> String {
        format!("{}.lock", self.at.key)
    }

    /// Runs `f` to completion on this backend's runtime, from any context.
    fn block<T: Send>(&self, f: impl Future<Output = T> + Send) -> T {
        let Some(rt) = self.runtime.as_ref() else { unreachable!("the runtime lives as long as the backend") };
        on_runtime(rt, f).unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// An object's bytes, ETag and copies its writer could not reach, or `None` when it
    /// does not exist.
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Option<String>, Lost)>, Failure> {
        let answer = send(|| self.client.get_object().bucket(&self.at.bucket).key(key).send()).await;
        match answer {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_string);
                let lost = out.metadata().and_then(|m| m.get(LOST_METADATA)).map(|v| parse_lost(v)).unwrap_or_default();
                let body = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| Failure { reason: format!("the download broke off: {e}"), unreachable: true })?;
                Ok(Some((body.into_bytes().to_vec(), etag, lost)))
            }
            // A missing bucket is a 404 too, but a setup error rather than an empty state.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_key() || (s.code().is_none() && status(&e) == Some(404))) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.explain(&e)),
        }
    }

    /// The lock object's holder and ETag.
    async fn holder(&self) -> Result<Option<(LockInfo, Option<String>)>, LockError> {
        let found = self.get(&self.lock_key()).await.map_err(|f| self.lock_io(f))?;
        let Some((bytes, etag, _)) = found else { return Ok(None) };
        let info = serde_json::from_slice(&bytes).map_err(|e| {
            self.lock_io(Failure {
                reason: format!(
                    "the lock object s3://{}/{} is not a drplan lock ({e}); delete it by hand once no run is active",
                    self.at.bucket,
                    self.lock_key()
                ),
                unreachable: false,
            })
        })?;
        Ok(Some((info, etag)))
    }

    async fn delete_lock(&self, etag: Option<&str>) -> Result<(), Failure> {
        // Only the lock this run saw (`If-Match`): one taken since by someone else stays.
        let request = || {
            self.client
                .delete_object()
                .bucket(&self.at.bucket)
                .key(self.lock_key())
                .set_if_match(etag.map(str::to_owned))
                .send()
        };
        send(request).await.map(|_| ()).map_err(|e| self.explain(&e))
    }

    fn lock_io(&self, f: Failure) -> LockError {
        let location = format!("s3://{}/{}", self.at.bucket, self.lock_key());
        if f.unreachable {
            LockError::Unreachable { location, reason: f.reason }
        } else {
            LockError::Io { location, reason: f.reason }
        }
    }

    /// A failed read as a state error, unreachable or not.
    fn unreadable(&self, f: Failure) -> StateError {
        let location = url(&self.at);
        if f.unreachable {
            StateError::Unreachable { location, reason: f.reason }
        } else {
            StateError::Unreadable { location, reason: f.reason }
        }
    }

    /// An S3 failure in words, with what to do about the usual ones.
    fn explain<E: ProvideErrorMetadata + std::error::Error + 'static>(&self, e: &SdkError<E, HttpResponse>) -> Failure {
        let reason = self.explain_reason(e);
        Failure {
            reason,
            unreachable: matches!(
                e,
                SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_)
            ),
        }
    }

    fn explain_reason<E: ProvideErrorMetadata + std::error::Error + 'static>(
        &self,
        e: &SdkError<E, HttpResponse>,
    ) -> String {
        let bucket = &self.at.bucket;
        match e {
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
                let whom = self.at.endpoint.clone().unwrap_or_else(|| format!("S3 in {}", self.at.region));
                format!("cannot reach {whom}; check the network and the backend's region and endpoint")
            }
            SdkError::ServiceError(s) => {
                let err = s.err();
                match err.code() {
                    Some("NoSuchBucket") => format!(
                        "the bucket `{bucket}` does not exist; create it (with versioning on, to keep every earlier state) before the first apply"
                    ),
                    Some("AccessDenied" | "Forbidden") => format!(
                        "access denied; the credentials need s3:GetObject, s3:PutObject and s3:DeleteObject on s3://{bucket}/{} and its .lock object",
                        self.at.key
                    ),
                    Some(code) => format!("S3 answered {code}: {}", err.message().unwrap_or("no message")),
                    None => format!("S3 answered HTTP {}", status(e).map_or("?".to_string(), |s| s.to_string())),
                }
            }
            other => format!("the S3 request failed: {other}"),
        }
    }
}

/// `bucket=serial,...` as written in [`LOST_METADATA`]; what cannot be read is left out.
fn parse_lost(text: &str) -> Lost {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .filter_map(|(name, serial)| Some((name.trim().to_string(), serial.trim().parse().ok()?)))
        .collect()
}

fn format_lost(lost: &Lost) -> String {
    lost.iter().map(|(name, serial)| format!("{name}={serial}")).collect::<Vec<_>>().join(",")
}

/// Sends one request (`request` builds and sends it afresh for each attempt) under the
/// retry policy: throttling, server errors and lost connections retried with backoff; a
/// connection that cannot be made is not, so a copy in a lost region costs one connect
/// timeout.
async fn send<T, E, F, Fut>(request: F) -> Result<T, SdkError<E, HttpResponse>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    drplan_retry::run_with(&RetryPolicy::DEFAULT, retry_failure, request).await
}

/// What a failed S3 request says about sending it again.
fn retry_failure<E>(e: &SdkError<E, HttpResponse>) -> drplan_retry::Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    use drplan_retry::Failure as F;
    match e {
        SdkError::DispatchFailure(_) if drplan_retry::connect_failed(e) => F::Unconnected,
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => F::Transient,
        _ => match (e.code(), status(e)) {
            (Some("SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded"), _) | (_, Some(429)) => {
                F::Throttled
            }
            (_, Some(s)) if drplan_core::provider::transient_status(s) => F::Transient,
            _ => F::Final,
        },
    }
}

/// The HTTP status of a failed request, when one came back.
fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// S3 refused a conditional request: 412 when the condition failed, 409 when another
/// conditional write to the same key was in flight.
fn condition_failed<E>(e: &SdkError<E, HttpResponse>) -> bool {
    matches!(status(e), Some(412 | 409))
}

/// The lease of a lock object this run holds: the ETag its last write left, when that write
/// was made, and whether another run took the lock over.
struct Lease {
    duration: Duration,
    etag: Mutex<Option<String>>,
    renewed: Mutex<Instant>,
    lost: AtomicBool,
    done: AtomicBool,
    /// Held by a renewal from its request until its new ETag is noted: a release waits for
    /// it, or it would delete with an ETag the renewal just made stale.
    renewing: Mutex<()>,
}

impl Lease {
    fn new(duration: Duration, etag: Option<String>) -> Arc<Lease> {
        Arc::new(Lease {
            duration,
            etag: Mutex::new(etag),
            renewed: Mutex::new(Instant::now()),
            lost: AtomicBool::new(false),
            done: AtomicBool::new(false),
            renewing: Mutex::new(()),
        })
    }

    fn etag(&self) -> Option<String> {
        self.etag.lock().map(|e| e.clone()).unwrap_or(None)
    }

    /// Holds while no other run took the lock over and the last renewal is recent enough
    /// that a call started now ends within the lease: two thirds of it, the rest being the
    /// margin for the call itself and the taker's clock.
    fn check(&self) -> Result<(), String> {
        if self.lost.load(Ordering::SeqCst) {
            return Err("this run lost the state lock's lease: another run took the lock over".into());
        }
        let age = self.renewed.lock().map(|r| r.elapsed()).unwrap_or(self.duration);
        if age >= self.duration * 2 / 3 {
            return Err(format!(
                "this run lost the state lock's lease: not renewed for {:.1}s (the lease is {}s), another run may take it over",
                age.as_secs_f64(),
                self.duration.as_secs()
            ));
        }
        Ok(())
    }
}

/// Renews `lease` every third of its duration, rewriting the lock object only if it is
/// still the one this run wrote (`If-Match`), until the lock is given back. A refused
/// renewal means another run took the lock over: the lease is lost for good.
fn renew(inner: Arc<Inner>, lease: Arc<Lease>, mut info: LockInfo) {
    std::thread::Builder::new()
        .name("drplan-state-lease".into())
        .spawn(move || {
            let every = lease.duration / 3;
            loop {
                let next = Instant::now() + every;
                while Instant::now() < next {
                    if lease.done.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100).min(next.saturating_duration_since(Instant::now())));
                }
                let _renewing = lease.renewing.lock();
                // Given back meanwhile: nothing more to renew.
                if lease.done.load(Ordering::SeqCst) {
                    return;
                }
                info.renewals += 1;
                let Ok(body) = serde_json::to_vec_pretty(&info) else { return };
                let etag = lease.etag();
                let put = || {
                    inner
                        .client
                        .put_object()
                        .bucket(&inner.at.bucket)
                        .key(inner.lock_key())
                        .content_type("application/json")
                        .set_if_match(etag.clone())
                        .body(ByteStream::from(body.clone()))
                        .send()
                };
                let started = Instant::now();
                match inner.block(send(put)) {
                    Ok(out) => {
                        if let Ok(mut e) = lease.etag.lock() {
                            *e = out.e_tag().map(str::to_string);
                        }
                        if let Ok(mut r) = lease.renewed.lock() {
                            // Counted from when the request left: the lease ran from then.
                            *r = started;
                        }
                        tracing::trace!(id = %info.id, renewals = info.renewals, "state lock lease renewed");
                    }
                    Err(e) if condition_failed(&e) || status(&e) == Some(404) => {
                        lease.lost.store(true, Ordering::SeqCst);
                        tracing::warn!(id = %info.id, "state lock lease lost: another run took the lock over");
                        return;
                    }
                    // The store did not answer: the lease runs out unless a later renewal
                    // arrives, and the check says so.
                    Err(_) => {}
                }
            }
        })
        .ok();
}

/// The lock object this run holds, given back by deleting it: only while it is still the
/// one this run last wrote (its ETag), so a lock taken over since by another run stays.
fn release(inner: &Arc<Inner>, lease: Arc<Lease>) -> impl FnOnce() -> Result<(), String> + Send + Sync + 'static {
    let inner = inner.clone();
    move || {
        lease.done.store(true, Ordering::SeqCst);
        // A renewal under way ends first: its new ETag is the one to delete under.
        let _renewing = lease.renewing.lock();
        if lease.lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        inner
            .block(inner.delete_lock(lease.etag().as_deref()))
            .map_err(|f| format!("s3://{}/{}: {}", inner.at.bucket, inner.lock_key(), f.reason))
    }
}

/// A lock held under `lease`, renewed from now on.
fn leased(inner: &Arc<Inner>, info: LockInfo, etag: Option<String>) -> Lock {
    let lease = Lease::new(inner.lease, etag);
    renew(inner.clone(), lease.clone(), info.clone());
    let check = lease.clone();
    let checker: LeaseCheck = Arc::new(move || check.check());
    Lock::fallible(info, release(inner, lease)).with_lease(checker)
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        url(&self.inner.at)
    }

    fn restore_hint(&self) -> String {
        format!(
            "with versioning on the bucket, an earlier version of s3://{}/{} can be restored from S3's version list",
            self.inner.at.bucket, self.inner.at.key
        )
    }

    fn read_bytes(&self) -> Result<Option<Vec<u8>>, StateError> {
        let inner = &self.inner;
        let found = inner.block(inner.get(&inner.at.key)).map_err(|f| inner.unreadable(f))?;
        Ok(found.map(|(bytes, _, _)| bytes))
    }

    fn read(&self) -> Result<Option<StateFile>, StateError> {
        self.read_recorded().map(|(state, _)| state)
    }

    fn write(&self, state: &StateFile) -> Result<(), StateError> {
        self.write_recorded(state, &Lost::new())
    }

    fn lock(&self, operation: &str, who: &str, now: &str, timeout: Duration) -> Result<Lock, LockError> {
        self.lock_as(new_info(operation, who, now), timeout)
    }

    fn lock_info(&self) -> Result<Option<LockInfo>, LockError> {
        let inner = &self.inner;
        Ok(inner.block(inner.holder())?.map(|(info, _)| info))
    }

    fn force_unlock(&self, id: &str) -> Result<LockInfo, LockError> {
        let inner = &self.inner;
        match inner.block(inner.holder())? {
            Some((info, etag)) if info.id == id => {
                inner.block(inner.delete_lock(etag.as_deref())).map_err(|f| inner.lock_io(f))?;
                Ok(info)
            }
            _ => Err(LockError::NoSuchLock(id.to_string())),
        }
    }
}

impl S3Backend {
    /// [`Backend::read`], with the copies the state's writer could not reach.
    pub(crate) fn read_recorded(&self) -> Result<(Option<StateFile>, Lost), StateError> {
        let started = Instant::now();
        let inner = &self.inner;
        let found = inner.block(inner.get(&inner.at.key)).map_err(|f| inner.unreadable(f))?;
        let (state, seen, lost) = match found {
            None => {
                tracing::debug!(location = %self.location(), elapsed = ?started.elapsed(), "no state yet");
                (None, None, Lost::new())
            }
            Some((bytes, etag, lost)) => {
                let state = crate::parse(&bytes, &self.location())?;
                tracing::debug!(
                    location = %self.location(),
                    serial = state.serial,
                    bytes = bytes.len(),
                    etag = etag.as_deref().map(|e| tracing::field::display(e.trim_matches('"'))),
                    elapsed = ?started.elapsed(),
                    "state read"
                );
                let identity = (state.lineage.clone(), state.serial);
                (Some(state), Some(Seen { etag, identity }), lost)
            }
        };
        if let Ok(mut s) = inner.seen.lock() {
            *s = Some(seen);
        }
        Ok((state, lost))
    }

    /// [`Backend::write`], recording the copies this write could not reach.
    pub(crate) fn write_recorded(&self, state: &StateFile, lost: &Lost) -> Result<(), StateError> {
        let started = Instant::now();
        let inner = &self.inner;
        let location = self.location();
        let text = crate::to_text(state, &location)?;
        let bytes = text.len();
        let body = text.into_bytes();
        let expected = inner.seen.lock().map(|s| s.clone()).unwrap_or_default();
        let put = || {
            let mut request = inner
                .client
                .put_object()
                .bucket(&inner.at.bucket)
                .key(&inner.at.key)
                .content_type("application/json")
                .body(ByteStream::from(body.clone()));
            if !lost.is_empty() {
                request = request.metadata(LOST_METADATA, format_lost(lost));
            }
            request = match &expected {
                Some(Some(Seen { etag: Some(etag), .. })) => request.if_match(etag),
                Some(None) => request.if_none_match("*"),
                // Never read, or a store that gave no ETag: nothing to compare with.
                _ => request,
            };
            request.send()
        };
        match inner.block(send(put)) {
            Ok(out) => {
                tracing::debug!(
                    location = %location,
                    serial = state.serial,
                    bytes,
                    etag = out.e_tag().map(|e| tracing::field::display(e.trim_matches('"'))),
                    elapsed = ?started.elapsed(),
                    "state written"
                );
                let seen =
                    Seen { etag: out.e_tag().map(str::to_string), identity: (state.lineage.clone(), state.serial) };
                if let Ok(mut s) = inner.seen.lock() {
                    *s = Some(Some(seen));
                }
                Ok(())
            }
            Err(e) if condition_failed(&e) => {
                let then = expected.flatten().map(|s| s.identity);
                // Say what it became, when that can be read; the refusal stands either way.
                let now = inner.block(inner.get(&inner.at.key)).ok().map(|found| {
                    found.and_then(|(bytes, _, _)| crate::parse(&bytes, &location).ok()).map(|s| (s.lineage, s.serial))
                });
                let reason = match now {
                    Some(now) => describe_change(&then, &now),
                    None => "another writer replaced the object".to_string(),
                };
                Err(StateError::Conflict { location, reason })
            }
            Err(e) => {
                let f = inner.explain(&e);
                if f.unreachable {
                    Err(StateError::Unreachable { location, reason: f.reason })
                } else {
                    Err(StateError::Write { location, reason: f.reason })
                }
            }
        }
    }

    /// Takes the lock as `info`. A lock object already holding `info`'s id is this run's: a
    /// create whose answer was lost is retried (see [`send`]), and the retry meets its own
    /// object.
    pub(crate) fn lock_as(&self, mut info: LockInfo, timeout: Duration) -> Result<Lock, LockError> {
        let inner = &self.inner;
        info.lease_seconds = Some(inner.lease.as_secs());
        let body = serde_json::to_vec_pretty(&info)
            .map_err(|e| inner.lock_io(Failure { reason: e.to_string(), unreachable: false }))?;
        let started = Instant::now();
        let deadline = started + timeout;
        let key = (inner.at.bucket.clone(), inner.lock_key());
        loop {
            let put = |if_match: Option<String>| {
                let request = inner
                    .client
                    .put_object()
                    .bucket(&inner.at.bucket)
                    .key(inner.lock_key())
                    .content_type("application/json")
                    .body(ByteStream::from(body.clone()));
                match if_match {
                    Some(etag) => request.if_match(etag),
                    None => request.if_none_match("*"),
                }
                .send()
            };
            match inner.block(send(|| put(None))) {
                Ok(out) => {
                    let lock = leased(inner, info, out.e_tag().map(str::to_string));
                    return Ok(taken(lock, &self.location(), started));
                }
                Err(e) if condition_failed(&e) => {
                    match inner.block(inner.holder())? {
                        // Our own request, retried after its answer was lost: the lock is ours.
                        Some((held, etag)) if held.id == info.id => {
                            return Ok(taken(leased(inner, info, etag), &self.location(), started));
                        }
                        Some((held, etag)) => {
                            let since = seen_since(&key, &etag);
                            let expired = held.lease_seconds.is_some_and(|s| since.elapsed() >= Duration::from_secs(s));
                            if expired {
                                // Unchanged for a whole lease on this run's clock: its holder
                                // is dead or paused. Taken over only if it is still that object.
                                match inner.block(send(|| put(etag.clone()))) {
                                    Ok(out) => {
                                        tracing::warn!(
                                            holder = %held.who,
                                            id = %held.id,
                                            unchanged = ?since.elapsed(),
                                            "state lock taken over: its lease expired"
                                        );
                                        let mut lock = leased(inner, info, out.e_tag().map(str::to_string));
                                        lock.took_over = Some(held);
                                        return Ok(taken(lock, &self.location(), started));
                                    }
                                    // Renewed, released or taken by another in between: look again.
                                    Err(e) if condition_failed(&e) || status(&e) == Some(404) => continue,
                                    Err(e) => return Err(inner.lock_io(inner.explain(&e))),
                                }
                            }
                            if Instant::now() >= deadline {
                                return Err(LockError::Held(Box::new(held)));
                            }
                            tracing::trace!(holder = %held.who, id = %held.id, "state lock held by another run; waiting");
                            std::thread::sleep(LOCK_POLL)
                        }
                        // Released in between: ask again at once.
                        None => {}
                    }
                }
                Err(e) => return Err(inner.lock_io(inner.explain(&e))),
            }
        }
    }
}

/// Since when this process has seen the lock object at `key` unchanged under `etag`.
fn seen_since(key: &LockKey, etag: &Option<String>) -> Instant {
    let Ok(mut seen) = SEEN_HELD.lock() else { return Instant::now() };
    match seen.get(key) {
        Some((e, since)) if e == etag => *since,
        _ => {
            let now = Instant::now();
            seen.insert(key.clone(), (etag.clone(), now));
            now
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drplan_harness::{Emulator, Running};

    fn backend(moto: &Running) -> S3Backend {
        S3Backend::with_credentials(
            S3Location {
                bucket: "state".into(),
                key: "k/state.json".into(),
                region: "us-east-1".into(),
                endpoint: Some(moto.url().into()),
            },
            Some(StaticCredentials::new("testing", "testing")),
        )
        .unwrap()
    }

    #[test]
    fn a_lock_object_with_our_id_is_ours_and_another_is_not() {
        let moto = Running::start(Emulator::Moto).unwrap();
        moto.create_bucket("state").unwrap();
        let info = new_info("apply", "ana", "t");
        // The first create went through but its answer was lost: the object is there.
        let first = backend(&moto).lock_as(info.clone(), Duration::ZERO).unwrap();
        let retried = backend(&moto).lock_as(info.clone(), Duration::ZERO).expect("our own lock object is ours");
        assert_eq!(retried.info, LockInfo { lease_seconds: Some(DEFAULT_LEASE.as_secs()), ..info.clone() });
        match backend(&moto).lock_as(new_info("plan", "bo", "t"), Duration::ZERO) {
            Err(LockError::Held(held)) => assert_eq!(held.id, info.id),
            other => panic!("another run must be refused, got {other:?}"),
        }
        drop(retried);
        assert_eq!(backend(&moto).lock_info().unwrap(), None, "released by whichever copy drops first");
        drop(first);
    }
}
