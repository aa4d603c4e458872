//! The `penpal` command line: `serve`, `plugin check|install|sign|verify`, `key generate`,
//! `plugins`, and the simulators.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::actors::supervisor::GRANTS_FILE;
use crate::auth::Role;
use crate::auth::admin;
use crate::config::{DbArgs, PluginArgs, ServeArgs};
use crate::marketplace::signature::{PublicKey, Signature, SigningKey};
use crate::plugins::check::{self, CheckReport};
use crate::plugins::manifest::{HostPattern, Kind, MANIFEST_FILE, SecretName};
use crate::plugins::{Capabilities, CompileCache, Package, PluginHost, Services};

/// Penpal: practise a language with an AI tutor.
#[derive(Debug, Parser)]
#[command(name = "penpal", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Export traces to this OpenTelemetry collector over OTLP/HTTP (for example
    /// `http://127.0.0.1:4318`); unset, spans stay in the log.
    #[arg(long, global = true, env = "PENPAL_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Work with one plugin package.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Publishers' signing keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Run the scripted OpenAI-compatible server (tests and offline development; not a model).
    ScriptedLlm {
        /// Address to listen on.
        #[arg(
            long,
            env = "PENPAL_SCRIPTED_LLM_LISTEN",
            default_value = "127.0.0.1:11435"
        )]
        listen: std::net::SocketAddr,
        /// Milliseconds before the first byte of every answer.
        #[arg(long, default_value_t = 0)]
        first_byte_ms: u64,
        /// Milliseconds between streamed chunks.
        #[arg(long, default_value_t = 0)]
        chunk_ms: u64,
    },
    /// Run an LTI 1.3 platform simulator (tests and offline development): a Moodle, Canvas or
    /// Blackboard look-alike with its own keys. It prints what to register in penpal.
    SimulateLms {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:12113")]
        listen: std::net::SocketAddr,
        /// Which platform it plays.
        #[arg(long, value_enum, default_value = "moodle")]
        profile: crate::lms::simulator::Profile,
        /// Penpal's client id on it.
        #[arg(long, default_value = "penpal-tool")]
        client_id: String,
        /// Where penpal runs (its login and launch URLs are under it).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        penpal: String,
    },
    /// Run an OpenID Connect identity provider simulator (tests and offline development), for a
    /// school's own sign-in. It prints what to set in penpal and who can sign in.
    SimulateIdp {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:12114")]
        listen: std::net::SocketAddr,
        /// Penpal's client id on it.
        #[arg(long, default_value = "penpal")]
        client_id: String,
        /// Penpal's client secret on it.
        #[arg(long, default_value = "penpal-simulator-secret")]
        client_secret: String,
        /// Where penpal runs (its redirect URI is under it).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        penpal: String,
        /// The address domain of its people.
        #[arg(long, default_value = "school.example")]
        domain: String,
    },
    /// Run the Paddle Billing simulator (tests and offline development; charges nothing).
    /// Point the `paddle` plugin's `api_base` setting at it and grant its host; it signs its
    /// webhooks with `--secret`, which the plugin's `webhook_secret` must match.
    SimulatePaddle {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:12112")]
        listen: std::net::SocketAddr,
        /// Where to send webhooks: penpal's `/v1/billing/webhooks/paddle`.
        #[arg(
            long,
            default_value = "http://127.0.0.1:8080/v1/billing/webhooks/paddle"
        )]
        webhook: String,
        /// The API key the plugin must send.
        #[arg(long, env = "PENPAL_SIM_PADDLE_KEY", default_value = "pdl_test_penpal")]
        api_key: String,
        /// The notification destination's secret key.
        #[arg(
            long,
            env = "PENPAL_SIM_PADDLE_SECRET",
            default_value = "pdl_ntfset_penpal_simulator"
        )]
        secret: String,
    },
    /// Run the Stripe simulator (tests and offline development; charges nothing). Point the
    /// `stripe` plugin's `api_base` setting at it and grant its host; it signs its webhooks
    /// with `--secret`, which the plugin's `webhook_secret` must match.
    SimulateStripe {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:12111")]
        listen: std::net::SocketAddr,
        /// Where to send webhooks: penpal's `/v1/billing/webhooks/stripe`.
        #[arg(
            long,
            default_value = "http://127.0.0.1:8080/v1/billing/webhooks/stripe"
        )]
        webhook: String,
        /// The API key the plugin must send.
        #[arg(long, env = "PENPAL_SIM_STRIPE_KEY", default_value = "sk_test_penpal")]
        api_key: String,
        /// The webhook signing secret.
        #[arg(
            long,
            env = "PENPAL_SIM_STRIPE_SECRET",
            default_value = "whsec_penpal_simulator"
        )]
        secret: String,
    },
    /// Operator tasks on accounts.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// List installed plugins with version, kind and health.
    Plugins {
        #[command(flatten)]
        args: PluginArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Give an account a role (operator, school-admin, teacher); its sessions end, and its
    /// next sign-in carries the role. With the embedded database, stop penpal first.
    GrantRole {
        /// The account's email.
        email: String,
        /// The role.
        role: Role,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Take a role back: the account becomes a learner, and its sessions end.
    RevokeRole {
        /// The account's email.
        email: String,
        /// The role it has.
        role: Role,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make an ed25519 key to sign plugin packages with; prints the public key to register.
    Generate {
        /// Where to write the private key (readable by its owner only; never overwritten).
        #[arg(long, default_value = "penpal-publisher.key")]
        out: PathBuf,
    },
}

/// The language a new plugin is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Lang {
    /// Rust, with the penpal-host-api SDK.
    Rust,
    /// Python, built with componentize-py.
    Python,
    /// JavaScript, built with componentize-js.
    Js,
}

/// The kind of a new plugin (its WIT world).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NewKind {
    /// A tutor personality.
    Tutor,
    /// A payment provider.
    PaymentProvider,
    /// A notifier.
    Notifier,
    /// An LMS integration.
    Lms,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Make a new plugin project that builds and checks out of the box.
    New {
        /// The plugin's name (2–64 of a-z, 0-9 and -), also its directory's.
        name: String,
        /// What it is.
        #[arg(long, value_enum)]
        kind: NewKind,
        /// What it is written in.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// Your publisher name (what the registry knows you as).
        #[arg(long, default_value = "your-publisher-name")]
        publisher: String,
        /// Where to make its directory.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Build a plugin project for wasm32-wasip2, put the component beside its manifest and
    /// check it.
    Build {
        /// The project's directory.
        #[arg(default_value = ".")]
        path: PathBuf,
    },
    /// Sign a package: writes penpal-plugin.sig beside its manifest, and NAME-VERSION.penpal
    /// (the archive a registry takes: the signed files, README.md and screenshots/).
    Sign {
        /// A package directory, its penpal-plugin.toml, or its .wasm.
        path: PathBuf,
        /// The private key file (`penpal key generate` makes one).
        #[arg(long)]
        key: PathBuf,
    },
    /// Publish a signed package to a registry (a penpal server). The publish token comes from
    /// `PENPAL_TOKEN`: make one on your publisher page.
    Publish {
        /// The NAME-VERSION.penpal archive `penpal plugin sign` wrote, or the package directory
        /// (or manifest) it was signed from.
        path: PathBuf,
        /// The registry: a penpal server's address, such as https://penpal.example.
        #[arg(long, env = "PENPAL_REGISTRY")]
        registry: String,
    },
    /// Check a package's signature against a publisher's public key.
    Verify {
        /// A .penpal archive, a package directory, its penpal-plugin.toml, or its .wasm.
        path: PathBuf,
        /// The publisher's public key (base64, as `penpal key generate` prints it).
        #[arg(long = "public-key")]
        public_key: String,
    },
    /// Validate a plugin's manifest and component, and show what it asks for.
    Check {
        /// A package directory, its penpal-plugin.toml, or its .wasm.
        path: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install a plugin package; a running server starts using it within seconds.
    Install {
        /// A package directory, its penpal-plugin.toml, or its .wasm.
        path: PathBuf,
        /// Grant a requested capability: kv, llm, secret:NAME, http:HOST, or all.
        #[arg(long = "grant", value_name = "CAPABILITY")]
        grants: Vec<String>,
        #[command(flatten)]
        args: PluginArgs,
    },
}

/// Parses the command line (exits with clap's message when it is wrong).
pub fn parse() -> Cli {
    Cli::parse()
}

/// Runs a parsed command line.
pub async fn main(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Plugin(PluginCommand::Check { path, json }) => check_command(&path, json),
        Command::Plugin(PluginCommand::Sign { path, key }) => sign_command(&path, &key),
        Command::Plugin(PluginCommand::New {
            name,
            kind,
            lang,
            publisher,
            dir,
        }) => new_command(&name, kind, lang, &publisher, &dir),
        Command::Plugin(PluginCommand::Build { path }) => build_command(&path),
        Command::Plugin(PluginCommand::Publish { path, registry }) => {
            publish_command(&path, &registry).await
        }
        Command::Plugin(PluginCommand::Verify { path, public_key }) => {
            verify_command(&path, &public_key)
        }
        Command::Key(KeyCommand::Generate { out }) => generate_key(&out),
        Command::Plugin(PluginCommand::Install { path, grants, args }) => {
            install_command(&path, &grants, &args)
        }
        Command::Plugins { args, json } => list_command(&args, json),
        Command::Admin(command) => admin_command(command).await,
        Command::ScriptedLlm {
            listen,
            first_byte_ms,
            chunk_ms,
        } => scripted_llm(listen, first_byte_ms, chunk_ms).await,
        Command::SimulateStripe {
            listen,
            webhook,
            api_key,
            secret,
        } => {
            simulate(listen, "Stripe", &webhook, |l| {
                crate::billing::simulator::Simulator::start_on(l, &api_key, &secret, &webhook)
                    .map(|s| s.url())
            })
            .await
        }
        Command::SimulateLms {
            listen,
            profile,
            client_id,
            penpal,
        } => simulate_lms(listen, profile, &client_id, &penpal).await,
        Command::SimulateIdp {
            listen,
            client_id,
            client_secret,
            penpal,
            domain,
        } => simulate_idp(listen, &client_id, &client_secret, &penpal, &domain).await,
        Command::SimulatePaddle {
            listen,
            webhook,
            api_key,
            secret,
        } => {
            simulate(listen, "Paddle", &webhook, |l| {
                crate::billing::simulator::paddle::Paddle::start_on(l, &api_key, &secret, &webhook)
                    .map(|s| s.url())
            })
            .await
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("penpal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a payment-provider simulator on `listen` until interrupted; `start` starts it and
/// gives its URL.
async fn simulate(
    listen: std::net::SocketAddr,
    provider: &str,
    webhook: &str,
    start: impl FnOnce(tokio::net::TcpListener) -> std::io::Result<String>,
) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e} (set --listen)"))?;
    let url = start(listener)?;
    println!("{provider} simulator at {url} (webhooks to {webhook}); it charges nothing");
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}

/// Runs an LTI platform simulator until interrupted, printing what to register in penpal.
async fn simulate_lms(
    listen: std::net::SocketAddr,
    profile: crate::lms::simulator::Profile,
    client_id: &str,
    penpal: &str,
) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e} (set --listen)"))?;
    let sim = crate::lms::simulator::Platform::start_on(listener, profile, client_id)?;
    let penpal = penpal.trim_end_matches('/');
    sim.register_tool(
        &format!("{penpal}/lti/login"),
        &format!("{penpal}/lti/launch"),
    );
    println!(
        "{} simulator; register it in penpal (POST /v1/schools/{{school}}/lti/platforms):\n{}",
        profile.plugin(),
        serde_json::to_string_pretty(&serde_json::json!({
            "name": format!("{} (simulator)", profile.plugin()), "plugin": profile.plugin(),
            "issuer": sim.issuer(), "client_id": sim.client_id(), "deployment_ids": [sim.deployment_id()],
            "auth_url": sim.auth_url(), "token_url": sim.token_url(), "jwks_url": sim.jwks_url(),
        }))?
    );
    let teacher = sim.user(1, "Claire", "Dupont", true);
    let course = crate::lms::simulator::Course {
        id: "course-1".into(),
        title: "Français B1".into(),
        custom: serde_json::json!({"penpal_language": "fr", "penpal_level": "B1"}),
    };
    println!(
        "a teacher's launch (open in a browser; penpal must allow 127.0.0.0/8 in PENPAL_PLUGIN_ALLOW_NETWORKS):\n{}",
        sim.begin(
            &teacher,
            &course,
            crate::lms::simulator::Message::ResourceLink {
                id: "link-1".into(),
                assignment: None
            }
        )
    );
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}

async fn simulate_idp(
    listen: std::net::SocketAddr,
    client_id: &str,
    client_secret: &str,
    penpal: &str,
    domain: &str,
) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e} (set --listen)"))?;
    let idp = crate::lms::sso::simulator::Idp::start_on(listener, client_id, client_secret)?;
    idp.allow_redirect(&format!("{}/sso/callback", penpal.trim_end_matches('/')));
    for (n, name) in ["Ada Lovelace", "Alan Turing"].into_iter().enumerate() {
        let first = name.split(' ').next().unwrap_or(name).to_lowercase();
        idp.add_person(
            &format!("person-{}", n + 1),
            &format!("{first}@{domain}"),
            name,
            true,
        );
    }
    println!(
        "identity provider simulator; a school admin sets it in penpal (PUT /v1/schools/{{school}}/sso; \
         penpal must allow 127.0.0.0/8 in PENPAL_PLUGIN_ALLOW_NETWORKS):\n{}\nwho can sign in: ada@{domain}, alan@{domain}",
        serde_json::to_string_pretty(&serde_json::json!({
            "issuer": idp.issuer(), "client_id": client_id, "client_secret": client_secret,
            "email_domains": [domain],
        }))?
    );
    tokio::signal::ctrl_c().await?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on {}: {e} (set --listen or PENPAL_LISTEN)",
                args.listen
            )
        })?;
    let shutdown = async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    };
    crate::server::run(listener, args, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

async fn admin_command(command: AdminCommand) -> anyhow::Result<ExitCode> {
    let (AdminCommand::GrantRole { db, .. } | AdminCommand::RevokeRole { db, .. }) = &command;
    let db = db.open().await?;
    match command {
        AdminCommand::GrantRole { email, role, .. } => {
            let had = admin::grant_role(&db, &email, role).await?;
            println!(
                "{email} is now a {role} (was a {had}); their sessions have ended, so they sign in again to use it"
            );
        }
        AdminCommand::RevokeRole { email, role, .. } => {
            admin::revoke_role(&db, &email, role).await?;
            println!("{email} is no longer a {role} (now a learner); their sessions have ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn scripted_llm(
    listen: std::net::SocketAddr,
    first_byte_ms: u64,
    chunk_ms: u64,
) -> anyhow::Result<ExitCode> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let script = crate::llm::scripted::Script {
        first_byte: std::time::Duration::from_millis(first_byte_ms),
        between_chunks: std::time::Duration::from_millis(chunk_ms),
    };
    eprintln!(
        "penpal scripted LLM (not a real model) at http://{}/v1 — model `{}`",
        listener.local_addr()?,
        crate::llm::scripted::MODEL
    );
    axum::serve(
        crate::llm::scripted::nodelay(listener),
        crate::llm::scripted::router(script),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(ExitCode::SUCCESS)
}

/// A host for one-off commands: default limits, the data directory's compile cache.
fn tool_host(args: Option<&PluginArgs>) -> anyhow::Result<PluginHost> {
    let cache = args.map_or_else(CompileCache::disabled, |a| CompileCache::at(a.cache_dir()));
    let limits = args.map(PluginArgs::limits).unwrap_or_default();
    PluginHost::new(limits, cache, Services::default())
        .map_err(|e| anyhow::anyhow!("cannot start the plugin engine: {e:#}"))
}

/// Where `penpal plugin check` keeps compiled components between runs: the user's cache
/// directory (`$XDG_CACHE_HOME/penpal` or `~/.cache/penpal`), so a second check is instant.
fn author_cache() -> CompileCache {
    let Some(dir) = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("penpal"))
    else {
        return CompileCache::disabled();
    };
    // The cache's key sits beside the compiled directory: both in a directory of the user's
    // own (a cache it cannot trust is not used, and the check just compiles).
    let mut made = std::fs::DirBuilder::new();
    made.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut made, 0o700);
    match made.create(&dir) {
        Ok(()) => CompileCache::at(dir.join("compiled")),
        Err(_) => CompileCache::disabled(),
    }
}

/// Checks a package; `Err` when it cannot be read at all, a report with problems otherwise.
/// What the component's bytes say is checked first: a wrong world or a memory over the cap is
/// reported in milliseconds, before the seconds compiling takes.
fn check_package(host: &PluginHost, path: &Path) -> anyhow::Result<(Package, CheckReport)> {
    let package = Package::open(path)?;
    let outline = check::outline(&package.wasm).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut early = check::precheck(&outline, &package.manifest);
    early.initial_memory = outline.initial_memory;
    let cap = host.limits().memory_bytes as u64;
    if outline.initial_memory > cap {
        early.problems.push(format!(
            "the component starts with {:.1} MiB of memory, over this server's {} MiB cap \
             (raise PENPAL_PLUGIN_MEMORY_MIB, or shrink the component's initial memory)",
            outline.initial_memory as f64 / 1048576.0,
            cap >> 20
        ));
    }
    if !early.problems.is_empty() {
        return Ok((package, early));
    }
    // Compiled once: inspection and linking share the component.
    let (component, cache) = host.compile(&package.wasm)?;
    let mut report = check::inspect(host.engine(), &component, &package.manifest);
    report.initial_memory = outline.initial_memory;
    if report.problems.is_empty()
        && let Err(e) = host.link(&package, &component, cache, &Capabilities::default(), None)
    {
        report.problems.push(e.to_string());
    }
    Ok((package, report))
}

fn generate_key(out: &Path) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let key = SigningKey::generate()?;
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    let mut f = file.open(out).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
            "{} exists already: penpal never overwrites a key (choose another path with --out)",
            out.display()
        ),
        _ => anyhow::anyhow!("cannot write {}: {e}", out.display()),
    })?;
    f.write_all(key.to_pem().as_bytes())?;
    f.sync_all()?;
    let public = key.public();
    println!(
        "private key written to {} (keep it secret; back it up)",
        out.display()
    );
    println!("public key   {}", public.to_base64());
    println!("fingerprint  {}", public.fingerprint());
    println!("register the public key with your publisher account before you publish");
    Ok(ExitCode::SUCCESS)
}

/// A package's manifest bytes (exactly as on disk) and component bytes.
fn signed_parts(path: &Path) -> anyhow::Result<(Package, Vec<u8>)> {
    let package = Package::open(path)?;
    let manifest = std::fs::read(&package.manifest_path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", package.manifest_path.display()))?;
    Ok((package, manifest))
}

fn signature_path(package: &Package) -> PathBuf {
    package
        .manifest_path
        .with_file_name(crate::marketplace::signature::SIGNATURE_FILE)
}

fn new_command(
    name: &str,
    kind: NewKind,
    lang: Lang,
    publisher: &str,
    parent: &Path,
) -> anyhow::Result<ExitCode> {
    use crate::plugins::manifest::PluginName;
    PluginName::try_from(name.to_string()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let kind = match kind {
        NewKind::Tutor => Kind::Tutor,
        NewKind::PaymentProvider => Kind::PaymentProvider,
        NewKind::Notifier => Kind::Notifier,
        NewKind::Lms => Kind::Lms,
    };
    if kind != Kind::Tutor && lang != Lang::Rust {
        let language = match lang {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        };
        anyhow::bail!(
            "penpal plugin new has no {kind} template in {language} yet (it makes tutors in \
             Rust, Python and JavaScript, and every kind in Rust): use --lang rust, or start \
             from the first-party {kind} plugins in the penpal repository's plugins/ directory"
        );
    }
    let dir = parent.join(name);
    if dir.exists() {
        anyhow::bail!(
            "{} exists already: choose another name or --dir",
            dir.display()
        );
    }
    use crate::marketplace::templates;
    let (files, made, next) = match lang {
        Lang::Rust => {
            let sdk = templates::sdk().ok_or_else(|| {
                anyhow::anyhow!(
                    "cannot find the Rust SDK: set PENPAL_SDK to the host-api directory of a \
                     penpal checkout"
                )
            })?;
            let made = format!("a Rust {kind} against the SDK at {}", sdk.display());
            (templates::rust(kind, name, publisher, &sdk), made, "")
        }
        Lang::Python => (
            templates::python_tutor(name, publisher),
            "a Python tutor".to_string(),
            "pip install -r requirements.txt (componentize-py), then ",
        ),
        Lang::Js => (
            templates::js_tutor(name, publisher),
            "a JavaScript tutor".to_string(),
            "",
        ),
    };
    for (file, text) in files {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    println!(
        "made {} ({made})\nnext: {next}penpal plugin build {}",
        dir.display(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn build_command(dir: &Path) -> anyhow::Result<ExitCode> {
    let manifest = crate::plugins::Manifest::load(&dir.join(MANIFEST_FILE))?;
    let component = dir.join(manifest.component_file());
    let world = manifest.plugin.kind.to_string();
    if dir.join("Cargo.toml").is_file() {
        build_rust(dir, &component)?;
    } else if dir.join("app.py").is_file() {
        // componentize-py reads the module `app` from the project directory.
        let mut cmd = std::process::Command::new("componentize-py");
        cmd.current_dir(dir)
            .args(["-d", "wit", "-w", &world, "componentize", "app", "-o"])
            .arg(&component);
        run_tool(
            cmd,
            "componentize-py",
            "install it with `pip install -r requirements.txt` (Python 3.10 or later)",
        )?;
    } else if dir.join("app.js").is_file() {
        let bin = dir.join("node_modules/.bin/componentize-js");
        if !bin.is_file() {
            println!("installing componentize-js with npm (once per project)");
            let mut npm = std::process::Command::new("npm");
            npm.current_dir(dir)
                .args(["install", "--no-audit", "--no-fund"]);
            run_tool(npm, "npm", "install Node.js 18 or later, which brings npm")?;
        }
        let mut cmd = std::process::Command::new(&bin);
        cmd.current_dir(dir)
            .args(["app.js", "--wit", "wit", "--world-name", &world, "-o"])
            .arg(&component);
        run_tool(
            cmd,
            "componentize-js",
            "run `npm install` in the project to install it",
        )?;
    } else {
        anyhow::bail!(
            "{} has no Cargo.toml, app.py or app.js: penpal plugin build builds Rust, Python and \
             JavaScript projects as `penpal plugin new` makes them",
            dir.display()
        );
    }
    println!(
        "built {} ({} KiB)",
        component.display(),
        std::fs::metadata(&component)?.len() >> 10
    );
    check_command(dir, false)
}

/// Runs a build tool, with what to do when it is missing or fails.
fn run_tool(mut cmd: std::process::Command, tool: &str, install: &str) -> anyhow::Result<()> {
    let status = cmd.status().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            anyhow::anyhow!("cannot find {tool}: {install}")
        } else {
            anyhow::anyhow!("cannot run {tool}: {e}")
        }
    })?;
    if !status.success() {
        anyhow::bail!("{tool} could not build it (its messages are above)");
    }
    Ok(())
}

/// Builds a Rust plugin with cargo for wasm32-wasip2 and copies the component to `component`.
fn build_rust(dir: &Path, component: &Path) -> anyhow::Result<()> {
    let cargo_toml = dir.join("Cargo.toml");
    let krate: toml::Value = toml::from_str(&std::fs::read_to_string(&cargo_toml)?)?;
    let crate_name = krate
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| anyhow::anyhow!("{} names no [package]", cargo_toml.display()))?
        .replace('-', "_");
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    let mut cmd = std::process::Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(&cargo_toml)
    .arg("--target-dir")
    .arg(&target_dir);
    run_tool(cmd, "cargo", "install Rust from rustup.rs").map_err(|e| {
        anyhow::anyhow!(
            "{e}; if it says the target is missing, run `rustup target add wasm32-wasip2`"
        )
    })?;
    let built = target_dir
        .join("wasm32-wasip2/release")
        .join(format!("{crate_name}.wasm"));
    std::fs::copy(&built, component)
        .map_err(|e| anyhow::anyhow!("cannot copy {}: {e}", built.display()))?;
    Ok(())
}

/// The archive at `path`, or the one `penpal plugin sign` wrote beside the package there.
fn archive_at(path: &Path) -> anyhow::Result<PathBuf> {
    if path.extension().is_some_and(|e| e == "penpal") {
        return Ok(path.to_path_buf());
    }
    let package = Package::open(path)?;
    let m = &package.manifest.plugin;
    let dir = package.manifest_path.parent().unwrap_or(Path::new("."));
    let archive = dir.join(format!("{}-{}.penpal", m.name, m.version));
    if !archive.is_file() {
        anyhow::bail!(
            "{} is not signed yet: run `penpal plugin sign {} --key YOUR_KEY` first",
            archive.display(),
            path.display()
        );
    }
    Ok(archive)
}

async fn publish_command(path: &Path, registry: &str) -> anyhow::Result<ExitCode> {
    let token = std::env::var("PENPAL_TOKEN").map_err(|_| {
        anyhow::anyhow!(
            "set PENPAL_TOKEN to a publish token: make one on your publisher page (or POST /v1/publishers/YOU/tokens)"
        )
    })?;
    let archive = archive_at(path)?;
    let bytes = std::fs::read(&archive)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", archive.display()))?;
    // The registry's own rules first, here, where a refusal is cheap to fix.
    crate::marketplace::archive::unpack(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", archive.display()))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("{}/v1/marketplace/packages", registry.trim_end_matches('/'));
    let resp = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()?
        .post(&url)
        .bearer_auth(token.trim())
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the registry at {registry}: {e}"))?;
    let status = resp.status();
    let body: serde_json::Value = serde_json::from_str(&resp.text().await.unwrap_or_default())
        .unwrap_or(serde_json::Value::Null);
    if status.as_u16() == 201 {
        println!(
            "published {} {} to {registry}\n  sha256:{}\n  signed by key {}\n  page: {}/v1/marketplace/packages/{}",
            body["name"].as_str().unwrap_or_default(),
            body["version"].as_str().unwrap_or_default(),
            body["digest"].as_str().unwrap_or_default(),
            body["signed_by"].as_str().unwrap_or_default(),
            registry.trim_end_matches('/'),
            body["name"].as_str().unwrap_or_default(),
        );
        return Ok(ExitCode::SUCCESS);
    }
    let message = body["error"]["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!("the registry answered {status}: is {registry} a penpal server?")
        });
    let hint = match status.as_u16() {
        401 => " (check PENPAL_TOKEN: tokens revoked on the publisher page stop working)",
        _ => "",
    };
    anyhow::bail!(
        "the registry refused {}: {message}{hint}",
        archive.display()
    )
}

fn sign_command(path: &Path, key: &Path) -> anyhow::Result<ExitCode> {
    use crate::marketplace::archive::{self, Archive};
    let pem = std::fs::read_to_string(key).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the key {}: {e} (make one with `penpal key generate`)",
            key.display()
        )
    })?;
    let key = SigningKey::from_pem(&pem)
        .map_err(|e| anyhow::anyhow!("{e}: give the file `penpal key generate` wrote"))?;
    let (package, manifest) = signed_parts(path)?;
    let sig = key.sign(&manifest, &package.wasm);
    let out = signature_path(&package);
    std::fs::write(&out, sig.to_toml())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    // The archive a registry takes: the signed files, the README and screenshots beside them.
    let dir = package.manifest_path.parent().unwrap_or(Path::new("."));
    let readme = std::fs::read_to_string(dir.join(archive::README)).ok();
    let mut screenshots = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir.join("screenshots")) {
        for e in entries.flatten() {
            screenshots.push((
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path())?,
            ));
        }
        screenshots.sort();
    }
    let component_name = package
        .manifest
        .plugin
        .component
        .clone()
        .unwrap_or_else(|| "plugin.wasm".into());
    let packed = archive::pack(&Archive {
        manifest,
        component: (component_name, package.wasm.clone()),
        signature: sig.to_toml().into_bytes(),
        readme,
        screenshots,
    })?;
    // The archive is read back under the registry's rules, so a package that would be
    // refused at publish is refused here, where it can be fixed.
    archive::unpack(&packed)?;
    let m = &package.manifest.plugin;
    let archive_path = dir.join(format!("{}-{}.penpal", m.name, m.version));
    std::fs::write(&archive_path, &packed)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", archive_path.display()))?;
    println!(
        "signed {} {} with key {}: {} and {}",
        m.name,
        m.version,
        sig.key,
        out.display(),
        archive_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify_command(path: &Path, public_key: &str) -> anyhow::Result<ExitCode> {
    let key = PublicKey::parse(public_key)?;
    // An archive, or a package directory with its signature file.
    let (name, manifest, component, text) = if path.extension().is_some_and(|e| e == "penpal") {
        let bytes = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let a = crate::marketplace::archive::unpack(&bytes)?;
        let text = String::from_utf8_lossy(&a.signature).into_owned();
        (path.display().to_string(), a.manifest, a.component.1, text)
    } else {
        let (package, manifest) = signed_parts(path)?;
        let file = signature_path(&package);
        let text = std::fs::read_to_string(&file).map_err(|e| {
            anyhow::anyhow!(
                "cannot read {}: {e} (sign the package with `penpal plugin sign`)",
                file.display()
            )
        })?;
        let m = &package.manifest.plugin;
        (
            format!("{} {}", m.name, m.version),
            manifest,
            package.wasm,
            text,
        )
    };
    let sig = Signature::parse(&text)?;
    match sig.verify(&manifest, &component, &key) {
        Ok(()) => {
            println!("{name}: signed by key {}", sig.key);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("penpal: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn check_command(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let host = PluginHost::new(
        crate::plugins::Limits::default(),
        author_cache(),
        Services::default(),
    )
    .map_err(|e| anyhow::anyhow!("cannot start the plugin engine: {e:#}"))?;
    let (package, report) = check_package(&host, path)?;
    let m = &package.manifest;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "manifest": m, "report": report, "ok": report.problems.is_empty()
            }))?
        );
    } else {
        println!(
            "{} {} — {} plugin for penpal:plugin@{}, by {}",
            m.plugin.name, m.plugin.version, m.plugin.kind, m.plugin.wit, m.plugin.publisher
        );
        println!("  {}", m.plugin.description);
        if let Some(t) = &m.tutor {
            let langs: Vec<&str> = t.languages.0.iter().map(|l| l.0.as_str()).collect();
            println!("  tutor      {}", t.display_name);
            println!("  languages  {}", langs.join(", "));
            let modes: Vec<String> = t.modes.0.iter().map(|m| m.to_string()).collect();
            let levels: Vec<String> = t.levels.0.iter().map(|l| l.to_string()).collect();
            println!("  modes      {}", modes.join(", "));
            println!("  levels     {}", levels.join(", "));
        }
        if let Some(p) = &m.payment_provider {
            let currencies: Vec<&str> = p.currencies.0.iter().map(|c| c.0.as_str()).collect();
            println!("  provider   {}", p.display_name);
            println!("  currencies {}", currencies.join(", "));
        }
        if let Some(n) = &m.notifier {
            println!("  notifier   {} ({} channel)", n.display_name, n.channel);
        }
        if let Some(l) = &m.lms {
            println!(
                "  lms        {} (platform `{}`)",
                l.display_name, l.platform
            );
        }
        println!("  asks for   {}", m.capabilities.describe());
        if let Some((kind, v)) = &report.world {
            println!("  exports    the {kind} world, penpal:plugin@{v}");
        }
        if let Some(id) = &report.runs_as {
            let newest = crate::plugins::WitVersion::CURRENT;
            if id.wit < newest {
                println!(
                    "  wit        {}: still runs here; the current SDK targets {newest}",
                    id.wit
                );
            } else {
                println!("  wit        {} (current)", id.wit);
            }
        }
        println!("  imports    {}", report.imports.join(", "));
        println!(
            "  memory     starts at {:.1} MiB (calls may use up to {} MiB)",
            report.initial_memory as f64 / 1048576.0,
            host.limits().memory_bytes >> 20
        );
        for n in &report.notes {
            println!("note: {n}");
        }
        for w in &report.warnings {
            println!("warning: {w}");
        }
        for p in &report.problems {
            println!("error: {p}");
        }
        if report.problems.is_empty() {
            println!("ok");
        }
    }
    Ok(if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Reads `--grant` values against what the manifest requests.
pub fn parse_grants(requested: &Capabilities, grants: &[String]) -> anyhow::Result<Capabilities> {
    let mut out = Capabilities::default();
    for g in grants {
        match g.as_str() {
            "all" => {
                // "All" cannot choose hosts for a plugin that leaves them to the operator.
                out = requested.clone();
                out.http.retain(|h| !h.is_operator());
            }
            "kv" => out.kv = true,
            "llm" => out.llm = true,
            other => {
                if let Some(name) = other.strip_prefix("secret:") {
                    out.secrets
                        .push(SecretName::try_from(name.to_string()).map_err(anyhow::Error::msg)?);
                } else if let Some(host) = other.strip_prefix("http:") {
                    out.http
                        .push(HostPattern::try_from(host.to_string()).map_err(anyhow::Error::msg)?);
                } else {
                    anyhow::bail!(
                        "unknown grant `{other}`: use kv, llm, secret:NAME, http:HOST or all"
                    );
                }
            }
        }
    }
    let granted = requested.intersect(&out);
    if granted != out {
        anyhow::bail!(
            "you granted more than the plugin requests ({}); grant only what it asks for",
            requested.describe()
        );
    }
    Ok(granted)
}

fn install_command(path: &Path, grants: &[String], args: &PluginArgs) -> anyhow::Result<ExitCode> {
    let host = tool_host(Some(args))?;
    let (package, report) = check_package(&host, path)?;
    if let Some(problem) = report.problems.first() {
        anyhow::bail!("{}: {problem}", path.display());
    }
    let m = &package.manifest;
    let granted = parse_grants(&m.capabilities, grants)?;
    let dir = args
        .install_dir()
        .join(format!("{}-{}", m.plugin.name, m.plugin.version));
    if dir.exists() {
        let existing = Package::open(&dir)?;
        if existing.wasm == package.wasm {
            println!(
                "{} {} is already installed",
                m.plugin.name, m.plugin.version
            );
            return Ok(ExitCode::SUCCESS);
        }
        anyhow::bail!(
            "{} {} is already installed with a different component; bump the version",
            m.plugin.name,
            m.plugin.version
        );
    }
    let tmp = args
        .install_dir()
        .join(format!(".{}-{}.tmp", m.plugin.name, std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    std::fs::copy(&package.manifest_path, tmp.join(MANIFEST_FILE))?;
    std::fs::write(tmp.join(m.component_file()), &package.wasm)?;
    std::fs::write(tmp.join(GRANTS_FILE), toml::to_string(&granted)?)?;
    // A running server scans for package directories; the rename makes one appear whole.
    std::fs::rename(&tmp, &dir)?;
    println!(
        "installed {} {} ({}) in {}",
        m.plugin.name,
        m.plugin.version,
        granted.describe(),
        dir.display()
    );
    for w in &report.warnings {
        println!("warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}

fn list_command(args: &PluginArgs, json: bool) -> anyhow::Result<ExitCode> {
    let host: Arc<PluginHost> = crate::server::load_plugins(args, None, None)?;
    let mut rows = Vec::new();
    let mut packages = args.bundled_packages();
    packages.extend(crate::actors::supervisor::installed_packages(
        &args.install_dir(),
    ));
    // The host noted every package that did not load, with the reason.
    let reasons: std::collections::HashMap<String, String> = host
        .failures()
        .into_iter()
        .map(|f| (f.package, f.reason))
        .collect();
    let mut failed = Vec::new();
    for pkg in packages {
        let Some(reason) = reasons.get(&pkg.display().to_string()) else {
            continue;
        };
        match Package::open(&pkg) {
            Ok(p) => failed.push((
                p.manifest.plugin.name.0.clone(),
                p.manifest.plugin.version.to_string(),
                reason.clone(),
            )),
            Err(_) => failed.push((pkg.display().to_string(), "?".into(), reason.clone())),
        }
    }
    for p in host.list() {
        rows.push(p.status());
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"plugins": rows, "failed": failed}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() && failed.is_empty() {
        println!(
            "no plugins installed (build them with `cargo xtask build-plugins`, or `penpal plugin install <dir>`)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<16} {:<10} {:<17} {:<8} GRANTED",
        "NAME", "VERSION", "KIND", "HEALTH"
    );
    for r in &rows {
        println!(
            "{:<16} {:<10} {:<17} {:<8} {}",
            r.name,
            r.version,
            r.kind.to_string(),
            r.health.status,
            r.granted
        );
    }
    for (name, version, why) in &failed {
        println!("{name:<16} {version:<10} {:<17} {:<8} {why}", "?", "broken");
    }
    Ok(ExitCode::SUCCESS)
}
