//! The reference application tier for switchyard: a small real-time chat.
//!
//! # Layout
//! - [`http_tier`]: the stateless HTTP server (page, assets, login/logout, JSON API).
//! - [`socket_tier`]: the Socket.IO server on `/engine.io` (session read at the handshake,
//!   cross-node broadcast through Redis).
//! - [`store`]: the session store (Redis or in-memory) and the shared counter.
//! - [`upgrade_gate`]: closes engineioxide's race between a poll and the WebSocket upgrade.
//! - [`node`]: what every server process shares (the `x-node` header, serving, shutdown).
//! - [`demo`] and [`topology`]: `switchyard-app demo`, the whole topology in one command.
//! - [`cli`]: the command line.

pub mod cli;
pub mod demo;
pub mod http_tier;
pub mod node;
pub mod socket_tier;
pub mod store;
pub mod topology;
pub mod upgrade_gate;

use std::time::Duration;

use cli::{HttpArgs, SocketArgs};
use store::Backend;

/// Runs one HTTP-tier node until Ctrl-C or SIGTERM.
pub async fn run_http(args: HttpArgs) -> anyhow::Result<()> {
    let HttpArgs {
        server: args,
        client_js,
    } = args;
    let node = args
        .node_name
        .clone()
        .unwrap_or_else(|| format!("http-{}", args.port));
    let backend = Backend::from_url(args.redis.as_deref()).await?;
    let listener = node::bind(&args.host, args.port).await?;
    let client_js = http_tier::ClientJs::new(client_js);
    match client_js.check() {
        Ok(()) => tracing::info!(
            "{node}: serving {} at {}",
            client_js.path().display(),
            http_tier::CLIENT_JS_ROUTE
        ),
        Err(problem) => tracing::warn!("{node}: {problem}"),
    }
    let router = http_tier::router(&node, &backend, client_js)?;
    announce("http", &node, &listener, &backend);
    backend.monitor(&node);
    node::serve(listener, router, node::shutdown_signal()).await
}

/// How long a socket node spends closing its clients on shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs one socket-tier node until Ctrl-C or SIGTERM, disconnecting its clients on the way out.
pub async fn run_socket(args: SocketArgs) -> anyhow::Result<()> {
    let SocketArgs {
        server: args,
        cors_origins,
    } = args;
    let args_cors = cors_origins.clone();
    let cors_origins = socket_tier::parse_origins(&cors_origins)?;
    let node = args
        .node_name
        .clone()
        .unwrap_or_else(|| format!("socket-{}", args.port));
    let backend = Backend::from_url(args.redis.as_deref()).await?;
    let opts = socket_tier::SocketOptions {
        ping_interval: Duration::from_millis(args.ping_interval_ms),
        ping_timeout: Duration::from_millis(args.ping_timeout_ms),
        cors_origins,
    };
    // Listen only once the tier (and its Redis adapter) is ready: a node that accepts
    // connections is a node that can serve them.
    let tier = socket_tier::build(&node, &backend, opts).await?;
    let listener = node::bind(&args.host, args.port).await?;
    let router = tier.router.clone();
    announce("socket", &node, &listener, &backend);
    if !args_cors.is_empty() {
        tracing::info!(
            "{node}: cross-origin pages allowed (with credentials): {}",
            args_cors.join(", ")
        );
    }
    backend.monitor(&node);
    let node = node.clone();
    let shutdown = async move {
        node::shutdown_signal().await;
        // Closing tells every client goodbye (and, with Redis, the other nodes); bounded, since
        // an unreachable Redis would otherwise hold the process forever.
        if tokio::time::timeout(CLOSE_TIMEOUT, tier.close())
            .await
            .is_err()
        {
            tracing::warn!("{node}: clients not closed within {CLOSE_TIMEOUT:?}, exiting anyway");
        }
    };
    node::serve(listener, router, shutdown).await
}

fn announce(tier: &str, node: &str, listener: &tokio::net::TcpListener, backend: &Backend) {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    tracing::info!("{tier} node {node} listening on http://{addr}/");
    if backend.redis_url.is_some() {
        tracing::info!("{node}: {}", backend.describe());
    } else {
        tracing::warn!("{node}: {}", backend.describe());
    }
}
