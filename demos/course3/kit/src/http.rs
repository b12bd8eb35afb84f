//! A minimal HTTP/1.1 client over `std::net::TcpStream`, for the loopback servers the
//! demos start (realizar, mlflow). One request per connection (`Connection: close`),
//! a `Content-Length` or chunked response body, timeouts on connect, read and write,
//! and a cap on the response size: what a demo needs, and small enough to read.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Largest response body accepted (a demo's answers are small).
const MAX_RESPONSE: u64 = 64 * 1024 * 1024;

/// A status and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `http://host:port` split into its address and path prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub base_path: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("{url:?}: port {p:?} is not a number"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            base_path: path.to_owned(),
        })
    }

    /// `GET path` (path below the endpoint's base path, query included).
    pub fn get(&self, path: &str) -> Result<Response, String> {
        self.request("GET", path, None)
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &str) -> Result<Response, String> {
        self.request("POST", path, Some(body))
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<Response, String> {
        let target = format!("{}{path}", self.base_path);
        let what = format!("{method} http://{}:{}{target}", self.host, self.port);
        let err = |e: std::io::Error| format!("{what}: {e}");
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(err)?
            .next()
            .ok_or_else(|| format!("{what}: host does not resolve"))?;
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(err)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(err)?;
        stream
            .set_write_timeout(Some(Duration::from_secs(60)))
            .map_err(err)?;
        stream.set_nodelay(true).map_err(err)?;
        let body = body.unwrap_or("");
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\n\
             Accept: application/json\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n",
            self.host,
            self.port,
            body.len()
        );
        stream.write_all(head.as_bytes()).map_err(err)?;
        stream.write_all(body.as_bytes()).map_err(err)?;
        let mut raw = Vec::new();
        stream
            .take(MAX_RESPONSE + 1)
            .read_to_end(&mut raw)
            .map_err(err)?;
        if raw.len() as u64 > MAX_RESPONSE {
            return Err(format!("{what}: response larger than {MAX_RESPONSE} bytes"));
        }
        parse_response(&raw).map_err(|e| format!("{what}: {e}"))
    }
}

/// Parse a whole `Connection: close` response.
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the response has no end of headers")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            return Err(format!("bad header line {line:?}"));
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if k.eq_ignore_ascii_case("content-length") {
            length = Some(
                v.parse::<usize>()
                    .map_err(|_| format!("bad Content-Length {v:?}"))?,
            );
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or_else(|| format!("body truncated: {} of {n} bytes", rest.len()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    let body = String::from_utf8(body).map_err(|_| "the body is not UTF-8".to_owned())?;
    Ok(Response { status, body })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("chunk size line not terminated")?;
        let line = std::str::from_utf8(&rest[..eol]).map_err(|_| "bad chunk size")?;
        let size_hex = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or("chunked body truncated")?;
        out.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or("chunked body truncated")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_refuse() {
        let e = Endpoint::parse("http://127.0.0.1:5000/").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.base_path.as_str()),
            ("127.0.0.1", 5000, "")
        );
        assert_eq!(Endpoint::parse("http://h/x/").unwrap().base_path, "/x");
        assert!(Endpoint::parse("https://h").is_err());
        assert!(Endpoint::parse("http://h:99999").is_err());
        assert!(Endpoint::parse("http://:1").is_err());
    }

    #[test]
    fn bodies_by_length_and_by_chunks() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}extra").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        let c = parse_response(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab\xc3\r\n2;x=1\r\n\xa9d\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((c.status, c.body.as_str()), (404, "ab\u{e9}d"));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{}").is_err());
        assert!(parse_response(b"garbage").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
                .is_err()
        );
    }
}
