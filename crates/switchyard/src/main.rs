//! The `switchyard` binary: parse the command line, read the configuration,
//! then run it until SIGTERM/SIGINT (or SIGUSR1 from a newer process's `-sf`);
//! SIGHUP reads the same `-f` files again and swaps the configuration in
//! without dropping connections (see `runtime`).

use std::process::ExitCode;

use switchyard::cli::{self, Cli};
use switchyard::{observability, runtime, snapshot::Snapshot};

/// mimalloc (through `switchyard-alloc`) instead of the system allocator: per-thread free lists without locks
/// suit one current-thread runtime per worker and the proxy's many short-lived
/// per-request allocations (measured in PERF_NOTES.md). Built as mimalloc v2
/// (the `v2` feature): it returns freed pages to the OS after 10 ms, where v3
/// waited 1 s and, once the workers idled, kept the memory of closed
/// connections (5,000 idle WebSockets: 2.9 KB per connection and back to the
/// baseline after close with v2; 2.5 KB and 6.6 MB still held with v3;
/// +0.3% instructions per request). v2 checks that delay only when the thread
/// frees again, so the workers also call `switchyard_alloc::collect` after
/// connections close (`switchyard::memory`). Without transparent huge pages (the `no_thp`
/// feature: mimalloc does not advise its arena `MADV_HUGEPAGE`; test `memory`):
/// khugepaged otherwise collapsed the arena's partly used 2 MiB regions into huge
/// pages at random moments, so an idle process's RSS jumped by 8-12 MiB seconds
/// after 5,000 WebSockets had closed (AnonHugePages 14-16 MiB in /proc/<pid>/smaps).
#[global_allocator]
static GLOBAL: switchyard_alloc::MiMalloc = switchyard_alloc::MiMalloc;

fn main() -> ExitCode {
    // Workers give freed pages back to the OS after connections close (`memory`).
    switchyard::memory::set_collector(switchyard_alloc::collect);
    let cli = cli::parse_args(std::env::args());
    if cli.version > 0 {
        print!("{}", cli::version_text());
        if cli.version > 1 {
            print!("{}", cli::build_text());
        }
        return ExitCode::SUCCESS;
    }
    if cli.check {
        return cli::check(&cli);
    }
    let loaded = match cli::load(&cli) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let snap = match Snapshot::build_with(loaded.config, cli.debug) {
        Ok(s) => s,
        Err(e) => {
            observability::alert(&e);
            return ExitCode::from(1);
        }
    };
    let reload = |prev: &std::sync::Arc<Snapshot>| reread(&cli, prev);
    match runtime::run(snap, || after_bind(&cli), reload) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}

/// SIGHUP: the `-f` files read and checked as at start-up (diagnostics on
/// stderr), then compiled against the running snapshot. `None` when anything
/// fails: the caller keeps the running configuration.
fn reread(cli: &Cli, prev: &std::sync::Arc<Snapshot>) -> Option<runtime::Reloaded> {
    let loaded = cli::load(cli).ok()?;
    match Snapshot::rebuild(loaded.config, cli.debug, prev) {
        Ok(snap) => Some(runtime::Reloaded {
            snap,
            files: loaded.files,
        }),
        Err(e) => {
            observability::alert(&e);
            None
        }
    }
}

/// Once listening: write the pid file, then hand over from older processes
/// (`-sf`: SIGUSR1, finish and exit; `-st`: SIGTERM).
fn after_bind(cli: &Cli) {
    if let Some(path) = &cli.pidfile {
        if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
            observability::alert(&format!("cannot create pidfile {}: {e}", path.display()));
        }
    }
    for (pids, sig) in [(&cli.finish_pids, "-USR1"), (&cli.terminate_pids, "-TERM")] {
        for pid in pids {
            let _ = std::process::Command::new("kill")
                .arg(sig)
                .arg(pid.to_string())
                .status();
        }
    }
}
