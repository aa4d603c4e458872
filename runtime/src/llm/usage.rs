//! Token and cost accounting: every model call penpal makes or makes for a plugin becomes a
//! `usage` row (who, which conversation or plugin, which model, what for, tokens, cost) and
//! counts in the model metrics. The turn stores its rows in its own transaction; other callers
//! record theirs on their own.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;

use super::{LlmClient, Usage};
use crate::plugins::capabilities::{BoxFuture, LlmAnswer, LlmBackend, LlmRequest};
use crate::store::{Db, now_ms};

/// What tokens cost, in USD per million tokens (so tokens × price is millionths of a USD).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pricing {
    /// Per million prompt tokens.
    pub prompt: f64,
    /// Per million completion tokens.
    pub completion: f64,
}

impl Pricing {
    /// What `usage` cost, in millionths of a USD.
    pub fn cost_micros(self, usage: Usage) -> i64 {
        (f64::from(usage.prompt) * self.prompt + f64::from(usage.completion) * self.completion)
            .round() as i64
    }
}

/// Tokens a model call used and what they cost, as a `usage` row and its key.
#[derive(Debug, Serialize)]
pub struct UsageRow {
    pub(crate) key: (String, i64, String),
    pub(crate) row: serde_json::Value,
}

impl UsageRow {
    /// The row for a call by `user` (none for the demo and plugins) in `conversation`, and its
    /// count in the metrics.
    pub fn new(
        pricing: Pricing,
        user: Option<&str>,
        conversation: Option<&str>,
        model: &str,
        purpose: &'static str,
        usage: Usage,
    ) -> UsageRow {
        let at = now_ms();
        let cost = pricing.cost_micros(usage);
        let model_label = model.to_string();
        metrics::counter!("penpal_model_tokens_total", "model" => model_label.clone(), "purpose" => purpose, "kind" => "prompt")
            .increment(usage.prompt.into());
        metrics::counter!("penpal_model_tokens_total", "model" => model_label.clone(), "purpose" => purpose, "kind" => "completion")
            .increment(usage.completion.into());
        metrics::counter!("penpal_model_cost_micros_total", "model" => model_label, "purpose" => purpose)
            .increment(cost.max(0) as u64);
        UsageRow {
            key: (
                user.unwrap_or_default().to_string(),
                at,
                crate::store::new_id(),
            ),
            row: json!({"user": user, "conversation": conversation, "at": at, "model": model, "purpose": purpose,
                        "prompt_tokens": usage.prompt, "completion_tokens": usage.completion,
                        "estimated": usage.estimated, "cost_micros": cost}),
        }
    }

    /// The same row, made on behalf of plugin `name`.
    pub fn for_plugin(mut self, name: &str) -> UsageRow {
        self.row["plugin"] = json!(name);
        self
    }

    /// Stores the row on its own (when there is no turn to store it with). A failure is
    /// logged: the call it describes has already happened.
    pub async fn record(self, db: &Db) {
        if let Err(e) = db
            .exec(
                "CREATE type::record('usage', $key) CONTENT $row",
                json!({"key": self.key, "row": self.row}),
            )
            .await
        {
            tracing::warn!(error = %e, "could not record model usage");
        }
    }
}

/// The model as plugins reach it through their `llm` capability: every call recorded as usage
/// under the plugin's name.
pub struct MeteredModel {
    client: Arc<LlmClient>,
    db: Db,
    pricing: Pricing,
}

impl MeteredModel {
    /// Plugins' calls through `client`, recorded in `db` at `pricing`.
    pub fn new(client: Arc<LlmClient>, db: Db, pricing: Pricing) -> Self {
        MeteredModel {
            client,
            db,
            pricing,
        }
    }
}

impl LlmBackend for MeteredModel {
    fn complete<'a>(
        &'a self,
        plugin: &'a str,
        request: LlmRequest,
    ) -> BoxFuture<'a, Result<LlmAnswer, String>> {
        Box::pin(async move {
            let (content, usage) = self
                .client
                .complete(&request)
                .await
                .map_err(|e| e.to_string())?;
            let model = request
                .model
                .clone()
                .unwrap_or_else(|| self.client.settings().model.clone());
            UsageRow::new(self.pricing, None, None, &model, "plugin", usage)
                .for_plugin(plugin)
                .record(&self.db)
                .await;
            Ok(LlmAnswer {
                content,
                prompt_tokens: usage.prompt,
                completion_tokens: usage.completion,
            })
        })
    }
}
