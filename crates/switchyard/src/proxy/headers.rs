//! Header rewriting between the two sides: `X-Forwarded-For` (HAProxy §2.9
//! semantics) and the `Connection` header of each connection mode (§2.10).

use std::net::IpAddr;

use http::header::CONNECTION;
use http::{HeaderMap, HeaderName, HeaderValue, Version};
use switchyard_config::{ConnMode, ForwardFor};

use bytes::BytesMut;

use super::h1::{ascii_str, connection_has, put_line, FieldEdit, FieldSet, Known};

/// Lines appended after all of the client's, in this order (HAProxy appends XFF as a
/// new line after the existing ones, then the connection header). Held inline, the
/// address borrowed from the connection's cache: nothing is allocated per request.
#[derive(Debug, Default)]
pub struct Extra<'a> {
    pub forwarded_for: Option<(HeaderName, &'a HeaderValue)>,
    pub connection: Option<&'static str>,
}

impl Extra<'_> {
    /// Appends the lines.
    pub fn write(&self, out: &mut BytesMut) {
        if let Some((name, value)) = &self.forwarded_for {
            put_line(out, name.as_str().as_bytes(), value.as_bytes());
        }
        if let Some(v) = self.connection {
            put_line(out, b"connection", v.as_bytes());
        }
    }
}

const DEFAULT_XFF: &str = "x-forwarded-for";
/// Built at compile time (`from_static` at run time validates the name on every call).
const XFF_NAME: HeaderName = HeaderName::from_static(DEFAULT_XFF);

/// Whether a `header` name other than the exact default spelling is another name (not
/// `X-Forwarded-For` in other letter cases). Out of line: the usual configuration never
/// gets here.
#[inline(never)]
fn other_spelling(header: &str) -> bool {
    header.len() != DEFAULT_XFF.len() || !header.eq_ignore_ascii_case(DEFAULT_XFF)
}

/// Decides the `X-Forwarded-For` line for a request, if any.
///
/// Enabled when the frontend or the backend has `option forwardfor`, added once.
/// Name: the backend's `header` if it set one, else the frontend's. `except`:
/// skipped when the source is in either proxy's network. `if-none`: only when
/// every enabling proxy says `if-none` is an existing header left alone.
pub fn forwarded_for(
    fe: Option<&ForwardFor>,
    be: Option<&ForwardFor>,
    src: IpAddr,
    headers: &(impl FieldSet + ?Sized),
) -> Option<(HeaderName, HeaderValue)> {
    forwarded_for_cached(fe, be, src, headers, &mut None).map(|(n, v)| (n, v.clone()))
}

/// [`forwarded_for`] with the formatted address kept in `cache` (one per client
/// connection: its source address does not change), so that a keep-alive connection
/// formats it once.
pub fn forwarded_for_cached<'c>(
    fe: Option<&ForwardFor>,
    be: Option<&ForwardFor>,
    src: IpAddr,
    headers: &(impl FieldSet + ?Sized),
    cache: &'c mut Option<HeaderValue>,
) -> Option<(HeaderName, &'c HeaderValue)> {
    if fe.is_none() && be.is_none() {
        return None;
    }
    let src = match src {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(src),
        v4 => v4,
    };
    let enabled = [fe, be];
    if enabled
        .iter()
        .flatten()
        .any(|f| f.except.is_some_and(|n| n.contains(src)))
    {
        return None;
    }
    // The config reader spells the default `X-Forwarded-For`: an exact compare settles
    // the usual case before the byte-by-byte case-insensitive one (about 200
    // instructions per request for the two directions, callgrind).
    let custom = |f: &&ForwardFor| f.header != "X-Forwarded-For" && other_spelling(&f.header);
    // `be.filter(custom).or(fe.filter(custom))`, without the two calls it compiled to.
    let named = match (be, fe) {
        (Some(b), _) if custom(&b) => Some(b),
        (_, Some(f)) if custom(&f) => Some(f),
        _ => None,
    };
    let name = match named {
        Some(f) => HeaderName::from_bytes(f.header.as_bytes()).ok()?,
        None => XFF_NAME,
    };
    let all_if_none = enabled.iter().flatten().all(|f| f.if_none);
    if all_if_none && headers.has_name(&name) {
        return None;
    }
    if cache.is_none() {
        *cache = Some(HeaderValue::from_str(&src.to_string()).ok()?);
    }
    Some((name, cache.as_ref()?))
}

/// True when the request asks for a protocol upgrade (`Connection: upgrade` + `Upgrade`).
pub fn is_upgrade(headers: &(impl FieldSet + ?Sized)) -> bool {
    headers.has(Known::Upgrade) && connection_has(headers, "upgrade")
}

/// Rewrites the request's `Connection` header for the server side, as
/// HAProxy 2.6 does (observed): upgrade requests keep theirs; otherwise the
/// `close`/`keep-alive` tokens are consumed (other tokens stay, in place), then
/// an HTTP/1.1 request whose server connection closes after the response
/// (server-close / close modes, unless `http-pretend-keepalive`) gets
/// `connection: close` appended, and an HTTP/1.0 request in keep-alive mode
/// gets `connection: keep-alive`.
#[inline(always)]
pub fn upstream_connection(
    headers: &mut impl FieldEdit,
    extra: &mut Extra,
    mode: ConnMode,
    pretend_keepalive: bool,
    version: Version,
) {
    if is_upgrade(headers) {
        return;
    }
    strip_persistence_tokens(headers);
    match (mode, version) {
        (ConnMode::KeepAlive, Version::HTTP_10) => extra.connection = Some("keep-alive"),
        (ConnMode::KeepAlive, _) | (_, Version::HTTP_10) => {}
        _ if pretend_keepalive => {}
        _ => extra.connection = Some("close"),
    }
}

/// Removes `close` and `keep-alive` from `Connection`, keeping other tokens
/// where the header was; drops the header when nothing is left.
fn strip_persistence_tokens(headers: &mut impl FieldEdit) {
    if !headers.has(Known::Connection) {
        return;
    }
    // The usual case (only `close` / `keep-alive`): the lines go, nothing is rebuilt.
    // Values that are not ASCII carry no token (as below).
    let persistence_only = headers.values(Known::Connection).all(|v| {
        ascii_str(v).is_none_or(|s| {
            s.split(',').map(str::trim).all(|t| {
                t.is_empty()
                    || t.eq_ignore_ascii_case("close")
                    || t.eq_ignore_ascii_case("keep-alive")
            })
        })
    });
    if persistence_only {
        headers.remove_all(Known::Connection);
        return;
    }
    let headers = headers.map_mut();
    let kept: Vec<String> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| {
            !t.is_empty()
                && !t.eq_ignore_ascii_case("close")
                && !t.eq_ignore_ascii_case("keep-alive")
        })
        .map(str::to_owned)
        .collect();
    match HeaderValue::from_str(&kept.join(", ")) {
        Ok(v) if !kept.is_empty() => {
            headers.insert(CONNECTION, v);
        }
        _ => {
            remove_ordered(headers, &CONNECTION);
        }
    }
}

/// Whether the client asked to close after this request.
pub fn client_wants_close(version: Version, headers: &(impl FieldSet + ?Sized)) -> bool {
    if version == Version::HTTP_10 {
        !connection_has(headers, "keep-alive")
    } else {
        connection_has(headers, "close")
    }
}

/// Sets the response's `Connection` header for the client: `close` when the
/// client connection ends after an HTTP/1.1 response (HTTP/1.0 implies it),
/// `keep-alive` when it stays open and either side speaks HTTP/1.0, nothing
/// for a persistent HTTP/1.1 exchange.
pub fn downstream_connection(
    headers: &mut impl FieldEdit,
    client_version: Version,
    response_version: Version,
    closing: bool,
) {
    headers.remove_all(Known::Connection);
    let old = client_version == Version::HTTP_10 || response_version == Version::HTTP_10;
    if closing && response_version != Version::HTTP_10 {
        headers.push_static(Known::Connection, "close");
    } else if !closing && old {
        headers.push_static(Known::Connection, "keep-alive");
    }
}

/// Removes every `name` header while keeping the others in order.
/// (`HeaderMap::remove` swap-removes: the last header would take the removed
/// one's place, and HAProxy keeps the original order.)
pub fn remove_ordered(headers: &mut HeaderMap, name: &HeaderName) {
    if !headers.contains_key(name) {
        return;
    }
    // Removing the last name is a plain remove (nothing moves).
    if headers.keys().last() == Some(name) {
        headers.remove(name);
        return;
    }
    let old = std::mem::replace(headers, HeaderMap::with_capacity(headers.len()));
    let mut current: Option<HeaderName> = None;
    for (n, v) in old {
        if let Some(n) = n {
            current = Some(n);
        }
        if let Some(n) = current.as_ref().filter(|n| *n != name) {
            headers.append(n.clone(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_config::IpNet;

    fn ff(header: &str, except: Option<&str>, if_none: bool) -> ForwardFor {
        ForwardFor {
            header: header.into(),
            except: except.map(|e| {
                let (a, p) = e.split_once('/').unwrap();
                IpNet {
                    addr: a.parse().unwrap(),
                    prefix: p.parse().unwrap(),
                }
            }),
            if_none,
        }
    }

    #[test]
    fn removal_keeps_the_order_of_the_others() {
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("host", "x"),
            ("connection", "keep-alive"),
            ("a", "1"),
            ("b", "2"),
            ("a", "3"),
        ] {
            h.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        remove_ordered(&mut h, &CONNECTION);
        let order: Vec<String> = h
            .iter()
            .map(|(n, v)| format!("{n}={}", v.to_str().unwrap()))
            .collect();
        assert_eq!(order, ["host=x", "a=1", "a=3", "b=2"]);
    }

    #[test]
    fn forwardfor_variants() {
        let src: IpAddr = "127.0.0.1".parse().unwrap();
        let mut h = HeaderMap::new();
        let plain = ff("X-Forwarded-For", None, false);
        let (n, v) = forwarded_for(Some(&plain), Some(&plain), src, &h).unwrap();
        assert_eq!(
            (n.as_str(), v.to_str().unwrap()),
            ("x-forwarded-for", "127.0.0.1")
        );
        assert!(forwarded_for(None, None, src, &h).is_none());
        let except = ff("X-Forwarded-For", Some("127.0.0.0/8"), false);
        assert!(forwarded_for(Some(&plain), Some(&except), src, &h).is_none());
        let custom = ff("X-Client", None, false);
        assert_eq!(
            forwarded_for(Some(&custom), Some(&plain), src, &h)
                .unwrap()
                .0
                .as_str(),
            "x-client"
        );
        // The backend's name wins over the frontend's; the default spelling names nothing.
        let backend = ff("X-Backend", None, false);
        let name = |fe: Option<&ForwardFor>, be: Option<&ForwardFor>| {
            forwarded_for(fe, be, src, &h).map(|(n, _)| n.as_str().to_owned())
        };
        assert_eq!(name(Some(&custom), Some(&backend)).unwrap(), "x-backend");
        assert_eq!(name(Some(&plain), Some(&backend)).unwrap(), "x-backend");
        assert_eq!(name(None, Some(&custom)).unwrap(), "x-client");
        assert_eq!(name(Some(&custom), None).unwrap(), "x-client");
        let lower = ff("x-forwarded-for", None, false);
        assert_eq!(name(Some(&custom), Some(&lower)).unwrap(), "x-client");
        h.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        let ifnone = ff("X-Forwarded-For", None, true);
        assert!(forwarded_for(Some(&ifnone), None, src, &h).is_none());
        assert!(forwarded_for(Some(&ifnone), Some(&plain), src, &h).is_some());
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            forwarded_for(Some(&plain), None, mapped, &HeaderMap::new())
                .unwrap()
                .1,
            "10.0.0.1"
        );
    }
}
