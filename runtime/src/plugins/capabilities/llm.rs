//! `llm`: one completion from the host's model, metered against the plugin (its tokens are
//! counted in its health and reach the usage the operator sees). Requires
//! `capabilities.llm = true`.

use std::sync::Arc;

use wasmtime::component::Linker;

use super::{BoxFuture, CallState, Capability, Ctx, Identity, Services, View};
use crate::plugins::bindings::{v0_1, v0_2};
use crate::plugins::error::PluginError;

/// A completion request as the host's model client takes it.
pub type LlmRequest = v0_2::types::CompletionRequest;

/// A finished completion.
#[derive(Debug, Clone)]
pub struct LlmAnswer {
    /// The text.
    pub content: String,
    /// Prompt tokens used.
    pub prompt_tokens: u32,
    /// Completion tokens used.
    pub completion_tokens: u32,
}

/// The host's model, as the `llm` capability reaches it.
pub trait LlmBackend: Send + Sync {
    /// Runs `request` for `plugin` to completion, recording its usage under the plugin's name;
    /// `Err` is a message for an `unavailable` error.
    fn complete<'a>(
        &'a self,
        plugin: &'a str,
        request: LlmRequest,
    ) -> BoxFuture<'a, Result<LlmAnswer, String>>;
}

/// The `llm` capability.
pub(crate) struct Llm;

impl Capability for Llm {
    type State = Llm;

    fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
        v0_1::llm::add_to_linker::<_, View<Llm>>(linker, CallState::view::<Llm>)?;
        v0_2::llm::add_to_linker::<_, View<Llm>>(linker, CallState::view::<Llm>)
    }

    fn validate(who: &Identity, services: &Services) -> Vec<String> {
        if who.granted.llm && services.llm.is_none() {
            vec![
                "the llm capability is granted but this host has no model configured: \
                  every completion will answer `unavailable`"
                    .to_string(),
            ]
        } else {
            Vec::new()
        }
    }

    fn state(_: &Arc<Identity>, _: &Services) -> Llm {
        Llm
    }
}

impl Ctx<'_, Llm> {
    async fn complete(&self, request: LlmRequest) -> Result<LlmAnswer, PluginError> {
        if !self.who.granted.llm {
            return Err(self.denied("the llm capability"));
        }
        if request.messages.is_empty() {
            return Err(PluginError::InvalidInput(
                "a completion request needs at least one message".into(),
            ));
        }
        let Some(backend) = self.services.llm.clone() else {
            return Err(PluginError::Unavailable(
                "no language model is configured on this host".into(),
            ));
        };
        let answer = backend
            .complete(&self.who.name, request)
            .await
            .map_err(PluginError::Unavailable)?;
        self.who
            .health
            .record_tokens(answer.prompt_tokens.into(), answer.completion_tokens.into());
        Ok(answer)
    }
}

macro_rules! llm_host {
    ($($version:ident),*) => {$(
        impl $version::llm::Host for Ctx<'_, Llm> {
            async fn complete(
                &mut self,
                request: $version::types::CompletionRequest,
            ) -> wasmtime::Result<Result<$version::llm::Completion, $version::types::PluginError>> {
                Ok(Ctx::complete(self, request.into())
                    .await
                    .map(|answer| $version::llm::Completion {
                        content: answer.content,
                        usage: $version::llm::Usage {
                            prompt_tokens: answer.prompt_tokens,
                            completion_tokens: answer.completion_tokens,
                        },
                    })
                    .map_err(Into::into))
            }
        }
    )*};
}

llm_host!(v0_1, v0_2);
