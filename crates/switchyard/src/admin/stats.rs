//! The statistics page (`stats enable`, `stats uri`, `stats auth`,
//! `stats realm`, `stats refresh`), HAProxy 2.6 style.
//!
//! `<uri>;csv` answers HAProxy's CSV: the same header line and column order
//! (tools read columns by position), one `FRONTEND` row per frontend, one row
//! per server and one `BACKEND` row per backend. Columns switchyard does not
//! measure are left empty, as HAProxy does for values that do not apply
//! (HAProxy also leaves `addr`, `cookie` and `algo` empty in this output).
//! Without `;csv` the same figures come as an HTML table. The page is
//! read-only (no `stats admin` actions) and always shows every proxy.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::{HeaderMap, StatusCode};
use switchyard_config::StatsPage;

use crate::backend::ServerState;
use crate::observability::Counters;
use crate::snapshot::{BackendRt, Snapshot};

/// HAProxy 2.6's `show stat` / `;csv` header, verbatim.
pub const CSV_HEADER: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,";

/// An answer of the stats page: status, headers, body.
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Whether `target` (path and query as sent) asks for the stats page.
pub fn matches(cfg: &StatsPage, target: &str) -> bool {
    target.starts_with(cfg.uri.as_str())
}

/// Builds the answer for a request to the stats page.
pub fn answer(cfg: &StatsPage, target: &str, request: &HeaderMap, snap: &Snapshot) -> Page {
    if !cfg.auth.is_empty() && !authorised(cfg, request) {
        return unauthorised(cfg);
    }
    let rest = &target[cfg.uri.len()..];
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    let body = if rest.contains(";csv") {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        csv(snap)
    } else {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/html"),
        );
        if let Some(r) = cfg.refresh.filter(|_| !rest.contains(";norefresh")) {
            headers.insert(
                HeaderName::from_static("refresh"),
                HeaderValue::from(r.as_secs()),
            );
        }
        html(snap, cfg.hide_version)
    };
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    Page {
        status: StatusCode::OK,
        headers,
        body: body.into_bytes(),
    }
}

fn authorised(cfg: &StatsPage, request: &HeaderMap) -> bool {
    let Some(given) = request.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(cred) = given.strip_prefix("Basic ").map(str::trim) else {
        return false;
    };
    cfg.auth
        .iter()
        .any(|(u, p)| base64(format!("{u}:{p}").as_bytes()) == cred)
}

/// HAProxy's 401 page with the `Basic` challenge (realm default "HAProxy Statistics").
fn unauthorised(cfg: &StatsPage) -> Page {
    let body = b"<html><body><h1>401 Unauthorized</h1>\nYou need a valid user and password to access this content.\n</body></html>\n".to_vec();
    let realm = cfg.realm.as_deref().unwrap_or("HAProxy Statistics");
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html"),
    );
    let challenge = format!("Basic realm=\"{realm}\"");
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        headers.insert(http::header::WWW_AUTHENTICATE, v);
    }
    Page {
        status: StatusCode::UNAUTHORIZED,
        headers,
        body,
    }
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One CSV row: column name → value; everything else empty.
struct Row(Vec<(&'static str, String)>);

impl Row {
    /// Sets a column; a later value replaces an earlier one (a server row's `scur` is its
    /// in-flight count, set after the generic [`traffic`] columns).
    fn set(&mut self, col: &'static str, v: impl ToString) -> &mut Self {
        let v = v.to_string();
        match self.0.iter_mut().find(|(n, _)| *n == col) {
            Some(slot) => slot.1 = v,
            None => self.0.push((col, v)),
        }
        self
    }

    fn render(&self, columns: &[&str], out: &mut String) {
        for c in columns {
            if let Some((_, v)) = self.0.iter().find(|(n, _)| n == c) {
                out.push_str(v);
            }
            out.push(',');
        }
        out.push('\n');
    }
}

fn columns() -> Vec<&'static str> {
    CSV_HEADER
        .trim_start_matches("# ")
        .trim_end_matches(',')
        .split(',')
        .collect()
}

fn traffic(row: &mut Row, c: &Counters) {
    let r = |i: usize| c.responses[i].load(Ordering::Relaxed);
    row.set("scur", c.current.load(Ordering::Relaxed))
        .set("stot", c.requests.load(Ordering::Relaxed))
        .set("bin", c.bytes_in.load(Ordering::Relaxed))
        .set("bout", c.bytes_out.load(Ordering::Relaxed))
        .set("hrsp_1xx", r(0))
        .set("hrsp_2xx", r(1))
        .set("hrsp_3xx", r(2))
        .set("hrsp_4xx", r(3))
        .set("hrsp_5xx", r(4))
        .set("hrsp_other", r(5))
        .set("pid", 1)
        .set("mode", "http");
}

/// `UP`, `DOWN`, `MAINT` or `no check`, as the `status` column says it.
fn server_status(s: &ServerState, checked: bool) -> &'static str {
    if s.maint.load(Ordering::Relaxed) {
        "MAINT"
    } else if s.drain.load(Ordering::Relaxed) {
        "DRAIN"
    } else if !checked {
        "no check"
    } else if s.up.load(Ordering::Relaxed) {
        "UP"
    } else {
        "DOWN"
    }
}

fn backend_rows(be: &BackendRt, iid: usize) -> Vec<Row> {
    let mut rows = Vec::with_capacity(be.servers.len() + 1);
    let (mut act, mut bck, mut scur) = (0, 0, 0u64);
    let (mut act_weight, mut bck_weight) = (0, 0);
    for (i, s) in be.servers.iter().enumerate() {
        let cfg = &be.cfg.servers[i];
        let c = &be.server_counters[i];
        let status = server_status(s, cfg.check);
        let usable = status == "UP" || status == "no check";
        let w = s.weight.load(Ordering::Relaxed);
        if usable {
            if s.backup {
                bck += 1;
                bck_weight += w;
            } else {
                act += 1;
                act_weight += w;
            }
        }
        let inflight = s.inflight.load(Ordering::Relaxed);
        scur += u64::from(inflight);
        let mut row = Row(Vec::with_capacity(32));
        traffic(&mut row, c);
        row.set("pxname", &be.cfg.name)
            .set("svname", &cfg.name)
            .set("qcur", s.queued.load(Ordering::Relaxed))
            .set("scur", inflight)
            .set("econ", c.connect_errors.load(Ordering::Relaxed))
            .set("eresp", c.response_errors.load(Ordering::Relaxed))
            .set("status", status)
            .set("weight", w)
            .set("act", u8::from(!s.backup))
            .set("bck", u8::from(s.backup))
            .set("iid", iid)
            .set("sid", cfg.id)
            .set("type", 2);
        if let Some(m) = cfg.maxconn {
            row.set("slim", m);
        }
        if cfg.check {
            row.set("check_rise", cfg.rise).set("check_fall", cfg.fall);
        }
        rows.push(row);
    }
    let c = &be.counters;
    let mut row = Row(Vec::with_capacity(32));
    traffic(&mut row, c);
    row.set("pxname", &be.cfg.name)
        .set("svname", "BACKEND")
        .set("qcur", be.waitlist.backend_queued())
        .set("scur", scur)
        .set(
            "econ",
            be.server_counters
                .iter()
                .map(|s| s.connect_errors.load(Ordering::Relaxed))
                .sum::<u64>(),
        )
        .set(
            "eresp",
            be.server_counters
                .iter()
                .map(|s| s.response_errors.load(Ordering::Relaxed))
                .sum::<u64>(),
        )
        .set("wretr", c.retries.load(Ordering::Relaxed))
        .set("wredis", c.redispatches.load(Ordering::Relaxed))
        .set("status", if act + bck > 0 { "UP" } else { "DOWN" })
        // As HAProxy: the weight in service, i.e. the backups' only when no active server is up.
        .set("weight", if act > 0 { act_weight } else { bck_weight })
        .set("act", act)
        .set("bck", bck)
        .set("iid", iid)
        .set("sid", 0)
        .set("type", 1)
        .set("req_tot", c.requests.load(Ordering::Relaxed));
    rows.push(row);
    rows
}

fn all_rows(snap: &Snapshot) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, fe) in snap.frontends.iter().enumerate() {
        let mut row = Row(Vec::with_capacity(24));
        traffic(&mut row, &fe.counters);
        row.set("pxname", &fe.cfg.name)
            .set("svname", "FRONTEND")
            .set("status", "OPEN")
            .set("iid", i + 1)
            .set("sid", 0)
            .set("type", 0)
            .set("req_tot", fe.counters.requests.load(Ordering::Relaxed));
        if let Some(m) = fe.cfg.maxconn {
            row.set("slim", m);
        }
        rows.push(row);
    }
    for (i, be) in snap.backends.iter().enumerate() {
        rows.extend(backend_rows(be, snap.frontends.len() + i + 1));
    }
    rows
}

/// The `;csv` body.
pub fn csv(snap: &Snapshot) -> String {
    let cols = columns();
    let mut out = String::with_capacity(4096);
    out.push_str(CSV_HEADER);
    out.push('\n');
    for row in all_rows(snap) {
        row.render(&cols, &mut out);
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The HTML page: one table per proxy row group with the main columns.
fn html(snap: &Snapshot, hide_version: bool) -> String {
    const SHOWN: [&str; 14] = [
        "pxname", "svname", "status", "weight", "act", "bck", "qcur", "scur", "stot", "bout",
        "econ", "eresp", "hrsp_2xx", "hrsp_5xx",
    ];
    let mut out = String::with_capacity(8192);
    out.push_str("<!DOCTYPE html>\n<html><head><title>Statistics Report for switchyard</title>\n");
    out.push_str("<style>body{font-family:arial,helvetica,sans-serif;font-size:12px}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}</style></head><body>\n");
    if hide_version {
        out.push_str("<h1>Statistics Report</h1>\n");
    } else {
        let _ = writeln!(
            out,
            "<h1>Statistics Report for switchyard {}</h1>",
            env!("CARGO_PKG_VERSION")
        );
    }
    out.push_str("<table><tr>");
    for c in SHOWN {
        let _ = write!(out, "<th>{c}</th>");
    }
    out.push_str("</tr>\n");
    for row in all_rows(snap) {
        out.push_str("<tr>");
        for c in SHOWN {
            let v = row
                .0
                .iter()
                .find(|(n, _)| *n == c)
                .map_or("", |(_, v)| v.as_str());
            let _ = write!(out, "<td>{}</td>", escape(v));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table></body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(base64(b"admin:secret"), "YWRtaW46c2VjcmV0");
    }

    #[test]
    fn header_has_haproxy_columns_in_order() {
        let cols = columns();
        assert_eq!(&cols[..4], ["pxname", "svname", "qcur", "qmax"]);
        assert_eq!(cols.iter().position(|c| *c == "status"), Some(17));
        assert_eq!(cols.iter().position(|c| *c == "type"), Some(32));
        let mut out = String::new();
        let mut row = Row(Vec::new());
        row.set("pxname", "p").set("status", "UP");
        row.render(&cols, &mut out);
        assert_eq!(out.split(',').count(), cols.len() + 1);
        assert!(out.starts_with("p,"));
        assert_eq!(out.split(',').nth(17), Some("UP"));
    }

    #[test]
    fn a_later_value_replaces_an_earlier_one() {
        let cols = columns();
        let mut row = Row(Vec::new());
        row.set("scur", 0).set("pxname", "p").set("scur", 1);
        let mut out = String::new();
        row.render(&cols, &mut out);
        assert_eq!(out.split(',').nth(4), Some("1"));
        assert_eq!(row.0.len(), 2);
    }
}
