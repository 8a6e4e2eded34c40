//! Administration surfaces served by the proxy itself.
//!
//! - [`answer_local`]: the single entry the proxy calls after a frontend's
//!   `http-request` rules: `use-service prometheus-exporter` lines, then the
//!   `stats uri` page.
//! - [`stats`]: the `stats uri` page (HTML, and CSV with `;csv`) with
//!   HAProxy's column order, read-only.
//! - [`prometheus`]: HAProxy 2.6's exporter metric names, text format 0.0.4.
//! - [`socket`]: the runtime API (`stats socket` in `global`).

pub mod prometheus;
pub mod socket;
pub mod stats;

use http::header::HeaderValue;
use http::{HeaderMap, StatusCode};
use switchyard_config::Service;

use crate::frontend::RequestInfo;
use crate::snapshot::{FrontendRt, Snapshot};

pub use stats::Page;

/// The answer the proxy gives itself for this request, if any: the first
/// `use-service` line whose condition matches, else the stats page when its
/// URI matches. `None`: route the request normally.
///
/// Called once per request after the frontend's other `http-request` rules
/// (see [`switchyard_config::UseService`] for the ordering difference with
/// HAProxy). Without `use-service` lines or a stats page this is two empty checks,
/// inlined into the caller ([`serves_local`]); the rest is out of line.
#[inline]
pub fn answer_local(fe: &FrontendRt, req: &RequestInfo<'_>, snap: &Snapshot) -> Option<Page> {
    if !serves_local(fe) {
        return None;
    }
    answer_configured(fe, req, snap)
}

/// Whether the frontend has anything [`answer_local`] can answer: `use-service` lines
/// or a stats page.
#[inline]
pub fn serves_local(fe: &FrontendRt) -> bool {
    !fe.cfg.services.is_empty() || fe.cfg.stats.is_some()
}

#[inline(never)]
fn answer_configured(fe: &FrontendRt, req: &RequestInfo<'_>, snap: &Snapshot) -> Option<Page> {
    for svc in &fe.cfg.services {
        if !fe.router.acls().eval_opt(svc.cond.as_ref(), req) {
            continue;
        }
        return Some(match svc.service {
            Service::PrometheusExporter => metrics_page(snap),
        });
    }
    let stats = fe.cfg.stats.as_ref()?;
    let target = req.uri.path_and_query().map_or("/", |p| p.as_str());
    stats::matches(stats, target).then(|| stats::answer(stats, target, req.headers, snap))
}

fn metrics_page(snap: &Snapshot) -> Page {
    let body = prometheus::render(snap).into_bytes();
    let mut headers = HeaderMap::with_capacity(3);
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(prometheus::CONTENT_TYPE),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Page {
        status: StatusCode::OK,
        headers,
        body,
    }
}
