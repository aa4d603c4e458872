//! The `penpal` binary: logging, the runtime, and the command line in [`penpal::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PENPAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into files or log collectors.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
    system.block_on(penpal::cli::main())
}
