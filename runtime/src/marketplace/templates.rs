//! What `penpal plugin new` writes: a plugin project that builds, checks and chats out of the
//! box. A Rust tutor depends on the SDK of this penpal's source tree; a Python or JavaScript
//! tutor carries its own copy of the SDK (`host-api/python`, `host-api/js`) and of the WIT it
//! is built against, so it needs nothing but its toolchain. Rust has a template for every
//! kind; the other kinds in Python and JavaScript come next (`docs/marketplace.md`).

use std::path::PathBuf;

use crate::plugins::manifest::Kind;

/// The lock file the example tutor builds with: a new project starts from the same versions,
/// so its first build reuses what is already compiled and needs nothing new.
const LOCK: &str = include_str!("../../../examples/tutor-rust/Cargo.lock");

/// The Python SDK, copied into each Python project.
const PYTHON_SDK: &str = include_str!("../../../host-api/python/penpal_sdk.py");
/// The pinned componentize-py a Python project builds with (also what CI installs).
pub const PYTHON_REQUIREMENTS: &str = include_str!("../../../host-api/python/requirements.txt");
/// The JavaScript SDK, copied into each JavaScript project.
const JS_SDK: &str = include_str!("../../../host-api/js/penpal-sdk.js");
/// The componentize-js a JavaScript project builds with, pinned in its package.json.
pub const COMPONENTIZE_JS: &str = "0.23.0";

/// The current WIT, which Python and JavaScript projects build against from their `wit/`.
const WIT: [(&str, &str); 10] = [
    ("config.wit", include_str!("../../../wit/v0.2/config.wit")),
    ("kv.wit", include_str!("../../../wit/v0.2/kv.wit")),
    ("llm.wit", include_str!("../../../wit/v0.2/llm.wit")),
    ("lms.wit", include_str!("../../../wit/v0.2/lms.wit")),
    ("log.wit", include_str!("../../../wit/v0.2/log.wit")),
    (
        "notifications.wit",
        include_str!("../../../wit/v0.2/notifications.wit"),
    ),
    (
        "payments.wit",
        include_str!("../../../wit/v0.2/payments.wit"),
    ),
    (
        "tutoring.wit",
        include_str!("../../../wit/v0.2/tutoring.wit"),
    ),
    ("types.wit", include_str!("../../../wit/v0.2/types.wit")),
    ("worlds.wit", include_str!("../../../wit/v0.2/worlds.wit")),
];

/// A project's files: (path inside the project, content).
pub type Files = Vec<(PathBuf, String)>;

/// The SDK a new Rust plugin depends on: `PENPAL_SDK`, or the `host-api` directory of the tree
/// this penpal was built from.
pub fn sdk() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PENPAL_SDK") {
        return Some(PathBuf::from(dir));
    }
    let built_from = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../host-api"));
    built_from
        .join("Cargo.toml")
        .is_file()
        .then(|| built_from.canonicalize().unwrap_or(built_from))
}

/// `name` as people read it: `ada-tutor` → `Ada tutor`.
fn display(name: &str) -> String {
    let spaced = name.replace('-', " ");
    let mut chars = spaced.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// A new plugin's manifest: the `[plugin]` table every kind shares, then `rest` (what it asks
/// for and its kind's own table).
fn manifest(kind: Kind, name: &str, publisher: &str, description: &str, rest: &str) -> String {
    format!(
        r#"[plugin]
name = "{name}"
version = "0.1.0"
kind = "{kind}"
wit = "0.2.0"
publisher = "{publisher}"
description = "{description}"

{rest}"#
    )
}

/// The manifest of a new tutor.
fn tutor_manifest(name: &str, publisher: &str) -> String {
    let title = display(name);
    manifest(
        Kind::Tutor,
        name,
        publisher,
        &format!(
            "{title}: a friendly tutor that answers in the learner's target language and corrects gently."
        ),
        &format!(
            r#"# Ask only for what the plugin needs; every capability still needs the installer's grant, and
# anything not granted answers `denied`. For example:
# [capabilities]
# kv = true                      # a private key-value store
# llm = true                     # completions from the server's model
# http = ["api.example.com"]     # outbound HTTPS to these hosts

[tutor]
display-name = "{title}"
languages = ["fr", "es", "de", "it", "en"]
modes = ["tutor", "conversation"]
levels = ["A1", "A2", "B1", "B2", "C1", "C2"]
"#
        ),
    )
}

/// The README of a new project (`what` it is): `setup` are the commands to run once before the
/// first build.
fn readme(name: &str, what: &str, language: &str, setup: &str) -> String {
    let title = display(name);
    format!(
        r#"# {title}

{what}, in {language}. `docs/plugin-authors.md` in the penpal repository
says what a plugin may do, its limits, and how to publish it.

```sh
{setup}penpal plugin build                       # builds it and checks it: plugin.wasm beside the manifest
penpal key generate --out ~/.penpal.key   # once: register the public key on your publisher page
penpal plugin sign . --key ~/.penpal.key  # writes {name}-0.1.0.penpal
PENPAL_TOKEN=pp_… penpal plugin publish . --registry https://penpal.example
```
"#
    )
}

/// The WIT files, under `wit/`.
fn wit() -> Files {
    WIT.iter()
        .map(|(file, text)| (PathBuf::from("wit").join(file), text.to_string()))
        .collect()
}

/// The files of a new Rust plugin of `kind` called `name`, published by `publisher`, built
/// against the SDK at `sdk`.
pub fn rust(kind: Kind, name: &str, publisher: &str, sdk: &std::path::Path) -> Files {
    let title = display(name);
    let sdk = sdk.display().to_string().replace('\\', "/");
    let cargo = format!(
        r#"# A Penpal {kind} plugin. `penpal plugin build` compiles it for wasm32-wasip2 and puts the
# component beside penpal-plugin.toml; `penpal plugin check` says whether it runs.
[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
penpal-host-api = {{ path = "{sdk}" }}
serde_json = "1"

# Its own workspace, so it builds on its own.
[workspace]

[profile.release]
opt-level = "s"
lto = true
strip = true
"#
    );
    let (manifest, lib, what) = match kind {
        Kind::Tutor => (
            tutor_manifest(name, publisher),
            rust_tutor_lib(&title),
            "A Penpal tutor personality",
        ),
        Kind::Notifier => (
            notifier_manifest(name, publisher),
            rust_notifier_lib(name, &title),
            "A Penpal notifier",
        ),
        Kind::Lms => (
            lms_manifest(name, publisher),
            rust_lms_lib(name, &title),
            "A Penpal LMS integration",
        ),
        Kind::PaymentProvider => (
            payment_manifest(name, publisher),
            rust_payment_lib(name, &title),
            "A Penpal payment provider",
        ),
    };
    vec![
        (PathBuf::from("Cargo.toml"), cargo),
        (PathBuf::from("Cargo.lock"), LOCK.to_string()),
        (PathBuf::from("penpal-plugin.toml"), manifest),
        (PathBuf::from("src/lib.rs"), lib),
        (PathBuf::from("README.md"), readme(name, what, "Rust", "")),
        (
            PathBuf::from(".gitignore"),
            "/target\n*.penpal\nplugin.wasm\n".into(),
        ),
    ]
}

fn rust_tutor_lib(title: &str) -> String {
    format!(
        r#"//! {title}: a Penpal tutor personality. `plan_turn` builds the request the server sends
//! to its model; `review_turn` turns the model's analysis into corrections and vocabulary.

use penpal_host_api::analysis::{{self, Analysis}};
use penpal_host_api::lang;
use penpal_host_api::prompt;
use penpal_host_api::tutor::{{Scenario, TurnContext, TurnPlan, TurnReview, Tutor}};
use penpal_host_api::types::PluginError;

struct Plugin;

impl Tutor for Plugin {{
    fn scenarios() -> Vec<Scenario> {{
        Vec::new()
    }}

    fn plan_turn(ctx: TurnContext) -> Result<TurnPlan, PluginError> {{
        let target = lang::name(&ctx.profile.target_language);
        let system = format!(
            "You are {title}, a friendly tutor of {{target}}. {{}} Answer in {{target}}, in a few \
             sentences at the learner's level, and end with a question that keeps them talking.",
            prompt::learner_summary(&ctx)
        );
        Ok(TurnPlan {{
            reply: prompt::reply(prompt::messages(system, &ctx), 0.7, 250),
            analysis: Some(analysis::request(&ctx, "")),
        }})
    }}

    fn review_turn(
        ctx: TurnContext,
        _reply: String,
        analysis: Option<String>,
    ) -> Result<TurnReview, PluginError> {{
        // The lenient reader: whatever the model answered, keep what can be used.
        Ok(Analysis::salvage(analysis.as_deref(), &ctx).into_review())
    }}
}}

penpal_host_api::export_tutor!(Plugin);
"#
    )
}

/// The manifest of a new notifier.
fn notifier_manifest(name: &str, publisher: &str) -> String {
    let title = display(name);
    manifest(
        Kind::Notifier,
        name,
        publisher,
        &format!("{title}: posts each message as JSON to the operator's receiver."),
        &format!(
            r#"# The receiver is the operator's choice: they grant its host under [plugins.{name}].
[capabilities]
http = ["operator"]

[notifier]
display-name = "{title}"
channel = "webhook"
"#
        ),
    )
}

fn rust_notifier_lib(name: &str, title: &str) -> String {
    format!(
        r#"//! {title}: a Penpal notifier. The host renders each message and calls `send` until it
//! succeeds — it retries `unavailable` errors with backoff, and any other error is final —
//! so this posts the message as JSON to the operator's receiver (`[plugins.{name}]
//! settings.url`, its host granted) with the message id as the idempotency key.

use penpal_host_api::notifications::{{Category, Delivery, Notification, Notifier}};
use penpal_host_api::types::PluginError;
use penpal_host_api::{{config, http}};

struct Plugin;

fn category(c: Category) -> &'static str {{
    match c {{
        Category::Security => "security",
        Category::Account => "account",
        Category::Progress => "progress",
        Category::Marketing => "marketing",
        Category::School => "school",
    }}
}}

impl Notifier for Plugin {{
    fn send(message: Notification) -> Result<Delivery, PluginError> {{
        let url = config::get("url").ok_or_else(|| {{
            PluginError::InvalidInput(
                "set the receiver's address: [plugins.{name}] settings.url".into(),
            )
        }})?;
        let body = serde_json::json!({{
            "id": message.id,
            "topic": message.topic,
            "category": category(message.category),
            "recipient": message.recipient,
            "locale": message.locale,
            "subject": message.subject,
            "text": message.text_body,
            "unsubscribe_url": message.unsubscribe_url,
        }})
        .to_string();
        let response = http::request(
            "POST",
            &url,
            &[
                ("content-type", "application/json"),
                ("idempotency-key", &message.id),
            ],
            body.as_bytes(),
        )?;
        match response.status {{
            200..=299 => Ok(Delivery {{ provider_id: None }}),
            // Throttled or failing: the host tries again later.
            408 | 429 | 500..=599 => Err(PluginError::Unavailable(format!(
                "the receiver answered {{}}",
                response.status
            ))),
            status => Err(PluginError::InvalidInput(format!(
                "the receiver refused the message ({{status}})"
            ))),
        }}
    }}
}}

penpal_host_api::export_notifier!(Plugin);
"#
    )
}

/// The manifest of a new LMS integration.
fn lms_manifest(name: &str, publisher: &str) -> String {
    let title = display(name);
    manifest(
        Kind::Lms,
        name,
        publisher,
        &format!(
            "{title} as an LTI 1.3 Advantage platform: launches, deep links, grades and rosters."
        ),
        &format!(
            r#"[lms]
display-name = "{title}"
platform = "{name}"
"#
        ),
    )
}

fn rust_lms_lib(name: &str, title: &str) -> String {
    format!(
        r#"//! {title} as an LTI 1.3 platform. The SDK reads launches, shapes deep links, line items
//! and scores, and reads rosters as the specification says; a platform that differs says how
//! in its `Quirks` (see the SDK's `lti` module, and the Canvas and Blackboard plugins in the
//! penpal repository for two that differ).

use penpal_host_api::lti::Quirks;

/// How this platform differs from the specification: not at all, to begin with.
const QUIRKS: Quirks = Quirks::STANDARD;

penpal_host_api::export_lti_platform!("{name}", "{title}", QUIRKS);
"#
    )
}

/// The manifest of a new payment provider.
fn payment_manifest(name: &str, publisher: &str) -> String {
    let title = display(name);
    manifest(
        Kind::PaymentProvider,
        name,
        publisher,
        &format!(
            "{title}: subscriptions through a payment provider's JSON API, webhooks verified from the raw body."
        ),
        &format!(
            r#"# Name your provider's API host instead of "operator" (which lets the operator grant the host
# they set in settings.api_base, such as a sandbox), and keep only the secrets you read.
[capabilities]
http = ["operator"]
secrets = ["api_key", "webhook_secret"]

[payment-provider]
display-name = "{title}"
currencies = ["EUR", "USD"]
"#
        ),
    )
}

fn rust_payment_lib(name: &str, title: &str) -> String {
    format!(
        r#"//! {title}: a Penpal payment provider. Penpal owns plans, prices, subscriptions and
//! entitlements; this turns its requests into the provider's API calls and the provider's
//! webhooks into events in penpal's terms, which penpal stores, then applies.
//!
//! It speaks a plain JSON API, written the way most providers shape theirs: adapt the paths
//! and fields in `call`, `event` and `subscription` to yours (the Stripe and Paddle plugins in
//! the penpal repository are two complete examples).
//!
//! Settings (`[plugins.{name}] settings`): `api_base`. Secrets: `api_key`, `webhook_secret`.
//! A webhook's `Webhook-Signature` header is `t=<unix seconds>,v1=<hex>…`, each `v1` an
//! HMAC-SHA256 of `"{{t}}.{{body}}"`; any `v1` may match (providers sign with every active secret
//! during a rotation), and nothing is parsed before one does.

use penpal_host_api::payments::{{
    CheckoutRequest, EventKind, Interval, Money, PaymentEvent, PaymentProvider, Redirect,
    Subscription, SubscriptionStatus, Webhook,
}};
use penpal_host_api::types::PluginError;
use penpal_host_api::{{config, http, signature}};
use serde_json::{{Value, json}};

/// Oldest (or furthest in the future) a webhook's signature may be, in seconds.
const TOLERANCE: u64 = 300;

const SCHEME: signature::Scheme = signature::Scheme {{
    separator: ',',
    time: "t",
    signature: "v1",
    joiner: b".",
}};

struct Plugin;

/// Calls the provider: `method path` with a JSON `body`, and its JSON answer. Every POST
/// carries penpal's idempotency key, so a retried call never charges twice.
fn call(
    method: &str,
    path: &str,
    body: Value,
    idempotency_key: Option<&str>,
) -> Result<Value, PluginError> {{
    let base = config::get("api_base").ok_or_else(|| {{
        PluginError::InvalidInput(
            "set the provider's address: [plugins.{name}] settings.api_base".into(),
        )
    }})?;
    let auth = format!("Bearer {{}}", config::secret("api_key")?);
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(key) = idempotency_key {{
        headers.push(("idempotency-key", key));
    }}
    let url = format!("{{}}{{path}}", base.trim_end_matches('/'));
    let response = http::request(method, &url, &headers, body.to_string().as_bytes())?;
    let json: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let message = json["error"]["message"]
        .as_str()
        .unwrap_or("no message")
        .to_string();
    match response.status {{
        200..=299 => Ok(json),
        401 | 403 => Err(PluginError::Denied(format!(
            "the provider refused the API key: {{message}}"
        ))),
        404 => Err(PluginError::NotFound(message)),
        // Busy or failing: penpal tries again later, with the same idempotency key.
        409 | 429 | 500..=599 => Err(PluginError::Unavailable(format!(
            "the provider answered {{}}: {{message}}",
            response.status
        ))),
        status => Err(PluginError::InvalidInput(format!(
            "the provider answered {{status}}: {{message}}"
        ))),
    }}
}}

fn interval(i: Interval) -> &'static str {{
    match i {{
        Interval::Month => "month",
        Interval::Year => "year",
    }}
}}

fn redirect(json: &Value) -> Result<Redirect, PluginError> {{
    match (json["id"].as_str(), json["url"].as_str()) {{
        (Some(id), Some(url)) => Ok(Redirect {{
            id: id.into(),
            url: url.into(),
        }}),
        _ => Err(PluginError::Internal(
            "the provider's answer has no id and url".into(),
        )),
    }}
}}

fn subscription(o: &Value) -> Option<Subscription> {{
    let status = match o["status"].as_str()? {{
        "trialing" => SubscriptionStatus::Trialing,
        "active" => SubscriptionStatus::Active,
        "past_due" => SubscriptionStatus::PastDue,
        "paused" => SubscriptionStatus::Paused,
        "canceled" => SubscriptionStatus::Canceled,
        "unpaid" => SubscriptionStatus::Unpaid,
        _ => SubscriptionStatus::Incomplete,
    }};
    Some(Subscription {{
        id: o["id"].as_str()?.into(),
        status,
        plan_id: o["metadata"]["penpal_plan"].as_str().map(str::to_string),
        current_period_end: o["current_period_end"].as_u64(),
        trial_end: o["trial_end"].as_u64(),
        cancel_at_period_end: o["cancel_at_period_end"].as_bool().unwrap_or(false),
    }})
}}

fn subscription_in(o: &Value) -> Result<Subscription, PluginError> {{
    subscription(o)
        .ok_or_else(|| PluginError::Internal("the provider's answer has no subscription".into()))
}}

/// A verified webhook's event in penpal's terms.
fn event(e: &Value) -> Result<PaymentEvent, PluginError> {{
    let missing = |what: &str| PluginError::InvalidInput(format!("the event has no {{what}}"));
    let provider_type = e["type"]
        .as_str()
        .ok_or_else(|| missing("type"))?
        .to_string();
    let o = &e["data"];
    let kind = match provider_type.as_str() {{
        "checkout.completed" => EventKind::CheckoutCompleted,
        "subscription.created" => EventKind::SubscriptionCreated,
        "subscription.updated" => EventKind::SubscriptionUpdated,
        "subscription.canceled" => EventKind::SubscriptionDeleted,
        "subscription.trial_will_end" => EventKind::TrialWillEnd,
        "subscription.paused" => EventKind::SubscriptionPaused,
        "subscription.resumed" => EventKind::SubscriptionResumed,
        "payment.succeeded" => EventKind::InvoicePaid,
        "payment.failed" => EventKind::PaymentFailed,
        "payment.refunded" => EventKind::Refunded,
        "dispute.opened" => EventKind::DisputeOpened,
        // Stored and acknowledged, nothing more.
        _ => EventKind::Other,
    }};
    let amount = match (o["amount_minor"].as_i64(), o["currency"].as_str()) {{
        (Some(amount_minor), Some(currency)) => Some(Money {{
            amount_minor,
            currency: currency.to_ascii_uppercase(),
        }}),
        _ => None,
    }};
    Ok(PaymentEvent {{
        id: e["id"].as_str().ok_or_else(|| missing("id"))?.to_string(),
        kind,
        provider_type,
        customer_id: o["metadata"]["penpal_customer"]
            .as_str()
            .map(str::to_string),
        provider_customer_id: o["customer"].as_str().map(str::to_string),
        subscription: subscription(&o["subscription"]),
        payment_id: o["payment"].as_str().map(str::to_string),
        amount,
        occurred_at: e["created"]
            .as_u64()
            .ok_or_else(|| missing("created time"))?,
    }})
}}

impl PaymentProvider for Plugin {{
    fn create_checkout(r: CheckoutRequest) -> Result<Redirect, PluginError> {{
        let body = json!({{
            "customer": r.provider_customer_id,
            "email": r.customer_email,
            "amount_minor": r.price.amount_minor,
            "currency": r.price.currency,
            "interval": r.interval.map(interval),
            "trial_days": r.trial_days,
            "coupon": r.coupon,
            "locale": r.locale,
            "success_url": r.success_url,
            "cancel_url": r.cancel_url,
            // Echoed in every event about this checkout, so penpal knows whose and which plan.
            "metadata": {{ "penpal_customer": r.customer_id, "penpal_plan": r.plan_id }},
        }});
        redirect(&call("POST", "/checkouts", body, Some(&r.idempotency_key))?)
    }}

    fn create_portal(customer: String, return_url: String) -> Result<Redirect, PluginError> {{
        let body = json!({{ "customer": customer, "return_url": return_url }});
        redirect(&call("POST", "/portal-sessions", body, None)?)
    }}

    fn verify_webhook(hook: Webhook) -> Result<Vec<PaymentEvent>, PluginError> {{
        let secret = config::secret("webhook_secret")?;
        let header = hook
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("webhook-signature"))
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| PluginError::Denied("no Webhook-Signature header".into()))?;
        signature::verify(
            &SCHEME,
            header,
            &hook.body,
            secret.as_bytes(),
            hook.received_at,
            TOLERANCE,
        )?;
        let e: Value = serde_json::from_slice(&hook.body)
            .map_err(|e| PluginError::InvalidInput(format!("the body is not JSON: {{e}}")))?;
        Ok(vec![event(&e)?])
    }}

    fn cancel_subscription(
        id: String,
        at_period_end: bool,
        idempotency_key: String,
    ) -> Result<Subscription, PluginError> {{
        let body = json!({{ "at_period_end": at_period_end }});
        subscription_in(&call(
            "POST",
            &format!("/subscriptions/{{id}}/cancel"),
            body,
            Some(&idempotency_key),
        )?)
    }}

    fn resume_subscription(
        id: String,
        idempotency_key: String,
    ) -> Result<Subscription, PluginError> {{
        subscription_in(&call(
            "POST",
            &format!("/subscriptions/{{id}}/resume"),
            json!({{}}),
            Some(&idempotency_key),
        )?)
    }}

    fn change_plan(
        id: String,
        plan_id: String,
        price: Money,
        every: Interval,
        idempotency_key: String,
    ) -> Result<Subscription, PluginError> {{
        let body = json!({{
            "amount_minor": price.amount_minor,
            "currency": price.currency,
            "interval": interval(every),
            "proration": "prorate",
            "metadata": {{ "penpal_plan": plan_id }},
        }});
        subscription_in(&call(
            "POST",
            &format!("/subscriptions/{{id}}/change"),
            body,
            Some(&idempotency_key),
        )?)
    }}

    fn refund(
        payment_id: String,
        amount: Option<Money>,
        idempotency_key: String,
    ) -> Result<(), PluginError> {{
        let body = json!({{
            "payment": payment_id,
            // None refunds the whole payment.
            "amount_minor": amount.as_ref().map(|a| a.amount_minor),
            "currency": amount.as_ref().map(|a| a.currency.clone()),
        }});
        call("POST", "/refunds", body, Some(&idempotency_key)).map(|_| ())
    }}
}}

penpal_host_api::export_payment_provider!(Plugin);
"#
    )
}

/// What every Python and JavaScript tutor has: its manifest, README (`setup` run once before
/// the first build), `.gitignore` (with the toolchain's own `ignore`) and the WIT.
fn tutor_common(name: &str, publisher: &str, language: &str, setup: &str, ignore: &str) -> Files {
    let mut files = vec![
        (
            PathBuf::from("penpal-plugin.toml"),
            tutor_manifest(name, publisher),
        ),
        (
            PathBuf::from("README.md"),
            readme(name, "A Penpal tutor personality", language, setup),
        ),
        (
            PathBuf::from(".gitignore"),
            format!("{ignore}\n*.penpal\nplugin.wasm\n"),
        ),
    ];
    files.extend(wit());
    files
}

/// The files of a new Python tutor called `name`, published by `publisher`.
pub fn python_tutor(name: &str, publisher: &str) -> Files {
    let title = display(name);
    let app = format!(
        r#""""{title}: a Penpal tutor personality. `plan_turn` builds the requests the server sends
to its model; `review_turn` turns the model's analysis into corrections and vocabulary.

`penpal plugin build` runs `componentize-py -d wit -w tutor componentize app -o plugin.wasm`.
"""

from typing import List, Optional

import penpal_sdk as penpal
from wit_world import exports
from wit_world.exports.tutoring import Scenario, TurnContext, TurnPlan, TurnReview


class Tutoring(exports.Tutoring):
    def scenarios(self) -> List[Scenario]:
        return []

    # `guard` turns an unexpected exception into a clear `internal` error; raise
    # `penpal.fail("why")` for a turn this tutor cannot serve.
    @penpal.guard
    def plan_turn(self, ctx: TurnContext) -> TurnPlan:
        target = penpal.language_name(ctx.profile.target_language)
        system = (
            f"You are {title}, a friendly tutor of {{target}}. {{penpal.learner_summary(ctx)}} "
            f"Answer in {{target}}, in a few sentences at the learner's level, and end with a "
            "question that keeps them talking."
        )
        return TurnPlan(
            reply=penpal.reply(penpal.messages(system, ctx), 0.7, 250),
            analysis=penpal.analysis_request(ctx),
        )

    @penpal.guard
    def review_turn(self, ctx: TurnContext, reply: str, analysis: Optional[str]) -> TurnReview:
        # The lenient reader: whatever the model answered, keep what can be used.
        return penpal.salvage(analysis, ctx)
"#
    );
    let mut files = vec![
        (PathBuf::from("app.py"), app),
        (PathBuf::from("penpal_sdk.py"), PYTHON_SDK.to_string()),
        (
            PathBuf::from("requirements.txt"),
            PYTHON_REQUIREMENTS.to_string(),
        ),
    ];
    files.extend(tutor_common(
        name,
        publisher,
        "Python",
        "pip install -r requirements.txt          # once: componentize-py\n",
        "__pycache__/",
    ));
    files
}

/// The files of a new JavaScript tutor called `name`, published by `publisher`.
pub fn js_tutor(name: &str, publisher: &str) -> Files {
    let title = display(name);
    let app = format!(
        r#"// {title}: a Penpal tutor personality. `planTurn` builds the requests the server sends to
// its model; `reviewTurn` turns the model's analysis into corrections and vocabulary.
//
// `penpal plugin build` runs `componentize-js app.js --wit wit --world-name tutor -o plugin.wasm`.

import * as penpal from "./penpal-sdk.js";

// `penpal.tutor` turns anything thrown into a clear `internal` error; throw
// `penpal.fail("why")` for a turn this tutor cannot serve.
export const tutoring = penpal.tutor({{
  scenarios() {{
    return [];
  }},

  planTurn(ctx) {{
    const target = penpal.languageName(ctx.profile.targetLanguage);
    const system =
      `You are {title}, a friendly tutor of ${{target}}. ${{penpal.learnerSummary(ctx)}} ` +
      `Answer in ${{target}}, in a few sentences at the learner's level, and end with a ` +
      `question that keeps them talking.`;
    return {{
      reply: penpal.reply(penpal.messages(system, ctx), 0.7, 250),
      analysis: penpal.analysisRequest(ctx),
    }};
  }},

  reviewTurn(ctx, reply, analysis) {{
    // The lenient reader: whatever the model answered, keep what can be used.
    return penpal.salvage(analysis, ctx);
  }},
}});
"#
    );
    let package = format!(
        r#"{{
  "name": "{name}",
  "version": "0.1.0",
  "private": true,
  "type": "module",
  "devDependencies": {{
    "@bytecodealliance/componentize-js": "{COMPONENTIZE_JS}"
  }}
}}
"#
    );
    let mut files = vec![
        (PathBuf::from("app.js"), app),
        (PathBuf::from("penpal-sdk.js"), JS_SDK.to_string()),
        (PathBuf::from("package.json"), package),
    ];
    files.extend(tutor_common(
        name,
        publisher,
        "JavaScript",
        "npm install                               # once: componentize-js\n",
        "node_modules/",
    ));
    files
}
