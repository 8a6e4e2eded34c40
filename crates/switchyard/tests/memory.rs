//! Memory behaviour of the running binary (Linux only: read from `/proc`).

mod support;

use support::*;

/// The allocator is built without transparent huge pages (`mimalloc`'s `no_thp`, see
/// `main.rs`): with them, mimalloc advised its arena `MADV_HUGEPAGE`, khugepaged collapsed the
/// arena's partly used 2 MiB regions while the process idled, and the RSS of a proxy whose
/// 5,000 WebSockets had closed rose by 8-12 MiB instead of returning to its baseline. No
/// mapping of the process may carry that advice (`hg` in the `VmFlags` of
/// `/proc/<pid>/smaps`; the build with huge pages has it on the arena).
#[test]
fn no_memory_is_advised_for_transparent_huge_pages() {
    let srv = Backend::start("s");
    let port = free_port();
    let cfg = format!(
        "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s {}\n",
        srv.addr()
    );
    let p = Proxy::start(&cfg, port);
    assert_eq!(get(port, "/", "").status, 200);
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", p.child.id())).unwrap();
    let flags: Vec<&str> = smaps
        .lines()
        .filter_map(|l| l.strip_prefix("VmFlags:"))
        .collect();
    assert!(!flags.is_empty(), "no VmFlags in smaps");
    let advised = flags
        .iter()
        .filter(|f| f.split_whitespace().any(|x| x == "hg"))
        .count();
    assert_eq!(advised, 0, "mappings advised MADV_HUGEPAGE");
}

/// The resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

/// `n` keep-alive connections that each got the answer to one request, left open. The
/// requests carry an 8 KB cookie (a large but real browser head): a read buffer of its own
/// would keep two touched pages per connection.
fn idle_clients(port: u16, n: usize) -> Vec<Client> {
    let cookie = format!("Cookie: c={}\r\n", "x".repeat(8000));
    (0..n)
        .map(|_| {
            let mut c = Client::connect(port);
            assert_eq!(c.get("/", &cookie).status, 200);
            c
        })
        .collect()
}

/// A proxy on two threads in front of one backend, keeping idle client connections for 60 s.
fn two_threads_keeping_connections() -> (Backend, Proxy, u16) {
    let srv = Backend::start("s");
    let port = free_port();
    let cfg = format!(
        "global\n    nbthread 2\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 60s\n    timeout server 5s\n\
         timeout http-keep-alive 60s\n\
         frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
         backend be\n    server s {}\n",
        srv.addr()
    );
    let p = Proxy::start(&cfg, port);
    (srv, p, port)
}

/// An idle keep-alive client connection holds no read buffer: it gave its buffer back to
/// its thread's pool (`proxy::bufpool`) once its request was read, and takes one again
/// when its next request arrives. Each connection used to hold 16 KiB for its whole life
/// (10,000 idle browser connections: 160 MiB).
///
/// Measured (2 threads, 2,000 connections after 300 warm-up ones, 8 KB cookie): 6.8 KiB per
/// idle connection with the pool (debug and release builds alike: the connection task's
/// state, of which the `http_phase` future is 4.8 KB in release), 14.9 KiB without it (the
/// buffer's two touched pages on top). With heads of a few hundred bytes the buffer costs
/// one touched page: 7.8 KiB with the pool (the kept response-head buffer adds ~1 KiB),
/// 11.8 KiB without.
#[test]
fn idle_keep_alive_connections_hold_no_read_buffer() {
    const N: usize = 2000;
    let (_srv, p, port) = two_threads_keeping_connections();
    let pid = p.child.id();
    // Warm-up: the allocator's and the runtime's per-thread structures, the pools.
    let mut warm = idle_clients(port, 300);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = rss_kib(pid);
    let mut idle = idle_clients(port, N);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let after = rss_kib(pid);
    let per_conn = (after.saturating_sub(before) * 1024) as usize / N;
    eprintln!("RSS {before} KiB -> {after} KiB: {per_conn} B per idle keep-alive connection");
    assert!(
        per_conn <= 10 * 1024,
        "{per_conn} B per idle keep-alive connection (RSS {before} -> {after} KiB)"
    );
    // The idle connections still serve their next request.
    for c in idle
        .iter_mut()
        .step_by(97)
        .chain(warm.iter_mut().step_by(50))
    {
        assert_eq!(c.get("/again", "").status, 200);
    }
}

/// Once connections close, the process gives their memory back to the OS within a few
/// seconds, even though it then idles: each worker thread trims its buffer pool and asks
/// the allocator to return its freed pages (`memory::every_period`). mimalloc alone only
/// returns a freed page when the same thread frees again after a delay, so an idle process
/// kept 0.7-1.5 MiB of 5,000 closed WebSockets (`ws-idle`), and here (2,000 connections on
/// two threads, debug build) all of their 12.9 MiB; with the collection, 300 KiB less than
/// the baseline (the warm-up's pages go too).
#[test]
fn memory_returns_to_the_os_after_connections_close() {
    const N: usize = 2000;
    let (_srv, p, port) = two_threads_keeping_connections();
    let pid = p.child.id();
    // Warm-up, then the baseline once its memory has settled.
    drop(idle_clients(port, 100));
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let base = rss_kib(pid);
    let clients = idle_clients(port, N);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let open = rss_kib(pid);
    drop(clients);
    // Two periods of `memory::PERIOD` (1 s) and a margin.
    std::thread::sleep(std::time::Duration::from_millis(3000));
    let closed = rss_kib(pid);
    eprintln!("RSS {base} KiB, {open} KiB with {N} connections open, {closed} KiB after close");
    assert!(
        open > base + 4096,
        "the connections cost too little to measure: {base} -> {open} KiB"
    );
    assert!(
        closed <= base + 256,
        "{} KiB still held after close (RSS {base} -> {open} -> {closed} KiB)",
        closed as i64 - base as i64
    );
}
