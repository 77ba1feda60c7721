//! Calls to addresses users pick (model endpoints, webhooks), guarded against server-side request
//! forgery: only hosts on the admin's allow-list, no private, loopback or link-local address unless
//! the admin allows them, the checked address pinned for the connection (no second DNS answer), no
//! redirects, no proxy from the environment, answers read up to a size cap, and errors that never
//! carry the remote body or the URL's path and credentials.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;

/// The admin's rules for outbound calls (`STRATA_OUTBOUND_ALLOW`, `STRATA_OUTBOUND_PRIVATE`,
/// `STRATA_MAX_RESPONSE_MB`).
#[derive(Clone, Debug)]
pub struct Outbound {
    allow: Vec<HostRule>,
    /// Loopback, private (RFC 1918, unique local, CGNAT) and link-local addresses may be called.
    pub allow_private: bool,
    /// Largest answer read from a remote server, in bytes.
    pub max_response_bytes: u64,
}

/// One allow-list entry: `host`, `host:port`, `*.domain` (any sub-domain), an IP address, or `*`.
#[derive(Clone, Debug, PartialEq)]
enum HostRule {
    Any,
    Exact { host: String, port: Option<u16> },
    Suffix { suffix: String, port: Option<u16> },
}

/// Why a call was refused or failed; the text is safe to show to the user.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OutboundError {
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
    /// The remote server answered with this status (not 2xx).
    #[error("{message}")]
    Status { status: u16, message: String },
}

impl OutboundError {
    /// The remote status, when the server answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            OutboundError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The setting that allow-lists hosts, named in refusals.
pub const ALLOW_SETTING: &str = "STRATA_OUTBOUND_ALLOW";
/// The setting that allows private addresses, named in refusals.
pub const PRIVATE_SETTING: &str = "STRATA_OUTBOUND_PRIVATE";

impl Default for Outbound {
    /// No outbound calls at all until an admin allows hosts.
    fn default() -> Self {
        Outbound { allow: vec![], allow_private: false, max_response_bytes: 16 * 1024 * 1024 }
    }
}

/// A checked URL with a client bound to its address (see `Outbound::connect`).
pub struct Pinned {
    target: Target,
    client: reqwest::Client,
    timeout: Duration,
}

/// A URL that passed the checks, with the address it will be sent to.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: Url,
    pub addr: SocketAddr,
}

impl Outbound {
    /// Parses a comma-separated allow-list (`models.internal:8080, *.example.com, 10.0.0.7`).
    pub fn new(allow: &str, allow_private: bool, max_response_bytes: u64) -> Result<Outbound, String> {
        let mut rules = Vec::new();
        for entry in allow.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            rules.push(parse_rule(entry)?);
        }
        Ok(Outbound { allow: rules, allow_private, max_response_bytes })
    }

    /// The allow-list as the admin wrote it (normalised), for the log at start-up.
    pub fn describe(&self) -> String {
        if self.allow.is_empty() {
            return "none (outbound calls are off)".into();
        }
        let rules: Vec<String> = self
            .allow
            .iter()
            .map(|r| match r {
                HostRule::Any => "*".to_string(),
                HostRule::Exact { host, port } => port.map_or(host.clone(), |p| format!("{host}:{p}")),
                HostRule::Suffix { suffix, port } => port.map_or(format!("*.{suffix}"), |p| format!("*.{suffix}:{p}")),
            })
            .collect();
        format!("{}{}", rules.join(", "), if self.allow_private { " (private addresses allowed)" } else { "" })
    }

    /// Checks a URL a user gave without resolving it (when it is saved): scheme, credentials,
    /// allow-list, and an IP literal's range.
    pub fn check_url(&self, raw: &str) -> Result<Url, OutboundError> {
        let url = Url::parse(raw.trim()).map_err(|e| OutboundError::Refused(format!("'{}' is not a URL ({e})", mask(raw))))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::Refused(format!("{}: only http:// and https:// URLs", mask(raw))));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::Refused(format!("{}: credentials in the URL are not allowed (use the token field)", mask(raw))));
        }
        let host = host_of(&url).ok_or_else(|| OutboundError::Refused(format!("{}: the URL has no host", mask(raw))))?;
        let port = url.port_or_known_default().unwrap_or(80);
        self.check_host(&host, port)?;
        Ok(url)
    }

    /// Checks a host (lower-case name or IP literal, no brackets) and port that a user gave
    /// outside an HTTP URL (a Spark Connect remote) without resolving it: the allow-list and an
    /// IP literal's range.
    pub fn check_host(&self, host: &str, port: u16) -> Result<(), OutboundError> {
        if self.allow.is_empty() {
            return Err(OutboundError::Refused(format!(
                "outbound calls are off on this server: an admin allows hosts with {ALLOW_SETTING} (e.g. '{host}:{port}')"
            )));
        }
        if !self.allow.iter().any(|r| r.matches(host, port)) {
            return Err(OutboundError::Refused(format!("host '{host}:{port}' is not on the server's allow-list ({ALLOW_SETTING})")));
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.check_ip(host, ip)?;
        }
        Ok(())
    }

    /// Checks a URL and resolves its host; every address must be allowed, the first is pinned.
    pub async fn resolve(&self, raw: &str) -> Result<Target, OutboundError> {
        let url = self.check_url(raw)?;
        let host = host_of(&url).unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = self.resolve_checked(&host, port).await?;
        Ok(Target { url, addr })
    }

    /// [`Outbound::check_host`], then resolves the host: every address must be allowed, the
    /// first is the one to connect to (pinned: no second DNS answer).
    pub async fn resolve_host(&self, host: &str, port: u16) -> Result<SocketAddr, OutboundError> {
        self.check_host(host, port)?;
        self.resolve_checked(host, port).await
    }

    async fn resolve_checked(&self, host: &str, port: u16) -> Result<SocketAddr, OutboundError> {
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(Duration::from_secs(5), tokio::net::lookup_host((host, port)))
                .await
                .map_err(|_| OutboundError::Failed(format!("resolving '{host}' took longer than 5 s")))?
                .map_err(|e| OutboundError::Failed(format!("'{host}' does not resolve ({e})")))?
                .collect(),
        };
        let first = *addrs.first().ok_or_else(|| OutboundError::Failed(format!("'{host}' has no address")))?;
        for a in &addrs {
            self.check_ip(host, a.ip())?;
        }
        Ok(first)
    }

    fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), OutboundError> {
        match classify(ip) {
            Range::Public => Ok(()),
            Range::Private if self.allow_private => Ok(()),
            Range::Private => Err(OutboundError::Refused(format!(
                "'{host}' is a private, loopback or link-local address ({ip}); an admin allows those with {PRIVATE_SETTING}=true"
            ))),
            Range::Never => Err(OutboundError::Refused(format!("'{host}' resolves to {ip}, an address Strata never calls"))),
        }
    }

    /// A client bound to the checked address: no DNS of its own, no redirects, no proxy.
    pub fn client(&self, target: &Target, timeout: Duration) -> Result<reqwest::Client, OutboundError> {
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent("strata");
        if let Some(host) = target.url.host_str().filter(|h| h.parse::<IpAddr>().is_err()) {
            b = b.resolve(host, target.addr);
        }
        b.build().map_err(|e| OutboundError::Failed(format!("HTTP client: {e}")))
    }

    /// Reads an answer's body up to the size cap. A redirect or an error status is an error that
    /// names the status, never the body (it may hold anything the remote server chose to say).
    pub async fn read(&self, mut res: reqwest::Response, target: &Url) -> Result<Vec<u8>, OutboundError> {
        let status = res.status();
        let at = mask(target.as_str());
        if status.is_redirection() {
            return Err(OutboundError::Status { status: status.as_u16(), message: format!("{at} answered a redirect ({status}); redirects are not followed") });
        }
        if !status.is_success() {
            return Err(OutboundError::Status { status: status.as_u16(), message: format!("{at} answered {status}") });
        }
        let cap = self.max_response_bytes;
        if res.content_length().is_some_and(|n| n > cap) {
            return Err(OutboundError::Failed(format!("{at} answered more than the limit of {} MiB", cap >> 20)));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| OutboundError::Failed(format!("{at}: reading the answer failed ({})", short(&e))))? {
            if (body.len() + chunk.len()) as u64 > cap {
                return Err(OutboundError::Failed(format!("{at} answered more than the limit of {} MiB", cap >> 20)));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// POSTs a JSON body to a checked, pinned address and reads the answer (capped): its status
    /// and body.
    pub async fn post(&self, raw: &str, body: Vec<u8>, headers: &[(&str, String)], timeout: Duration) -> Result<(u16, Vec<u8>), OutboundError> {
        let pinned = self.connect(raw, timeout).await?;
        self.send(&pinned, body, headers).await
    }

    /// Checks and resolves a URL once, for several requests (a model's batches) over one client.
    pub async fn connect(&self, raw: &str, timeout: Duration) -> Result<Pinned, OutboundError> {
        let target = self.resolve(raw).await?;
        let client = self.client(&target, timeout)?;
        Ok(Pinned { target, client, timeout })
    }

    /// GETs a checked, pinned address (a model server's metadata) and reads the answer (capped).
    pub async fn get(&self, raw: &str, headers: &[(&str, String)], timeout: Duration) -> Result<(u16, Vec<u8>), OutboundError> {
        let pinned = self.connect(raw, timeout).await?;
        let req = pinned.client.get(pinned.target.url.clone());
        self.finish(&pinned, req, headers).await
    }

    /// POSTs a JSON body over a pinned client and reads the answer (capped).
    pub async fn send(&self, pinned: &Pinned, body: Vec<u8>, headers: &[(&str, String)]) -> Result<(u16, Vec<u8>), OutboundError> {
        let req = pinned.client.post(pinned.target.url.clone()).header("content-type", "application/json").body(body);
        self.finish(pinned, req, headers).await
    }

    async fn finish(&self, pinned: &Pinned, mut req: reqwest::RequestBuilder, headers: &[(&str, String)]) -> Result<(u16, Vec<u8>), OutboundError> {
        let url = &pinned.target.url;
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let at = mask(url.as_str());
        let res = req.send().await.map_err(|e| {
            if e.is_timeout() {
                OutboundError::Failed(format!("{at} did not answer within {} ms", pinned.timeout.as_millis()))
            } else {
                OutboundError::Failed(format!("{at} is unreachable ({})", short(&e)))
            }
        })?;
        let status = res.status().as_u16();
        Ok((status, self.read(res, url).await?))
    }
}

/// A reqwest error's kind without the URL it embeds.
fn short(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused or failed"
    } else if e.is_body() || e.is_decode() {
        "the body was cut or malformed"
    } else if e.is_request() {
        "the request failed"
    } else {
        "an HTTP error"
    }
}

/// A URL as logs and the API show it: scheme, host and port only (a chat webhook's path is its
/// credential; a user name or password never leaves).
pub fn mask(raw: &str) -> String {
    match Url::parse(raw.trim()) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("?");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path() == "/" && u.query().is_none() { "" } else { "/…" };
            format!("{}://{host}{port}{rest}", u.scheme())
        }
        Err(_) => "(not a URL)".into(),
    }
}

/// A host name or IP literal, lower-case, without IPv6 brackets.
fn host_of(url: &Url) -> Option<String> {
    match url.host()? {
        url::Host::Domain(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

fn parse_rule(entry: &str) -> Result<HostRule, String> {
    if entry == "*" {
        return Ok(HostRule::Any);
    }
    let bad = || format!("{ALLOW_SETTING}: '{entry}' is not a host, host:port, *.domain or IP address");
    // `[v6]:port`, `v6`, `host:port`, `host`.
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        let (h, tail) = rest.split_once(']').ok_or_else(bad)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad())?),
            None if tail.is_empty() => None,
            None => return Err(bad()),
        };
        (h.to_string(), port)
    } else if entry.parse::<Ipv6Addr>().is_ok() {
        (entry.to_string(), None)
    } else {
        match entry.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (entry.to_string(), None),
        }
    };
    let host = host.to_ascii_lowercase();
    if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.is_empty() || suffix.contains('*') {
            return Err(bad());
        }
        return Ok(HostRule::Suffix { suffix: suffix.to_string(), port });
    }
    if host.is_empty() || host.contains(['*', '/', '@', '?', '#']) {
        return Err(bad());
    }
    let host = host.parse::<IpAddr>().map(|ip| ip.to_string()).unwrap_or(host);
    Ok(HostRule::Exact { host, port })
}

impl HostRule {
    fn matches(&self, host: &str, port: u16) -> bool {
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        match self {
            HostRule::Any => true,
            HostRule::Exact { host: h, port: p } => h == host && port_ok(p),
            HostRule::Suffix { suffix, port: p } => host.strip_suffix(suffix.as_str()).is_some_and(|rest| rest.ends_with('.') && rest.len() > 1) && port_ok(p),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Range {
    Public,
    /// Loopback, private, shared (CGNAT), link-local, unique local: allowed by a setting.
    Private,
    /// Unspecified, multicast, broadcast, reserved, cloud metadata: never.
    Never,
}

fn classify(ip: IpAddr) -> Range {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let s = v6.segments();
            if v6.is_unspecified() || v6.is_multicast() || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Range::Never
            } else if v6.is_loopback() || (s[0] & 0xfe00) == 0xfc00 || (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
                Range::Private
            } else if s[0] == 0x64 && s[1] == 0xff9b || s[0] == 0x2002 || (s[0] == 0x2001 && s[1] == 0) {
                // NAT64, 6to4 and Teredo embed IPv4 addresses that could be private.
                Range::Never
            } else {
                Range::Public
            }
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Range {
    let o = ip.octets();
    // Cloud metadata services (AWS/GCP/Azure; ECS task metadata): never, whatever the settings.
    if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(169, 254, 170, 2) {
        return Range::Never;
    }
    if o[0] == 0 || ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        Range::Never
    } else if ip.is_loopback() || ip.is_private() || ip.is_link_local() || (o[0] == 100 && (64..128).contains(&o[1])) || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) {
        Range::Private
    } else {
        Range::Public
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_ranges() {
        for (ip, want) in [
            ("8.8.8.8", Range::Public),
            ("127.0.0.1", Range::Private),
            ("10.1.2.3", Range::Private),
            ("172.16.0.1", Range::Private),
            ("192.168.1.1", Range::Private),
            ("100.64.0.1", Range::Private),
            ("169.254.1.1", Range::Private),
            ("169.254.169.254", Range::Never),
            ("0.0.0.0", Range::Never),
            ("255.255.255.255", Range::Never),
            ("224.0.0.1", Range::Never),
            ("::1", Range::Private),
            ("::", Range::Never),
            ("fe80::1", Range::Private),
            ("fd12::1", Range::Private),
            ("::ffff:127.0.0.1", Range::Private),
            ("::ffff:169.254.169.254", Range::Never),
            ("64:ff9b::a00:1", Range::Never),
            ("2606:4700::1111", Range::Public),
        ] {
            assert_eq!(classify(ip.parse().unwrap()), want, "{ip}");
        }
    }

    #[test]
    fn allow_list_rules() {
        let o = Outbound::new("models.internal:8080, *.example.com, 10.0.0.7, [::1]:9000", true, 1 << 20).unwrap();
        assert!(o.check_url("http://models.internal:8080/v2").is_ok());
        assert!(o.check_url("http://MODELS.internal:8080/v2").is_ok());
        assert!(o.check_url("http://models.internal:8081/v2").is_err());
        assert!(o.check_url("https://a.example.com/x").is_ok());
        assert!(o.check_url("https://example.com/x").is_err(), "*.example.com is sub-domains only");
        assert!(o.check_url("https://evilexample.com/x").is_err());
        assert!(o.check_url("http://10.0.0.7/").is_ok());
        assert!(o.check_url("http://[::1]:9000/").is_ok());
        assert!(o.check_url("http://user:pw@models.internal:8080/").is_err(), "credentials in URLs");
        assert!(o.check_url("file:///etc/passwd").is_err());
        assert!(Outbound::new("a/b", false, 1).is_err());
        assert!(Outbound::new("*.", false, 1).is_err());
        // Off by default, with a message that names the setting.
        let off = Outbound::default().check_url("http://a.example.com/").unwrap_err().to_string();
        assert!(off.contains(ALLOW_SETTING), "{off}");
        // An allowed IP literal in a private range still needs the private setting.
        let strict = Outbound::new("10.0.0.7", false, 1).unwrap();
        assert!(strict.check_url("http://10.0.0.7/").unwrap_err().to_string().contains(PRIVATE_SETTING));
        // Octal/hex spellings are normalised by the URL parser before the checks.
        let star = Outbound::new("*", false, 1).unwrap();
        assert!(star.check_url("http://0x7f.1/").is_err());
        assert!(star.check_url("http://2130706433/").is_err());
        assert!(star.check_url("http://[::ffff:7f00:1]/").is_err());
    }

    #[test]
    fn masking_keeps_scheme_host_and_port_only() {
        assert_eq!(mask("https://hooks.slack.com/services/T000/B000/XXXX"), "https://hooks.slack.com/…");
        assert_eq!(mask("http://u:p@host:8080/"), "http://host:8080");
        assert_eq!(mask("nonsense"), "(not a URL)");
    }
}
