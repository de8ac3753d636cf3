//! Fetching web pages for the knowledge base without server-side request forgery: only public
//! addresses are contacted (checked after DNS resolution, so a name that resolves to a private
//! address is refused too, and on every redirect), unless the operator allows private ones.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a page could not be fetched (each message is meant for the creator).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Not an http(s) URL.
    #[error("url: {0}")]
    BadUrl(String),
    /// The address is not public.
    #[error("url: {0} is not a public address; only public web pages can be added")]
    Private(String),
    /// The page is larger than allowed.
    #[error("the page is larger than {0} bytes")]
    TooLarge(u64),
    /// The server answered with an error or could not be reached.
    #[error("fetching the page failed: {0}")]
    Failed(String),
}

/// Whether an address belongs to the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space (CGNAT)
                || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            let first = s[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || (first & 0xffc0) == 0xfec0 // site local (deprecated, still routed inside)
                || first == 0x2002 // 6to4: an IPv4 address inside
                || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] // NAT64: an IPv4 address inside
                || s[..6] == [0; 6]) // IPv4-compatible (::a.b.c.d) and the rest of ::/96
        }
    }
}

/// A resolver that drops non-public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(
                    Box::new(FetchError::Private(host)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

pub(crate) fn check_literal(url: &reqwest::Url, allow_private: bool) -> Result<(), FetchError> {
    if allow_private {
        return Ok(());
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    match literal {
        Some(ip) if !is_public(ip) => Err(FetchError::Private(ip.to_string())),
        _ => Ok(()),
    }
}

/// Whether the resolver refused the address (its error is somewhere in the source chain).
fn refused_by_resolver(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.downcast_ref::<FetchError>().is_some() {
            return true;
        }
        source = err.source();
    }
    false
}

/// A client for calls to addresses tenants give (creators' webhooks): no redirects, and unless
/// `allow_private`, names that resolve to private addresses are refused (check IP literals with
/// [`check_literal`]).
pub fn guarded_client(
    allow_private: bool,
    timeout: Duration,
) -> Result<reqwest::Client, FetchError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent("coach-gateway (webhook)")
        // A proxy would resolve the name itself, past the guard below.
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder
        .build()
        .map_err(|e| FetchError::Failed(e.to_string()))
}

/// Fetches pages.
#[derive(Clone)]
pub struct PageFetcher {
    client: reqwest::Client,
    allow_private: bool,
    max_bytes: u64,
}

/// A fetched page.
#[derive(Debug)]
pub struct Page {
    /// The body.
    pub body: Vec<u8>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The final URL after redirects.
    pub url: String,
}

impl PageFetcher {
    /// A fetcher refusing private addresses unless `allow_private`.
    pub fn new(allow_private: bool, max_bytes: u64) -> Result<Self, FetchError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .user_agent("coach-gateway (knowledge import)")
            // A proxy would resolve the name itself, past the guard below.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("too many redirects")
                } else if check_literal(attempt.url(), allow_private).is_err() {
                    attempt.error("redirect to a private address")
                } else {
                    attempt.follow()
                }
            }));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder
            .build()
            .map_err(|e| FetchError::Failed(e.to_string()))?;
        Ok(Self {
            client,
            allow_private,
            max_bytes,
        })
    }

    /// Fetches `url`, reading at most the configured number of bytes.
    pub async fn fetch(&self, url: &str) -> Result<Page, FetchError> {
        let parsed = reqwest::Url::parse(url).map_err(|e| FetchError::BadUrl(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl(
                "only http and https pages can be added".into(),
            ));
        }
        check_literal(&parsed, self.allow_private)?;
        let response = self.client.get(parsed).send().await.map_err(|e| {
            if e.is_redirect() || refused_by_resolver(&e) {
                FetchError::Private(url.to_string())
            } else {
                FetchError::Failed(e.without_url().to_string())
            }
        })?;
        if !response.status().is_success() {
            return Err(FetchError::Failed(format!(
                "the server answered {}",
                response.status()
            )));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let final_url = response.url().to_string();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| FetchError::Failed(e.without_url().to_string()))?;
            body.extend_from_slice(&chunk);
            if body.len() as u64 > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
        }
        Ok(Page {
            body,
            content_type,
            url: final_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "::10.0.0.1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "fec0::1",
            "192.0.0.1",
            "192.0.0.170",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111", "1.1.1.1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn loopback_pages_are_refused_unless_allowed() {
        let fetcher = PageFetcher::new(false, 1024).unwrap();
        for url in [
            "http://127.0.0.1:9/",
            "http://localhost:9/",
            "http://[::1]:9/",
        ] {
            assert!(
                matches!(fetcher.fetch(url).await, Err(FetchError::Private(_))),
                "{url}"
            );
        }
        assert!(matches!(
            fetcher.fetch("file:///etc/passwd").await,
            Err(FetchError::BadUrl(_))
        ));
    }
}
