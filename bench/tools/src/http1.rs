//! A minimal HTTP/1.1 client connection for the load client: send a prepared request, read one
//! response (Content-Length, chunked or close-delimited body). Pipelining is the caller's
//! business: `send` and `recv` are separate so a long-poll GET can stay pending while other
//! requests go out on another connection.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// One response, body fully read.
#[derive(Debug, Clone, Default)]
pub struct Response {
    pub status: u16,
    /// The connection cannot carry another request (`Connection: close` or close-delimited body).
    pub close: bool,
    /// `Set-Cookie` values, in order.
    pub set_cookie: Vec<String>,
    pub body: Vec<u8>,
}

/// A client connection with its read buffer.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

enum BodyKind {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

impl Conn {
    /// Connects with `TCP_NODELAY`, as every load generator here does.
    pub async fn connect(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Writes a complete request.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<()> {
        self.stream.write_all(request).await
    }

    /// The socket and any bytes already read past the last response (after a 101).
    pub fn into_parts(self) -> (TcpStream, Vec<u8>) {
        (self.stream, self.buf)
    }

    async fn fill(&mut self) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(8192);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Reads one response.
    pub async fn recv(&mut self) -> io::Result<Response> {
        let (mut resp, kind, head_len) = loop {
            if let Some(parsed) = parse_head(&self.buf)? {
                break parsed;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("response head too large"));
            }
            self.fill().await?;
        };
        self.buf.drain(..head_len);
        match kind {
            BodyKind::None => {}
            BodyKind::Length(n) => {
                while self.buf.len() < n {
                    self.fill().await?;
                }
                resp.body = self.buf.drain(..n).collect();
            }
            BodyKind::Chunked => resp.body = self.read_chunked().await?,
            BodyKind::UntilClose => {
                loop {
                    match self.fill().await {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                        Err(e) => return Err(e),
                    }
                }
                resp.body = std::mem::take(&mut self.buf);
                resp.close = true;
            }
        }
        Ok(resp)
    }

    async fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("chunk line too long"));
            }
            self.fill().await?;
        }
    }

    async fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line().await?;
            let text = std::str::from_utf8(&line).map_err(|_| invalid("chunk size"))?;
            let hex = text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(hex, 16).map_err(|_| invalid("chunk size"))?;
            if size == 0 {
                // Trailers end at an empty line.
                while !self.read_line().await?.is_empty() {}
                return Ok(body);
            }
            while self.buf.len() < size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
        }
    }
}

/// Parses a response head at the start of `buf`: the response (without body), how the body is
/// delimited, and the head's length.
fn parse_head(buf: &[u8]) -> io::Result<Option<(Response, BodyKind, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut r = httparse::Response::new(&mut headers);
    let head_len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(format!("bad response head: {e}"))),
    };
    let status = r.code.unwrap_or(0);
    let mut resp = Response {
        status,
        close: r.version == Some(0),
        ..Response::default()
    };
    let mut length = None;
    let mut chunked = false;
    for h in r.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| invalid("content-length"))?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            let v = value.to_ascii_lowercase();
            if v.contains("close") {
                resp.close = true;
            } else if v.contains("keep-alive") {
                resp.close = false;
            }
        } else if h.name.eq_ignore_ascii_case("set-cookie") {
            resp.set_cookie.push(value.to_string());
        }
    }
    let kind = if status == 101 || status == 204 || status == 304 || (100..200).contains(&status) {
        BodyKind::None
    } else if chunked {
        BodyKind::Chunked
    } else if let Some(n) = length {
        BodyKind::Length(n)
    } else {
        BodyKind::UntilClose
    };
    Ok(Some((resp, kind, head_len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn serve_once(reply: &'static [u8]) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b).await;
            s.write_all(reply).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn reads_length_chunked_and_close_delimited_bodies() {
        let cases: [(&'static [u8], &[u8], bool); 3] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nSet-Cookie: a=1\r\n\r\nabcEXTRA", b"abc", false),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1;x=y\r\nc\r\n0\r\n\r\n", b"abc", false),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc", b"abc", true),
        ];
        for (reply, body, close) in cases {
            let addr = serve_once(reply).await;
            let mut c = Conn::connect(&addr).await.unwrap();
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
            let r = c.recv().await.unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.body, body);
            assert_eq!(r.close, close);
        }
    }

    #[test]
    fn set_cookie_and_no_body_statuses() {
        let head: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nSet-Cookie: SRV=S1; path=/\r\n\r\n";
        let (r, kind, n) = parse_head(&[head, b"rest"].concat()).unwrap().unwrap();
        assert_eq!(r.set_cookie, vec!["SRV=S1; path=/".to_string()]);
        assert!(matches!(kind, BodyKind::None));
        assert_eq!(n, head.len());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").unwrap().is_none());
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }
}
