//! Where a webhook may point: an `http` or `https` URL whose host is on the public internet,
//! unless the deployment allows private networks (`docs/webhooks.md#addresses`). Checked when a
//! webhook is registered (the host as written) and again at every delivery (every address the
//! host resolves to), so a name that later resolves to a private address reaches nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

/// Longest webhook URL taken.
pub const MAX_URL_LEN: usize = 2048;

/// Why a URL cannot be a webhook.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("is not a URL: {0}")]
    NotAUrl(String),
    #[error("is longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("must be http or https, not {0}")]
    Scheme(String),
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("must name a host")]
    NoHost,
    #[error(
        "points to a private, loopback or reserved address ({0}); set WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true to allow it"
    )]
    Private(String),
}

/// A URL a webhook may be registered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    /// Parses `raw` and checks its scheme and host, refusing private hosts unless
    /// `allow_private`.
    ///
    /// # Errors
    /// When `raw` cannot be a webhook's URL.
    pub fn parse(raw: &str, allow_private: bool) -> Result<Self, DestinationError> {
        if raw.len() > MAX_URL_LEN {
            return Err(DestinationError::TooLong);
        }
        let url = Url::parse(raw).map_err(|e| DestinationError::NotAUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(DestinationError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DestinationError::Credentials);
        }
        let host = url.host().ok_or(DestinationError::NoHost)?;
        if !allow_private {
            check_host(&host)?;
        }
        Ok(Self(url))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Refuses a host that is an address outside the public internet, or a name that only ever
/// means this machine (`localhost`).
///
/// # Errors
/// [`DestinationError::Private`].
pub fn check_host<S: AsRef<str>>(host: &Host<S>) -> Result<(), DestinationError> {
    match host {
        Host::Ipv4(ip) => check_address(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => check_address(IpAddr::V6(*ip)),
        Host::Domain(name) => {
            let name = name.as_ref().trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                Err(DestinationError::Private(name))
            } else {
                Ok(())
            }
        }
    }
}

/// # Errors
/// [`DestinationError::Private`] when `ip` is not a public address.
pub fn check_address(ip: IpAddr) -> Result<(), DestinationError> {
    if is_public(ip) {
        Ok(())
    } else {
        Err(DestinationError::Private(ip.to_string()))
    }
}

/// Whether `ip` is an address of the public internet: not loopback, private (RFC 1918, unique
/// local), link-local, carrier-grade NAT, documentation, benchmarking, multicast, broadcast,
/// unspecified or reserved. IPv4 inside IPv6 (mapped, NAT64) is judged as IPv4.
#[must_use]
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [.., a, b, c, d] = v6.octets();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
                || segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]) // discard-only 100::/64
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (b & 0xc0) == 64) // carrier-grade NAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || a >= 240) // reserved, and broadcast
}

/// reqwest's resolver for deliveries: the system's resolution, keeping only public addresses
/// (or all of them when private networks are allowed). A name with none left fails the
/// delivery with [`DestinationError::Private`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublicResolver;

impl reqwest::dns::Resolve for PublicResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|addr| is_public(addr.ip()))
                .collect();
            if public.is_empty() {
                let shown = resolved
                    .first()
                    .map_or_else(|| host.clone(), |addr| format!("{host} = {}", addr.ip()));
                return Err(Box::new(DestinationError::Private(shown)) as _);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The resolver a delivery client uses.
pub(crate) fn resolver(allow_private: bool) -> Option<Arc<PublicResolver>> {
    (!allow_private).then_some(Arc::new(PublicResolver))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_hosts_pass_and_private_ones_are_named() {
        for ok in [
            "https://example.com/hook",
            "http://93.184.216.34:8080/x?y=1",
            "https://[2606:4700::1111]/",
        ] {
            assert!(WebhookUrl::parse(ok, false).is_ok(), "{ok}");
        }
        for private in [
            "http://127.0.0.1/",
            "http://localhost:8080/",
            "http://api.localhost/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[64:ff9b::a00:1]/",
            "http://2130706433/", // 127.0.0.1 written as a number
            "http://0x7f.1/",
        ] {
            assert!(
                matches!(
                    WebhookUrl::parse(private, false),
                    Err(DestinationError::Private(_))
                ),
                "{private}"
            );
            assert!(WebhookUrl::parse(private, true).is_ok(), "{private}");
        }
    }

    #[test]
    fn other_urls_are_refused_with_their_reason() {
        assert!(matches!(
            WebhookUrl::parse("ftp://example.com/", false),
            Err(DestinationError::Scheme(s)) if s == "ftp"
        ));
        assert_eq!(
            WebhookUrl::parse("https://user:pw@example.com/", false),
            Err(DestinationError::Credentials)
        );
        assert!(matches!(
            WebhookUrl::parse("example.com/hook", false),
            Err(DestinationError::NotAUrl(_))
        ));
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(
            WebhookUrl::parse(&long, false),
            Err(DestinationError::TooLong)
        );
    }

    #[tokio::test]
    async fn the_resolver_keeps_no_private_address() {
        use reqwest::dns::Resolve as _;
        let name: reqwest::dns::Name = "localhost".parse().expect("a name");
        let error = PublicResolver
            .resolve(name)
            .await
            .err()
            .expect("localhost resolves to loopback only");
        assert!(error.to_string().contains("private"), "{error}");
    }
}
