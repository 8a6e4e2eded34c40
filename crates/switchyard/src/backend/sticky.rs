//! Cookie persistence (`cookie NAME insert|rewrite|prefix ...`), HAProxy 2.6 semantics.

use std::sync::Arc;
use std::time::SystemTime;

use switchyard_config::CookieConfig;

use super::ServerState;

/// Request-side verdict, HAProxy's log flag in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestCookie {
    /// No cookie of that name (N).
    None,
    /// Names a running server: use it, bypassing the balancer (V).
    Valid(usize),
    /// Names only DOWN/MAINT servers (D); with `option persist` the caller may still use it.
    Down(usize),
    /// Names no server (I).
    Invalid,
    /// Idle for longer than `maxidle` (E).
    Expired,
    /// Older than `maxlife` (O).
    Old,
}

/// Reads every `Cookie` header and decides which server, if any, the client is bound to.
pub fn lookup(
    cfg: &CookieConfig,
    headers: &http::HeaderMap,
    servers: &[Arc<ServerState>],
    now: SystemTime,
) -> RequestCookie {
    let _ = (cfg, headers, servers, now);
    unimplemented!("cookie persistence: being written")
}

/// Rewrites the forwarded request: removes the persistence cookie with `indirect`,
/// strips `<srvcookie>~` in `prefix` mode.
pub fn prepare_request(cfg: &CookieConfig, headers: &mut http::HeaderMap) {
    let _ = (cfg, headers);
    unimplemented!("cookie persistence: being written")
}

/// Applies the response side: insert/refresh the cookie (exact HAProxy layout),
/// delete or keep a server-set cookie of that name (`preserve`), rewrite/prefix,
/// and `cache-control: private` with `nocache` on cacheable responses.
#[allow(clippy::too_many_arguments)]
pub fn apply_response(
    cfg: &CookieConfig,
    request: RequestCookie,
    request_method: &http::Method,
    request_headers: &http::HeaderMap,
    served_by: &ServerState,
    status: http::StatusCode,
    response_headers: &mut http::HeaderMap,
    now: SystemTime,
) {
    let _ = (cfg, request, request_method, request_headers, served_by, status, response_headers, now);
    unimplemented!("cookie persistence: being written")
}
