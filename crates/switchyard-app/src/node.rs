//! What every server process shares: its name, the `x-node` header, logging and serving.

use std::net::SocketAddr;

use anyhow::Context;
use axum::http::{HeaderName, HeaderValue};
use axum::Router;
use tokio::net::TcpListener;

/// Response header naming the node that served a request, so clients and tests can prove
/// which server answered through the balancer.
pub const NODE_HEADER: &str = "x-node";

/// Adds `x-node: <name>` to every response of `router`.
pub fn with_node_header(router: Router, node: &str) -> anyhow::Result<Router> {
    let value = HeaderValue::from_str(node).context("node name is not a valid header value")?;
    let header = HeaderName::from_static(NODE_HEADER);
    Ok(router.layer(axum::middleware::map_response(
        move |mut response: axum::response::Response| {
            let value = value.clone();
            let header = header.clone();
            async move {
                response.headers_mut().insert(header, value);
                response
            }
        },
    )))
}

/// Binds `127.0.0.1:port` (or `host:port`), with a message that names the port when it is taken.
pub async fn bind(host: &str, port: u16) -> anyhow::Result<TcpListener> {
    let addr = format!("{host}:{port}");
    TcpListener::bind(&addr).await.with_context(|| {
        format!("cannot listen on {addr} (is the port already in use by another process?)")
    })
}

/// How long a node waits for open connections after the shutdown signal before it exits anyway
/// (held long-polls and WebSocket tunnels would otherwise keep it alive).
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` resolves, then lets in-flight requests
/// finish for at most [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping_tx.send(());
    });
    let grace = async {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result.context("server failed"),
        () = grace => {
            tracing::warn!("connections still open {SHUTDOWN_GRACE:?} after shutdown, exiting");
            Ok(())
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Logs to stderr, `info` unless `RUST_LOG` says otherwise; colours only on a terminal (log
/// files stay plain text).
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
