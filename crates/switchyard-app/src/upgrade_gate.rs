//! Closes a race of engineioxide 0.17.9 (and its main branch) between a polling GET and the
//! WebSocket upgrade of the same session, which kills the session.
//!
//! engineioxide's polling GET first checks "is the session upgrading?" (if so it answers a
//! NOOP packet at once) and only then takes the session's receive lock; the upgrade, on its own
//! task, marks the session upgrading and then takes the same lock to wait out a held poll.
//! When the upgrade does both between the poll's check and the poll's lock (the poll's thread
//! descheduled there, which a loaded machine makes likely enough), the poll finds the lock held
//! and takes itself for a second concurrent poll: the session is closed
//! (`MultipleHttpPollingError`), the poll gets a 400, and the client's next POST (the Socket.IO
//! CONNECT, sent at the same moment) gets `400 Session ID unknown`. engine.io-client reports
//! `xhr post error` or `xhr poll error` and the connection fails. The Engine.IO protocol says a
//! poll during an upgrade is answered with a NOOP; nothing the client did was wrong. Real
//! clients reconnect; the end-to-end test, which allows no connect error, failed once in a
//! full run (not in 60 reruns: the window is a few instructions wide), and every time with the
//! window widened by a 2 ms sleep in a patched engineioxide.
//!
//! The gate sits in front of the Socket.IO layer and makes the two exclusive per session:
//! - a polling GET of a session whose upgrade request has been let through is answered here
//!   with the NOOP engineioxide itself gives while upgrading (`200`, body `6`);
//! - an upgrade request waits until no polling GET of its session is inside engineioxide's
//!   first step (check and lock: the first poll of its future, microseconds) and bars new ones
//!   before it goes on, so the upgrade can no longer fall between a poll's check and its lock.
//!
//! The bar lasts [`UPGRADE_BAR`] (engineioxide's upgrade timeout: by then the session is either
//! upgraded, and engineioxide answers polls with its own 400 transport mismatch, or closed), or
//! ends at once when the upgrade request is refused (anything but `101`). Only Engine.IO v4
//! requests with a `sid` are looked at (the NOOP encoding is v4's); everything else passes
//! untouched.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Notify;

/// How long polls of an upgrading session are answered by the gate: engineioxide's default
/// upgrade timeout, after which the session is upgraded or closed.
pub const UPGRADE_BAR: Duration = Duration::from_secs(10);

/// How long an upgrade request waits for polls to finish their first step before it goes on
/// regardless (the step takes microseconds; this only bounds a pathological stall).
const FIRST_STEP_WAIT: Duration = Duration::from_secs(1);

/// The per-session state of the gate.
#[derive(Debug, Default)]
struct Session {
    /// Polling GETs inside their first step (not yet past engineioxide's check and lock).
    first_steps: usize,
    /// Until when polls are answered here (an upgrade request was let through).
    barred_until: Option<Instant>,
}

impl Session {
    fn barred(&self, now: Instant) -> bool {
        self.barred_until.is_some_and(|t| now < t)
    }

    fn idle(&self, now: Instant) -> bool {
        self.first_steps == 0 && !self.barred(now)
    }
}

/// The gate's state, shared by every request of one socket node.
#[derive(Debug, Clone, Default)]
pub struct UpgradeGate {
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    changed: Arc<Notify>,
}

/// What kind of Engine.IO request the gate looks at.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Poll(String),
    Upgrade(String),
    Other,
}

/// Classifies a request by its method and query (`EIO=4`, `transport`, `sid`).
fn classify(method: &Method, query: Option<&str>) -> Kind {
    if method != Method::GET {
        return Kind::Other;
    }
    let (mut v4, mut transport, mut sid) = (false, None, None);
    for pair in query.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "EIO" => v4 = v == "4",
            "transport" => transport = Some(v),
            "sid" if !v.is_empty() => sid = Some(v.to_owned()),
            _ => {}
        }
    }
    match (v4, transport, sid) {
        (true, Some("polling"), Some(sid)) => Kind::Poll(sid),
        (true, Some("websocket"), Some(sid)) => Kind::Upgrade(sid),
        _ => Kind::Other,
    }
}

/// The answer engineioxide gives a poll while its session upgrades: one NOOP packet.
fn noop() -> Response {
    let mut r = Response::new(Body::from("6"));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        "text/plain; charset=UTF-8".parse().unwrap(),
    );
    h.insert(header::CONTENT_LENGTH, 1.into());
    *r.status_mut() = StatusCode::OK;
    r
}

/// Leaves the first step of a poll when dropped (done, or the request was dropped).
struct FirstStep<'a> {
    gate: &'a UpgradeGate,
    sid: &'a str,
    done: bool,
}

impl FirstStep<'_> {
    fn finish(&mut self) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let now = Instant::now();
        let mut sessions = self.gate.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = sessions.get_mut(self.sid) {
            s.first_steps -= 1;
            if s.idle(now) {
                sessions.remove(self.sid);
            }
        }
        drop(sessions);
        self.gate.changed.notify_waiters();
    }
}

impl Drop for FirstStep<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl UpgradeGate {
    /// The middleware (`axum::middleware::from_fn_with_state`).
    pub async fn handle(
        axum::extract::State(gate): axum::extract::State<UpgradeGate>,
        req: Request,
        next: Next,
    ) -> Response {
        if !req
            .uri()
            .path()
            .starts_with(crate::socket_tier::ENGINE_IO_PATH)
        {
            return next.run(req).await;
        }
        match classify(req.method(), req.uri().query()) {
            Kind::Poll(sid) => gate.poll(&sid, next.run(req)).await,
            Kind::Upgrade(sid) => gate.upgrade(&sid, next.run(req)).await,
            Kind::Other => next.run(req).await,
        }
    }

    /// A polling GET: the NOOP while its session's upgrade is under way, else the inner
    /// service, with its first poll counted as the first step.
    async fn poll(&self, sid: &str, inner: impl Future<Output = Response>) -> Response {
        {
            let now = Instant::now();
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            self.purge(&mut sessions, now);
            let s = sessions.entry(sid.to_owned()).or_default();
            if s.barred(now) {
                return noop();
            }
            s.first_steps += 1;
        }
        let mut step = FirstStep {
            gate: self,
            sid,
            done: false,
        };
        let mut inner = std::pin::pin!(inner);
        let first =
            std::future::poll_fn(|cx: &mut Context<'_>| Poll::Ready(inner.as_mut().poll(cx))).await;
        step.finish();
        match first {
            Poll::Ready(r) => r,
            Poll::Pending => inner.await,
        }
    }

    /// An upgrade request: bars new polls, waits for polls in their first step, goes on; a
    /// refused upgrade lifts the bar.
    async fn upgrade(&self, sid: &str, inner: impl Future<Output = Response>) -> Response {
        {
            let now = Instant::now();
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            self.purge(&mut sessions, now);
            sessions.entry(sid.to_owned()).or_default().barred_until = Some(now + UPGRADE_BAR);
        }
        let deadline = tokio::time::Instant::now() + FIRST_STEP_WAIT;
        loop {
            let changed = self.changed.notified();
            let busy = {
                let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
                sessions.get(sid).is_some_and(|s| s.first_steps > 0)
            };
            if !busy {
                break;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                tracing::warn!(sid, "polls of an upgrading session still in their first step after {FIRST_STEP_WAIT:?}; upgrading anyway");
                break;
            }
        }
        let response = inner.await;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            let now = Instant::now();
            let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = sessions.get_mut(sid) {
                s.barred_until = None;
                if s.idle(now) {
                    sessions.remove(sid);
                }
            }
        }
        response
    }

    /// Forgets sessions with nothing under way (expired bars).
    fn purge(&self, sessions: &mut HashMap<String, Session>, now: Instant) {
        // Linear, but only over sessions with an upgrade in the last UPGRADE_BAR or a poll in
        // its first step: a few per upgrading client.
        sessions.retain(|_, s| !s.idle(now));
    }

    /// Sessions the gate holds state for (tests).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.sessions.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn classifies_v4_polls_and_upgrades_with_a_sid() {
        let get = Method::GET;
        assert_eq!(
            classify(&get, Some("EIO=4&transport=polling&t=x&sid=abc")),
            Kind::Poll("abc".into())
        );
        assert_eq!(
            classify(&get, Some("EIO=4&transport=websocket&sid=abc")),
            Kind::Upgrade("abc".into())
        );
        assert_eq!(
            classify(&get, Some("EIO=4&transport=polling&t=x")),
            Kind::Other,
            "handshake"
        );
        assert_eq!(
            classify(&get, Some("EIO=4&transport=websocket")),
            Kind::Other,
            "WebSocket first"
        );
        assert_eq!(
            classify(&get, Some("EIO=3&transport=polling&sid=abc")),
            Kind::Other,
            "v3"
        );
        assert_eq!(
            classify(&Method::POST, Some("EIO=4&transport=polling&sid=abc")),
            Kind::Other
        );
        assert_eq!(classify(&get, None), Kind::Other);
    }

    fn ok(status: StatusCode) -> Response {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = status;
        r
    }

    /// Runs `inner` as a poll of session `s` through the gate on its own task.
    fn spawn_poll(
        gate: &UpgradeGate,
        inner: impl Future<Output = Response> + Send + 'static,
    ) -> tokio::task::JoinHandle<StatusCode> {
        let gate = gate.clone();
        tokio::spawn(async move { gate.poll("s", inner).await.status() })
    }

    async fn body(r: Response) -> String {
        let bytes = axum::body::to_bytes(r.into_body(), 64).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn polls_pass_until_an_upgrade_and_get_the_noop_after() {
        let gate = UpgradeGate::default();
        let r = gate.poll("s", async { ok(StatusCode::OK) }).await;
        assert_eq!(body(r).await, "");
        assert_eq!(gate.tracked(), 0, "nothing kept for a finished poll");

        let r = gate
            .upgrade("s", async { ok(StatusCode::SWITCHING_PROTOCOLS) })
            .await;
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        let reached = AtomicBool::new(false);
        let r = gate
            .poll("s", async {
                reached.store(true, Ordering::SeqCst);
                ok(StatusCode::OK)
            })
            .await;
        assert!(
            !reached.load(Ordering::SeqCst),
            "the poll must not reach engineioxide"
        );
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/plain; charset=UTF-8"
        );
        assert_eq!(body(r).await, "6");
        // Another session is not affected.
        let r = gate.poll("t", async { ok(StatusCode::BAD_REQUEST) }).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_refused_upgrade_lifts_the_bar() {
        let gate = UpgradeGate::default();
        let r = gate
            .upgrade("s", async { ok(StatusCode::BAD_REQUEST) })
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(gate.tracked(), 0);
        let reached = AtomicBool::new(false);
        gate.poll("s", async {
            reached.store(true, Ordering::SeqCst);
            ok(StatusCode::OK)
        })
        .await;
        assert!(reached.load(Ordering::SeqCst));
    }

    /// The race itself: a poll whose first step has begun but not ended (its thread held
    /// inside engineioxide's first poll, as a descheduled thread is) holds the upgrade back;
    /// the upgrade goes on as soon as that step ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upgrade_waits_for_a_poll_inside_its_first_step() {
        let gate = UpgradeGate::default();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let poll = spawn_poll(&gate, async move {
            // Blocks inside the first poll, between the check and the lock.
            release_rx.recv().unwrap();
            ok(StatusCode::OK)
        });
        // Wait until the poll is inside its first step.
        let start = Instant::now();
        while gate
            .sessions
            .lock()
            .unwrap()
            .get("s")
            .map_or(0, |s| s.first_steps)
            == 0
        {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the poll never started"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let upgraded = Arc::new(AtomicBool::new(false));
        let up_gate = gate.clone();
        let flag = upgraded.clone();
        let upgrade = tokio::spawn(async move {
            up_gate
                .upgrade("s", async move {
                    flag.store(true, Ordering::SeqCst);
                    ok(StatusCode::SWITCHING_PROTOCOLS)
                })
                .await
                .status()
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !upgraded.load(Ordering::SeqCst),
            "the upgrade went on during a poll's first step"
        );
        release_tx.send(()).unwrap();
        assert_eq!(poll.await.unwrap(), StatusCode::OK);
        assert_eq!(upgrade.await.unwrap(), StatusCode::SWITCHING_PROTOCOLS);
        assert!(upgraded.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_poll_past_its_first_step_does_not_hold_the_upgrade() {
        let gate = UpgradeGate::default();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        // A held long-poll: pending after its first poll (its first step is over).
        let poll = spawn_poll(&gate, async move {
            tokio::task::yield_now().await;
            release_rx.await.unwrap();
            ok(StatusCode::OK)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let r = tokio::time::timeout(
            Duration::from_millis(500),
            gate.upgrade("s", async { ok(StatusCode::SWITCHING_PROTOCOLS) }),
        )
        .await
        .expect("the upgrade waited for a held poll");
        assert_eq!(r.status(), StatusCode::SWITCHING_PROTOCOLS);
        release_tx.send(()).unwrap();
        assert_eq!(poll.await.unwrap(), StatusCode::OK);
    }
}
