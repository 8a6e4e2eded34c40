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
