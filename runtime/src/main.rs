//! The `penpal` binary: logging and traces, the runtime, and the command line in
//! [`penpal::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = penpal::cli::parse();
    // Outside the runtime: the trace exporter keeps a blocking client of its own.
    let _telemetry = match penpal::ops::telemetry::init(cli.otlp_endpoint.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("penpal: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    // Actors live on the system's arbiter; everything else (HTTP, plugin calls) runs on the
    // multi-threaded Tokio runtime underneath it.
    let system = actix_rt::System::with_tokio_rt(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| {
                eprintln!("penpal: cannot start the async runtime: {e}");
                std::process::exit(1)
            })
    });
    system.block_on(penpal::cli::main(cli))
}
