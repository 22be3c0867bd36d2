//! A fault-injecting HTTP/1.1 proxy to put between drplan and an emulator: throttling, 5xx and dropped connections.
//!
//! The proxy answers a share of requests itself, in the style of the service they were
//! meant for (EC2's `RequestLimitExceeded`, Route 53's `Throttling`, S3's `SlowDown`, an
//! `InternalError`), or closes the connection without answering. A faulted request never
//! reaches the emulator, so a lost answer cannot hide an executed request: moto ignores
//! EC2's `ClientToken`, and a forwarded-then-dropped `RunInstances` would launch a second
//! instance, which is a gap of the emulator and not what a fault test measures.
//!
//! Faults are decided deterministically: every Nth request, the kinds in rotation. So
//! that every call can still succeed within the retry policy's attempts (5, core's
//! `RetryPolicy::DEFAULT`; 3 for a connection never made during an apply), a shared fault
//! never hits the same request (method, path and body; signatures and dates are ignored)
//! more than twice. [`Faults::always`]
//! has no such limit: it is for proving how persistent failures are reported.
//!
//! One request per connection keeps the proxy small: it reads the request, forwards it
//! with `Connection: close`, relays the answer with `Connection: close` and closes.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The retry policy makes up to 5 attempts per call: two faults leave it three more.
pub const MAX_FAULTS_PER_REQUEST: u32 = 2;
/// Long enough for a slow emulator answer, short enough that a stuck peer frees its thread.
const IO_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_HEAD: usize = 64 * 1024;
/// How long dropping the proxy waits for connections still being served.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What the proxy does to a request instead of forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// The service's throttling error: EC2 503 `RequestLimitExceeded`, Route 53 400
    /// `Throttling`, S3 503 `SlowDown`, anything else 429 `Throttling`.
    Throttle,
    /// HTTP 500 `InternalError` (Route 53: `InternalFailure`).
    ServerError,
    /// The connection is closed after the request is read, without an answer.
    Drop,
}

impl FaultKind {
    /// All three kinds, in the order shared faults rotate through them.
    pub const ALL: [FaultKind; 3] = [FaultKind::Throttle, FaultKind::ServerError, FaultKind::Drop];
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultKind::Throttle => "throttled",
            FaultKind::ServerError => "server error",
            FaultKind::Drop => "dropped",
        })
    }
}

/// What a fault rule can see of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub method: String,
    /// The request target: path and query.
    pub path: String,
    /// The signing service (`ec2`, `route53`, `s3`), from the Authorization header's
    /// credential scope, else guessed from the path.
    pub service: Option<String>,
    /// The signing region, from the credential scope.
    pub region: Option<String>,
    /// A query-protocol API's `Action` (EC2's `RunInstances`, `DescribeInstances`...).
    pub action: Option<String>,
}

impl fmt::Display for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        if let Some(s) = &self.service {
            write!(f, " {s}")?;
        }
        if let Some(r) = &self.region {
            write!(f, " {r}")?;
        }
        if let Some(a) = &self.action {
            write!(f, " {a}")?;
        }
        Ok(())
    }
}

type Matcher = Arc<dyn Fn(&RequestInfo) -> bool + Send + Sync>;

/// Which requests the proxy faults, and how.
#[derive(Clone)]
pub struct Faults {
    rule: Rule,
    only: Option<Matcher>,
    /// Requests dropped unanswered whatever the rule (a store down beside played checkers).
    dropped: Option<Matcher>,
    /// Requests held this long before anything else happens to them (a slow call in flight).
    stalled: Option<(Matcher, std::time::Duration)>,
    /// Requests forwarded whose answer's header lines are passed through a rewrite (a
    /// state of the service the emulator cannot hold, played).
    rewritten: Option<(Matcher, Rewrite)>,
}

/// Rewrites one header line of an answer (`Name: value`, no line end); the same line when
/// it has nothing to change.
pub type Rewrite = Arc<dyn Fn(&str) -> String + Send + Sync>;

#[derive(Clone, Debug)]
enum Rule {
    None,
    /// Every `every`th matching request, kinds in rotation, each request at most `cap` times.
    Share {
        every: u64,
        kinds: Vec<FaultKind>,
        cap: u32,
    },
    /// Every matching request, with no limit.
    Always(FaultKind),
    /// Every matching request is answered by the proxy itself: playing a part of the
    /// service the emulator lacks (Route 53's checkers).
    Answer(Responder),
}

/// The proxy's own answer to a request: status, content type and body.
type Respond = dyn Fn(&RequestInfo) -> (u16, String, String) + Send + Sync;

/// Makes the proxy's own answers.
#[derive(Clone)]
pub struct Responder(Arc<Respond>);

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Responder")
    }
}

impl Faults {
    /// Forward everything.
    pub fn none() -> Faults {
        Faults { rule: Rule::None, only: None, dropped: None, stalled: None, rewritten: None }
    }

    /// Fault every `n`th request (`n` of 1 faults each one), rotating through all kinds,
    /// never the same request more than [`MAX_FAULTS_PER_REQUEST`] times.
    pub fn every(n: u64) -> Faults {
        Faults {
            rule: Rule::Share { every: n.max(1), kinds: FaultKind::ALL.to_vec(), cap: MAX_FAULTS_PER_REQUEST },
            only: None,
            dropped: None,
            stalled: None,
            rewritten: None,
        }
    }

    /// Answer every request with `kind`, however often it is retried.
    pub fn always(kind: FaultKind) -> Faults {
        Faults { rule: Rule::Always(kind), only: None, dropped: None, stalled: None, rewritten: None }
    }

    /// Every request (narrowed with [`Faults::matching`]) answered by `respond` instead of
    /// the emulator, with `(status, content type, body)`.
    pub fn answer(respond: impl Fn(&RequestInfo) -> (u16, String, String) + Send + Sync + 'static) -> Faults {
        Faults {
            rule: Rule::Answer(Responder(Arc::new(respond))),
            only: None,
            dropped: None,
            stalled: None,
            rewritten: None,
        }
    }

    /// Route 53's checkers, played: every `GetHealthCheckStatus` is answered with the
    /// observations `observe` gives (healthy or not, and when each was taken), whatever the
    /// health check.
    /// moto's own answer is one checker reporting success, taken now.
    /// `observe` is asked anew for each request, so a test can change what they say.
    pub fn health_checkers(observe: impl Fn() -> Vec<(bool, std::time::SystemTime)> + Send + Sync + 'static) -> Faults {
        Faults::answer(move |_| (200, "text/xml".to_owned(), health_check_status(&observe())))
            .matching(|r| r.method == "GET" && r.path.contains("/healthcheck/") && r.path.ends_with("/status"))
    }

    /// As [`Faults::health_checkers`], per health check: `observe` is given the health
    /// check's id, so one region's check can fail while the others pass.
    pub fn health_checkers_by(
        observe: impl Fn(&str) -> Vec<(bool, std::time::SystemTime)> + Send + Sync + 'static,
    ) -> Faults {
        Faults::answer(move |r| {
            let id = r.path.split("/healthcheck/").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or_default();
            (200, "text/xml".to_owned(), health_check_status(&observe(id)))
        })
        .matching(|r| r.method == "GET" && r.path.contains("/healthcheck/") && r.path.ends_with("/status"))
    }

    /// A service or cluster that is down: every request is dropped unanswered, however often
    /// it is retried.
    pub fn outage() -> Faults {
        Faults::always(FaultKind::Drop)
    }

    /// An AWS region that is down, for a proxy in front of moto (which serves every region
    /// on one port): every request whose SigV4 credential scope names `region` is dropped
    /// unanswered, except Route 53's, which is global and always signed for us-east-1.
    pub fn region_outage(region: &str) -> Faults {
        let region = region.to_owned();
        Faults::outage()
            .matching(move |r| r.region.as_deref() == Some(region.as_str()) && r.service.as_deref() != Some("route53"))
    }

    /// Only these kinds (in this rotation) for a shared fault; an empty list faults nothing.
    pub fn kinds(mut self, kinds: &[FaultKind]) -> Faults {
        if let Rule::Share { kinds: k, .. } = &mut self.rule {
            *k = kinds.to_vec();
        }
        self
    }

    /// Besides the rule, every request for which `matches` is true is dropped unanswered.
    pub fn dropping(mut self, matches: impl Fn(&RequestInfo) -> bool + Send + Sync + 'static) -> Faults {
        self.dropped = Some(Arc::new(matches));
        self
    }

    /// Besides the rule, every request for which `matches` is true is held for `delay` first
    /// (then forwarded, or faulted by the rule): a call that stays in flight for a while.
    pub fn stalling(
        mut self,
        delay: std::time::Duration,
        matches: impl Fn(&RequestInfo) -> bool + Send + Sync + 'static,
    ) -> Faults {
        self.stalled = Some((Arc::new(matches), delay));
        self
    }

    /// Besides the rule, the answers to requests for which `matches` is true have each of
    /// their header lines passed through `rewrite` (forwarded requests only).
    pub fn rewriting_headers(
        mut self,
        matches: impl Fn(&RequestInfo) -> bool + Send + Sync + 'static,
        rewrite: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Faults {
        self.rewritten = Some((Arc::new(matches), Arc::new(rewrite)));
        self
    }

    /// Only requests for which `matches` is true are counted and faulted; others pass.
    pub fn matching(mut self, matches: impl Fn(&RequestInfo) -> bool + Send + Sync + 'static) -> Faults {
        self.only = Some(Arc::new(matches));
        self
    }
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faults").field("rule", &self.rule).field("filtered", &self.only.is_some()).finish()
    }
}

/// What the proxy has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests passed to the upstream (whatever it answered).
    pub forwarded: u64,
    pub throttled: u64,
    pub server_errors: u64,
    pub dropped: u64,
    /// Requests the upstream could not be reached for (answered 502).
    pub upstream_failures: u64,
}

impl FaultCounts {
    /// Faults injected, of every kind.
    pub fn injected(&self) -> u64 {
        self.throttled + self.server_errors + self.dropped
    }
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum FaultProxyError {
    #[error("the upstream URL {0:?} is not of the form http://HOST:PORT")]
    BadUpstream(String),
    #[error("could not listen on a loopback port: {0}")]
    Listen(#[source] io::Error),
}

/// A running proxy. Dropping it stops accepting and waits briefly for open connections.
pub struct FaultProxy {
    url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: String,
    decider: Mutex<Decider>,
    forwarded: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    dropped: AtomicU64,
    upstream_failures: AtomicU64,
    /// Numbers the request ids of the proxy's own answers.
    answers: AtomicU64,
    log: Mutex<Vec<String>>,
    stop: AtomicBool,
    open: AtomicUsize,
}

struct Decider {
    faults: Faults,
    /// Matching requests seen since the rule was set.
    seen: u64,
    /// Faults handed out per request fingerprint, over the proxy's whole life.
    per_request: HashMap<u64, u32>,
    /// A fault was due but fell on a request that had had its share: the next one takes it.
    owed: bool,
    rotation: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread leaves data that is still consistent for counting.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream` (`http://HOST:PORT`),
    /// applying `faults`.
    pub fn start(upstream: &str, faults: Faults) -> Result<FaultProxy, FaultProxyError> {
        let authority = upstream
            .strip_prefix("http://")
            .map(|a| a.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| FaultProxyError::BadUpstream(upstream.to_owned()))?;
        let listener = TcpListener::bind("127.0.0.1:0").map_err(FaultProxyError::Listen)?;
        let addr = listener.local_addr().map_err(FaultProxyError::Listen)?;
        let shared = Arc::new(Shared {
            upstream: authority.to_owned(),
            decider: Mutex::new(Decider { faults, seen: 0, per_request: HashMap::new(), owed: false, rotation: 0 }),
            forwarded: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            upstream_failures: AtomicU64::new(0),
            answers: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            open: AtomicUsize::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(&listener, &shared))
        };
        Ok(FaultProxy { url: format!("http://{addr}"), addr, shared, acceptor: Some(acceptor) })
    }

    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Replaces the fault rule; the count towards "every Nth" starts again, the limit
    /// per request does not.
    pub fn set_faults(&self, faults: Faults) {
        let mut d = lock(&self.shared.decider);
        d.faults = faults;
        d.seen = 0;
        d.owed = false;
        d.rotation = 0;
    }

    pub fn counts(&self) -> FaultCounts {
        let s = &self.shared;
        FaultCounts {
            forwarded: s.forwarded.load(Ordering::SeqCst),
            throttled: s.throttled.load(Ordering::SeqCst),
            server_errors: s.server_errors.load(Ordering::SeqCst),
            dropped: s.dropped.load(Ordering::SeqCst),
            upstream_failures: s.upstream_failures.load(Ordering::SeqCst),
        }
    }

    /// One line per injected fault (`throttled POST / ec2 us-east-1 RunInstances`), for
    /// test failure messages.
    pub fn log(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("url", &self.url)
            .field("upstream", &self.shared.upstream)
            .field("counts", &self.counts())
            .finish()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // accept() blocks: one connection of our own wakes it to see the stop flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.shared.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        shared.open.fetch_add(1, Ordering::SeqCst);
        let shared = Arc::clone(shared);
        thread::spawn(move || {
            // A failing client or upstream only ends this one exchange.
            let _ = serve(stream, &shared);
            shared.open.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// A request as read from the client: the head's lines and the raw body.
struct Request {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn info(&self) -> RequestInfo {
        let scope = self.header("authorization").and_then(credential_scope);
        let service = scope
            .as_ref()
            .map(|(_, s)| s.clone())
            .or_else(|| if self.target.starts_with("/2013-04-01/") { Some("route53".to_owned()) } else { None });
        let action = form_field(&self.body, "Action").or_else(|| {
            let query = self.target.split_once('?').map(|(_, q)| q.as_bytes()).unwrap_or_default();
            form_field(query, "Action")
        });
        RequestInfo {
            method: self.method.clone(),
            path: self.target.clone(),
            service,
            region: scope.map(|(r, _)| r),
            action,
        }
    }

    /// Identifies a request across retries: what it asks for, not when or how it is signed.
    fn fingerprint(&self) -> u64 {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new();
        self.method.hash(&mut h);
        self.target.hash(&mut h);
        self.body.hash(&mut h);
        h.finish()
    }
}

/// `(region, service)` from `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, ...`.
fn credential_scope(authorization: &str) -> Option<(String, String)> {
    let credential = authorization.split("Credential=").nth(1)?.split([',', ' ']).next()?;
    let mut parts = credential.split('/').skip(2);
    let region = parts.next()?;
    let service = parts.next()?;
    Some((region.to_owned(), service.to_owned()))
}

/// The value of `name` in an `a=b&c=d` form, undecoded (actions need no decoding).
fn form_field(form: &[u8], name: &str) -> Option<String> {
    let form = std::str::from_utf8(form).ok()?;
    form.split('&').find_map(|pair| pair.split_once('=').filter(|(k, _)| *k == name).map(|(_, v)| v.to_owned()))
}

fn serve(client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let Some(request) = read_request(&mut reader)? else { return Ok(()) };
    let mut client = client;
    let stall = lock(&shared.decider).faults.stalled.as_ref().filter(|(m, _)| m(&request.info())).map(|(_, d)| *d);
    if let Some(delay) = stall {
        lock(&shared.log).push(format!("stalled {}", request.info()));
        std::thread::sleep(delay);
    }
    let drop_it = lock(&shared.decider).faults.dropped.as_ref().is_some_and(|m| m(&request.info()));
    if drop_it {
        shared.dropped.fetch_add(1, Ordering::SeqCst);
        lock(&shared.log).push(format!("dropped {}", request.info()));
        return client.shutdown(Shutdown::Both);
    }
    if let Some(respond) = answerer(shared, &request) {
        let info = request.info();
        let (status, content_type, body) = (respond.0)(&info);
        lock(&shared.log).push(format!("answered {info}"));
        let reason = if status == 200 { "OK" } else { "Error" };
        write!(
            client,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        client.flush()?;
        return client.shutdown(Shutdown::Write);
    }
    match decide(shared, &request) {
        Some((kind, info)) => {
            lock(&shared.log).push(format!("{kind} {info}"));
            match kind {
                FaultKind::Drop => {
                    shared.dropped.fetch_add(1, Ordering::SeqCst);
                    // The whole request has been read, so closing sends FIN and the client
                    // sees a connection closed before any answer.
                    client.shutdown(Shutdown::Both)
                }
                FaultKind::Throttle | FaultKind::ServerError => {
                    let counter = if kind == FaultKind::Throttle { &shared.throttled } else { &shared.server_errors };
                    counter.fetch_add(1, Ordering::SeqCst);
                    let n = shared.answers.fetch_add(1, Ordering::SeqCst) + 1;
                    let answer = error_answer(kind, info.service.as_deref(), &request.method, n);
                    client.write_all(&answer)?;
                    client.flush()?;
                    client.shutdown(Shutdown::Write)
                }
            }
        }
        None => forward(shared, &request, &mut client),
    }
}

/// The responder that answers `request` itself, if the rule is one and it matches.
fn answerer(shared: &Shared, request: &Request) -> Option<Responder> {
    let d = lock(&shared.decider);
    let Rule::Answer(respond) = &d.faults.rule else { return None };
    let matches = d.faults.only.as_ref().is_none_or(|only| only(&request.info()));
    matches.then(|| respond.clone())
}

/// A `GetHealthCheckStatus` answer with one observation a checker, each from its own
/// address and region, as Route 53 gives them.
fn health_check_status(observations: &[(bool, std::time::SystemTime)]) -> String {
    const REGIONS: [&str; 8] = [
        "us-east-1",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "sa-east-1",
    ];
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><GetHealthCheckStatusResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><HealthCheckObservations>"#,
    );
    for (n, (healthy, at)) in observations.iter().enumerate() {
        let status = if *healthy {
            "Success: HTTP Status Code 200, OK"
        } else {
            "Failure: HTTP Status Code 503, Service Unavailable"
        };
        xml.push_str(&format!(
            "<HealthCheckObservation><Region>{}</Region><IPAddress>15.177.{n}.1</IPAddress><StatusReport><Status>{status}</Status><CheckedTime>{}</CheckedTime></StatusReport></HealthCheckObservation>",
            REGIONS[n % REGIONS.len()],
            rfc3339(*at)
        ));
    }
    xml.push_str("</HealthCheckObservations></GetHealthCheckStatusResponse>");
    xml
}

/// `2026-12-01T10:00:00.250Z` for a moment, in UTC.
fn rfc3339(at: std::time::SystemTime) -> String {
    jiff::Timestamp::try_from(at).map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.%3fZ").to_string()).unwrap_or_default()
}

/// Which fault, if any, `request` gets; updates the counts behind "every Nth".
fn decide(shared: &Shared, request: &Request) -> Option<(FaultKind, RequestInfo)> {
    let mut d = lock(&shared.decider);
    if matches!(d.faults.rule, Rule::None) {
        return None;
    }
    let info = request.info();
    if let Some(only) = &d.faults.only
        && !only(&info)
    {
        return None;
    }
    match d.faults.rule.clone() {
        Rule::None | Rule::Answer(_) => None,
        Rule::Always(kind) => Some((kind, info)),
        Rule::Share { every, kinds, cap } => {
            if kinds.is_empty() {
                return None;
            }
            d.seen += 1;
            if d.seen.is_multiple_of(every) {
                d.owed = true;
            }
            let fingerprint = request.fingerprint();
            let had = d.per_request.get(&fingerprint).copied().unwrap_or(0);
            if !d.owed || had >= cap {
                return None;
            }
            d.owed = false;
            d.per_request.insert(fingerprint, had + 1);
            let kind = kinds[d.rotation % kinds.len()];
            d.rotation += 1;
            Some((kind, info))
        }
    }
}

fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Request>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("bad request line {line:?}")));
    };
    let (method, target, version) = (method.to_owned(), target.to_owned(), version.to_owned());
    let mut headers = Vec::new();
    let mut head_len = line.len();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        head_len += n;
        if n == 0 || head_len > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head incomplete or too long"));
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut request = Request { method, target, version, headers, body: Vec::new() };
    let chunked = request.header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked_raw(reader)?;
    } else if let Some(len) = request.header("content-length") {
        let len: usize = len.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
        request.body = vec![0; len];
        reader.read_exact(&mut request.body)?;
    }
    Ok(Some(request))
}

/// A chunked body exactly as sent (sizes, extensions, trailers), to forward unchanged.
fn read_chunked_raw(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    loop {
        let mut size_line = String::new();
        if reader.read_line(&mut size_line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked body ended early"));
        }
        raw.extend_from_slice(size_line.as_bytes());
        let hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(hex, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {hex:?}")))?;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "chunked trailers ended early"));
                }
                raw.extend_from_slice(trailer.as_bytes());
                if trailer.trim_end_matches(['\r', '\n']).is_empty() {
                    return Ok(raw);
                }
            }
        }
        let start = raw.len();
        raw.resize(start + size + 2, 0);
        reader.read_exact(&mut raw[start..])?;
    }
}

/// Hop-by-hop headers the proxy replaces: each side gets `Connection: close`, and the
/// body has already been read, so `Expect: 100-continue` must not reach the upstream.
fn hop_by_hop(name: &str) -> bool {
    ["connection", "keep-alive", "proxy-connection", "expect"].iter().any(|h| name.eq_ignore_ascii_case(h))
}

fn forward(shared: &Shared, request: &Request, client: &mut TcpStream) -> io::Result<()> {
    let upstream = match TcpStream::connect(&shared.upstream) {
        Ok(s) => s,
        Err(e) => {
            shared.upstream_failures.fetch_add(1, Ordering::SeqCst);
            let body = format!("the fault proxy could not reach {}: {e}", shared.upstream);
            write!(
                client,
                "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )?;
            return client.flush();
        }
    };
    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    let rewrite =
        lock(&shared.decider).faults.rewritten.as_ref().filter(|(m, _)| m(&request.info())).map(|(_, r)| Arc::clone(r));
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{} {} {}\r\n", request.method, request.target, request.version);
    for (name, value) in request.headers.iter().filter(|(n, _)| !hop_by_hop(n)) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut up_writer = upstream.try_clone()?;
    up_writer.write_all(head.as_bytes())?;
    up_writer.write_all(&request.body)?;
    up_writer.flush()?;

    let mut up_reader = BufReader::new(upstream);
    let mut status = String::new();
    if up_reader.read_line(&mut status)? == 0 {
        // The upstream closed without answering: pass that on as it happened.
        return client.shutdown(Shutdown::Both);
    }
    let mut response_head = status;
    loop {
        let mut line = String::new();
        if up_reader.read_line(&mut line)? == 0 {
            break;
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if trimmed.is_empty() {
            break;
        }
        let name = trimmed.split_once(':').map_or(trimmed, |(n, _)| n.trim());
        if !hop_by_hop(name) {
            match &rewrite {
                Some(r) => response_head.push_str(&r(trimmed)),
                None => response_head.push_str(trimmed),
            }
            response_head.push_str("\r\n");
        }
    }
    response_head.push_str("Connection: close\r\n\r\n");
    client.write_all(response_head.as_bytes())?;
    // The upstream closes after its answer (we asked it to), so the rest of the stream
    // is the body, however it is framed.
    io::copy(&mut up_reader, client)?;
    client.flush()?;
    client.shutdown(Shutdown::Write)
}

/// The error answer `service` would give for `kind`.
fn error_answer(kind: FaultKind, service: Option<&str>, method: &str, n: u64) -> Vec<u8> {
    let request_id = format!("drplan-fault-{n:08}");
    let (status, reason, content_type, body) = match (kind, service) {
        (FaultKind::Throttle, Some("ec2")) => (
            503,
            "Service Unavailable",
            "text/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
        ),
        (FaultKind::ServerError, Some("ec2")) => (
            500,
            "Internal Server Error",
            "text/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InternalError</Code><Message>An internal error has occurred.</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
        ),
        (FaultKind::Throttle, Some("route53")) => (
            400,
            "Bad Request",
            "text/xml",
            format!(
                "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ),
        ),
        (FaultKind::ServerError, Some("route53")) => (
            500,
            "Internal Server Error",
            "text/xml",
            format!(
                "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>An internal error occurred.</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
            ),
        ),
        (FaultKind::Throttle, Some("s3")) => (
            503,
            "Slow Down",
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>{request_id}</RequestId></Error>"
            ),
        ),
        (FaultKind::Throttle, _) => (
            429,
            "Too Many Requests",
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>Throttling</Code><Message>Rate exceeded</Message><RequestId>{request_id}</RequestId></Error>"
            ),
        ),
        (FaultKind::ServerError, _) | (FaultKind::Drop, _) => (
            500,
            "Internal Server Error",
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message><RequestId>{request_id}</RequestId></Error>"
            ),
        ),
    };
    // A HEAD answer has no body (S3's HeadBucket errors are told by their status alone).
    let body = if method.eq_ignore_ascii_case("HEAD") { String::new() } else { body };
    let mut answer = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nx-amzn-RequestId: {request_id}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body.as_bytes());
    answer
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// A stand-in upstream answering every request with `METHOD TARGET BODY`, recording
    /// each request head and body it receives.
    struct Echo {
        url: String,
        seen: Arc<Mutex<Vec<String>>>,
    }

    fn echo() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let log = Arc::clone(&log);
                thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let Ok(Some(req)) = read_request(&mut reader) else { return };
                    let heads: Vec<String> = req.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect();
                    let body = String::from_utf8_lossy(&req.body).into_owned();
                    log.lock().unwrap().push(format!("{} {}\n{}\n\n{body}", req.method, req.target, heads.join("\n")));
                    let answer = format!("{} {} {body}", req.method, req.target);
                    let mut stream = stream;
                    // Keep-alive on purpose: the proxy must still tell the client to close.
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    // The proxy asked for Connection: close, so closing here is what it expects.
                });
            }
        });
        Echo { url, seen }
    }

    struct Answer {
        /// `None`: the connection was closed without an answer.
        status: Option<u16>,
        head: String,
        body: String,
    }

    fn send(url: &str, raw: &str) -> Answer {
        let mut s = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(raw.as_bytes()).unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        if response.is_empty() {
            return Answer { status: None, head: String::new(), body: String::new() };
        }
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok());
        Answer { status, head: head.to_owned(), body: body.to_owned() }
    }

    fn ec2(region: &str, action: &str, extra: &str) -> String {
        let body = format!("Action={action}&Version=2016-11-15{extra}");
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/{region}/ec2/aws4_request, SignedHeaders=host, Signature=abc\r\nX-Amz-Date: 20260101T000000Z\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    fn route53(path: &str) -> String {
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/route53/aws4_request, SignedHeaders=host, Signature=abc\r\n\r\n"
        )
    }

    fn s3(method: &str, path: &str) -> String {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=abc\r\nContent-Length: 0\r\n\r\n"
        )
    }

    #[test]
    fn moments_print_as_rfc3339_in_utc() {
        let at = |secs: u64, ms: u64| std::time::UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms);
        assert_eq!(super::rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(super::rfc3339(at(1_796_119_199, 250)), "2026-12-01T09:59:59.250Z");
    }

    #[test]
    fn forwards_bodies_and_closes_both_connections() {
        let up = echo();
        let proxy = FaultProxy::start(&up.url, Faults::none()).unwrap();
        assert!(proxy.url().starts_with("http://127.0.0.1:"), "{}", proxy.url());

        let a = send(proxy.url(), &ec2("us-east-1", "DescribeInstances", "&MaxResults=5"));
        assert_eq!(a.status, Some(200), "{}", a.head);
        assert_eq!(a.body, "POST / Action=DescribeInstances&Version=2016-11-15&MaxResults=5");
        assert!(a.head.contains("Connection: close") && !a.head.contains("keep-alive"), "{}", a.head);

        let chunked = "PUT /bucket?lifecycle HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-amz-checksum-crc32: AAAAAA==\r\n\r\n";
        let a = send(proxy.url(), chunked);
        assert_eq!(a.status, Some(200), "{}", a.head);
        let seen = up.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        let sent = &seen[1];
        assert!(sent.contains("Connection: close") && !sent.contains("keep-alive"), "{sent}");
        assert!(!sent.contains("Expect"), "the body is already read: {sent}");
        assert!(
            sent.ends_with("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-amz-checksum-crc32: AAAAAA==\r\n\r\n"),
            "{sent:?}"
        );
        assert_eq!(proxy.counts(), FaultCounts { forwarded: 2, ..FaultCounts::default() });
    }

    #[test]
    fn every_nth_request_is_faulted_in_the_service_style_and_never_forwarded() {
        let up = echo();
        let proxy = FaultProxy::start(&up.url, Faults::every(2)).unwrap();
        let mut answers = Vec::new();
        for i in 0..6 {
            answers.push(send(proxy.url(), &ec2("us-west-2", "RunInstances", &format!("&ClientToken=t{i}"))));
        }
        let statuses: Vec<Option<u16>> = answers.iter().map(|a| a.status).collect();
        // Kinds rotate: throttle, server error, drop.
        assert_eq!(statuses, [Some(200), Some(503), Some(200), Some(500), Some(200), None]);
        assert!(answers[1].body.contains("<Code>RequestLimitExceeded</Code>"), "{}", answers[1].body);
        assert!(answers[1].body.contains("<RequestID>drplan-fault-"), "{}", answers[1].body);
        assert!(answers[3].body.contains("<Code>InternalError</Code>"), "{}", answers[3].body);
        assert_eq!(
            proxy.counts(),
            FaultCounts { forwarded: 3, throttled: 1, server_errors: 1, dropped: 1, upstream_failures: 0 }
        );
        assert_eq!(proxy.counts().injected(), 3);
        let seen = up.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3, "faulted requests never reach the upstream: {seen:?}");
        assert!(seen.iter().all(|s| ["t0", "t2", "t4"].iter().any(|t| s.contains(t))), "{seen:?}");
        assert_eq!(proxy.log()[0], "throttled POST / ec2 us-west-2 RunInstances");

        proxy.set_faults(Faults::every(1).kinds(&[FaultKind::Throttle]));
        let r53 = send(proxy.url(), &route53("/2013-04-01/hostedzone"));
        assert_eq!(r53.status, Some(400));
        assert!(
            r53.body.contains("<Code>Throttling</Code>") && r53.body.contains("<Type>Sender</Type>"),
            "{}",
            r53.body
        );
        let bucket = send(proxy.url(), &s3("PUT", "/b"));
        assert_eq!(bucket.status, Some(503));
        assert!(bucket.body.contains("<Code>SlowDown</Code>"), "{}", bucket.body);
        let head = send(proxy.url(), &s3("HEAD", "/b"));
        assert_eq!((head.status, head.body.as_str()), (Some(503), ""), "a HEAD answer has no body");
        let other = send(proxy.url(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(other.status, Some(429));
    }

    #[test]
    fn the_same_request_is_faulted_at_most_twice() {
        let up = echo();
        let proxy = FaultProxy::start(&up.url, Faults::every(1)).unwrap();
        let statuses: Vec<Option<u16>> =
            (0..4).map(|_| send(proxy.url(), &ec2("us-east-1", "RunInstances", "&ClientToken=same")).status).collect();
        assert_eq!(statuses, [Some(503), Some(500), Some(200), Some(200)]);
        // A different request is still faulted, and takes the kind that is next.
        assert_eq!(send(proxy.url(), &ec2("us-east-1", "RunInstances", "&ClientToken=other")).status, None);
        assert_eq!(proxy.counts().forwarded, 2);
    }

    #[test]
    fn a_fault_owed_by_a_capped_request_goes_to_the_next() {
        let up = echo();
        let proxy = FaultProxy::start(&up.url, Faults::every(2).kinds(&[FaultKind::ServerError])).unwrap();
        let same = ec2("us-east-1", "DescribeInstances", "");
        let statuses: Vec<Option<u16>> = (0..8).map(|_| send(proxy.url(), &same).status).collect();
        assert_eq!(statuses, [Some(200), Some(500), Some(200), Some(500), Some(200), Some(200), Some(200), Some(200)]);
        assert_eq!(send(proxy.url(), &ec2("us-east-1", "DescribeInstances", "&x=1")).status, Some(500));
    }

    #[test]
    fn always_faults_matching_requests_forever_and_passes_the_rest() {
        let up = echo();
        let faults = Faults::always(FaultKind::ServerError)
            .matching(|r| r.region.as_deref() == Some("us-west-2") && r.action.as_deref() == Some("RunInstances"));
        let proxy = FaultProxy::start(&up.url, faults).unwrap();
        for _ in 0..5 {
            assert_eq!(send(proxy.url(), &ec2("us-west-2", "RunInstances", "")).status, Some(500));
        }
        assert_eq!(send(proxy.url(), &ec2("us-east-1", "RunInstances", "")).status, Some(200));
        assert_eq!(send(proxy.url(), &ec2("us-west-2", "DescribeInstances", "")).status, Some(200));
        assert_eq!(proxy.counts(), FaultCounts { forwarded: 2, server_errors: 5, ..FaultCounts::default() });

        proxy.set_faults(Faults::none());
        assert_eq!(send(proxy.url(), &ec2("us-west-2", "RunInstances", "")).status, Some(200));
    }

    #[test]
    fn an_unreachable_upstream_is_a_502() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let proxy = FaultProxy::start(&format!("http://127.0.0.1:{port}"), Faults::none()).unwrap();
        let a = send(proxy.url(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(a.status, Some(502));
        assert_eq!(proxy.counts().upstream_failures, 1);
    }

    #[test]
    fn request_details_come_from_the_credential_scope_and_the_form() {
        assert_eq!(
            credential_scope("AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/s3/aws4_request, SignedHeaders=host"),
            Some(("eu-west-1".to_owned(), "s3".to_owned()))
        );
        assert_eq!(credential_scope("Bearer x"), None);
        assert_eq!(form_field(b"Version=1&Action=RunInstances", "Action").as_deref(), Some("RunInstances"));
        assert!(FaultProxy::start("127.0.0.1:1", Faults::none()).is_err());
        assert!(FaultProxy::start("http://127.0.0.1:1/path", Faults::none()).is_err());
    }

    #[test]
    fn dropping_the_proxy_stops_listening() {
        let up = echo();
        let proxy = FaultProxy::start(&up.url, Faults::none()).unwrap();
        let addr = proxy.addr;
        assert_eq!(send(proxy.url(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n").status, Some(200));
        drop(proxy);
        assert!(TcpStream::connect(addr).is_err(), "the port still accepts after drop");
    }
}
