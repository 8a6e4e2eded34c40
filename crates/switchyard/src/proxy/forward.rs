//! One request's trip, in HAProxy's order: validate → route (`use_backend`) →
//! persistence cookie → assign a server (balance, `maxconn` queue) →
//! `X-Forwarded-For` and connection header → connect with retries/redispatch →
//! send head and body while waiting for the response head → cookie insertion →
//! response to the client (or a tunnel after a 101).
//!
//! Retry policy (`retries`, `retry-on`, `option redispatch`): see
//! `retry.rs`. Failed connection attempts are retried; a request that reached
//! a server is sent again only for a `retry-on` event and only when it is
//! idempotent and held in full; a reused idle connection that fails before
//! any response byte is replaced once by a fresh one for an idempotent
//! request without body.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use http::header::HeaderValue;
use http::{HeaderMap, StatusCode, Version};
use switchyard_config::{Balance, ConnMode};
use tokio::time::Sleep;

use super::body::{self, XferError};
use super::h1::{self, BodyKind, FieldEdit, FieldSet, Known, RequestHead, ResponseHead};
use super::headers::{self, Extra};
use super::local::{answer_verdict, exchange_failed, generated, raw_400, raw_reject, send_local};
use super::queue::{self, AssignError, Lease};
use super::retry::{self, Outgoing};
use super::tunnel;
use super::upstream::{self, ConnectError, Upstream};
use super::{Client, ConnCtx};
use crate::admin;
use crate::backend::balance::PickContext;
use crate::backend::sticky::{self, RequestCookie};
use crate::frontend::{CompiledAcls, RequestInfo, RequestRules, Verdict};
use crate::observability::LogRecord;
use crate::snapshot::{BackendRt, FrontendRt};

/// What validation learned about a request.
struct Checked {
    body_kind: BodyKind,
    upgrade: bool,
    websocket: bool,
}

/// Step 3. First the RFC 9112/9110 checks of [`crate::hardening::check_request`]
/// (stricter than HAProxy where HAProxy is lax: `Transfer-Encoding` with
/// `Content-Length`, codings other than one final `chunked`, a missing `Host` on
/// HTTP/1.1, an absolute-form authority that differs from `Host`, target forms,
/// `Expect` other than `100-continue` → 417), then HAProxy's own H1-layer checks (a
/// 24-character `Sec-WebSocket-Key` on WebSocket upgrades). Afterwards the request is
/// normalised by [`crate::hardening::normalize_request`]: the path ACLs see *and the
/// server receives* the path with dot-segments removed, slashes merged and unreserved
/// escapes decoded (RELIABILITY.md "Paths are normalised by default"), and an `h2c`
/// upgrade offer is removed. `Err` carries the refusal to answer.
fn validate(req: &mut RequestHead) -> Result<Checked, crate::hardening::Reject> {
    crate::hardening::check_request(&req.method, &req.uri, req.version, &req.headers)?;
    let framing = crate::hardening::Reject {
        status: 400,
        reason: "framing",
    };
    let body_kind = h1::request_body_kind(req).map_err(|_| framing)?;
    crate::hardening::normalize_request(&mut req.uri, &mut req.headers);
    let upgrade = headers::is_upgrade(&req.headers);
    let websocket = upgrade
        && req
            .headers
            .first(Known::Upgrade)
            .and_then(h1::ascii_str)
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let key_ok = req
        .headers
        .first(Known::SecWebSocketKey)
        .is_some_and(|k| k.len() == 24);
    if websocket && !key_ok {
        return Err(crate::hardening::Reject {
            status: 400,
            reason: "WebSocket upgrade without a valid key",
        });
    }
    Ok(Checked {
        body_kind,
        upgrade,
        websocket,
    })
}

/// Whether something of the frontend reads request headers through `http::HeaderMap`
/// (rules, header ACLs, the stats page and `use-service`); else routing never builds it.
fn frontend_reads_headers(fe: &FrontendRt) -> bool {
    !fe.request_rules.is_empty()
        || !fe.response_rules.is_empty()
        || fe.router.acls().reads_headers()
        || admin::serves_local(fe)
}

/// The same for a backend: rules, header ACLs, `balance hdr` (cookie persistence
/// reads and writes the fields themselves, `sticky::CookieFields`).
fn backend_reads_headers(be: &BackendRt) -> bool {
    !be.request_rules.is_empty()
        || !be.response_rules.is_empty()
        || be.acls.reads_headers()
        || matches!(be.cfg.balance, Balance::Hdr { .. })
}

/// Handles one request; returns whether the client connection stays open.
/// Steps 3 to 10 of ARCHITECTURE.md's "path of one request". `wait`: the client
/// connection's timer for its response waits (`timeout server`), kept across requests.
/// `req` stays boxed as parsed: moving it into this future's state was a ~150-byte copy.
pub async fn handle(
    cx: &ConnCtx,
    (client, wait): (&mut Client, Pin<&mut Option<Sleep>>),
    mut req: Box<RequestHead>,
    rec: &mut LogRecord,
    started: Instant,
) -> bool {
    let snap = cx.snap.clone();
    let fe = &snap.frontends[cx.fe];
    fe.counters.requests.fetch_add(1, Ordering::Relaxed);
    // The log shows the request line as received, before any rewriting.
    if rec.enabled {
        let (m, t, v) = (
            &req.method,
            target_string(&req.uri),
            version_str(req.version),
        );
        rec.request_line = format!("{m} {t} {v}");
    }

    // 3. Validate: nothing that fails here reaches a server.
    let checked = match validate(&mut req) {
        Ok(c) => c,
        Err(r) => return raw_reject(client, rec, r).await,
    };
    let Checked {
        body_kind,
        upgrade,
        websocket,
    } = checked;
    if body::early_framing_error(&client.buf, body_kind) {
        return raw_400(client, rec).await;
    }
    // A stopping process answers with `connection: close`. The stop signal is read when
    // an answer is made (`ending`), not here as well: it only ever turns on, so reading it
    // once before the response (below) decides as two readings did (each is a lock of the
    // watch, ~20 instructions); an early answer reads it then.
    let mut close = fe.cfg.conn_mode == Some(ConnMode::Close)
        || headers::client_wants_close(req.version, &req.headers);
    let ending = |close: bool| close || cx.stopping();

    // `monitor-uri`: the proxy's own health, answered before any rule
    // (exact match of the target, not logged, as in HAProxy).
    if fe
        .cfg
        .monitor_uri
        .as_deref()
        .is_some_and(|m| req.uri.path_and_query().is_some_and(|pq| pq == m))
    {
        rec.enabled = false;
        let mut h = HeaderMap::with_capacity(3);
        let body: &[u8] = b"<html><body><h1>200 OK</h1>\nService ready.\n</body></html>\n";
        h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/html"),
        );
        let close = ending(close || body_kind != BodyKind::None);
        return send_local(
            client,
            rec,
            StatusCode::OK,
            "OK",
            h,
            body,
            req.version,
            close,
            started,
        )
        .await;
    }

    // 4. Frontend rules, then route.
    if frontend_reads_headers(fe) {
        req.headers.map_mut();
    }
    let pending_body = body_kind != BodyKind::None;
    let verdict = run_request_rules(&fe.request_rules, fe.router.acls(), &mut req, cx);
    if verdict != Verdict::Continue {
        return answer_verdict(
            client,
            rec,
            verdict,
            req.version,
            ending(close || pending_body),
            started,
        )
        .await;
    }
    // The proxy's own answers: `use-service prometheus-exporter`, the stats page.
    let info = request_info(&req, cx);
    if let Some(page) = admin::answer_local(fe, &info, &snap) {
        rec.term = *b"LR--";
        let reason = page.status.canonical_reason().unwrap_or("");
        let close = ending(close || pending_body);
        return send_local(
            client,
            rec,
            page.status,
            reason,
            page.headers,
            &page.body,
            req.version,
            close,
            started,
        )
        .await;
    }
    let Some(bi) = fe.router.route(&info) else {
        rec.term = *b"PR--";
        return generated(
            client,
            rec,
            503,
            req.version,
            ending(close || pending_body),
            started,
        )
        .await;
    };
    let be = &snap.backends[bi];
    // The names are only printed: not copied (reference counts) for a request without a
    // log line.
    if rec.enabled {
        rec.backend = be.name.clone();
    }
    rec.backend_index = Some(bi);
    be.counters.requests.fetch_add(1, Ordering::Relaxed);
    if backend_reads_headers(be) {
        req.headers.map_mut();
    }
    let verdict = run_request_rules(&be.request_rules, &be.acls, &mut req, cx);
    if verdict != Verdict::Continue {
        return answer_verdict(
            client,
            rec,
            verdict,
            req.version,
            ending(close || pending_body),
            started,
        )
        .await;
    }
    let mode = be.conn_mode(&fe.cfg);
    let target = target_str(&req.uri);

    // 5. Backend rules (above), persistence cookie, server assignment (queue).
    // The wall clock is only needed for cookie dates.
    let now = if be.cfg.cookie.is_some() {
        SystemTime::now()
    } else {
        SystemTime::UNIX_EPOCH
    };
    let verdict = be
        .cfg
        .cookie
        .as_ref()
        .map(|c| sticky::lookup(c, &req.headers, &be.servers, now));
    rec.term[2] = verdict.map_or(b'-', cookie_flag);
    let persist = match verdict {
        Some(RequestCookie::Valid(i)) => Some(i),
        Some(RequestCookie::Down(i)) if be.cfg.persist => Some(i),
        _ => None,
    };
    let assigned = {
        let ctx = PickContext {
            src: cx.peer.ip(),
            uri: &target,
            headers: req.headers.built_map(),
            avoid: None,
        };
        // Assigned without waiting (the usual case) makes no future for the queue.
        match queue::assign_now(be, persist, &ctx) {
            Some(done) => done,
            None => queue::assign_queued(be, persist, &ctx).await,
        }
    };
    let lease = match assigned {
        Ok(a) => {
            rec.t_queue = a.waited_ms;
            a.lease
        }
        Err((e, waited_ms)) => {
            rec.t_queue = match e {
                AssignError::QueueTimeout => waited_ms,
                AssignError::NoServer => -1,
            };
            rec.term[0] = if e == AssignError::QueueTimeout {
                b's'
            } else {
                b'S'
            };
            rec.term[1] = if e == AssignError::QueueTimeout {
                b'Q'
            } else {
                b'C'
            };
            return generated(
                client,
                rec,
                503,
                req.version,
                ending(close || pending_body),
                started,
            )
            .await;
        }
    };

    // 6. The request as the server will see it. The client's `Cookie` headers as
    // received, when `prepare_request` rewrote them (the response side reads them).
    let original_cookies = be
        .cfg
        .cookie
        .as_ref()
        .and_then(|c| sticky::prepare_request(c, &mut req.headers));
    let mut extra = Extra {
        forwarded_for: headers::forwarded_for_cached(
            fe.cfg.forwardfor.as_ref(),
            be.cfg.forwardfor.as_ref(),
            cx.peer.ip(),
            &req.headers,
            &mut client.xff,
        ),
        connection: None,
    };
    headers::upstream_connection(
        &mut req.headers,
        &mut extra,
        mode,
        be.cfg.pretend_keepalive,
        req.version,
    );
    // The connection's buffer of the last request (allocated for its first one).
    let mut head_bytes = std::mem::take(&mut client.out);
    head_bytes.reserve(1024);
    h1::write_request_head(&mut head_bytes, &req, |out| extra.write(out));
    drop(extra);

    // 7-8. Connect (pooled in keep-alive mode), send the head and body, read the
    // response head back; retries, `retry-on` and redispatch in `retry::send`.
    let reuse = mode == ConnMode::KeepAlive && req.version == Version::HTTP_11 && !upgrade;
    // A body the client already sent in full leaves with the head in one write,
    // and can be sent again if the request is retried.
    let mut pending = body_kind;
    if body::take_buffered(&mut client.buf, body_kind, &mut head_bytes).is_some() {
        pending = BodyKind::None;
    }
    let (fto, bto) = (&fe.cfg.timeouts, &be.cfg.timeouts);
    let out = Outgoing {
        bytes: &head_bytes,
        pending,
        method: &req.method,
        bodiless: body_kind == BodyKind::None,
        reuse,
        persistent: persist.is_some(),
        dst_port: cx.local.port(),
        max_replay: snap.limits.max_head,
        client_timeout: fto.client,
        server_timeout: bto.server,
    };
    let ctx = PickContext {
        src: cx.peer.ip(),
        uri: &target,
        headers: req.headers.built_map(),
        avoid: None,
    };
    // Taken apart where it is matched: moving the whole `Sent` (~280 bytes) into a
    // binding first was a `memcpy` call of its own.
    let (si, sent_at, (mut up, lease, mut resp, body_done)) =
        match retry::send(be, lease, &ctx, rec, (client, wait), &out).await {
            Ok(retry::Sent {
                server: si,
                t_connect,
                sent_at,
                outcome,
            }) => {
                if rec.enabled {
                    rec.server = be.server_names[si].clone();
                }
                rec.t_connect = t_connect;
                be.server_counters[si]
                    .requests
                    .fetch_add(1, Ordering::Relaxed);
                rec.server_index = Some(si);
                match outcome {
                    Ok(r) => (si, sent_at, r),
                    Err(f) => {
                        let close = ending(close);
                        return exchange_failed(
                            client,
                            rec,
                            f,
                            be,
                            si,
                            req.version,
                            close,
                            started,
                        )
                        .await;
                    }
                }
            }
            Err(e) => {
                rec.t_connect = -1;
                rec.term[0] = if matches!(e, ConnectError::Timeout) {
                    b's'
                } else {
                    b'S'
                };
                rec.term[1] = b'C';
                return generated(
                    client,
                    rec,
                    503,
                    req.version,
                    ending(close || pending_body),
                    started,
                )
                .await;
            }
        };
    let srv_counters = &be.server_counters[si];
    // Timings are only read by the log line: no clock reading without one.
    if rec.enabled {
        rec.t_response = sent_at.elapsed().as_millis() as i64;
    }
    if !body_done {
        close = true;
    }

    // 9. http-response rules (backend's, then frontend's), then cookie insertion;
    // both also apply to a 101 (HAProxy inserts the cookie into the WebSocket handshake).
    if !be.response_rules.is_empty() {
        let info = request_info(&req, cx);
        be.response_rules
            .apply(&be.acls, &info, resp.headers.map_mut());
    }
    if !fe.response_rules.is_empty() {
        let info = request_info(&req, cx);
        fe.response_rules
            .apply(fe.router.acls(), &info, resp.headers.map_mut());
    }
    if let Some(c) = &be.cfg.cookie {
        let v = verdict.unwrap_or(RequestCookie::None);
        let (m, srv, st) = (&req.method, lease.server(), resp.status);
        let h = &mut resp.headers;
        match &original_cookies {
            Some(orig) => sticky::apply_response(c, v, m, orig, srv, st, h, now),
            None => sticky::apply_response(c, v, m, &req.headers, srv, st, h, now),
        };
        rec.term[3] = response_cookie_flag(c.name.as_str(), &resp.headers);
    }

    if resp.status == StatusCode::SWITCHING_PROTOCOLS {
        let valid = upgrade
            && h1::connection_has(&resp.headers, "upgrade")
            && (!websocket || resp.headers.has(Known::SecWebSocketAccept));
        if !valid {
            rec.term = *b"PH--";
            return generated(client, rec, 502, req.version, true, started).await;
        }
        // Nothing of the request is needed while the tunnel idles: freed first.
        drop((head_bytes, original_cookies, target));
        h1::recycle_head(req);
        return run_tunnel(client, up, resp, rec, be, fe.cfg.timeouts.client, lease).await;
    }

    let Ok(resp_kind) = h1::response_body_kind(&req.method, &mut resp) else {
        rec.term = *b"PH--";
        be.server_counters[si]
            .response_errors
            .fetch_add(1, Ordering::Relaxed);
        return generated(client, rec, 502, req.version, ending(close), started).await;
    };
    // A connection that carried a request body is not reused: a server that
    // answered without reading the body (CL.0 desync) would otherwise have
    // the body read as a request, and its answer served to the next client.
    let server_reusable =
        mode == ConnMode::KeepAlive && reuse && body_done && body_kind == BodyKind::None;
    close |= cx.stopping();
    let timeouts = (fe.cfg.timeouts.client, be.cfg.timeouts.server);
    // Counted before the response leaves: a client that reads the stats right after
    // its answer must see it.
    be.counters.count_response(resp.status.as_u16());
    srv_counters.count_response(resp.status.as_u16());
    let keep = respond(
        client,
        &mut up,
        resp,
        resp_kind,
        req.version,
        close,
        timeouts,
        rec,
        head_bytes,
    )
    .await;
    if keep.server && server_reusable {
        // The send time stands for the start of idleness (earlier, so a pooled
        // connection expires no later than `MAX_IDLE` after it went idle).
        upstream::checkin(up, sent_at);
    } else {
        upstream::close_later(up);
    }
    // 10. The lease drops here (queues wake up); the caller writes the log line.
    drop(lease);
    // The head's box and vectors serve this thread's next request head.
    h1::recycle_head(req);
    keep.client
}

/// Which connections may carry another request after a response.
struct Keep {
    client: bool,
    server: bool,
}

/// Step 9 for a final response: connection header, head, body.
#[allow(clippy::too_many_arguments)]
async fn respond(
    client: &mut Client,
    up: &mut Upstream,
    mut resp: ResponseHead,
    kind: BodyKind,
    client_version: Version,
    mut close: bool,
    (client_timeout, server_timeout): (Option<Duration>, Option<Duration>),
    rec: &mut LogRecord,
    mut out: BytesMut,
) -> Keep {
    let failed = Keep {
        client: false,
        server: false,
    };
    let server_keeps =
        kind != BodyKind::UntilClose && !headers::client_wants_close(resp.version, &resp.headers);
    close |= kind == BodyKind::UntilClose;
    headers::downstream_connection(&mut resp.headers, client_version, resp.version, close);
    rec.status = resp.status.as_u16();
    // The request head's buffer, no longer needed, carries the response head.
    out.clear();
    out.reserve(512 + up.buf.len());
    h1::write_response_head(
        &mut out,
        resp.version,
        resp.status,
        &resp.reason,
        &resp.headers,
    );
    rec.bytes = out.len() as u64;
    // A body already read in full leaves with the head, in one write.
    let mut kind = kind;
    if let Some(n) = body::take_buffered(&mut up.buf, kind, &mut out) {
        rec.bytes += n;
        kind = BodyKind::None;
    }
    if body::write_all(&mut client.stream, &out, client_timeout)
        .await
        .is_err()
    {
        rec.term[..2].copy_from_slice(b"CD");
        return failed;
    }
    if out.capacity() <= super::KEEP_OUT {
        out.clear();
        client.out = out;
    }
    let moved = body::transfer(
        &mut up.stream,
        &mut up.buf,
        &mut client.stream,
        kind,
        server_timeout,
        client_timeout,
    )
    .await;
    match moved {
        Ok(n) => rec.bytes += n,
        Err(e) => {
            let term = match e {
                XferError::SrcClosed | XferError::Framing => b"SD",
                XferError::SrcTimeout => b"sD",
                XferError::DstClosed => b"CD",
                XferError::DstTimeout => b"cD",
            };
            rec.term[..2].copy_from_slice(term);
            return failed;
        }
    }
    Keep {
        client: !close,
        server: server_keeps,
    }
}

async fn run_tunnel(
    client: &mut Client,
    up: Upstream,
    resp: ResponseHead,
    rec: &mut LogRecord,
    be: &BackendRt,
    client_timeout: Option<Duration>,
    lease: Lease,
) -> bool {
    rec.status = 101;
    be.counters.count_response(101);
    let mut out = BytesMut::with_capacity(512);
    h1::write_response_head(
        &mut out,
        resp.version,
        resp.status,
        &resp.reason,
        &resp.headers,
    );
    if body::write_all(&mut client.stream, &out, client_timeout)
        .await
        .is_err()
    {
        rec.term[..2].copy_from_slice(b"CD");
        return false;
    }
    let head_len = out.len() as u64;
    drop((out, resp));
    let t = &be.cfg.timeouts;
    let idle = t.tunnel.or(match (client_timeout, t.server) {
        (Some(c), Some(s)) => Some(c.min(s)),
        (c, s) => c.or(s),
    });
    // The connection task relays the tunnel once this request's state is gone
    // (`proxy::http_phase`), so an idle tunnel holds none of it.
    client.handoff = Some(Box::new(tunnel::Handoff {
        up,
        lease,
        idle,
        head_len,
    }));
    false
}

#[inline(always)]
fn request_info<'a>(req: &'a RequestHead, cx: &ConnCtx) -> RequestInfo<'a> {
    RequestInfo {
        method: &req.method,
        uri: &req.uri,
        version: req.version,
        headers: req.headers.built_map(),
        src: cx.peer.ip(),
        dst: cx.local,
    }
}

/// Runs a proxy's `http-request` rules over the request (they may rewrite
/// its headers and URI).
/// Without rules (the usual proxy) nothing is called.
#[inline]
fn run_request_rules(
    rules: &RequestRules,
    acls: &CompiledAcls,
    req: &mut RequestHead,
    cx: &ConnCtx,
) -> Verdict {
    if rules.is_empty() {
        return Verdict::Continue;
    }
    apply_request_rules(rules, acls, req, cx)
}

fn apply_request_rules(
    rules: &RequestRules,
    acls: &CompiledAcls,
    req: &mut RequestHead,
    cx: &ConnCtx,
) -> Verdict {
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.method = std::mem::take(&mut req.method);
    parts.uri = std::mem::take(&mut req.uri);
    parts.version = req.version;
    parts.headers = std::mem::take(req.headers.map_mut());
    let verdict = rules.apply(acls, &mut parts, cx.peer.ip(), cx.local);
    req.method = parts.method;
    req.uri = parts.uri;
    *req.headers.map_mut() = parts.headers;
    verdict
}

fn cookie_flag(c: RequestCookie) -> u8 {
    match c {
        RequestCookie::None => b'N',
        RequestCookie::Valid(_) => b'V',
        RequestCookie::Down(_) => b'D',
        RequestCookie::Invalid => b'I',
        RequestCookie::Expired => b'E',
        RequestCookie::Old => b'O',
    }
}

/// `I` when a persistence cookie was set in the response, else `N`.
fn response_cookie_flag(name: &str, headers: &h1::Fields) -> u8 {
    let set = headers
        .values(Known::SetCookie)
        .any(|v| v.starts_with(name.as_bytes()) && v.get(name.len()) == Some(&b'='));
    if set {
        b'I'
    } else {
        b'N'
    }
}

/// The request target as sent, without copying for the usual origin form.
fn target_str(uri: &http::Uri) -> std::borrow::Cow<'_, str> {
    match (uri.scheme(), uri.path_and_query()) {
        (None, Some(pq)) => std::borrow::Cow::Borrowed(pq.as_str()),
        _ => std::borrow::Cow::Owned(target_string(uri)),
    }
}

fn target_string(uri: &http::Uri) -> String {
    let mut b = BytesMut::with_capacity(64);
    h1::write_target(&mut b, uri);
    String::from_utf8_lossy(&b).into_owned()
}

fn version_str(v: Version) -> &'static str {
    if v == Version::HTTP_10 {
        "HTTP/1.0"
    } else {
        "HTTP/1.1"
    }
}
