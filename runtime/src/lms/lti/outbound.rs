//! The host's own requests to LMS platforms (their JWKS, token, roster and grade endpoints,
//! dynamic registration): URLs come from school admins, so the same rule as plugins' outbound
//! HTTP holds — HTTPS, and every address a name resolves to must be public unless the operator
//! allows its network (`PENPAL_PLUGIN_ALLOW_NETWORKS`), checked by the resolver the connection
//! uses. Plain HTTP is accepted only towards an allowed network (a loopback simulator).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::plugins::special_purpose;

/// Largest answer read from a platform.
pub const MAX_BODY: usize = 1 << 20;

struct Checked(Arc<Vec<IpNet>>);

impl Resolve for Checked {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.0.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::net::lookup_host((name.as_str(), 0)),
            )
            .await
            .map_err(|_| "the name did not resolve in time")??
            .collect();
            if let Some(bad) = addrs.iter().find(|a| !reachable(&allowed, a.ip())) {
                return Err(format!(
                    "{} resolves to {}, which is not a public address",
                    name.as_str(),
                    bad.ip()
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

fn reachable(allowed: &[IpNet], ip: IpAddr) -> bool {
    special_purpose(ip).is_none() || allowed.iter().any(|n| n.contains(&ip))
}

/// Requests to platforms.
#[derive(Clone)]
pub struct Outbound {
    client: reqwest::Client,
    allowed: Arc<Vec<IpNet>>,
}

impl Outbound {
    /// A client reaching public addresses and the `allowed` networks.
    pub fn new(allowed: Vec<IpNet>) -> anyhow::Result<Outbound> {
        // The process's TLS provider, as the model client installs it (whichever comes first).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let allowed = Arc::new(allowed);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(Checked(allowed.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("penpal/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Outbound { client, allowed })
    }

    /// Why `url` may not be reached, if it may not: not HTTPS (outside an allowed network),
    /// or an address literal that is not public.
    pub fn refuses(&self, url: &str) -> Option<String> {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Some("not a URL".into());
        };
        let Some(host) = parsed.host_str() else {
            return Some("the URL names no host".into());
        };
        let literal = host.trim_matches(['[', ']']).parse::<IpAddr>().ok();
        let in_allowed = literal.is_some_and(|ip| self.allowed.iter().any(|n| n.contains(&ip)));
        if let Some(ip) = literal
            && !reachable(&self.allowed, ip)
        {
            return Some(format!("{ip} is not a public address"));
        }
        match parsed.scheme() {
            "https" => None,
            "http" if in_allowed => None,
            _ => Some("use an https:// URL".into()),
        }
    }

    /// The client, for a URL [`refuses`](Self::refuses) accepted.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// Reads at most [`MAX_BODY`] bytes of `resp`.
pub async fn body(mut resp: reqwest::Response) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if out.len() + chunk.len() > MAX_BODY {
            anyhow::bail!("the answer is larger than {MAX_BODY} bytes");
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
