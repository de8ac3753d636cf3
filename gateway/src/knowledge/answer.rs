//! Answering a question from a tenant's knowledge: retrieve, build the prompt within budgets,
//! stream the generation. Citations are the passages that were in the prompt.

use coach_brain::model::{ChatMessage, GenerateEvent, GenerateParams, GenerateRequest, ModelError};
use coach_brain::prompt::{self, Citation, Persona, PromptConfig};
use coach_brain::retrieve::Mode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Brain, tenant};
use crate::error::ApiError;
use crate::store::Store;
use crate::tenancy::TenantScope;

/// An answer being produced.
pub struct Answer {
    /// Sources placed in the prompt (empty when the coach does not know).
    pub citations: Vec<Citation>,
    /// False when nothing relevant was found: the text is the persona's "I don't know" and the
    /// conversation should go to a human.
    pub confident: bool,
    /// Generated text as it comes.
    pub events: mpsc::Receiver<Result<GenerateEvent, ModelError>>,
}

/// The tenant's coach persona from its profile (defaults when unset).
pub async fn persona(store: &dyn Store, scope: &TenantScope) -> Result<Persona, ApiError> {
    let (_, profile) = store.tenant_profile(scope).await?;
    // The brain's persona reads the same stored fields as the API's.
    Ok(profile
        .persona
        .and_then(|p| serde_json::to_value(p).ok())
        .and_then(|p| serde_json::from_value(p).ok())
        .unwrap_or_default())
}

impl Brain {
    /// Starts answering `question` with `history` (oldest first) as context.
    pub async fn answer(
        &self,
        store: &dyn Store,
        scope: &TenantScope,
        question: &str,
        history: &[ChatMessage],
        cancel: CancellationToken,
    ) -> Result<Answer, ApiError> {
        self.answer_with(store, scope, question, history, None, cancel)
            .await
    }

    /// [`Brain::answer`] with what the coach knows about the person's program (a reply to a
    /// check-in). With a program, the coach answers even when no passage is relevant: the
    /// reply is about the program, not a question about the material.
    pub async fn answer_with(
        &self,
        store: &dyn Store,
        scope: &TenantScope,
        question: &str,
        history: &[ChatMessage],
        program: Option<&str>,
        cancel: CancellationToken,
    ) -> Result<Answer, ApiError> {
        let persona = persona(store, scope).await?;
        let config = PromptConfig {
            passage_tokens: self.config.passage_tokens as usize,
            max_passages: self.config.passages as usize,
            ..PromptConfig::default()
        };
        let (passages, confident) = self
            .search(store, scope, question, config.max_passages, Mode::Hybrid)
            .await?;
        if !confident && program.is_none() {
            let (tx, events) = mpsc::channel(2);
            let _ = tx
                .send(Ok(GenerateEvent::Token(prompt::dont_know(&persona).into())))
                .await;
            let _ = tx.send(Ok(GenerateEvent::Done(Default::default()))).await;
            return Ok(Answer {
                citations: Vec::new(),
                confident: false,
                events,
            });
        }
        let generator = self.generator.clone();
        let count = move |text: &str| {
            generator
                .count_tokens(text)
                .unwrap_or_else(|_| text.len().div_ceil(3))
        };
        let passages = if confident { passages } else { Vec::new() };
        let mut built = prompt::build(&persona, &passages, history, question, &config, &count);
        if let (Some(program), Some(system)) = (program, built.messages.first_mut()) {
            system.content.push_str("\n\n");
            system.content.push_str(program);
        }
        let request = GenerateRequest {
            tenant: tenant(scope),
            messages: built.messages,
            params: GenerateParams {
                max_tokens: self.config.max_answer_tokens as usize,
                ..GenerateParams::default()
            },
        };
        let events = self
            .generator
            .generate(request, cancel)
            .await
            .map_err(model_error)?;
        Ok(Answer {
            citations: built.citations,
            confident: true,
            events,
        })
    }
}

/// A model error as an API error: a full queue is a 429, anything else a 503.
pub fn model_error(e: ModelError) -> ApiError {
    match e {
        ModelError::Busy(why) => {
            tracing::info!(reason = %why, "answer refused: generation queue full");
            ApiError::TooManyRequests {
                retry_after_secs: 2,
                limit: 0,
            }
        }
        other => ApiError::Unavailable(format!("answer: {other}")),
    }
}
