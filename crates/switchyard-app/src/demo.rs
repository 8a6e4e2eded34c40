//! `switchyard-app demo`: the balancer and every application node from one command.
//!
//! Start-up is checked step by step so that a failure is a message and a non-zero exit, never
//! a hang: the configuration is read, every port it names must be free, Redis (when asked
//! for) must answer `PING`, then each node is started and must accept connections within
//! `--start-timeout`, then the balancer. Any failure stops what was started.
//!
//! Once running, a node that dies is reported and the rest keep running (killing a socket node
//! is how one watches the balancer fail its clients over); the balancer dying ends the demo.
//! Ctrl-C or SIGTERM stops every child (SIGTERM, then SIGKILL after a grace period) and exits 0.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::cli::DemoArgs;
use crate::topology::{self, Topology};

/// How long a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(6);

/// A process the demo started.
struct Proc {
    label: String,
    addr: SocketAddr,
    child: Child,
    balancer: bool,
}

/// Runs the demo until Ctrl-C/SIGTERM (Ok) or a start-up failure or balancer exit (Err).
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read the configuration {}", args.config.display()))?;
    let topo = topology::parse(&text)
        .with_context(|| format!("cannot read the topology from {}", args.config.display()))?;
    check_ports_free(&topo)?;
    if let Some(url) = &args.redis {
        crate::store::Backend::redis(url).await?;
        eprintln!("demo: Redis at {url} answers; sessions and broadcasts are shared");
    } else {
        eprintln!(
            "demo: no --redis: each node keeps its sessions in memory, so a login is only known \
             to the HTTP node that served it and socket nodes see everyone as anonymous; \
             run with --redis redis://127.0.0.1:6379 for the full demo"
        );
    }
    if let Err(problem) = crate::http_tier::ClientJs::new(&args.client_js).check() {
        eprintln!("demo: warning: {problem}");
    }
    let balancer_bin = find_balancer(args.switchyard_bin.as_deref())?;
    let mut procs = Vec::new();
    let started = start_all(&args, &topo, &balancer_bin, &mut procs).await;
    if let Err(err) = started {
        stop_all(&mut procs).await;
        return Err(err);
    }
    println!("Open http://{}/", display_addr(topo.frontend));
    println!(
        "(balancer and {} nodes running; Ctrl-C stops them all)",
        procs.len() - 1
    );
    let outcome = supervise(&mut procs).await;
    stop_all(&mut procs).await;
    outcome
}

fn display_addr(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    }
}

/// Fails with the first port of the topology that another process holds.
fn check_ports_free(topo: &Topology) -> anyhow::Result<()> {
    let named = std::iter::once(("balancer frontend".to_owned(), topo.frontend))
        .chain(
            topo.http
                .iter()
                .map(|n| (format!("http node {}", n.name), n.addr)),
        )
        .chain(
            topo.socket
                .iter()
                .map(|n| (format!("socket node {}", n.name), n.addr)),
        );
    for (what, addr) in named {
        if let Err(err) = std::net::TcpListener::bind(addr) {
            bail!("port {} for the {what} ({addr}) is not available: {err}; stop whatever holds it or use another --config", addr.port());
        }
    }
    Ok(())
}

/// `--switchyard-bin`, else `switchyard` next to this executable, else on PATH.
fn find_balancer(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_owned());
        }
        bail!("--switchyard-bin {} does not exist", path.display());
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("switchyard")));
    if let Some(path) = beside.filter(|p| p.is_file()) {
        return Ok(path);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("switchyard"))
            .find(|p| p.is_file())
    });
    on_path.ok_or_else(|| {
        anyhow!("the switchyard balancer binary was not found next to switchyard-app nor on PATH; build it with `cargo build -p switchyard` or pass --switchyard-bin")
    })
}

async fn start_all(
    args: &DemoArgs,
    topo: &Topology,
    balancer_bin: &Path,
    procs: &mut Vec<Proc>,
) -> anyhow::Result<()> {
    let me = std::env::current_exe().context("cannot find the switchyard-app executable")?;
    let deadline = Duration::from_secs(args.start_timeout);
    let tiers = [("http", &topo.http), ("socket", &topo.socket)];
    for (tier, nodes) in tiers {
        for node in nodes {
            let mut cmd = Command::new(&me);
            cmd.arg(tier)
                .args(["--host", &node.addr.ip().to_string()])
                .args(["--port", &node.addr.port().to_string()])
                .args(["--node-name", &format!("{tier}-{}", node.name)]);
            if let Some(url) = &args.redis {
                cmd.args(["--redis", url]);
            }
            if tier == "http" {
                cmd.arg("--client-js").arg(&args.client_js);
            } else {
                for origin in &args.cors_origins {
                    cmd.args(["--cors-origin", origin]);
                }
            }
            let label = format!("{tier} node {} ({})", node.name, node.addr);
            procs.push(spawn(cmd, label, node.addr, false)?);
        }
    }
    for proc in procs.iter_mut() {
        wait_ready(proc, deadline).await?;
    }
    let mut cmd = Command::new(balancer_bin);
    cmd.arg("-f").arg(&args.config);
    let label = format!("balancer {} ({})", balancer_bin.display(), topo.frontend);
    procs.push(spawn(cmd, label, topo.frontend, true)?);
    let last = procs.last_mut().expect("just pushed");
    wait_ready(last, deadline).await
}

fn spawn(
    mut cmd: Command,
    label: String,
    addr: SocketAddr,
    balancer: bool,
) -> anyhow::Result<Proc> {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start the {label}"))?;
    eprintln!("demo: started the {label}, pid {}", child.id().unwrap_or(0));
    Ok(Proc {
        label,
        addr,
        child,
        balancer,
    })
}

/// Waits until `proc` accepts TCP connections, failing if it exits or the deadline passes.
async fn wait_ready(proc: &mut Proc, deadline: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    let connect_addr: SocketAddr = display_addr(proc.addr).parse()?;
    loop {
        if let Some(status) = proc.child.try_wait()? {
            bail!(
                "the {} exited during start-up ({status}); see its message above",
                proc.label
            );
        }
        if tokio::net::TcpStream::connect(connect_addr).await.is_ok() {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!(
                "the {} did not accept connections within {deadline:?}",
                proc.label
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Watches the children until a shutdown signal (Ok) or the balancer's exit (Err).
async fn supervise(procs: &mut [Proc]) -> anyhow::Result<()> {
    let signal = crate::node::shutdown_signal();
    tokio::pin!(signal);
    let mut reported = vec![false; procs.len()];
    loop {
        tokio::select! {
            () = &mut signal => {
                eprintln!("demo: stopping");
                return Ok(());
            }
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        for (proc, reported) in procs.iter_mut().zip(reported.iter_mut()) {
            if *reported {
                continue;
            }
            if let Some(status) = proc.child.try_wait()? {
                *reported = true;
                if proc.balancer {
                    // Ctrl-C in a terminal reaches the whole process group: the balancer may
                    // exit on it a moment before this process sees the same signal.
                    let grace = tokio::time::timeout(Duration::from_millis(500), &mut signal);
                    if grace.await.is_ok() {
                        eprintln!("demo: stopping");
                        return Ok(());
                    }
                    bail!("the {} exited ({status}); stopping the demo", proc.label);
                }
                eprintln!(
                    "demo: the {} exited ({status}); the others keep running",
                    proc.label
                );
            }
        }
    }
}

/// SIGTERM to every child still running, then SIGKILL to those still there after the grace.
async fn stop_all(procs: &mut [Proc]) {
    for proc in procs.iter_mut().rev() {
        if let Some(pid) = proc.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
    }
    for proc in procs.iter_mut().rev() {
        match tokio::time::timeout(STOP_GRACE, proc.child.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!("demo: the {} ignored SIGTERM, killing it", proc.label);
                let _ = proc.child.kill().await;
            }
        }
    }
}
