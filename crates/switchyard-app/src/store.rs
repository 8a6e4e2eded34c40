//! The shared state of both tiers: the session store, the shared counter and the Redis
//! connections behind them.
//!
//! Sessions are written by the HTTP tier through tower-sessions and read by the socket tier
//! straight from the same store at the Engine.IO handshake. With a Redis URL every node of
//! both tiers sees every session; without one each process keeps its own in memory, which is
//! only correct for a single node (see [`Backend::describe`]).

use std::str::FromStr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use async_trait::async_trait;
use axum::http::{self, HeaderMap};
use fred::prelude::{Builder, ClientLike, Config, KeysInterface, Pool, ReconnectPolicy};
use fred::types::RespVersion;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::MemoryStore;
use tower_sessions_redis_store::RedisStore;

/// Name of the session cookie written by the HTTP tier and read by the socket tier.
pub const SESSION_COOKIE: &str = "session";
/// Session key holding the logged-in user name (a JSON string).
pub const USER_KEY: &str = "user";
/// Session key holding the per-session counter of `POST /api/counter`.
pub const COUNTER_KEY: &str = "counter";
/// Redis key of the counter shared by every user of the chat.
const SHARED_COUNTER_KEY: &str = "switchyard-app:shared-counter";
/// How long start-up waits for Redis to answer `PING` before giving up.
pub const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The session store, chosen at run time: tower-sessions' layer is generic over one store
/// type, so the choice is an enum that delegates.
#[derive(Debug, Clone)]
pub enum AppStore {
    Memory(MemoryStore),
    Redis(RedisStore<Pool>),
}

#[async_trait]
impl SessionStore for AppStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Self::Memory(s) => s.create(record).await,
            Self::Redis(s) => s.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Self::Memory(s) => s.save(record).await,
            Self::Redis(s) => s.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Self::Memory(s) => s.load(id).await,
            Self::Redis(s) => s.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Self::Memory(s) => s.delete(id).await,
            Self::Redis(s) => s.delete(id).await,
        }
    }
}

impl AppStore {
    /// The user logged in by the session whose cookie is in `headers`, if any.
    ///
    /// Used by the socket tier on the Engine.IO handshake request. Several `Cookie` headers
    /// and junk pairs are tolerated; an expired, unknown or malformed id reads as "no user".
    pub async fn user_from_headers(&self, headers: &HeaderMap) -> Option<String> {
        let id = session_id_from_headers(headers)?;
        let record = match self.load(&id).await {
            Ok(record) => record?,
            Err(err) => {
                tracing::warn!(%err, "session store unavailable, treating the client as anonymous");
                return None;
            }
        };
        if record.expiry_date <= time::OffsetDateTime::now_utc() {
            return None;
        }
        record.data.get(USER_KEY)?.as_str().map(str::to_owned)
    }
}

/// Finds the session id in the request's `Cookie` headers.
///
/// Pairs are split on `;` and also on `,`: a cookie value cannot contain a comma (RFC 6265
/// `cookie-octet`), and socket.io-client's Node WebSocket transport is known to join cookies
/// with one (`session=…,SRVNAME=S1; SRVNAME=S1`).
pub fn session_id_from_headers(headers: &HeaderMap) -> Option<Id> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split([';', ',']))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == SESSION_COOKIE)
        .find_map(|(_, value)| Id::from_str(value.trim()).ok())
}

/// The counter every chat user shares: one Redis key, or one number per process.
#[derive(Debug, Clone)]
pub enum SharedCounter {
    Local(Arc<AtomicI64>),
    Redis(Pool),
}

impl SharedCounter {
    /// Adds `by` and returns the new value.
    pub async fn add(&self, by: i64) -> anyhow::Result<i64> {
        match self {
            Self::Local(n) => Ok(n.fetch_add(by, Ordering::SeqCst) + by),
            Self::Redis(pool) => Ok(pool.incr_by(SHARED_COUNTER_KEY, by).await?),
        }
    }

    /// The current value.
    pub async fn get(&self) -> anyhow::Result<i64> {
        match self {
            Self::Local(n) => Ok(n.load(Ordering::SeqCst)),
            Self::Redis(pool) => Ok(pool
                .get::<Option<i64>, _>(SHARED_COUNTER_KEY)
                .await?
                .unwrap_or(0)),
        }
    }
}

/// Everything a node keeps outside its own memory, or in it when there is no Redis.
#[derive(Debug, Clone)]
pub struct Backend {
    pub store: AppStore,
    pub counter: SharedCounter,
    /// The Redis URL when the node runs against Redis (the socket tier reuses it for the
    /// broadcast adapter's subscriber connection).
    pub redis_url: Option<String>,
}

impl Backend {
    /// The embedded default: sessions and the shared counter live in this process only.
    pub fn memory() -> Self {
        Self {
            store: AppStore::Memory(MemoryStore::default()),
            counter: SharedCounter::Local(Arc::default()),
            redis_url: None,
        }
    }

    /// Connects to Redis and checks it answers `PING` within [`REDIS_CONNECT_TIMEOUT`].
    pub async fn redis(url: &str) -> anyhow::Result<Self> {
        let pool = redis_pool(url).await?;
        Ok(Self {
            store: AppStore::Redis(RedisStore::new(pool.clone())),
            counter: SharedCounter::Redis(pool),
            redis_url: Some(url.to_owned()),
        })
    }

    /// Redis when a URL is given, memory otherwise.
    pub async fn from_url(url: Option<&str>) -> anyhow::Result<Self> {
        match url {
            Some(url) => Self::redis(url).await,
            None => Ok(Self::memory()),
        }
    }

    /// One line for the start-up log saying where sessions live.
    pub fn describe(&self) -> String {
        match &self.redis_url {
            Some(url) => format!("sessions and broadcast shared through Redis at {url}"),
            None => "sessions kept in this process's memory: they are per node, so with several \
                     nodes a client logged in on one node is anonymous on the others \
                     (run every node with --redis URL to share them)"
                .to_owned(),
        }
    }
}

/// Parses a Redis URL into a fred config speaking RESP3 (socketioxide-redis needs it and fred
/// does not read the protocol from the URL).
pub fn redis_config(url: &str) -> anyhow::Result<Config> {
    let mut config = Config::from_url(url).with_context(|| format!("invalid Redis URL {url:?}"))?;
    config.version = RespVersion::RESP3;
    Ok(config)
}

/// A builder with a bounded connect time. After start-up the client reconnects forever (a
/// restarted Redis must not take the node down); start-up itself is bounded by the caller.
pub fn redis_builder(url: &str) -> anyhow::Result<Builder> {
    let mut builder = Builder::from_config(redis_config(url)?);
    builder
        .with_connection_config(|c| {
            c.connection_timeout = REDIS_CONNECT_TIMEOUT;
            c.internal_command_timeout = REDIS_CONNECT_TIMEOUT;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2));
    Ok(builder)
}

async fn redis_pool(url: &str) -> anyhow::Result<Pool> {
    let pool = redis_builder(url)?.build_pool(2)?;
    let ready = async {
        pool.init().await?;
        pool.ping::<String>(None).await
    };
    match tokio::time::timeout(REDIS_CONNECT_TIMEOUT, ready).await {
        Ok(Ok(_)) => Ok(pool),
        Ok(Err(err)) => bail!("Redis at {url} is unreachable: {err}"),
        Err(_) => bail!(
            "Redis at {url} did not answer PING within {:?}",
            REDIS_CONNECT_TIMEOUT
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(http::header::COOKIE, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn finds_the_session_cookie_in_every_shape_clients_send() {
        let id = Id::default();
        let want = Some(id);
        let s = format!("{SESSION_COOKIE}={id}");
        assert_eq!(session_id_from_headers(&headers(&[&s])), want);
        assert_eq!(
            session_id_from_headers(&headers(&[&format!("a=b; {s}; SRVNAME=S1")])),
            want
        );
        assert_eq!(
            session_id_from_headers(&headers(&[&format!("  {s}  ;x")])),
            want
        );
        assert_eq!(session_id_from_headers(&headers(&["SRVNAME=S1", &s])), want);
        assert_eq!(
            session_id_from_headers(&headers(&[&format!("{s},SRVNAME=S1; SRVNAME=S1")])),
            want
        );
        // A junk value before the real one does not hide it.
        assert_eq!(
            session_id_from_headers(&headers(&[&format!("{SESSION_COOKIE}=junk; {s}")])),
            want
        );
    }

    #[test]
    fn no_or_malformed_session_cookie_is_none() {
        assert_eq!(session_id_from_headers(&headers(&[])), None);
        assert_eq!(session_id_from_headers(&headers(&["SRVNAME=S1"])), None);
        assert_eq!(
            session_id_from_headers(&headers(&[&format!("{SESSION_COOKIE}=x")])),
            None
        );
        assert_eq!(
            session_id_from_headers(&headers(&[&format!("other{SESSION_COOKIE}=x")])),
            None
        );
    }
}
