//! What `penpal plugin new` writes: a plugin project that builds, checks and chats out of the
//! box, against the SDK in this penpal's source tree. Today a Rust tutor; the other kinds and
//! the Python and JavaScript templates are the next step of `docs/marketplace.md`.

use std::path::PathBuf;

/// The lock file the example tutor builds with: a new project starts from the same versions,
/// so its first build reuses what is already compiled and needs nothing new.
const LOCK: &str = include_str!("../../../examples/tutor-rust/Cargo.lock");

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

/// The files of a new Rust tutor called `name`, published by `publisher`, built against the
/// SDK at `sdk`: (path inside the project, content).
pub fn rust_tutor(name: &str, publisher: &str, sdk: &std::path::Path) -> Vec<(PathBuf, String)> {
    let title = display(name);
    let sdk = sdk.display().to_string().replace('\\', "/");
    let cargo = format!(
        r#"# A Penpal tutor plugin. `penpal plugin build` compiles it for wasm32-wasip2 and puts the
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

# Its own workspace, so it builds on its own.
[workspace]

[profile.release]
opt-level = "s"
lto = true
strip = true
"#
    );
    let manifest = format!(
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
    );
    let lib = format!(
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
    );
    let readme = format!(
        r#"# {title}

A Penpal tutor personality.

```sh
penpal plugin build                       # compiles it and checks it: plugin.wasm beside the manifest
penpal key generate --out ~/.penpal.key   # once: register the public key on your publisher page
penpal plugin sign . --key ~/.penpal.key  # writes {name}-0.1.0.penpal
PENPAL_TOKEN=pp_… penpal plugin publish . --registry https://penpal.example
```
"#
    );
    vec![
        (PathBuf::from("Cargo.toml"), cargo),
        (PathBuf::from("Cargo.lock"), LOCK.to_string()),
        (PathBuf::from("penpal-plugin.toml"), manifest),
        (PathBuf::from("src/lib.rs"), lib),
        (PathBuf::from("README.md"), readme),
        (
            PathBuf::from(".gitignore"),
            "/target\n*.penpal\nplugin.wasm\n".into(),
        ),
    ]
}
