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
/// How long any Redis command may take. While Redis is unreachable, fred queues commands until
/// it reconnects: without a bound a login would hang for the whole outage instead of failing
/// with 503.
pub const REDIS_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait between two reconnection attempts once Redis went away.
pub const REDIS_RECONNECT_MAX: Duration = Duration::from_secs(2);
/// How often a node checks that Redis answers (see [`RedisHealth`]).
pub const REDIS_CHECK_EVERY: Duration = Duration::from_secs(1);
/// How often a node repeats, while Redis stays unreachable, that it still is.
const REDIS_DOWN_REMINDER: Duration = Duration::from_secs(30);

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
    ///
    /// An error means the store could not be read (Redis unreachable): the caller decides
    /// whether that is "anonymous" or a refusal.
    pub async fn user_from_headers(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<String>, session_store::Error> {
        let Some(id) = session_id_from_headers(headers) else {
            return Ok(None);
        };
        let Some(record) = self.load(&id).await? else {
            return Ok(None);
        };
        if record.expiry_date <= time::OffsetDateTime::now_utc() {
            return Ok(None);
        }
        Ok(record
            .data
            .get(USER_KEY)
            .and_then(|u| u.as_str())
            .map(str::to_owned))
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

/// Whether this node's Redis connections work, as last checked.
///
/// A node keeps running while Redis is away: pages, assets and the Socket.IO connections it
/// already holds do not need Redis, and its clients reconnect by themselves. Everything that
/// does need Redis (logins, session reads, the shared counter, cross-node broadcast) fails
/// fast (see [`REDIS_COMMAND_TIMEOUT`]) and the node reports itself `degraded` on `/health`,
/// with status 200 all the same: every node shares the one Redis, so a health check that took
/// nodes out of service for it would turn a partial outage into a complete one.
#[derive(Debug, Clone, Default)]
pub struct RedisHealth {
    state: Arc<std::sync::Mutex<RedisState>>,
    /// Other connections that must be up too (the socket tier's broadcast subscriber).
    extra: Arc<std::sync::Mutex<Vec<fred::clients::SubscriberClient>>>,
}

#[derive(Debug, Clone, Default)]
enum RedisState {
    #[default]
    Up,
    Down {
        since: std::time::Instant,
        error: String,
    },
}

impl RedisHealth {
    /// `None` when Redis answered the last check, else how long it has been failing and why.
    pub fn down(&self) -> Option<(Duration, String)> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            RedisState::Up => None,
            RedisState::Down { since, error } => Some((since.elapsed(), error.clone())),
        }
    }

    /// Also watch `subscriber` (it must be connected for the node to be healthy).
    pub fn watch(&self, subscriber: fred::clients::SubscriberClient) {
        self.extra
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(subscriber);
    }

    /// One check: `PING` on the pool within [`REDIS_CHECK_EVERY`], and every watched
    /// connection connected.
    async fn check(&self, pool: &Pool) -> Result<(), String> {
        match tokio::time::timeout(REDIS_CHECK_EVERY, pool.ping::<String>(None)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(err.to_string()),
            Err(_) => return Err(format!("no answer to PING within {REDIS_CHECK_EVERY:?}")),
        }
        let extra = self.extra.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if extra.iter().any(|s| !s.is_connected()) {
            return Err("the broadcast subscriber is not connected yet".into());
        }
        Ok(())
    }

    /// Checks Redis every [`REDIS_CHECK_EVERY`] for the life of the process, logging each change
    /// (and a reminder every 30 s while it stays down).
    fn spawn_monitor(&self, node: String, url: String, pool: Pool) {
        let health = self.clone();
        tokio::spawn(async move {
            let mut reminded = std::time::Instant::now();
            loop {
                tokio::time::sleep(REDIS_CHECK_EVERY).await;
                let result = health.check(&pool).await;
                let mut state = health.state.lock().unwrap_or_else(|e| e.into_inner());
                match (&*state, result) {
                    (RedisState::Up, Ok(())) => {}
                    (RedisState::Up, Err(error)) => {
                        tracing::warn!(
                            "{node}: Redis at {url} is unreachable ({error}): logins, sessions, \
                             the shared counter and cross-node broadcast fail until it returns; \
                             reconnecting"
                        );
                        reminded = std::time::Instant::now();
                        *state = RedisState::Down {
                            since: std::time::Instant::now(),
                            error,
                        };
                    }
                    (RedisState::Down { since, .. }, Ok(())) => {
                        tracing::info!(
                            "{node}: Redis at {url} is reachable again after {:.1} s",
                            since.elapsed().as_secs_f64()
                        );
                        *state = RedisState::Up;
                    }
                    (RedisState::Down { since, .. }, Err(error)) => {
                        if reminded.elapsed() >= REDIS_DOWN_REMINDER {
                            tracing::warn!(
                                "{node}: Redis at {url} still unreachable after {} s ({error})",
                                since.elapsed().as_secs()
                            );
                            reminded = std::time::Instant::now();
                        }
                        let since = *since;
                        *state = RedisState::Down { since, error };
                    }
                }
            }
        });
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
    /// Redis's health as this node sees it (always healthy without Redis).
    pub redis_health: RedisHealth,
}

impl Backend {
    /// The embedded default: sessions and the shared counter live in this process only.
    pub fn memory() -> Self {
        Self {
            store: AppStore::Memory(MemoryStore::default()),
            counter: SharedCounter::Local(Arc::default()),
            redis_url: None,
            redis_health: RedisHealth::default(),
        }
    }

    /// Connects to Redis and checks it answers `PING` within [`REDIS_CONNECT_TIMEOUT`].
    pub async fn redis(url: &str) -> anyhow::Result<Self> {
        let pool = redis_pool(url).await?;
        Ok(Self {
            store: AppStore::Redis(RedisStore::new(pool.clone())),
            counter: SharedCounter::Redis(pool),
            redis_url: Some(url.to_owned()),
            redis_health: RedisHealth::default(),
        })
    }

    /// Starts watching Redis for node `node` (nothing to watch without Redis). A node calls
    /// this once it runs; the demo's start-up check does not.
    pub fn monitor(&self, node: &str) {
        if let (Some(url), SharedCounter::Redis(pool)) = (&self.redis_url, &self.counter) {
            self.redis_health
                .spawn_monitor(node.to_owned(), url.clone(), pool.clone());
        }
    }

    /// `None` when healthy, else why this node is degraded (for `/health`).
    pub fn degraded(&self) -> Option<String> {
        let url = self.redis_url.as_deref()?;
        let (for_how_long, error) = self.redis_health.down()?;
        Some(format!(
            "Redis at {url} unreachable for {} s ({error})",
            for_how_long.as_secs()
        ))
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

/// A builder with a bounded connect time and command time ([`REDIS_COMMAND_TIMEOUT`]). After
/// start-up the client reconnects forever, at most [`REDIS_RECONNECT_MAX`] apart (a restarted
/// Redis must not take the node down); start-up itself is bounded by the caller.
pub fn redis_builder(url: &str) -> anyhow::Result<Builder> {
    let mut builder = Builder::from_config(redis_config(url)?);
    builder
        .with_connection_config(|c| {
            c.connection_timeout = REDIS_CONNECT_TIMEOUT;
            c.internal_command_timeout = REDIS_CONNECT_TIMEOUT;
        })
        .with_performance_config(|p| p.default_command_timeout = REDIS_COMMAND_TIMEOUT)
        .set_policy(ReconnectPolicy::new_exponential(
            0,
            100,
            REDIS_RECONNECT_MAX.as_millis() as u32,
            2,
        ));
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
