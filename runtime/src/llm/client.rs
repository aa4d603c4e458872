//! The model client: any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp, the
//! scripted server) through async-openai.
//!
//! What it adds on top of the HTTP call, because a tutor that hangs or garbles is worse than
//! one that says "try again":
//! - **timeouts**: for the first chunk (connection + queueing + prompt processing) and between
//!   chunks, so a stalled stream ends instead of hanging a learner's turn;
//! - **retries with backoff** on transient failures (connection errors, 429, 5xx, timeouts)
//!   but only *before* the first chunk — once text has reached a learner it is never replayed.
//!   The policy is penpal's alone: exponential backoff with jitter, waiting as long as a
//!   `Retry-After` asks (within the first-chunk timeout). async-openai's own retry layer is
//!   replaced by its plain transport, so one attempt is one request;
//! - **a circuit breaker**, so a dead endpoint fails turns at once instead of after every
//!   timeout;
//! - **tolerant chunk parsing**: chunks are read as plain JSON, so servers that omit `id`,
//!   `created` or `object`, send `content: null` or add fields of their own are fine; only a
//!   chunk that is not JSON at all, or a stream that ends without finishing, is an error.

use std::cell::Cell;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::{HttpRequestFactory, ReqwestService};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::plugins::types::{CompletionRequest, Role};

/// Where the model is and how patient to be with it.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    /// Base URL of the OpenAI-compatible API, such as `https://api.openai.com/v1`.
    pub base_url: String,
    /// API key, if the endpoint needs one.
    pub api_key: Option<String>,
    /// The model used when a request names none.
    pub model: String,
    /// Longest wait for the first chunk of an answer.
    pub first_chunk_timeout: Duration,
    /// Longest wait between two chunks.
    pub idle_timeout: Duration,
    /// Retries of a request that failed before its first chunk.
    pub retries: u32,
    /// Failed requests in a row that open the breaker.
    pub breaker_faults: u32,
    /// How long an open breaker refuses requests.
    pub breaker_cool_down: Duration,
}

impl LlmSettings {
    /// Settings for `base_url` and `model` with the default timeouts and retries.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        LlmSettings {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            first_chunk_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(20),
            retries: 2,
            breaker_faults: 5,
            breaker_cool_down: Duration::from_secs(15),
        }
    }
}

/// Why a completion failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LlmError {
    /// Too many recent failures; not even tried.
    #[error("the language model is failing; retry in {}s", .0.as_secs().max(1))]
    CircuitOpen(Duration),
    /// No chunk within the timeout.
    #[error("the language model did not answer within {0:?}")]
    Timeout(Duration),
    /// The endpoint answered with an error status.
    #[error("the language model answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The endpoint could not be reached.
    #[error("cannot reach the language model: {0}")]
    Connect(String),
    /// A chunk was not JSON.
    #[error("the language model sent a malformed chunk: {0}")]
    Malformed(String),
    /// The stream ended before the answer did.
    #[error("the language model's answer was cut off")]
    Cut,
}

impl LlmError {
    /// Its name in metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            LlmError::CircuitOpen(_) => "circuit_open",
            LlmError::Timeout(_) => "timeout",
            LlmError::Status { .. } => "status",
            LlmError::Connect(_) => "connect",
            LlmError::Malformed(_) => "malformed",
            LlmError::Cut => "cut",
        }
    }

    fn retryable(&self) -> bool {
        match self {
            LlmError::Timeout(_) | LlmError::Connect(_) => true,
            LlmError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    fn from_openai(e: OpenAIError) -> LlmError {
        match e {
            OpenAIError::ApiError(api) => LlmError::Status {
                status: api.status_code.as_u16(),
                message: api.api_error.message,
            },
            OpenAIError::JSONDeserialize(_, content) => {
                LlmError::Malformed(content.chars().take(200).collect())
            }
            OpenAIError::StreamError(e) => {
                let text = e.to_string();
                // A stream whose connection drops mid-body is a cut, not a bad chunk.
                if text.contains("error decoding")
                    || text.contains("connection")
                    || text.contains("body")
                {
                    LlmError::Cut
                } else {
                    LlmError::Malformed(text)
                }
            }
            other => LlmError::Connect(other.to_string()),
        }
    }
}

/// Tokens an answer used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt: u32,
    /// Completion tokens.
    pub completion: u32,
    /// The server reported none, so penpal counted them itself with a tokenizer
    /// ([`estimate_tokens`]): close, but not the provider's own count.
    pub estimated: bool,
}

/// Tokens in `text` by OpenAI's `o200k_base` encoding: what penpal counts when a server
/// reports no usage. Other model families tokenize differently, so the count is an estimate.
pub fn estimate_tokens(text: &str) -> u32 {
    static BPE: std::sync::LazyLock<Option<tiktoken_rs::CoreBPE>> =
        std::sync::LazyLock::new(|| tiktoken_rs::o200k_base().ok());
    match BPE.as_ref() {
        Some(bpe) => bpe.encode_ordinary(text).len() as u32,
        // Unreachable in practice (the encoding is built in); a rough count beats zero.
        None => text.len().div_ceil(4) as u32,
    }
}

/// Tokens a chat prompt costs: each message's content plus the few tokens of framing every
/// message carries in OpenAI's chat format.
fn estimate_prompt(body: &Value) -> u32 {
    body["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .map(|m| 4 + estimate_tokens(m["content"].as_str().unwrap_or_default()))
                .sum::<u32>()
                + 3
        })
        .unwrap_or(0)
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// More text.
    Text(String),
    /// The answer is complete.
    Done(Usage),
}

/// A streamed answer: text pieces, then `Done`, or an error.
pub type Answer = Pin<Box<dyn Stream<Item = Result<Piece, LlmError>> + Send>>;

#[derive(Debug, Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
}

/// The model client.
pub struct LlmClient {
    client: async_openai::Client<OpenAIConfig>,
    settings: LlmSettings,
    breaker: Mutex<BreakerState>,
}

impl LlmClient {
    /// A client for `settings`.
    pub fn new(settings: LlmSettings) -> anyhow::Result<Self> {
        // reqwest is built without a TLS provider of its own; ring is the one the rest of the
        // process uses. Installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        let mut config = OpenAIConfig::new().with_api_base(settings.base_url.trim_end_matches('/'));
        if let Some(key) = &settings.api_key {
            config = config.with_api_key(key.clone());
        }
        Ok(LlmClient {
            client: async_openai::Client::with_config(config)
                .with_http_service(NoteRetryAfter(ReqwestService::new(http))),
            settings,
            breaker: Mutex::new(BreakerState::default()),
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &LlmSettings {
        &self.settings
    }

    fn body(&self, request: &CompletionRequest) -> Value {
        let messages: Vec<Value> = request
            .messages
            .iter()
            .map(|m| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                json!({"role": role, "content": m.content})
            })
            .collect();
        let mut body = json!({
            "model": request.model.clone().unwrap_or_else(|| self.settings.model.clone()),
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        if let Some(t) = request.temperature {
            body["temperature"] = json!(t);
        }
        if let Some(n) = request.max_tokens {
            body["max_tokens"] = json!(n);
        }
        if request.json {
            body["response_format"] = json!({"type": "json_object"});
        }
        body
    }

    fn admit(&self) -> Result<(), LlmError> {
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        match b.open_until {
            Some(until) if Instant::now() < until => {
                Err(LlmError::CircuitOpen(until - Instant::now()))
            }
            Some(_) => {
                // Cool-down over: let requests through; one more failure reopens at once.
                b.open_until = None;
                b.failures = self.settings.breaker_faults.saturating_sub(1);
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn record(&self, ok: bool) {
        let mut b = self.breaker.lock().unwrap_or_else(|p| p.into_inner());
        if ok {
            b.failures = 0;
            return;
        }
        b.failures += 1;
        if b.failures >= self.settings.breaker_faults {
            b.open_until = Some(Instant::now() + self.settings.breaker_cool_down);
            tracing::warn!(base_url = %self.settings.base_url, "language model keeps failing: breaker open");
        }
    }

    /// Streams the answer to `request`. Retries happen here, before the first piece; after it
    /// the stream is the learner's and errors end it.
    pub async fn stream(&self, request: &CompletionRequest) -> Result<Answer, LlmError> {
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| self.settings.model.clone());
        let counted = |outcome: &'static str| {
            metrics::counter!("penpal_model_calls_total", "model" => model.clone(), "outcome" => outcome)
                .increment(1);
        };
        if let Err(e) = self.admit() {
            counted(e.kind());
            return Err(e);
        }
        let started = std::time::Instant::now();
        let body = self.body(request);
        let mut attempt = 0;
        loop {
            match self.open(&body).await {
                Ok(answer) => {
                    self.record(true);
                    counted("ok");
                    metrics::histogram!("penpal_model_first_piece_seconds", "model" => model.clone())
                        .record(started.elapsed().as_secs_f64());
                    return Ok(answer);
                }
                Err((e, asked)) if e.retryable() && attempt < self.settings.retries => {
                    attempt += 1;
                    let wait = retry_wait(attempt, asked, self.settings.first_chunk_timeout);
                    tracing::debug!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "retrying the language model");
                    tokio::time::sleep(wait).await;
                }
                Err((e, _)) => {
                    self.record(false);
                    counted(e.kind());
                    return Err(e);
                }
            }
        }
    }

    /// Sends one request and waits for its first piece; a failure comes with the wait its
    /// `Retry-After` asked for, if any.
    async fn open(&self, body: &Value) -> Result<Answer, (LlmError, Option<Duration>)> {
        RETRY_AFTER
            .scope(Cell::new(None), async {
                self.open_once(body)
                    .await
                    .map_err(|e| (e, RETRY_AFTER.with(Cell::get)))
            })
            .await
    }

    async fn open_once(&self, body: &Value) -> Result<Answer, LlmError> {
        let first_timeout = self.settings.first_chunk_timeout;
        let idle = self.settings.idle_timeout;
        let start = async {
            let mut upstream = self
                .client
                .chat()
                .create_stream_byot::<_, Value>(body)
                .await
                .map_err(|e| match e {
                    // Before any event, an unreadable body is a client error whose body is
                    // not OpenAI's error shape (async-openai keeps no status for it).
                    OpenAIError::JSONDeserialize(_, content) => LlmError::Status {
                        status: 400,
                        message: content.chars().take(200).collect(),
                    },
                    other => LlmError::from_openai(other),
                })?;
            let first = upstream.next().await;
            Ok::<_, LlmError>((upstream, first))
        };
        let (upstream, first) = tokio::time::timeout(first_timeout, start)
            .await
            .map_err(|_| LlmError::Timeout(first_timeout))??;
        let first = match first {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return Err(LlmError::from_openai(e)),
            None => return Err(LlmError::Cut),
        };
        let state = Reader {
            upstream,
            pending: Some(first),
            usage: None,
            prompt: body.clone(),
            text: String::new(),
            finished: false,
            done: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(
            state,
            move |mut r| async move { r.next(idle).await.map(|item| (item, r)) },
        )))
    }

    /// The whole answer to `request`, with its usage.
    pub async fn complete(&self, request: &CompletionRequest) -> Result<(String, Usage), LlmError> {
        let mut answer = self.stream(request).await?;
        let mut text = String::new();
        while let Some(piece) = answer.next().await {
            match piece? {
                Piece::Text(t) => text.push_str(&t),
                Piece::Done(usage) => return Ok((text, usage)),
            }
        }
        Err(LlmError::Cut)
    }
}

tokio::task_local! {
    /// What the last response of this attempt asked for in `Retry-After`.
    static RETRY_AFTER: Cell<Option<Duration>>;
}

/// async-openai's plain transport (no retries of its own), noting a response's `Retry-After`
/// (or OpenAI's `retry-after-ms`) for the attempt that awaits it.
#[derive(Clone)]
struct NoteRetryAfter(ReqwestService);

impl tower::Service<HttpRequestFactory> for NoteRetryAfter {
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<reqwest::Response, OpenAIError>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let sent = self.0.call(request);
        Box::pin(async move {
            let response = sent.await?;
            let asked = retry_after(response.headers());
            // Outside an attempt's scope (nobody asking) there is nothing to note.
            let _ = RETRY_AFTER.try_with(|c| c.set(asked));
            Ok(response)
        })
    }
}

/// The wait a response asks for: `retry-after-ms`, or `Retry-After` in seconds.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
    };
    number("retry-after-ms")
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .or_else(|| number("retry-after").map(Duration::from_secs_f64))
}

/// How long to wait before retry `attempt` (1, 2…): what the server asked, if it asked for
/// no longer than `limit`; otherwise exponential backoff from 200 ms with full jitter in its
/// upper half, so many turns failing together do not retry together.
fn retry_wait(attempt: u32, asked: Option<Duration>, limit: Duration) -> Duration {
    if let Some(asked) = asked {
        return asked.min(limit);
    }
    let base = Duration::from_millis(200) * 2u32.saturating_pow(attempt - 1).min(64);
    base / 2 + base.mul_f64(rand::random::<f64>() / 2.0)
}

/// Turns upstream chunks into pieces.
struct Reader {
    upstream: async_openai::types::stream::StreamResponse<Value>,
    pending: Option<Value>,
    /// What the server reported, if it did.
    usage: Option<Usage>,
    /// The request, and the text so far: counted when the server reports no usage.
    prompt: Value,
    text: String,
    finished: bool,
    done: bool,
}

impl Reader {
    async fn next(&mut self, idle: Duration) -> Option<Result<Piece, LlmError>> {
        loop {
            if self.done {
                return None;
            }
            let chunk = match self.pending.take() {
                Some(chunk) => chunk,
                None => match tokio::time::timeout(idle, self.upstream.next()).await {
                    Err(_) => return self.fail(LlmError::Timeout(idle)),
                    Ok(Some(Ok(chunk))) => chunk,
                    Ok(Some(Err(e))) => return self.fail(LlmError::from_openai(e)),
                    Ok(None) if self.finished => {
                        self.done = true;
                        let usage = self.usage.unwrap_or_else(|| Usage {
                            prompt: estimate_prompt(&self.prompt),
                            completion: estimate_tokens(&self.text),
                            estimated: true,
                        });
                        return Some(Ok(Piece::Done(usage)));
                    }
                    Ok(None) => return self.fail(LlmError::Cut),
                },
            };
            if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
                let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
                self.usage = Some(Usage {
                    prompt: n("prompt_tokens"),
                    completion: n("completion_tokens"),
                    estimated: false,
                });
            }
            let choice = chunk.get("choices").and_then(|c| c.get(0));
            if choice
                .and_then(|c| c.get("finish_reason"))
                .is_some_and(|f| !f.is_null())
            {
                self.finished = true;
            }
            let text = choice
                .and_then(|c| c.get("delta").or_else(|| c.get("message")))
                .and_then(|d| d.get("content"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !text.is_empty() {
                if self.usage.is_none() {
                    self.text.push_str(text);
                }
                return Some(Ok(Piece::Text(text.to_string())));
            }
        }
    }

    fn fail(&mut self, e: LlmError) -> Option<Result<Piece, LlmError>> {
        self.done = true;
        Some(Err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_follows_retry_after_or_backs_off_with_jitter() {
        let limit = Duration::from_secs(30);
        assert_eq!(
            retry_wait(1, Some(Duration::from_secs(2)), limit),
            Duration::from_secs(2)
        );
        assert_eq!(retry_wait(1, Some(Duration::from_secs(600)), limit), limit);
        for attempt in 1..=3 {
            let base = 200u128 << (attempt - 1);
            let waits: Vec<u128> = (0..50)
                .map(|_| retry_wait(attempt, None, limit).as_millis())
                .collect();
            assert!(
                waits.iter().all(|w| (base / 2..=base).contains(w)),
                "{waits:?}"
            );
            assert!(waits.iter().any(|w| *w != waits[0]), "jittered");
        }
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        h.clear();
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}
