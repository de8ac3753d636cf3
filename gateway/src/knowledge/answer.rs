//! Answering a question from a tenant's knowledge: retrieve, build the prompt within budgets,
//! stream the generation. Citations are the passages that were in the prompt.
//!
//! Whether the coach answers or declines is decided twice. Before generating: no passage clears
//! the relevance floor (the question is off-topic). At the first token: the model itself says
//! the sources do not hold the answer, read from its probabilities (how likely it was to open
//! with the decline the prompt asks for, against `brain.abstain_threshold`, chosen on a dev set)
//! or, on backends that do not report them, from the words it opens with.

use std::collections::VecDeque;

use coach_brain::model::{ChatMessage, GenerateEvent, GenerateParams, GenerateRequest, ModelError};
use coach_brain::prompt::{self, Citation, Persona, PromptConfig};
use coach_brain::retrieve::Mode;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Brain, tenant};
use crate::error::ApiError;
use crate::store::Store;
use crate::tenancy::TenantScope;

/// One item of a generation stream.
type Event = Result<GenerateEvent, ModelError>;

/// An answer being produced.
pub struct Answer {
    /// Sources placed in the prompt (empty when the coach does not know).
    pub citations: Vec<Citation>,
    /// False when the coach declined: the text is the persona's "I don't know" and the
    /// conversation should go to a human.
    pub confident: bool,
    /// What the decision was made from.
    pub signals: Signals,
    /// Events already read while deciding, given out first.
    pending: VecDeque<Event>,
    /// The rest of the generation.
    events: Option<mpsc::Receiver<Event>>,
    /// The passages' texts as placed in the prompt (aligned with `citations`).
    sources: Vec<String>,
    /// The question (a reply may repeat its words).
    question: String,
    /// What a decline says.
    decline: String,
    /// `brain.support_floor`.
    support_floor: f32,
}

/// An answer as it is stored and shown once generated: repetition removed, unsupported
/// sentences dropped, citations naming the passages that support what is left.
#[derive(Clone, Debug, PartialEq)]
pub struct Finished {
    /// The reply.
    pub text: String,
    /// False when the coach declined (before generating, or because nothing it said was
    /// supported by its sources).
    pub confident: bool,
    /// The passages the reply rests on.
    pub citations: Vec<Citation>,
    /// Sentences dropped as unsupported.
    pub dropped: usize,
    /// The best support of any sentence (see [`coach_brain::grounding::Grounded::best`]).
    pub support: f32,
}

/// What the decision to answer or decline was made from (reported by `gateway eval answers`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Signals {
    /// The best passage's dense similarity.
    pub relevance: f32,
    /// How likely the model was to open with the decline (llama.cpp only).
    pub abstain: Option<f32>,
    /// The model's reply opened with the decline.
    pub said_decline: bool,
    /// The share of the question's terms (stemmed, without stopwords) found in the passages
    /// given to the model: a question about something the sources never name scores low.
    pub coverage: f32,
}

/// The share of `question`'s distinct terms that occur in `passages` (1 for a question with no
/// terms).
pub fn coverage(question: &str, passages: &[coach_brain::retrieve::Passage]) -> f32 {
    let wanted: std::collections::BTreeSet<String> =
        coach_brain::keyword::terms(question).collect();
    if wanted.is_empty() {
        return 1.0;
    }
    let found: std::collections::HashSet<String> = passages
        .iter()
        .flat_map(|p| coach_brain::keyword::terms(&p.chunk.text).collect::<Vec<_>>())
        .collect();
    let hits = wanted.iter().filter(|t| found.contains(*t)).count();
    hits as f32 / wanted.len() as f32
}

impl Answer {
    /// The next event of the answer: `Started` once, `Token`s, then `Done`.
    pub async fn next(&mut self) -> Option<Event> {
        if let Some(event) = self.pending.pop_front() {
            return Some(event);
        }
        self.events.as_mut()?.recv().await
    }

    fn declined(
        decline: String,
        before: Vec<Event>,
        done: GenerateEvent,
        signals: Signals,
    ) -> Self {
        let mut pending: VecDeque<Event> = before.into();
        pending.push_back(Ok(GenerateEvent::Token(decline.clone())));
        pending.push_back(Ok(done));
        Self {
            citations: Vec::new(),
            confident: false,
            signals,
            pending,
            events: None,
            sources: Vec::new(),
            question: String::new(),
            decline,
            support_floor: 0.0,
        }
    }

    /// The answer as stored, from the text generated: what a stopped loop left is removed,
    /// then each sentence is checked against the passages (`brain.support_floor`); when none
    /// is supported the coach declines. A reply to a program check-in (no passages) is kept.
    pub fn finish(&self, generated: &str) -> Finished {
        self.finish_at(generated, self.support_floor)
    }

    /// [`Answer::finish`] with another support floor (calibration).
    pub fn finish_at(&self, generated: &str, floor: f32) -> Finished {
        let text = coach_brain::repetition::clean(generated.trim());
        if !self.confident || self.sources.is_empty() {
            return Finished {
                text,
                confident: self.confident,
                citations: self.citations.clone(),
                dropped: 0,
                support: 1.0,
            };
        }
        let sources: Vec<&str> = self.sources.iter().map(String::as_str).collect();
        let grounded = coach_brain::grounding::ground(&text, &sources, &self.question, floor);
        if grounded.text.is_empty() {
            return Finished {
                text: self.decline.clone(),
                confident: false,
                citations: Vec::new(),
                dropped: grounded.dropped,
                support: grounded.best,
            };
        }
        let citations = if grounded.used.is_empty() {
            self.citations.clone()
        } else {
            grounded
                .used
                .iter()
                .filter_map(|&i| self.citations.get(i).cloned())
                .collect()
        };
        Finished {
            text: grounded.text,
            confident: true,
            citations,
            dropped: grounded.dropped,
            support: grounded.best,
        }
    }
}

/// What the coach knows of the person it answers, beyond the knowledge base.
#[derive(Clone, Copy, Debug, Default)]
pub struct Context<'a> {
    /// Their program (a reply to a check-in).
    pub program: Option<&'a str>,
    /// What it remembers of them.
    pub memory: &'a [crate::store::memory::MemoryItem],
    /// Their language (a BCP 47 tag): the reply's, instead of the persona's.
    pub language: Option<&'a str>,
    /// What a decline says (the persona's "I don't know" when absent).
    pub decline: Option<&'a str>,
    /// The tenant's persona when the caller has read it already (else it is read here).
    pub persona: Option<&'a Persona>,
}

/// The tenant's coach persona from its profile (defaults when unset).
pub async fn persona(store: &dyn Store, scope: &TenantScope) -> Result<Persona, ApiError> {
    let (_, profile) = store.tenant_profile(scope).await?;
    Ok(brain_persona(profile.persona.as_ref()))
}

/// The brain's persona from the tenant's (it reads the same stored fields as the API's).
pub fn brain_persona(persona: Option<&crate::tenant::Persona>) -> Persona {
    persona
        .and_then(|p| serde_json::to_value(p).ok())
        .and_then(|p| serde_json::from_value(p).ok())
        .unwrap_or_default()
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
        self.answer_with(store, scope, question, history, Context::default(), cancel)
            .await
    }

    /// [`Brain::answer`] with what the coach knows about the person: their program (a reply to
    /// a check-in) and its memory of them. With a program, the coach answers even when no
    /// passage is relevant: the reply is about the program, not a question about the material;
    /// a question about what the memory holds ("what was my goal?") is answered from it.
    pub async fn answer_with(
        &self,
        store: &dyn Store,
        scope: &TenantScope,
        question: &str,
        history: &[ChatMessage],
        context: Context<'_>,
        cancel: CancellationToken,
    ) -> Result<Answer, ApiError> {
        let program = context.program;
        let mut persona = match context.persona {
            Some(known) => known.clone(),
            None => persona(store, scope).await?,
        };
        if let Some(lang) = context.language {
            persona.language = crate::language::name(lang);
        }
        let declined = context
            .decline
            .map_or_else(|| prompt::dont_know(&persona).to_owned(), str::to_owned);
        let config = PromptConfig {
            passage_tokens: self.config.passage_tokens as usize,
            max_passages: self.config.passages as usize,
            instruction: self.config.instruction.clone(),
            ..PromptConfig::default()
        };
        let found = self
            .search(store, scope, question, config.max_passages, Mode::Hybrid)
            .await?;
        let top = &found.passages[..found.passages.len().min(config.max_passages)];
        let mut signals = Signals {
            relevance: found.relevance,
            coverage: coverage(question, top),
            ..Signals::default()
        };
        let generator = self.generator.clone();
        let count = move |text: &str| {
            generator
                .count_tokens(text)
                .unwrap_or_else(|_| text.len().div_ceil(3))
        };
        let remembered =
            crate::memory::prompt_lines(context.memory, crate::memory::PROMPT_TOKENS, &count);
        let covered = signals.coverage >= self.config.coverage_floor;
        if (!found.confident || !covered)
            && program.is_none()
            && !crate::memory::asks_about(question, &remembered)
        {
            let done = GenerateEvent::Done(Default::default());
            return Ok(Answer::declined(declined, Vec::new(), done, signals));
        }
        let passages = if found.confident {
            found.passages
        } else {
            Vec::new()
        };
        let mut built = prompt::build(&persona, &passages, history, question, &config, &count);
        if let (Some(block), Some(system)) = (
            crate::memory::prompt_block(&remembered),
            built.messages.first_mut(),
        ) {
            system.content.push_str("\n\n");
            system.content.push_str(&block);
            // What the person said is a source too: a sentence about their goal is supported.
            built.sources.extend(remembered);
        }
        if let (Some(program), Some(system)) = (program, built.messages.first_mut()) {
            system.content.push_str("\n\n");
            system.content.push_str(program);
        }
        // A reply to a check-in is about the program: it is not declined.
        let may_decline = program.is_none();
        let abstain = if may_decline {
            prompt::DECLINES.iter().map(|s| (*s).to_string()).collect()
        } else {
            Vec::new()
        };
        let request = GenerateRequest {
            tenant: tenant(scope),
            messages: built.messages,
            params: GenerateParams {
                max_tokens: self.config.max_answer_tokens as usize,
                abstain,
                ..GenerateParams::default()
            },
        };
        let generation = cancel.child_token();
        let mut events = self
            .generator
            .generate(request, generation.clone())
            .await
            .map_err(model_error)?;
        let mut answer = Answer {
            citations: built.citations,
            confident: true,
            signals,
            pending: VecDeque::new(),
            events: None,
            // A reply to a check-in is about the program: not checked against passages.
            sources: if may_decline {
                built.sources
            } else {
                Vec::new()
            },
            question: question.to_owned(),
            decline: declined.clone(),
            support_floor: self.config.support_floor,
        };
        if !may_decline {
            answer.events = Some(events);
            return Ok(answer);
        }
        // Read up to the first words to decide; what was read is given out first.
        let mut text = String::new();
        let mut ended = None;
        let decline = loop {
            let Some(event) = events.recv().await else {
                break true;
            };
            match event {
                Ok(GenerateEvent::Abstain(p)) => {
                    signals.abstain = Some(p);
                    if p >= self.config.abstain_threshold {
                        break true;
                    }
                }
                Ok(GenerateEvent::Token(piece)) => {
                    text.push_str(&piece);
                    answer.pending.push_back(Ok(GenerateEvent::Token(piece)));
                    match prompt::opens_with_decline(&text) {
                        Some(true) => {
                            signals.said_decline = true;
                            break true;
                        }
                        Some(false) => break false,
                        None => {}
                    }
                }
                Ok(GenerateEvent::Done(usage)) => {
                    answer.pending.push_back(Ok(GenerateEvent::Done(usage)));
                    ended = Some(usage);
                    // A reply that ended inside the decline's words, or said nothing.
                    signals.said_decline = prompt::opens_with_decline(&text) != Some(false);
                    break signals.said_decline;
                }
                Err(e) => {
                    answer.pending.push_back(Err(e));
                    break false;
                }
                Ok(started @ GenerateEvent::Started { .. }) => {
                    answer.pending.push_back(Ok(started))
                }
            }
        };
        answer.signals = signals;
        if !decline {
            answer.events = Some(events);
            return Ok(answer);
        }
        // Stop generating (unless it ended); the usage so far still counts against the tenant.
        let usage = match ended {
            Some(usage) => usage,
            None => {
                generation.cancel();
                let mut usage = Default::default();
                while let Some(event) = events.recv().await {
                    if let Ok(GenerateEvent::Done(u)) = event {
                        usage = u;
                        break;
                    }
                }
                usage
            }
        };
        let started = answer.pending.drain(..).filter(is_started).collect();
        Ok(Answer::declined(
            declined,
            started,
            GenerateEvent::Done(usage),
            signals,
        ))
    }
}

fn is_started(event: &Event) -> bool {
    matches!(event, Ok(GenerateEvent::Started { .. }))
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
