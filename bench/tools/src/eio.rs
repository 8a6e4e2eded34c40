//! Engine.IO v4 helpers: query parsing and the record separator used by polling payloads.
//!
//! The benchmark backend speaks just enough Engine.IO for a long-poll round trip: handshake
//! (`0{...}` open packet), long-poll GET, POSTed message packets (`4...`) echoed back into the
//! pending GET, and close (`1`). That is what a proxy sees of a Socket.IO server's polling
//! transport, without the application work of a real one.

/// Separator between packets in a polling payload (Engine.IO v4).
pub const RECORD_SEPARATOR: u8 = 0x1e;

/// The query parameters of an Engine.IO request the benchmark cares about.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query {
    pub transport: Option<String>,
    pub sid: Option<String>,
}

/// Parses `transport` and `sid` from a request target such as `/engine.io/?EIO=4&sid=x`.
/// Values are taken verbatim (the backend's sids never need percent-decoding).
pub fn parse_query(target: &str) -> Query {
    let mut q = Query::default();
    let Some((_, query)) = target.split_once('?') else {
        return q;
    };
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "transport" => q.transport = Some(v.to_string()),
            "sid" => q.sid = Some(v.to_string()),
            _ => {}
        }
    }
    q
}

/// Splits a polling payload into packets.
pub fn packets(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|b| *b == RECORD_SEPARATOR)
        .filter(|p| !p.is_empty())
}

/// Extracts `"sid":"…"` from an open packet (`0{"sid":"…",…}`).
pub fn sid_from_open_packet(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let rest = text.strip_prefix('0')?;
    let start = rest.find("\"sid\":\"")? + 7;
    let end = rest[start..].find('"')? + start;
    Some(rest[start..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_fields() {
        let q = parse_query("/engine.io/?EIO=4&transport=polling&sid=abc-1&t=x");
        assert_eq!(q.transport.as_deref(), Some("polling"));
        assert_eq!(q.sid.as_deref(), Some("abc-1"));
        assert_eq!(parse_query("/engine.io/"), Query::default());
    }

    #[test]
    fn payload_split_and_open_packet() {
        let v: Vec<&[u8]> = packets(b"4a\x1e4b\x1e").collect();
        assert_eq!(v, vec![&b"4a"[..], &b"4b"[..]]);
        assert_eq!(
            sid_from_open_packet(b"0{\"sid\":\"s-9\",\"upgrades\":[]}").as_deref(),
            Some("s-9")
        );
        assert_eq!(sid_from_open_packet(b"4{\"sid\":\"x\"}"), None);
    }
}
