//! The socket tier: a Socket.IO server (Engine.IO v4, polling and WebSocket) on `/engine.io`.
//!
//! Namespaces:
//! - `/` is open to anyone. It carries the diagnostics the end-to-end tests use: `whoami`
//!   (which node, which transport, which logged-in user), `echo`, `shout` (a broadcast to every
//!   other client of the cluster), `join` and `room_shout`.
//! - `/chat` is the application and requires login: a client whose handshake request carries
//!   no valid session cookie is refused with the CONNECT_ERROR message `unauthorized`.
//!
//! The session is read once, from the Engine.IO handshake request's `Cookie` header, in a
//! connect middleware. The middleware also registers the event handlers and joins the rooms:
//! socketioxide awaits middlewares before it answers CONNECT but runs the connect handler as a
//! separate task after it, so handlers registered there can miss a client's first event. With a Redis URL, broadcasts go through socketioxide-redis so that they reach
//! the clients of every socket node.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::http::HeaderValue;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::{AckSender, Data, SocketRef, State};
use socketioxide::handler::ConnectHandler;
use socketioxide::{SocketIo, TransportType};
use socketioxide_redis::{FredAdapter, RedisAdapterCtr};

use crate::node::with_node_header;
use crate::store::{redis_builder, Backend};
use crate::upgrade_gate::UpgradeGate;

/// How long the broadcast adapter may take to subscribe at start-up. Longer than the PING
/// check (Redis is known to answer by then): a loaded machine can be slow to subscribe.
const ADAPTER_INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The Engine.IO path the balancer routes on.
pub const ENGINE_IO_PATH: &str = "/engine.io";
/// The room every `/chat` client is in, used for chat-wide events such as the counter.
const EVERYONE: &str = "everyone";
/// The room a `/chat` client starts in.
const LOBBY: &str = "lobby";

/// Engine.IO timing (tests shorten it; the defaults are Engine.IO's own) and the origins
/// allowed cross-origin.
#[derive(Debug, Clone)]
pub struct SocketOptions {
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Page origins allowed to connect from another origin with credentials (see [`cors`]).
    pub cors_origins: Vec<HeaderValue>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            cors_origins: Vec::new(),
        }
    }
}

/// Checks `--cors-origin` values: each an exact origin, `scheme://host[:port]` with scheme
/// http or https and nothing after the authority. `*` is refused: browsers ignore a wildcard
/// on credentialed requests, and without the cookies (the balancer's SRVNAME above all)
/// polling loses its stickiness.
pub fn parse_origins(origins: &[String]) -> anyhow::Result<Vec<HeaderValue>> {
    origins
        .iter()
        .map(|origin| {
            let rest = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            let valid = rest.is_some_and(|authority| {
                !authority.is_empty()
                    && !authority.contains(['/', '?', '#', '*', ' ', '@'])
            });
            if !valid {
                bail!("--cors-origin {origin:?} is not an origin: expected scheme://host[:port], such as http://127.0.0.1:8080 (no path, no wildcard)");
            }
            HeaderValue::from_str(origin)
                .with_context(|| format!("--cors-origin {origin:?} is not a valid header value"))
        })
        .collect()
}

/// Cross-origin access for the listed page origins (none: same origin only).
///
/// Engine.IO polling from a page on another origin is a credentialed XHR/fetch: it needs the
/// exact origin echoed in `Access-Control-Allow-Origin` with `Access-Control-Allow-Credentials:
/// true`, or the browser neither sends nor stores the cookies. Preflights (`OPTIONS`) are
/// answered here, before socketioxide (which would refuse them as a bad handshake method).
/// Other origins get no CORS headers at all, so their browsers refuse the responses.
fn cors(origins: &[HeaderValue]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::Method;
    use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(AllowHeaders::mirror_request())
            .max_age(Duration::from_secs(600)),
    )
}

#[derive(Debug)]
struct SocketState {
    node: String,
    backend: Backend,
}

/// The logged-in user of a socket, read at the handshake (`None` when anonymous).
#[derive(Debug, Clone)]
struct SessionUser(Option<String>);

/// A built socket tier: its router and what it takes to close every client on shutdown.
pub struct SocketTier {
    pub router: Router,
    close: Pin<Box<dyn Future<Output = ()> + Send>>,
    count: Arc<dyn Fn() -> usize + Send + Sync>,
}

impl fmt::Debug for SocketTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SocketTier").finish_non_exhaustive()
    }
}

impl SocketTier {
    /// Disconnects every client of this node.
    pub async fn close(self) {
        self.close.await;
    }

    /// The number of clients connected to this node (both namespaces).
    pub fn connected(&self) -> usize {
        (self.count)()
    }
}

/// Builds the socket tier for node `node`: the local adapter without Redis, the Redis adapter
/// (cross-node broadcast) with it.
pub async fn build(
    node: &str,
    backend: &Backend,
    opts: SocketOptions,
) -> anyhow::Result<SocketTier> {
    let state = Arc::new(SocketState {
        node: node.to_owned(),
        backend: backend.clone(),
    });
    let builder = SocketIo::builder()
        .req_path(ENGINE_IO_PATH)
        .ping_interval(opts.ping_interval)
        .ping_timeout(opts.ping_timeout)
        .with_state(state.clone());
    match &backend.redis_url {
        None => {
            let (layer, io) = builder.build_layer();
            io.ns("/", on_root_connect::<LocalAdapter>.with(load_user));
            io.ns("/chat", on_chat_connect::<LocalAdapter>.with(require_user));
            finish(node, backend, &opts.cors_origins, layer, io)
        }
        Some(url) => {
            let started = std::time::Instant::now();
            let subscriber = redis_builder(url)?.build_subscriber_client()?;
            backend.redis_health.watch(subscriber.clone());
            // `new_with_fred` connects the subscriber itself (calling `init` first as well made
            // start-up hang now and then).
            let connect = RedisAdapterCtr::new_with_fred(subscriber.clone());
            let adapter = tokio::time::timeout(ADAPTER_INIT_TIMEOUT, connect)
                .await
                .context("Redis did not answer in time (broadcast adapter)")?
                .with_context(|| format!("cannot subscribe to Redis at {url}"))?;
            let (layer, io) = builder
                .with_adapter::<FredAdapter<_>>(adapter)
                .build_layer();
            let init = async {
                io.ns("/", on_root_connect.with(load_user)).await?;
                io.ns("/chat", on_chat_connect.with(require_user)).await
            };
            tokio::time::timeout(ADAPTER_INIT_TIMEOUT, init)
                .await
                .context("Redis did not answer in time (namespace init)")?
                .context("cannot start the Redis broadcast adapter")?;
            resubscribe_on_reconnect(node, subscriber);
            tracing::info!(
                "{node}: Redis broadcast adapter ready in {} ms",
                started.elapsed().as_millis()
            );
            finish(node, backend, &opts.cors_origins, layer, io)
        }
    }
}

/// Renews the broadcast adapter's subscriptions each time its connection comes back.
///
/// A new Redis connection has no subscriptions, and socketioxide-redis subscribes only once, at
/// start: without this a node would stop hearing the other nodes' broadcasts after any Redis
/// restart, silently. fred keeps the list of channels the client subscribed to; every
/// reconnection after start-up (the task starts once the adapter is subscribed) subscribes to
/// them again.
fn resubscribe_on_reconnect(node: &str, subscriber: fred::clients::SubscriberClient) {
    use fred::interfaces::{EventInterface, PubsubInterface};
    let node = node.to_owned();
    let mut reconnects = subscriber.reconnect_rx();
    tokio::spawn(async move {
        loop {
            match reconnects.recv().await {
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
            let channels: Vec<String> = subscriber
                .tracked_shard_channels()
                .into_iter()
                .map(|c| c.to_string())
                .collect();
            if channels.is_empty() {
                continue;
            }
            match subscriber.ssubscribe(channels.clone()).await {
                Ok(()) => tracing::info!(
                    "{node}: broadcast subscriptions renewed after a Redis reconnection ({} channels)",
                    channels.len()
                ),
                Err(err) => tracing::warn!(
                    "{node}: cannot renew the broadcast subscriptions after a Redis reconnection: \
                     {err}; cross-node broadcast is broken until the next reconnection"
                ),
            }
        }
    });
}

fn finish<A: Adapter>(
    node: &str,
    backend: &Backend,
    cors_origins: &[HeaderValue],
    layer: socketioxide::layer::SocketIoLayer<A>,
    io: SocketIo<A>,
) -> anyhow::Result<SocketTier> {
    let node_name = node.to_owned();
    let counter_io = io.clone();
    let count = Arc::new(move || {
        ["/", "/chat"]
            .iter()
            .filter_map(|ns| counter_io.of(ns))
            .map(|op| op.sockets().len())
            .sum()
    });
    let health_count = count.clone();
    let health_backend = backend.clone();
    // Always 200: see `RedisHealth` for why a Redis outage is "degraded", not "down".
    let router = Router::new()
        .route(
            "/health",
            get(move || {
                let connected = health_count();
                let node = node_name.clone();
                let degraded = health_backend.degraded();
                let redis = match (&health_backend.redis_url, &degraded) {
                    (None, _) => "none",
                    (Some(_), None) => "up",
                    (Some(_), Some(_)) => "down",
                };
                async move {
                    Json(json!({
                        "status": if degraded.is_some() { "degraded" } else { "ok" },
                        "node": node,
                        "connected": connected,
                        "redis": redis,
                        "problem": degraded,
                    }))
                }
            }),
        )
        .layer(layer)
        // In front of the Socket.IO layer: see `upgrade_gate` (engineioxide's poll/upgrade race).
        .layer(axum::middleware::from_fn_with_state(
            UpgradeGate::default(),
            UpgradeGate::handle,
        ));
    let router = match cors(cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let close_io = io;
    Ok(SocketTier {
        router: with_node_header(router, node)?,
        close: Box::pin(async move { close_io.close().await }),
        count,
    })
}

/// Refusal of a `/chat` connect: the CONNECT_ERROR message the client sees.
#[derive(Debug)]
enum Refusal {
    /// No logged-in session (logged out, expired, or another node's memory store).
    Unauthorized,
    /// The session store cannot be read (Redis unreachable): worth retrying later.
    StoreUnavailable,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unauthorized => "unauthorized",
            Self::StoreUnavailable => "session store unavailable",
        })
    }
}

impl std::error::Error for Refusal {}

/// `/`: reads the session user from the handshake request (never refuses) and registers the
/// events before the client is told it is connected.
async fn load_user<A: Adapter>(
    s: SocketRef<A>,
    State(state): State<Arc<SocketState>>,
) -> Result<(), Refusal> {
    let user = state
        .backend
        .store
        .user_from_headers(&s.req_parts().headers)
        .await
        .unwrap_or_else(|err| {
            tracing::warn!(%err, "session store unavailable, the client is anonymous on /");
            None
        });
    s.extensions.insert(SessionUser(user));
    s.on("whoami", whoami::<A>);
    s.on("echo", echo::<A>);
    s.on("shout", shout::<A>);
    s.on("join", join::<A>);
    s.on("room_shout", room_shout::<A>);
    Ok(())
}

/// `/chat`: refuses anonymous clients; registers the events and joins the starting rooms
/// before the client is told it is connected.
async fn require_user<A: Adapter>(
    s: SocketRef<A>,
    State(state): State<Arc<SocketState>>,
) -> Result<(), Refusal> {
    let user = state
        .backend
        .store
        .user_from_headers(&s.req_parts().headers)
        .await
        .map_err(|err| {
            tracing::warn!(%err, "session store unavailable, /chat connect refused");
            Refusal::StoreUnavailable
        })?
        .ok_or(Refusal::Unauthorized)?;
    s.extensions.insert(SessionUser(Some(user)));
    s.on("message", chat_message::<A>);
    s.on("room", chat_room::<A>);
    s.on("counter:add", counter_add::<A>);
    s.join([EVERYONE, LOBBY]);
    Ok(())
}

fn session_user<A: Adapter>(s: &SocketRef<A>) -> Option<String> {
    s.extensions.get::<SessionUser>().and_then(|u| u.0)
}

fn transport_name(t: TransportType) -> &'static str {
    match t {
        TransportType::Polling => "polling",
        TransportType::Websocket => "websocket",
    }
}

// === namespace "/" ===

/// Events are registered by [`load_user`]; nothing is left to do once connected.
async fn on_root_connect<A: Adapter>(s: SocketRef<A>) {
    tracing::debug!(id = %s.id, "connected on /");
}

async fn whoami<A: Adapter>(
    s: SocketRef<A>,
    ack: AckSender<A>,
    State(st): State<Arc<SocketState>>,
) {
    let _ = ack.send(&json!({
        "node": st.node,
        "transport": transport_name(s.transport_type()),
        "user": session_user(&s),
        "id": s.id.to_string(),
    }));
}

async fn echo<A: Adapter>(Data(data): Data<Value>, ack: AckSender<A>) {
    let _ = ack.send(&data);
}

/// Sends `heard` to every other client of the namespace, on every node, then acks.
async fn shout<A: Adapter>(
    s: SocketRef<A>,
    Data(data): Data<Value>,
    ack: AckSender<A>,
    State(st): State<Arc<SocketState>>,
) {
    let payload = json!({ "data": data, "from": s.id.to_string(), "node": st.node });
    let result = s.broadcast().emit("heard", &payload).await;
    if let Err(err) = &result {
        tracing::warn!(%err, "broadcast failed");
    }
    let _ = ack.send(&json!({ "node": st.node, "ok": result.is_ok() }));
}

async fn join<A: Adapter>(s: SocketRef<A>, Data(room): Data<String>, ack: AckSender<A>) {
    s.join(room.clone());
    let _ = ack.send(&json!({ "room": room }));
}

#[derive(Debug, Deserialize)]
struct RoomShout {
    room: String,
    data: Value,
}

/// Sends `heard_room` to the other members of a room, on every node, then acks.
async fn room_shout<A: Adapter>(
    s: SocketRef<A>,
    Data(msg): Data<RoomShout>,
    ack: AckSender<A>,
    State(st): State<Arc<SocketState>>,
) {
    let payload = json!({ "room": msg.room, "data": msg.data, "node": st.node });
    let result = s.to(msg.room).emit("heard_room", &payload).await;
    let _ = ack.send(&json!({ "node": st.node, "ok": result.is_ok() }));
}

// === namespace "/chat" ===

async fn on_chat_connect<A: Adapter>(s: SocketRef<A>, State(st): State<Arc<SocketState>>) {
    let counter = st.backend.counter.get().await.unwrap_or_else(|err| {
        tracing::warn!(%err, "shared counter unavailable");
        0
    });
    let _ = s.emit(
        "welcome",
        &json!({
            "user": session_user(&s),
            "node": st.node,
            "transport": transport_name(s.transport_type()),
            "room": LOBBY,
            "counter": counter,
        }),
    );
}

/// The room a chat socket is in, apart from [`EVERYONE`].
fn chat_room_of<A: Adapter>(s: &SocketRef<A>) -> String {
    s.rooms()
        .into_iter()
        .map(|r| r.to_string())
        .find(|r| r != EVERYONE)
        .unwrap_or_else(|| LOBBY.to_owned())
}

#[derive(Debug, Deserialize)]
struct ChatText {
    text: String,
}

/// Relays a chat line to everyone in the sender's room (sender included), on every node.
async fn chat_message<A: Adapter>(
    s: SocketRef<A>,
    Data(msg): Data<ChatText>,
    ack: AckSender<A>,
    State(st): State<Arc<SocketState>>,
) {
    let text: String = msg.text.chars().take(500).collect();
    let room = chat_room_of(&s);
    let payload = json!({
        "user": session_user(&s),
        "text": text,
        "room": room,
        "node": st.node,
        "id": s.id.to_string(),
    });
    let result = s.within(room).emit("message", &payload).await;
    let _ = ack.send(&json!({ "ok": result.is_ok(), "node": st.node }));
}

/// Moves the socket to another room (1 to 32 characters).
async fn chat_room<A: Adapter>(s: SocketRef<A>, Data(room): Data<String>, ack: AckSender<A>) {
    let room = room.trim().to_owned();
    if room.is_empty() || room.len() > 32 || room == EVERYONE {
        let _ = ack.send(&json!({ "ok": false, "error": "invalid room name" }));
        return;
    }
    s.leave_all();
    s.join([EVERYONE.to_owned(), room.clone()]);
    let _ = ack.send(&json!({ "ok": true, "room": room }));
}

/// Increments the shared counter and tells every chat client its new value.
async fn counter_add<A: Adapter>(
    s: SocketRef<A>,
    ack: AckSender<A>,
    State(st): State<Arc<SocketState>>,
) {
    match st.backend.counter.add(1).await {
        Ok(value) => {
            let _ = s
                .within(EVERYONE)
                .emit("counter", &json!({ "value": value }))
                .await;
            let _ = ack.send(&json!({ "ok": true, "value": value }));
        }
        Err(err) => {
            tracing::warn!(%err, "shared counter unavailable");
            let _ = ack.send(&json!({ "ok": false, "error": "counter unavailable" }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_origins;

    #[test]
    fn cors_origins_are_exact_origins() {
        let ok = [
            "http://127.0.0.1:4000",
            "https://front.test",
            "http://[::1]:8080",
        ];
        let parsed = parse_origins(&ok.map(String::from)).unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed[0], "http://127.0.0.1:4000");
        for bad in [
            "*",
            "http://*.test",
            "front.test",
            "http://front.test/",
            "http://front.test/app",
            "ftp://front.test",
            "http://",
            "http://user@front.test",
        ] {
            let err = parse_origins(&[bad.to_owned()]).unwrap_err().to_string();
            assert!(err.contains("is not an origin"), "{bad}: {err}");
        }
    }
}
