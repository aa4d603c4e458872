//! Outbound HTTP for plugins: `wasi:http/outgoing-handler`, allowed only to what a plugin both
//! requested in its manifest and was granted at install — a host (or `*.` subdomains of one),
//! a scheme (HTTPS unless the grant says `http://`) and one port.
//!
//! The checks run on the request the host is about to send, after the guest has built it,
//! before any connection is made:
//! 1. the URL's scheme, host and port must match a grant (a URL naming an IP address never
//!    does: grants are host names);
//! 2. the host resolves here, and **every** address it resolves to must be a public one —
//!    loopback, private, link-local, unique-local, shared, multicast, documentation,
//!    IPv4-mapped and other special ranges are refused unless the operator allows that
//!    network (`PENPAL_PLUGIN_ALLOW_NETWORKS`), so a name pointing inside the network gets
//!    nowhere;
//! 3. the connection goes to the address that was checked (no second lookup that DNS could
//!    answer differently), with TLS verified against the host name.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use ipnet::IpNet;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use wasmtime::component::Linker;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::{CallState, Capability, Identity, Services};
use crate::plugins::manifest::HostPattern;

/// Longest wait for a name to resolve.
const DNS_TIMEOUT: Duration = Duration::from_secs(5);
/// Default connect and first-byte timeout, when the guest sets none (the call's own
/// wall-clock limit ends it sooner anyway).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a request to `host:port` over HTTPS (`https`) or plain HTTP matches a grant in
/// `allowed`. `*.example.com` matches every subdomain of example.com, not example.com itself.
pub fn host_allowed(allowed: &[HostPattern], https: bool, host: &str, port: u16) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowed
        .iter()
        .filter(|h| !h.is_operator())
        .map(HostPattern::grant)
        .any(|g| {
            g.https == https
                && g.port == port
                && if g.wildcard {
                    host.strip_suffix(&g.host)
                        .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1)
                } else {
                    g.host == host
                }
        })
}

/// Why `ip` is not a public address a plugin may reach, if it is not.
pub fn special_purpose(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            match (a, b, c) {
                _ if v4.is_loopback() => Some("loopback"),
                _ if v4.is_private() => Some("private"),
                _ if v4.is_link_local() => Some("link-local"),
                _ if v4.is_unspecified() || a == 0 => Some("unspecified"),
                _ if v4.is_broadcast() => Some("broadcast"),
                _ if v4.is_multicast() => Some("multicast"),
                _ if v4.is_documentation() => Some("documentation"),
                (100, 64..=127, _) => Some("shared (carrier-grade NAT)"),
                (192, 0, 0) => Some("IETF protocol assignment"),
                (198, 18..=19, _) => Some("benchmarking"),
                (240..=255, _, _) => Some("reserved"),
                _ => None,
            }
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if v6.to_ipv4_mapped().is_some() {
                Some("IPv4-mapped")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("unique-local")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg[..6] == [0; 6] {
                Some("IPv4-compatible")
            } else if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || seg[..2] == [0x64, 0xff9b] {
                Some("NAT64")
            } else if seg[..2] == [0x2001, 0xdb8] {
                Some("documentation")
            } else if seg[0] == 0x2002 || seg[..2] == [0x2001, 0] {
                Some("tunnelled IPv4 (6to4, Teredo)")
            } else {
                None
            }
        }
    }
}

/// The outbound HTTP capability (`wasi:http/outgoing-handler`).
pub(crate) struct Http;

/// One call's HTTP context and the policy its requests pass through.
pub(crate) struct HttpState {
    ctx: WasiHttpCtx,
    policy: OutboundPolicy,
}

impl Capability for Http {
    type State = HttpState;

    fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }

    fn state(who: &Arc<Identity>, services: &Services) -> HttpState {
        HttpState {
            ctx: WasiHttpCtx::new(),
            policy: OutboundPolicy {
                who: who.clone(),
                networks: services.allowed_networks.clone(),
            },
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let (state, table) = self.state_and_table::<Http>();
        WasiHttpCtxView {
            ctx: &mut state.ctx,
            table,
            hooks: &mut state.policy,
        }
    }
}

/// The `wasi:http` hooks of one call: the plugin's grants, and the networks the operator lets
/// plugins reach despite being special-purpose (tests, internal services).
pub struct OutboundPolicy {
    pub(crate) who: Arc<Identity>,
    pub(crate) networks: Arc<Vec<IpNet>>,
}

type Sent = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = Result<(), Error>> + Send>,
            )>,
        > + Send,
>;

impl OutboundPolicy {
    fn deny(&self, host: &str, why: &str) -> Sent {
        self.who.health.record_denied();
        tracing::debug!(plugin = %self.who.name, host, why, "outbound HTTP denied");
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let _ = fut;
        let uri = request.uri();
        let host = uri.host().unwrap_or_default().to_string();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return self.deny(&host, "not http or https"),
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !host_allowed(&self.who.granted.http, https, &host, port) {
            return self.deny(&host, "no grant for this scheme, host and port");
        }
        let networks = self.networks.clone();
        let who = self.who.clone();
        Box::new(async move {
            let addrs = resolve_checked(&host, port, &networks)
                .await
                .inspect_err(|e| {
                    if matches!(e, Error::HttpRequestDenied) {
                        who.health.record_denied();
                        tracing::debug!(plugin = %who.name, host, "outbound HTTP denied: the name resolves to a special-purpose address");
                    }
                })?;
            send_to(request, options, &addrs, &host, https).await
        })
    }
}

/// The addresses to connect to for `host:port`, in the resolver's order, provided none of
/// them is special-purpose outside `networks`.
async fn resolve_checked(
    host: &str,
    port: u16,
    networks: &[IpNet],
) -> Result<Vec<SocketAddr>, Error> {
    let resolved: Vec<SocketAddr> = tokio::time::timeout(
        DNS_TIMEOUT,
        tokio::net::lookup_host((host.trim_end_matches('.'), port)),
    )
    .await
    .map_err(|_| Error::DnsTimeout)?
    .map_err(|e| Error::DnsError {
        rcode: Some(e.to_string()),
        info_code: None,
    })?
    .collect();
    let reachable =
        |ip: IpAddr| special_purpose(ip).is_none() || networks.iter().any(|n| n.contains(&ip));
    if resolved.iter().any(|a| !reachable(a.ip())) {
        return Err(Error::HttpRequestDenied);
    }
    if resolved.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    Ok(resolved)
}

/// Sends `request` over a connection to the first of `addrs` that accepts one (TLS verified
/// against `host` when `https`).
async fn send_to(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    addrs: &[SocketAddr],
    host: &str,
    https: bool,
) -> wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)> {
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut tcp = Err(Error::DestinationNotFound);
    for addr in addrs {
        tcp = match tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err(Error::ConnectionRefused)
            }
            Ok(Err(e)) => Err(Error::Connect(e)),
            Err(_) => Err(Error::ConnectionTimeout),
        };
        if tcp.is_ok() {
            break;
        }
    }
    let tcp = tcp?;
    // The request line carries the path only; the Host header (set by wasi-http) names the host.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    *request.uri_mut() = path.parse().map_err(|_| Error::HttpRequestUriInvalid)?;
    if https {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InternalError(Some(e.to_string())))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(Error::Tls)?;
        exchange(tls, request, connect_timeout, first_byte).await
    } else {
        exchange(tcp, request, connect_timeout, first_byte).await
    }
}

/// One HTTP/1.1 exchange on `io`: the response (its body streams on) and the connection's
/// remaining work.
async fn exchange<IO>(
    io: IO,
    request: http::Request<WasiBody>,
    handshake_timeout: Duration,
    first_byte: Duration,
) -> wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), Error>> + Send>,
)>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = tokio::time::timeout(
        handshake_timeout,
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;
    let mut conn = Box::pin(conn);
    let mut conn_done = false;
    let send = tokio::time::timeout(first_byte, sender.send_request(request));
    tokio::pin!(send);
    // The connection must be driven while the response is awaited; it may also finish
    // first (a server that answers and closes), and then the response is ready.
    let response = tokio::select! {
        biased;
        r = &mut send => r,
        done = &mut conn => {
            conn_done = true;
            done?;
            send.await
        }
    }
    .map_err(|_| Error::ConnectionReadTimeout)??;
    let response = response.map(|body| body.map_err(Error::from).boxed_unsync());
    Ok((
        response,
        Box::new(async move {
            // A finished connection must not be polled again.
            if conn_done {
                Ok(())
            } else {
                conn.await.map_err(Error::from)
            }
        }) as Box<dyn Future<Output = Result<(), Error>> + Send>,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<HostPattern> {
        list.iter()
            .map(|p| HostPattern::try_from(p.to_string()).unwrap())
            .collect()
    }

    #[test]
    fn hosts_match_by_name_scheme_and_port() {
        let allowed = patterns(&[
            "api.stripe.com",
            "*.example.com",
            "http://hooks.test.org:8080",
        ]);
        assert!(host_allowed(&allowed, true, "api.stripe.com", 443));
        assert!(host_allowed(&allowed, true, "API.Stripe.com.", 443));
        assert!(
            !host_allowed(&allowed, false, "api.stripe.com", 80),
            "https only"
        );
        assert!(
            !host_allowed(&allowed, true, "api.stripe.com", 8443),
            "port 443 only"
        );
        assert!(!host_allowed(&allowed, true, "evil-api.stripe.com", 443));
        assert!(!host_allowed(
            &allowed,
            true,
            "api.stripe.com.evil.net",
            443
        ));
        assert!(host_allowed(&allowed, true, "eu.example.com", 443));
        assert!(!host_allowed(&allowed, true, "example.com", 443));
        assert!(!host_allowed(&allowed, true, "badexample.com", 443));
        assert!(host_allowed(&allowed, false, "hooks.test.org", 8080));
        assert!(!host_allowed(&allowed, true, "hooks.test.org", 8080));
        assert!(!host_allowed(&[], true, "api.stripe.com", 443));
    }

    #[test]
    fn grants_name_hosts_never_addresses_or_public_suffixes() {
        for bad in [
            "127.0.0.1",
            "*.0.0.1",
            "10.0.0.1:80",
            "*.com",
            "*.co.uk",
            "https://x.com/v1",
            "ftp://x.com",
            "x.com:0",
        ] {
            assert!(HostPattern::try_from(bad.to_string()).is_err(), "{bad}");
        }
        assert!(
            HostPattern::try_from("*.co.uk".to_string())
                .unwrap_err()
                .contains("public suffix")
        );
        assert!(
            HostPattern::try_from("127.0.0.1".to_string())
                .unwrap_err()
                .contains("IP address")
        );
        for good in [
            "api.example.com",
            "*.example.co.uk",
            "api.example.com:8443",
            "http://localhost.example:8080",
        ] {
            assert!(HostPattern::try_from(good.to_string()).is_ok(), "{good}");
        }
    }

    #[test]
    fn special_purpose_addresses_are_named() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for (addr, why) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("::1", "loopback"),
            ("fd00::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "IPv4-mapped"),
            ("::ffff:8.8.8.8", "IPv4-mapped"),
            ("64:ff9b::a00:1", "NAT64"),
            ("ff02::1", "multicast"),
        ] {
            assert_eq!(special_purpose(ip(addr)), Some(why), "{addr}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"] {
            assert_eq!(special_purpose(ip(public)), None, "{public}");
        }
    }
}
