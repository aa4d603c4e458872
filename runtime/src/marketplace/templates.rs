//! What `penpal plugin new` writes: a plugin project that builds, checks and chats out of the
//! box. A Rust tutor depends on the SDK of this penpal's source tree; a Python or JavaScript
//! tutor carries its own copy of the SDK (`host-api/python`, `host-api/js`) and of the WIT it
//! is built against, so it needs nothing but its toolchain. Rust also has notifier and LMS
//! templates; payment providers, and the other kinds in Python and JavaScript, come next
//! (`docs/marketplace.md`).

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

/// The manifest of a new tutor.
fn tutor_manifest(name: &str, publisher: &str) -> String {
    let title = display(name);
    format!(
        r#"[plugin]
name = "{name}"
version = "0.1.0"
kind = "tutor"
wit = "0.2.0"
publisher = "{publisher}"
description = "{title}: a friendly tutor that answers in the learner's target language and corrects gently."

# Ask only for what the plugin needs; every capability still needs the installer's grant, and
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
/// against the SDK at `sdk`; none for a kind without a template yet.
pub fn rust(kind: Kind, name: &str, publisher: &str, sdk: &std::path::Path) -> Option<Files> {
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
        Kind::PaymentProvider => return None,
    };
    Some(vec![
        (PathBuf::from("Cargo.toml"), cargo),
        (PathBuf::from("Cargo.lock"), LOCK.to_string()),
        (PathBuf::from("penpal-plugin.toml"), manifest),
        (PathBuf::from("src/lib.rs"), lib),
        (PathBuf::from("README.md"), readme(name, what, "Rust", "")),
        (
            PathBuf::from(".gitignore"),
            "/target\n*.penpal\nplugin.wasm\n".into(),
        ),
    ])
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
    format!(
        r#"[plugin]
name = "{name}"
version = "0.1.0"
kind = "notifier"
wit = "0.2.0"
publisher = "{publisher}"
description = "{title}: posts each message as JSON to the operator's receiver."

# The receiver is the operator's choice: they grant its host under [plugins.{name}].
[capabilities]
http = ["operator"]

[notifier]
display-name = "{title}"
channel = "webhook"
"#
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
    format!(
        r#"[plugin]
name = "{name}"
version = "0.1.0"
kind = "lms"
wit = "0.2.0"
publisher = "{publisher}"
description = "{title} as an LTI 1.3 Advantage platform: launches, deep links, grades and rosters."

[lms]
display-name = "{title}"
platform = "{name}"
"#
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
        (
            PathBuf::from("penpal-plugin.toml"),
            tutor_manifest(name, publisher),
        ),
        (
            PathBuf::from("README.md"),
            readme(
                name,
                "A Penpal tutor personality",
                "Python",
                "pip install -r requirements.txt          # once: componentize-py\n",
            ),
        ),
        (
            PathBuf::from(".gitignore"),
            "__pycache__/\n*.penpal\nplugin.wasm\n".into(),
        ),
    ];
    files.extend(wit());
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
        (
            PathBuf::from("penpal-plugin.toml"),
            tutor_manifest(name, publisher),
        ),
        (
            PathBuf::from("README.md"),
            readme(
                name,
                "A Penpal tutor personality",
                "JavaScript",
                "npm install                               # once: componentize-js\n",
            ),
        ),
        (
            PathBuf::from(".gitignore"),
            "node_modules/\n*.penpal\nplugin.wasm\n".into(),
        ),
    ];
    files.extend(wit());
    files
}
