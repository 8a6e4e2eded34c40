//! The `switchyard-app` command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The seed configuration shipped beside the repository (`shared/seed/haproxy.cfg`).
pub const DEFAULT_CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/seed/haproxy.cfg"
);

/// socket.io-client's browser build as `npm ci --prefix crates/switchyard-app/web` installs it
/// in this source tree. The repository holds no copy of it: it is a declared npm dependency
/// (`web/package.json`, pinned by `web/package-lock.json`).
pub const DEFAULT_CLIENT_JS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/web/node_modules/socket.io-client/dist/socket.io.min.js"
);

#[derive(Debug, Parser)]
#[command(
    name = "switchyard-app",
    version,
    about = "switchyard's reference application: a real-time chat"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one HTTP-tier node (page, login/logout, JSON API).
    Http(HttpArgs),
    /// Run one socket-tier node (Socket.IO on /engine.io).
    Socket(SocketArgs),
    /// Start the balancer and two HTTP and two socket nodes as the configuration describes.
    Demo(DemoArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// TCP port to listen on.
    #[arg(long)]
    pub port: u16,
    /// Address to listen on (0.0.0.0 to spread the topology over machines).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Redis URL for shared sessions and cross-node broadcast (sessions are per node without it).
    #[arg(long)]
    pub redis: Option<String>,
    /// Name reported in the `x-node` header and in socket acks (default: tier and port).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Engine.IO ping interval in milliseconds (socket nodes).
    #[arg(long, default_value_t = 25_000)]
    pub ping_interval_ms: u64,
    /// Engine.IO ping timeout in milliseconds (socket nodes).
    #[arg(long, default_value_t = 20_000)]
    pub ping_timeout_ms: u64,
}

#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// socket.io-client's browser build, served at /vendor/socket.io.min.js (installed by
    /// `npm ci --prefix crates/switchyard-app/web`).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CLIENT_JS)]
    pub client_js: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct SocketArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// A page origin (`scheme://host[:port]`) allowed to connect from another origin with
    /// credentials (cookies); repeat for several. Without it, only same-origin pages connect.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Redis URL: share sessions and broadcasts between the nodes.
    #[arg(long)]
    pub redis: Option<String>,
    /// The balancer configuration; it also gives the nodes' ports.
    #[arg(long, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// The balancer binary (default: `switchyard` next to this executable, then on PATH).
    #[arg(long)]
    pub switchyard_bin: Option<PathBuf>,
    /// Origins allowed to reach the socket nodes cross-origin (see `socket --help`).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
    /// socket.io-client's browser build, passed to the HTTP nodes (see `http --help`).
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CLIENT_JS)]
    pub client_js: PathBuf,
    /// Seconds to wait for every process to accept connections.
    #[arg(long, default_value_t = 15)]
    pub start_timeout: u64,
}
