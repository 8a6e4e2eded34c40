//! `balance source`: map-based hash of the client address. The hash is the
//! XOR of the address's big-endian 32-bit words (IPv4: the address itself),
//! no string hash, then `table[h % size]`. 127.0.0.1 over three equal servers
//! lands on the third. An IPv4 client seen on a dual-stack socket as
//! `::ffff:a.b.c.d` hashes as its IPv4 address.

use std::net::IpAddr;
use std::sync::Arc;

use super::map::MapTable;
use super::{Balancer, PickContext};
use crate::backend::ServerState;

#[derive(Debug)]
pub struct Source {
    map: MapTable,
}

impl Source {
    pub fn new(allbackups: bool, nservers: usize) -> Self {
        Source {
            map: MapTable::new(allbackups, nservers),
        }
    }
}

/// HAProxy's source hash of an address.
pub(crate) fn source_hash(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => u32::from(v4),
            None => v6
                .octets()
                .chunks_exact(4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                .fold(0, |h, w| h ^ w),
        },
    }
}

impl Balancer for Source {
    fn pick(&self, servers: &[Arc<ServerState>], ctx: &PickContext<'_>) -> Option<usize> {
        self.map.by_hash(servers, ctx, source_hash(ctx.src))
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn localhost_three_servers_goes_to_c() {
        let s = servers(&[1, 1, 1]);
        let b = Source::new(false, 3);
        assert_eq!(sequence(&b, &s, 4), "c c c c");
    }

    #[test]
    fn hash_of_addresses() {
        assert_eq!(source_hash("127.0.0.1".parse().unwrap()), 0x7f00_0001);
        assert_eq!(
            source_hash("::ffff:127.0.0.1".parse().unwrap()),
            0x7f00_0001
        );
        assert_eq!(source_hash("2001:db8::1".parse().unwrap()), 0x2001_0db8 ^ 1);
    }

    #[test]
    fn down_server_rehashes() {
        let s = servers(&[1, 1, 1]);
        let b = Source::new(false, 3);
        set_up(&s[2], false);
        // 0x7f000001 % 2 == 1
        assert_eq!(sequence(&b, &s, 2), "b b");
    }
}
