//! Outbound HTTP for plugins: `wasi:http/outgoing-handler`, allowed only to the hosts a plugin
//! both requested in its manifest and was granted at install.
//!
//! The check runs on the request the host is about to send — after the guest has built it,
//! before any connection is made — so no byte leaves for a host outside the list, whatever
//! the guest put in its headers.

use std::future::Future;
use std::sync::Arc;

use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::capabilities::Identity;
use super::manifest::HostPattern;

/// Whether `host` (from a request's URI) is one of `allowed`. `*.example.com` matches every
/// subdomain of example.com, not example.com itself.
pub fn host_allowed(allowed: &[HostPattern], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    allowed
        .iter()
        .any(|pattern| match pattern.0.strip_prefix("*.") {
            Some(domain) => host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1),
            None => pattern.0 == host,
        })
}

/// The `wasi:http` hooks of one call: the default sender, behind the plugin's host list.
pub struct OutboundPolicy {
    pub(crate) who: Arc<Identity>,
}

type Sent = Box<
    dyn Future<
            Output = wasmtime_wasi_http::Result<(
                http::Response<WasiBody>,
                Box<dyn Future<Output = Result<(), Error>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for OutboundPolicy {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let host = request.uri().host().unwrap_or_default().to_string();
        if !host_allowed(&self.who.granted.http, &host) {
            self.who.health.record_denied();
            tracing::debug!(plugin = %self.who.name, host, "outbound HTTP denied");
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let _ = fut;
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), Error>> + Send>,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<HostPattern> {
        list.iter().map(|p| HostPattern(p.to_string())).collect()
    }

    #[test]
    fn hosts_match_exactly_or_by_subdomain_wildcard() {
        let allowed = patterns(&["api.stripe.com", "*.example.com"]);
        assert!(host_allowed(&allowed, "api.stripe.com"));
        assert!(host_allowed(&allowed, "API.Stripe.com."));
        assert!(!host_allowed(&allowed, "evil-api.stripe.com"));
        assert!(!host_allowed(&allowed, "api.stripe.com.evil.net"));
        assert!(host_allowed(&allowed, "eu.example.com"));
        assert!(!host_allowed(&allowed, "example.com"));
        assert!(!host_allowed(&allowed, "badexample.com"));
        assert!(!host_allowed(&[], "api.stripe.com"));
    }
}
