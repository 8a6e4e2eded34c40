//! Connection attempts with `retries` and `option redispatch` (HAProxy 2.6
//! rules, behaviour reference §2.7): only failed connects are retried, 1 s
//! (or `timeout connect`) apart after an error, and a retry may go to another
//! server.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::queue::{self, Lease};
use super::upstream::{self, ConnectError, Upstream};
use crate::backend::balance::PickContext;
use crate::observability::LogRecord;
use crate::snapshot::BackendRt;

/// Connects to the leased server, retrying failed attempts (`retries`) and
/// redispatching per `option redispatch` (HAProxy 2.6 rules, behaviour doc §2.7).
pub(super) async fn connect_retries(
    be: &BackendRt,
    mut lease: Lease,
    mut persistent: bool,
    ctx: &PickContext<'_>,
    rec: &mut LogRecord,
    reuse: bool,
    dst_port: u16,
) -> Result<(Upstream, Lease), ConnectError> {
    let mut attempt = 0u32;
    loop {
        let addr = be.server_addr(lease.index(), dst_port);
        if reuse {
            if let Some(up) = upstream::checkout(addr) {
                return Ok((up, lease));
            }
        }
        let err = match upstream::connect(addr, be.cfg.timeouts.connect).await {
            Ok(up) => return Ok((up, lease)),
            Err(e) => e,
        };
        be.server_counters[lease.index()]
            .connect_errors
            .fetch_add(1, Ordering::Relaxed);
        if attempt >= be.cfg.retries {
            return Err(err);
        }
        attempt += 1;
        rec.retries = attempt;
        be.counters.retries.fetch_add(1, Ordering::Relaxed);
        let redispatch = should_redispatch(be, &lease, attempt, persistent);
        let quick = redispatch && be.rr_kind() && be.active_usable() > 1;
        if matches!(err, ConnectError::Refused(_)) && !quick {
            let pause = be
                .cfg
                .timeouts
                .connect
                .map_or(Duration::from_secs(1), |c| c.min(Duration::from_secs(1)));
            tokio::time::sleep(pause).await;
        }
        if redispatch {
            let avoid = lease.index();
            drop(lease);
            let ctx = PickContext {
                src: ctx.src,
                uri: ctx.uri,
                headers: ctx.headers,
                avoid: Some(avoid),
            };
            lease = match queue::assign(be, None, &ctx).await {
                Ok(a) => a.lease,
                Err(_) => return Err(err),
            };
            rec.redispatched = true;
            be.counters.redispatches.fetch_add(1, Ordering::Relaxed);
            persistent = false;
        }
    }
}

/// HAProxy's `stream_choose_redispatch` for retry number `attempt` (1-based).
pub(super) fn should_redispatch(
    be: &BackendRt,
    lease: &Lease,
    attempt: u32,
    persistent: bool,
) -> bool {
    let Some(interval) = be.cfg.redispatch else {
        return false;
    };
    if interval == 0 {
        return false;
    }
    if !lease.server().running() {
        return true;
    }
    let attempt = attempt as i64;
    let interval = interval as i64;
    if interval > 0 && attempt % interval == 0 {
        return true;
    }
    let period = be.cfg.retries as i64 + 1 + interval;
    if interval < 0 && period > 0 && attempt % period == 0 {
        return true;
    }
    !persistent && be.active_usable() > 1 && be.rr_kind()
}
