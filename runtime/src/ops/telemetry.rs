//! Logs and traces: the `tracing` subscriber the binary runs under — human-readable lines on
//! stderr (filtered by `PENPAL_LOG`) and, when an OTLP endpoint is configured, every span
//! exported to it over OTLP/HTTP (protobuf), batched on a thread of its own so a slow
//! collector never slows a request.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the trace exporter alive; dropping it sends what is still buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("penpal: traces not all sent: {e}");
        }
    }
}

/// `endpoint` as the traces URL: a collector's base (`http://host:4318`) gets `/v1/traces`.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// Installs the subscriber. Call once, outside any async runtime (the exporter's blocking
/// HTTP client must not be made or dropped inside one).
pub fn init(otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    // Every HTTPS client in the process (this exporter's among them) uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // An empty value (a copied `.env.example`) means no export.
    let otlp_endpoint = otlp_endpoint.map(str::trim).filter(|e| !e.is_empty());
    let filter = tracing_subscriber::EnvFilter::try_from_env("PENPAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into files or log collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let provider = match otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(traces_url(endpoint))
                .build()
                .map_err(|e| anyhow::anyhow!("cannot set up the OTLP exporter: {e}"))?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name("penpal")
                .build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        }
        None => None,
    };
    // Each layer filters for itself: quiet logs must not starve the traces, and the traces
    // carry penpal's own spans, not every dependency's.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("penpal"))
            .with_filter(tracing_subscriber::EnvFilter::new("penpal=info"))
    });
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    if let Some(endpoint) = otlp_endpoint {
        tracing::info!(endpoint = %traces_url(endpoint), "exporting traces over OTLP");
    }
    Ok(Telemetry { provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_collector_base_gets_the_traces_path_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
