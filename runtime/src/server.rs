//! The server: opens the database, loads plugins, starts the actors, serves the HTTP API until
//! shut down.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::actors::conversation::Registry;
use crate::actors::live::LiveState;
use crate::actors::supervisor::{self, BreakerPolicy, PluginSupervisor};
use crate::api::serve::ConnLimits;
use crate::api::{self, HttpSettings, Rooms};
use crate::auth::throttle::{Throttle, ThrottlePolicy};
use crate::auth::{AuthSettings, AuthState, Keys};
use crate::config::{LlmArgs, PluginArgs, ServeArgs};
use crate::http::TrustedProxies;
use crate::http::limit::Window;
use crate::llm::scripted::{self, Script};
use crate::llm::{LlmClient, LlmSettings};
use crate::ops::LlmInfo;
use crate::ops::OpsState;
use crate::plugins::capabilities::{DbKv, KvStore, LlmBackend};
use crate::plugins::{CompileCache, LoadError, Package, PluginHost, Services};
use crate::store::Db;
use crate::store::outbox::{Category, Routing};
use crate::store::personal::PersonalData;
use crate::tutoring::demo::DemoLimiter;
use crate::tutoring::state::{TurnDeps, TutoringState};

/// Builds the plugin host from `args` and installs every bundled and installed plugin. A
/// plugin that fails to load is logged and skipped: one bad package must not keep the rest of
/// the platform down.
pub fn load_plugins(
    args: &PluginArgs,
    llm: Option<Arc<dyn LlmBackend>>,
    kv: Option<Arc<dyn KvStore>>,
) -> anyhow::Result<Arc<PluginHost>> {
    let operator = args.operator()?;
    let mut services = Services {
        config: Arc::new(operator.plugin_configs()),
        llm,
        allowed_networks: Arc::new(args.plugin_allow_networks.clone()),
        ..Services::default()
    };
    if let Some(kv) = kv {
        services.kv = kv;
    }
    let host = Arc::new(
        PluginHost::new(args.limits(), CompileCache::at(args.cache_dir()), services)
            .map_err(|e| anyhow::anyhow!("cannot start the plugin engine: {e:#}"))?,
    );
    for pkg in args.bundled_packages() {
        let loaded = Package::open(&pkg)
            .map_err(LoadError::from)
            .and_then(|package| {
                // Grants are keyed by the plugin's name, not its directory's.
                let grants = operator.grants(&package.manifest.plugin.name.0);
                host.load(&package, &grants)
            });
        match loaded {
            Ok(plugin) => {
                host.install(plugin);
                host.note_load(&pkg, None);
            }
            Err(e) => {
                tracing::error!(package = %pkg.display(), error = %e, "could not load bundled plugin");
                host.note_load(&pkg, Some(e.to_string()));
            }
        }
    }
    for pkg in supervisor::installed_packages(&args.install_dir()) {
        if let Err(e) = supervisor::install_if_newer(&host, &pkg) {
            tracing::error!(package = %pkg.display(), error = %e, "could not load installed plugin");
        }
    }
    Ok(host)
}

/// The configured model client or, when none is configured, the scripted test model started
/// on a loopback port of its own.
async fn start_llm(args: &LlmArgs) -> anyhow::Result<(Arc<LlmClient>, LlmInfo)> {
    let (base_url, model, scripted) = match &args.llm_base_url {
        Some(url) => (url.clone(), args.llm_model.clone(), false),
        None => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let url = format!("http://{}/v1", listener.local_addr()?);
            tokio::spawn(async move {
                if let Err(e) = axum::serve(
                    scripted::nodelay(listener),
                    scripted::router(Script::default()),
                )
                .await
                {
                    tracing::error!(error = %e, "scripted model stopped");
                }
            });
            tracing::warn!(
                "no language model configured (PENPAL_LLM_BASE_URL): tutors answer with the \
                 scripted test model at {url}, which is not a real model"
            );
            (url, scripted::MODEL.to_string(), true)
        }
    };
    let mut settings = LlmSettings::new(base_url.clone(), model.clone());
    settings.api_key = args.llm_api_key.as_ref().map(|k| k.expose().to_string());
    settings.first_chunk_timeout = Duration::from_millis(args.llm_timeout_ms.max(100));
    settings.idle_timeout = settings.first_chunk_timeout.min(Duration::from_secs(20));
    settings.retries = args.llm_retries;
    let client = Arc::new(LlmClient::new(settings)?);
    Ok((
        client,
        LlmInfo {
            base_url,
            model,
            scripted,
        },
    ))
}

/// Serves on `listener` until `shutdown` resolves. Must run inside an actix system.
pub async fn run(
    listener: TcpListener,
    args: ServeArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let db = args.app.db.open(&args.plugins.data_dir).await?;
    run_on(listener, args, db, shutdown).await
}

/// Starts the outbox's worker on `db` until `shutdown`, and returns what wakes it.
fn start_outbox(
    args: &crate::config::MailArgs,
    db: &Db,
    links: (String, Arc<crate::notify::preferences::Signer>),
    host: &Arc<PluginHost>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Arc<tokio::sync::Notify>> {
    use crate::notify::outbox::{Channels, Outbox, RetryPolicy};
    let mailer = match &args.smtp_url {
        Some(url) => Some(Arc::new(crate::notify::mail::Mailer::new(
            url,
            &args.mail_from,
            Duration::from_secs(args.smtp_timeout_secs.max(1)),
        )?)),
        None => None,
    };
    let templates = crate::notify::templates::Templates::new()
        .map_err(|e| anyhow::anyhow!("the built-in mail templates are broken: {e}"))?;
    let policy = RetryPolicy {
        base: Duration::from_millis(args.outbox_retry_ms.max(1)),
        max_attempts: args.outbox_attempts.max(1),
        lease: Duration::from_secs(args.outbox_lease_secs.max(1)),
        ..RetryPolicy::default()
    };
    let (public_url, signer) = links;
    let channels = Channels {
        mailer,
        notifiers: Some(crate::notify::notifier::NotifierClient::new(host.clone())),
        templates: Arc::new(templates),
        public_url,
        signer,
    };
    let outbox = Outbox::new(db.clone(), channels, policy);
    let waker = outbox.waker();
    tokio::spawn(outbox.run(shutdown));
    Ok(waker)
}

/// The operator's `[notify.routes]`, checked: every category is one penpal knows and every
/// channel is `email` or an installed notifier plugin.
fn routing(
    routes: &std::collections::BTreeMap<String, Vec<String>>,
    host: &PluginHost,
) -> anyhow::Result<Routing> {
    let mut out = Vec::new();
    for (category, channels) in routes {
        let c = Category::parse(category).ok_or_else(|| {
            anyhow::anyhow!(
                "[notify.routes] names `{category}`: use security, account, progress, school or marketing"
            )
        })?;
        for channel in channels {
            if channel != crate::store::outbox::EMAIL
                && host
                    .get_kind(channel, crate::plugins::Kind::Notifier)
                    .is_err()
            {
                anyhow::bail!(
                    "[notify.routes] sends `{category}` to `{channel}`, which is neither `email` \
                     nor an installed notifier plugin (see `penpal plugins`)"
                );
            }
        }
        out.push((c, channels.clone()));
    }
    Ok(Routing::new(out))
}

/// [`run`] on an open database (`args.app.db` is not read). Tests use it to keep a
/// handle on a `mem://` database the server also uses, as an operator's command would.
pub async fn run_on(
    listener: TcpListener,
    args: ServeArgs,
    db: Db,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use futures_util::FutureExt;
    let shutdown = shutdown.shared();
    let data_dir = &args.plugins.data_dir;
    tracing::info!(database = db.url(), "database ready");
    let metrics = crate::ops::metrics::install();
    if let (crate::config::MetricsListen::At(addr), Some(handle)) = (args.metrics_listen, metrics) {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!("cannot listen for metrics on {addr}: {e} (set PENPAL_METRICS_LISTEN)")
        })?;
        tracing::info!(addr = %listener.local_addr()?, "metrics at /metrics");
        let stop = shutdown.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::ops::metrics::serve(listener, handle, stop).await {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    let key = args.app.jwt_key(data_dir)?;
    let (llm, llm_info) = start_llm(&args.llm).await?;
    let pricing = crate::llm::usage::Pricing {
        prompt: args.app.llm_prompt_price,
        completion: args.app.llm_completion_price,
    };
    let metered = crate::llm::usage::MeteredModel::new(llm.clone(), db.clone(), pricing);
    let host = load_plugins(
        &args.plugins,
        Some(Arc::new(metered) as Arc<dyn LlmBackend>),
        Some(Arc::new(DbKv(db.clone()))),
    )?;
    let supervisor = PluginSupervisor::launch(
        host.clone(),
        BreakerPolicy::default(),
        Some(args.plugins.install_dir()),
    );
    let a = &args.app;
    let public_url = match &args.mail.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("http://{}", listener.local_addr()?),
    };
    let signer = Arc::new(crate::notify::preferences::Signer::new(&key));
    let operator = args.plugins.operator()?;
    let routing = Arc::new(routing(&operator.notify.routes, &host)?);
    let outbox = start_outbox(
        &args.mail,
        &db,
        (public_url.clone(), signer.clone()),
        &host,
        shutdown.clone(),
    )?;
    tokio::spawn(
        crate::notify::schedule::Scheduler {
            db: db.clone(),
            routing: routing.clone(),
            public_url: public_url.clone(),
            every: Duration::from_secs(args.mail.schedule_secs.max(1)),
            outbox: outbox.clone(),
        }
        .run(shutdown.clone()),
    );
    let keys = Arc::new(Keys::new(
        &key,
        Duration::from_secs(a.access_token_minutes.max(1) * 60),
        Duration::from_secs(a.refresh_token_days.max(1) * 86_400),
    ));
    let trusted = TrustedProxies(a.trusted_proxies.clone().into());
    let turns = TurnDeps {
        db: db.clone(),
        llm,
        tutors: crate::tutoring::tutor::TutorClient::new(host.clone()),
        context_tokens: a.context_tokens.max(100),
        pricing,
        scope: Arc::new(crate::lms::Memberships { db: db.clone() }),
    };
    let billing = Arc::new(crate::billing::Billing {
        plans: match &operator.billing {
            Some(section) => Some(crate::billing::plans::Plans::from_config(section)?),
            None => None,
        },
        provider: operator.billing.as_ref().and_then(|b| b.provider.clone()),
        sells_to: operator
            .billing
            .as_ref()
            .map(|b| b.sells_to)
            .unwrap_or_default(),
    });
    if billing.plans.is_some() {
        tokio::spawn(
            crate::billing::sweep::Sweeper {
                db: db.clone(),
                routing: routing.clone(),
                public_url: public_url.clone(),
                plans: billing.plans.clone(),
                every: Duration::from_secs(args.mail.schedule_secs.max(1)),
                outbox: outbox.clone(),
            }
            .run(shutdown.clone()),
        );
    }
    if let Some(p) = &billing.provider
        && host
            .get_kind(p, crate::plugins::Kind::PaymentProvider)
            .is_err()
    {
        anyhow::bail!(
            "[billing] provider = \"{p}\" is not an installed payment-provider plugin (see `penpal plugins`)"
        );
    }
    let conversations = Registry::new(turns.clone(), billing.clone());
    let tutoring = TutoringState {
        turns,
        keys: keys.clone(),
        trusted: trusted.clone(),
        demo: Arc::new(DemoLimiter::new(
            a.demo_turns_per_day,
            a.demo_budget_per_day,
        )),
        scripted_model: llm_info.scripted,
        running: conversations.clone(),
        plans: Arc::new(crate::billing::entitlements::Gatekeeper {
            db: db.clone(),
            billing: billing.clone(),
        }),
    };
    // Each room holding personal data adds its part here.
    let personal: Vec<Arc<dyn PersonalData>> = vec![
        Arc::new(crate::auth::routes::Accounts),
        Arc::new(crate::tutoring::personal::Tutoring),
        Arc::new(crate::notify::Notifications),
        Arc::new(crate::lms::SchoolData),
        Arc::new(crate::billing::BillingData {
            db: db.clone(),
            payments: crate::billing::provider::PaymentsClient::new(host.clone()),
        }),
        conversations.clone(),
    ];
    let (resets, reset_requests) = tokio::sync::mpsc::channel(crate::auth::recovery::RESET_QUEUE);
    let seat_plans = billing.plans.clone();
    let tutoring_for_schools = tutoring.clone();
    let score_wake = Arc::new(tokio::sync::Notify::new());
    let scoring = crate::lms::assignments::Scoring {
        db: db.clone(),
        llm: tutoring.turns.llm.clone(),
        pricing,
        tutors: tutoring.turns.tutors.clone(),
        wake: score_wake.clone(),
    };
    let outbound =
        crate::lms::lti::outbound::Outbound::new(args.plugins.plugin_allow_networks.clone())?;
    let tool_keys = crate::lms::lti::keys::ToolKeys::new(db.clone(), &key)?;
    let lti_tokens = Arc::new(crate::lms::lti::services::Tokens::new(
        tool_keys.clone(),
        outbound.clone(),
    ));
    tokio::spawn(
        crate::lms::lti::scores::ScoreSender {
            db: db.clone(),
            lms: crate::lms::platform::LmsClient::new(host.clone()),
            outbound: outbound.clone(),
            public_url: public_url.clone(),
            every: Duration::from_secs(args.mail.schedule_secs.max(1)),
            tokens: lti_tokens.clone(),
            wake: score_wake,
        }
        .run(shutdown.clone()),
    );
    let issuer_keys = Arc::new(crate::lms::lti::jwks::PlatformKeys::new(outbound.clone()));
    let sso = crate::lms::sso::routes::SsoState {
        sso: crate::lms::sso::Sso {
            db: db.clone(),
            outbound: outbound.clone(),
            keys: issuer_keys.clone(),
            sealer: Arc::new(crate::store::sealed::Sealer::new(
                &key,
                b"penpal school sign-in client secret v1",
            )?),
            public_url: public_url.clone(),
        },
        keys: keys.clone(),
        secure_cookies: a.secure_cookies,
    };
    tokio::spawn(crate::lms::lti::sweep_every(
        db.clone(),
        Duration::from_secs(600),
        shutdown.clone(),
    ));
    tokio::spawn(
        crate::lms::assignments::Scorer {
            scoring: scoring.clone(),
            every: Duration::from_secs(args.mail.schedule_secs.max(1)),
        }
        .run(shutdown.clone()),
    );
    let installs = crate::marketplace::installs::Installs::new(
        db.clone(),
        host.clone(),
        operator.marketplace.on_revoked,
        Some(crate::marketplace::remote::Remote::new(
            outbound.clone(),
            &operator.marketplace.registries,
        )),
    );
    // What was installed from the registry runs before the server answers.
    installs.sync().await;
    tokio::spawn(
        installs
            .clone()
            .run(crate::marketplace::installs::SYNC_EVERY, shutdown.clone()),
    );
    let rooms = Rooms {
        auth: AuthState {
            db: db.clone(),
            keys: keys.clone(),
            throttle: Arc::new(Throttle::new(ThrottlePolicy::default())),
            signups: Arc::new(Window::new(Duration::from_secs(3600))),
            trusted,
            personal: personal.into(),
            mail_limits: Arc::default(),
            resets,
            outbox: outbox.clone(),
            routing: routing.clone(),
            settings: AuthSettings {
                secure_cookies: a.secure_cookies,
                signups_per_hour: a.signups_per_hour as usize,
                public_url: public_url.clone(),
            },
        },
        live: LiveState {
            tutoring: tutoring.clone(),
            conversations: conversations.clone(),
        },
        tutoring,
        billing: crate::billing::routes::BillingState {
            db: db.clone(),
            keys: keys.clone(),
            billing,
            payments: crate::billing::provider::PaymentsClient::new(host.clone()),
            public_url: public_url.clone(),
            applying: Arc::default(),
            routing: routing.clone(),
            outbox: outbox.clone(),
        },
        schools: crate::lms::routes::SchoolsState {
            db: db.clone(),
            keys: keys.clone(),
            public_url: public_url.clone(),
            routing: routing.clone(),
            outbox: outbox.clone(),
            plans: seat_plans,
            tutoring: tutoring_for_schools,
            scoring: scoring.clone(),
        },
        lti: {
            crate::lms::lti::routes::LtiState {
                db: db.clone(),
                keys: keys.clone(),
                tool_keys,
                tokens: lti_tokens,
                lti: crate::lms::lti::launch::Lti {
                    db: db.clone(),
                    keys: issuer_keys,
                    lms: crate::lms::platform::LmsClient::new(host.clone()),
                    public_url: public_url.clone(),
                },
                outbound,
            }
        },
        sso,
        notify: crate::notify::routes::NotifyState {
            db: db.clone(),
            keys: keys.clone(),
            routing,
            signer,
        },
        marketplace: crate::marketplace::routes::MarketplaceState {
            registry: crate::marketplace::registry::Registry::new(db.clone(), host.clone()),
            installs: installs.clone(),
            keys: keys.clone(),
        },
        ops: OpsState {
            db,
            keys,
            host,
            supervisor,
            llm_info,
            outbox: outbox.clone(),
        },
    };
    tokio::spawn(crate::auth::recovery::reset_worker(
        rooms.auth.clone(),
        reset_requests,
        shutdown.clone(),
    ));
    let http = HttpSettings {
        body_timeout: Duration::from_secs(a.body_timeout_secs.max(1)),
        cors_origins: a.cors_origins.clone(),
        max_body: a.max_body_kib.max(1) << 10,
    };
    if !a.secure_cookies {
        tracing::warn!(
            "secure cookies are off (PENPAL_SECURE_COOKIES=false): browser sessions travel over \
             plain http. Use this only on a development machine"
        );
    }
    conversations.set_arbiter(actix::Arbiter::current());
    let router = api::router(rooms, &http);
    tracing::info!(addr = %listener.local_addr()?, "penpal listening");
    let limits = ConnLimits {
        header_timeout: Duration::from_secs(a.header_timeout_secs.max(1)),
        idle_timeout: Duration::from_secs(a.idle_timeout_secs.max(1)),
        max_connections: a.max_connections,
    };
    api::serve::serve(listener, router, limits, shutdown).await?;
    // Conversation actors hold the database; stopping them lets it close.
    conversations.close_all();
    Ok(())
}
