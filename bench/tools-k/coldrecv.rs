// Helper K: stand-alone micro-benchmark (std only): rustc -O bench/tools-k/coldrecv.rs -o /tmp/coldrecv && taskset -c 1 /tmp/coldrecv
// recv() of a 93-byte message into the start of a per-connection 16 KiB buffer
// (rewound) vs into a position that walks forward 93 bytes per message (what
// BytesMut::advance without reclaim does), 128 loopback connections.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

fn main() {
    let n = 128;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut tx = Vec::new();
    let mut rx = Vec::new();
    for _ in 0..n {
        let c = TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
        let (s, _) = l.accept().unwrap();
        tx.push(c);
        rx.push(s);
    }
    let msg = [b'x'; 93];
    let mut bufs: Vec<Vec<u8>> = (0..n).map(|_| vec![0u8; 16384]).collect();
    let mut pos = vec![0usize; n];
    let rounds = 6000;
    let mut t = [Vec::new(), Vec::new()];
    for r in 0..rounds {
        let walk = r % 2 == 1;
        for s in tx.iter_mut() {
            s.write_all(&msg).unwrap();
        }
        // let loopback deliver
        std::thread::yield_now();
        let t0 = Instant::now();
        for (i, s) in rx.iter_mut().enumerate() {
            let off = if walk { pos[i] } else { 0 };
            let got = s.read(&mut bufs[i][off..]).unwrap();
            assert_eq!(got, 93);
            if walk {
                pos[i] += got;
                if 16384 - pos[i] < 4096 {
                    pos[i] = 0;
                }
            }
        }
        let dt = t0.elapsed().as_nanos() as f64 / n as f64;
        t[walk as usize].push(dt);
    }
    for (name, v) in ["rewound", "walking"].iter().zip(t.iter_mut()) {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let q = |p: f64| v[((v.len() as f64) * p) as usize];
        println!("{name}: ns per recv p10 {:.0} p25 {:.0} median {:.0}", q(0.10), q(0.25), q(0.5));
    }
}
