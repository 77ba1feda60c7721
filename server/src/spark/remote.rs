//! A Spark Connect address (`sc://host[:port][/;key=value…]`), parsed strictly: a user types it,
//! so anything outside the format is refused rather than guessed, and the token never shows.
//!
//! Keys: `token` (sent as `Authorization: Bearer …`; only over TLS unless the host is loopback),
//! `use_ssl` (`true`/`false`), `user_id`; any other key (`x-databricks-cluster-id`) is sent as a
//! gRPC header. Spark's own `session_id`, `user_agent` and `grpc_*` keys are refused: Strata
//! opens its sessions itself.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use super::SparkError;

/// Spark Connect's default port.
pub const DEFAULT_PORT: u16 = 15002;

/// A parsed, checked Spark Connect address.
#[derive(Clone, PartialEq)]
pub struct Remote {
    /// Lower-case host name or IP literal (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    pub use_ssl: bool,
    pub user_id: Option<String>,
    /// Extra gRPC headers (lower-case names), in the order given.
    pub headers: Vec<(String, String)>,
    token: Option<String>,
}

/// Keys Spark's clients know that Strata refuses (it manages sessions and the channel itself).
const REFUSED_KEYS: [&str; 6] =
    ["session_id", "user_agent", "grpc_keepalive_enabled", "grpc_keepalive_time_ms", "grpc_keepalive_timeout_ms", "grpc_keepalive_without_calls"];

/// Header names a parameter may not set (they belong to HTTP/2, gRPC or the token).
fn reserved_header(name: &str) -> bool {
    matches!(name, "authorization" | "content-type" | "te" | "host" | "user-agent" | "connection" | "cookie")
        || name.starts_with("grpc-")
        || name.starts_with(':')
}

impl Remote {
    /// Parses `sc://host[:port][/;key=value;…]`.
    pub fn parse(raw: &str) -> Result<Remote, SparkError> {
        let bad = |why: &str| SparkError::BadRemote(format!("{why}; the form is sc://host:port or sc://host:port/;token=…;use_ssl=true"));
        let rest = raw.strip_prefix("sc://").ok_or_else(|| bad("the address must start with sc://"))?;
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("the address has spaces or control characters"));
        }
        let (authority, params) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad("no user or password before the host (use ;token=…)"));
        }
        if authority.contains(['?', '#', ';']) {
            return Err(bad("a query, fragment or parameter before '/'"));
        }
        let (host, port) = parse_authority(authority).ok_or_else(|| bad("the host or port is not valid"))?;
        let mut remote = Remote { host, port, use_ssl: false, user_id: None, headers: vec![], token: None };
        if !params.is_empty() {
            let params = params.strip_prefix(';').ok_or_else(|| bad("after the host comes '/;key=value', no path"))?;
            let mut seen: Vec<String> = Vec::new();
            for pair in params.split(';') {
                let (key, value) = pair.split_once('=').ok_or_else(|| bad(&format!("parameter '{}' is not key=value", masked_key(pair))))?;
                let key = key.to_ascii_lowercase();
                if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                    return Err(bad("a parameter name is empty or has characters other than letters, digits, '_' and '-'"));
                }
                if seen.contains(&key) {
                    return Err(bad(&format!("parameter '{key}' is given twice")));
                }
                seen.push(key.clone());
                let value = percent_decode(value).ok_or_else(|| bad(&format!("the value of '{key}' is not valid")))?;
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(bad(&format!("the value of '{key}' is empty or not printable ASCII")));
                }
                match key.as_str() {
                    "token" => remote.token = Some(value),
                    "use_ssl" => {
                        remote.use_ssl = match value.to_ascii_lowercase().as_str() {
                            "true" => true,
                            "false" => false,
                            _ => return Err(bad("use_ssl is true or false")),
                        }
                    }
                    "user_id" => remote.user_id = Some(value),
                    k if REFUSED_KEYS.contains(&k) => return Err(bad(&format!("parameter '{k}' is set by Strata, not the address"))),
                    k if reserved_header(k) => return Err(bad(&format!("parameter '{k}' would replace a protocol header"))),
                    _ => remote.headers.push((key, value)),
                }
            }
        }
        if remote.token.is_some() && !remote.use_ssl && !remote.is_loopback() {
            return Err(bad("a token is sent only over TLS: add ;use_ssl=true (or use a loopback host)"));
        }
        Ok(remote)
    }

    /// The token, to send as `Authorization: Bearer …`.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The address without its token (what is stored and shown) and the token apart (what is
    /// sealed): `Remote::parse(&stored)?.with_token(token)` is the address again.
    pub fn split_token(mut self) -> (String, Option<String>) {
        let token = self.token.take();
        (self.to_string(), token)
    }

    /// This address with `token` (a sealed one, opened), as given in `;token=…`.
    pub fn with_token(mut self, token: Option<String>) -> Remote {
        self.token = token;
        self
    }

    /// `localhost` or a loopback IP literal.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// `host:port` with IPv6 literals bracketed, for URIs and messages.
    pub fn authority(&self) -> String {
        if self.host.contains(':') { format!("[{}]:{}", self.host, self.port) } else { format!("{}:{}", self.host, self.port) }
    }
}

/// Shows the address without the token (logs, errors, the API).
impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sc://{}", self.authority())?;
        let mut params: Vec<String> = Vec::new();
        if self.token.is_some() {
            params.push("token=…".into());
        }
        if self.use_ssl {
            params.push("use_ssl=true".into());
        }
        if let Some(u) = &self.user_id {
            params.push(format!("user_id={u}"));
        }
        params.extend(self.headers.iter().map(|(k, v)| format!("{k}={v}")));
        if !params.is_empty() {
            write!(f, "/;{}", params.join(";"))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Remote({self})")
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; a host name is letters, digits, '-' and '.'.
fn parse_authority(a: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = a.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        h.parse::<Ipv6Addr>().ok()?;
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':')?),
        };
        (h.to_ascii_lowercase(), port)
    } else {
        let (h, port) = match a.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (a, None),
        };
        let labels_ok = !h.is_empty()
            && h.len() <= 253
            && h.trim_end_matches('.').split('.').all(|l| {
                !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !labels_ok {
            return None;
        }
        (h.trim_end_matches('.').to_ascii_lowercase(), port)
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => p.parse::<u16>().ok().filter(|p| *p != 0)?,
        Some(_) => return None,
    };
    Some((host, port))
}

/// `%XX` escapes decoded (strictly: two hex digits, valid UTF-8 after decoding).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A parameter named in an error: its key only (the value may be a token).
fn masked_key(pair: &str) -> String {
    pair.split('=').next().unwrap_or("").chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_parameters() {
        let r = Remote::parse("sc://127.0.0.1:15003").unwrap();
        assert_eq!((r.host.as_str(), r.port, r.use_ssl, r.token()), ("127.0.0.1", 15003, false, None));
        assert_eq!(Remote::parse("sc://Spark.Example.com").unwrap().authority(), "spark.example.com:15002");
        assert_eq!(Remote::parse("sc://[::1]:9/").unwrap().authority(), "[::1]:9");
        let r = Remote::parse("sc://dbc-1.cloud.databricks.com:443/;token=dapi%2Babc;use_ssl=true;x-databricks-cluster-id=0123-abc").unwrap();
        assert_eq!(r.token(), Some("dapi+abc"));
        assert!(r.use_ssl);
        assert_eq!(r.headers, vec![("x-databricks-cluster-id".to_string(), "0123-abc".to_string())]);
        // The token never shows.
        let shown = format!("{r} {r:?}");
        assert!(!shown.contains("dapi"), "{shown}");
        assert_eq!(r.to_string(), "sc://dbc-1.cloud.databricks.com:443/;token=…;use_ssl=true;x-databricks-cluster-id=0123-abc");
        // A token in clear text to loopback is allowed (the local cluster).
        assert!(Remote::parse("sc://localhost/;token=t").unwrap().is_loopback());
    }

    #[test]
    fn refuses_anything_outside_the_format() {
        for bad in [
            "http://host:15002",
            "sc:/host",
            "sc://",
            "sc://:15002",
            "sc://host:0",
            "sc://host:65536",
            "sc://host:+1",
            "sc://host:1x",
            "sc://user:pw@host",
            "sc://host/path",
            "sc://host/path;token=x",
            "sc://host?x=1",
            "sc://host#f",
            "sc://ho st",
            "sc://host\n",
            "sc://-host",
            "sc://host_name",
            "sc://[::1",
            "sc://[nothex]:1",
            "sc://host/;token",
            "sc://host/;=v",
            "sc://host/;token=a;token=b",
            "sc://host/;use_ssl=yes",
            "sc://host/;session_id=1",
            "sc://host/;authorization=Bearer%20x",
            "sc://host/;grpc-timeout=1",
            "sc://host/;k=%zz",
            "sc://host/;k=",
            "sc://host/;k=a%0Ab",
            "sc://spark.example.com/;token=secret",
        ] {
            let err = Remote::parse(bad).expect_err(bad).to_string();
            assert!(!err.contains("secret"), "{bad}: {err}");
        }
    }
}
