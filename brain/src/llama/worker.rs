//! The worker side of the generator: the shared queue, the OS threads that own a llama.cpp
//! context each, and how one request runs (prefix reuse, prompt evaluation, sampling, stops).

use std::num::NonZeroU32;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::generate::{Event, GeneratorConfig};
use super::queue::FairQueue;
use super::text::{StopFilter, Utf8Decoder};
use super::{backend, thread_count};
use crate::Tenant;
use crate::model::{GenerateEvent, GenerateParams, ModelError, Usage};

/// Prompt tokens evaluated per decode call (llama.cpp's `n_batch` and `n_ubatch`).
const PROMPT_BATCH: u32 = 512;
/// llama.cpp's `LLAMA_DEFAULT_SEED`: the sampler draws a random seed.
const RANDOM_SEED: u32 = u32::MAX;

/// A request waiting for a worker.
pub(super) struct Job {
    pub(super) tenant: Tenant,
    pub(super) prompt: Vec<LlamaToken>,
    pub(super) params: GenerateParams,
    pub(super) events: mpsc::Sender<Event>,
    pub(super) cancel: CancellationToken,
    pub(super) enqueued: Instant,
}

/// The queue shared by the generator and its workers.
pub(super) struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    queue: FairQueue<Job>,
    shutdown: bool,
}

impl Shared {
    /// An empty queue with these limits (see [`GeneratorConfig`]).
    pub(super) fn new(max_queue: usize, per_tenant_queue: usize) -> Self {
        Self {
            state: Mutex::new(State {
                queue: FairQueue::new(max_queue, per_tenant_queue),
                shutdown: false,
            }),
            wake: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker never panics while holding the lock; if one did, the queue is still sound.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a job, or answers `Busy` beyond the limits.
    pub(super) fn submit(&self, tenant: Tenant, job: Job) -> Result<(), ModelError> {
        self.lock().queue.push(tenant, job)?;
        self.wake.notify_one();
        Ok(())
    }

    /// Blocks the worker until a job is due; `None` once the generator is dropped.
    fn next_job(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if state.shutdown {
                return None;
            }
            if let Some(job) = state.queue.pop() {
                return Some(job);
            }
            state = self
                .wake
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Stops the workers once they finish their current job.
    pub(super) fn shut_down(&self) {
        self.lock().shutdown = true;
        self.wake.notify_all();
    }
}

/// Starts worker `id` and waits until its context exists; returns the context size.
pub(super) fn spawn_worker(
    id: usize,
    model: &Arc<LlamaModel>,
    shared: &Arc<Shared>,
    config: &GeneratorConfig,
) -> Result<usize, String> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<usize, String>>();
    let model = Arc::clone(model);
    let shared = Arc::clone(shared);
    let threads = thread_count(config.threads);
    let n_ctx = NonZeroU32::new(config.context_tokens);
    std::thread::Builder::new()
        .name(format!("llama-generate-{id}"))
        .spawn(move || {
            let params = LlamaContextParams::default()
                .with_n_ctx(n_ctx)
                .with_n_batch(PROMPT_BATCH)
                .with_n_ubatch(PROMPT_BATCH)
                .with_n_threads(threads)
                .with_n_threads_batch(threads);
            let backend = match backend() {
                Ok(backend) => backend,
                Err(error) => {
                    let _ = ready_tx.send(Err(error.to_string()));
                    return;
                }
            };
            let ctx = match model.new_context(backend, params) {
                Ok(ctx) => ctx,
                Err(error) => {
                    let _ = ready_tx.send(Err(format!(
                        "creating a context of {n_ctx:?} tokens: {error}"
                    )));
                    return;
                }
            };
            let mut worker = Worker::new(id, &model, ctx);
            let _ = ready_tx.send(Ok(worker.n_ctx));
            drop(ready_tx);
            while let Some(job) = shared.next_job() {
                worker.run(job);
            }
            tracing::debug!(worker = id, "generation worker stopped");
        })
        .map_err(|error| format!("starting worker thread {id}: {error}"))?;
    ready_rx
        .recv()
        .map_err(|_| format!("worker thread {id} died while creating its context"))?
}

/// One worker: a context, the batch it decodes with, and the tokens its KV cache holds.
struct Worker<'m> {
    id: usize,
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    /// The tokens whose keys and values sequence 0 of the cache holds, at positions 0...
    cached: Vec<LlamaToken>,
    n_ctx: usize,
    n_batch: usize,
}

impl<'m> Worker<'m> {
    fn new(id: usize, model: &'m LlamaModel, ctx: LlamaContext<'m>) -> Self {
        let n_ctx = usize::try_from(ctx.n_ctx()).unwrap_or(usize::MAX);
        let n_batch = usize::try_from(ctx.n_batch()).unwrap_or(1).max(1);
        Self {
            id,
            model,
            ctx,
            batch: LlamaBatch::new(n_batch, 1),
            cached: Vec::new(),
            n_ctx,
            n_batch,
        }
    }

    /// Runs one job: `Started`, the tokens, then `Done` (or the error).
    fn run(&mut self, job: Job) {
        let Job {
            tenant,
            prompt,
            params,
            events,
            cancel,
            enqueued,
        } = job;
        if cancel.is_cancelled() || events.is_closed() {
            return;
        }
        let queued = enqueued.elapsed();
        let span = tracing::info_span!("generate", worker = self.id, tenant = %tenant.id());
        let _entered = span.enter();
        let started = Instant::now();
        if !deliver(
            &events,
            &cancel,
            Ok(GenerateEvent::Started {
                at: started,
                queued,
            }),
        ) {
            return;
        }
        match self.generate(&prompt, &params, &events, &cancel) {
            Ok(usage) => {
                tracing::info!(
                    prompt_tokens = usage.prompt_tokens,
                    cached_tokens = usage.cached_tokens,
                    completion_tokens = usage.completion_tokens,
                    cancelled = cancel.is_cancelled(),
                    queued = ?queued,
                    elapsed = ?started.elapsed(),
                    "generation finished"
                );
                let done = Ok(GenerateEvent::Done(usage));
                if cancel.is_cancelled() {
                    // Best effort: a reader that cancelled may no longer be reading.
                    let _ = events.try_send(done);
                } else {
                    deliver(&events, &cancel, done);
                }
            }
            Err(error) => {
                tracing::warn!(%error, "generation failed");
                deliver(&events, &cancel, Err(error));
            }
        }
    }

    fn generate(
        &mut self,
        prompt: &[LlamaToken],
        params: &GenerateParams,
        events: &mpsc::Sender<Event>,
        cancel: &CancellationToken,
    ) -> Result<Usage, ModelError> {
        if prompt.is_empty() || prompt.len() >= self.n_ctx {
            return Err(ModelError::Input(format!(
                "the prompt has {} tokens but the context window holds {}",
                prompt.len(),
                self.n_ctx
            )));
        }
        let reused = self.reuse_prefix(prompt);
        let mut usage = Usage {
            prompt_tokens: prompt.len() - reused,
            cached_tokens: reused,
            completion_tokens: 0,
        };
        let prefill = Instant::now();
        let mut logits_at = self.decode_prompt(&prompt[reused..])?;
        tracing::debug!(
            evaluated = usage.prompt_tokens,
            reused,
            elapsed = ?prefill.elapsed(),
            "prompt evaluated"
        );

        let model = self.model;
        let vocab = model.vocab();
        let penalties = LlamaSampler::penalties(
            model.n_vocab(),
            params.repeat_last_n.max(0),
            params.repeat_penalty.max(f32::MIN_POSITIVE),
            0.0,
            0.0,
        );
        let mut sampler = if params.temperature > 0.0 {
            LlamaSampler::chain_simple([
                penalties,
                LlamaSampler::temp(params.temperature),
                LlamaSampler::dist(RANDOM_SEED),
            ])
        } else {
            LlamaSampler::chain_simple([penalties, LlamaSampler::greedy()])
        };
        // Stops a reply that has started to repeat itself.
        let mut loops = crate::repetition::LoopGuard::new();
        let mut utf8 = Utf8Decoder::default();
        let mut stops = StopFilter::new(&params.stop);
        // The answer also ends where the context window does.
        let budget = params.max_tokens.min(self.n_ctx - prompt.len());
        if !params.abstain.is_empty() {
            let mut firsts: Vec<LlamaToken> = params
                .abstain
                .iter()
                .filter_map(|words| {
                    vocab
                        .tokenize(words.as_bytes(), false, false)
                        .first()
                        .copied()
                })
                .collect();
            firsts.sort_unstable_by_key(|token| token.0);
            firsts.dedup();
            let p = first_token_probability(self.ctx.get_logits_ith(logits_at), &firsts);
            if !deliver(events, cancel, Ok(GenerateEvent::Abstain(p))) {
                return Ok(usage);
            }
        }
        while usage.completion_tokens < budget {
            if cancel.is_cancelled() {
                return Ok(usage);
            }
            let token = sampler.sample(&self.ctx, logits_at);
            if vocab.is_eog(token) {
                break;
            }
            usage.completion_tokens += 1;
            let text = utf8.push(&vocab.token_to_piece(token, false, None));
            let (shown, stopped) = stops.push(&text);
            let looping = loops.push(&shown);
            if !shown.is_empty() && !deliver(events, cancel, Ok(GenerateEvent::Token(shown))) {
                return Ok(usage);
            }
            if stopped {
                return Ok(usage);
            }
            if looping {
                tracing::debug!(
                    tokens = usage.completion_tokens,
                    "the reply repeats itself: stopped"
                );
                return Ok(usage);
            }
            if usage.completion_tokens < budget {
                logits_at = self.decode_next(token)?;
            }
        }
        let (shown, stopped) = stops.push(&utf8.finish());
        let rest = if stopped {
            shown
        } else {
            shown + &stops.finish()
        };
        if !rest.is_empty() {
            deliver(events, cancel, Ok(GenerateEvent::Token(rest)));
        }
        Ok(usage)
    }

    /// Keeps the longest cached prefix shared with `prompt` and drops the rest of the cache;
    /// returns the number of prompt tokens that need no evaluation.
    fn reuse_prefix(&mut self, prompt: &[LlamaToken]) -> usize {
        let mut common = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(cached, wanted)| cached == wanted)
            .count();
        // The last prompt token is always evaluated: sampling needs its logits.
        if common == prompt.len() {
            common = common.saturating_sub(1);
        }
        if common < self.cached.len() {
            let from = u32::try_from(common).unwrap_or(u32::MAX);
            // A partial removal can fail (recurrent models): start from an empty cache then.
            if !matches!(
                self.ctx.clear_kv_cache_seq(Some(0), Some(from), None),
                Ok(true)
            ) {
                self.ctx.clear_kv_cache();
                common = 0;
            }
        }
        self.cached.truncate(common);
        common
    }

    /// Evaluates new prompt tokens after the cached ones, `n_batch` at a time, with logits
    /// for the last one only; returns that token's index in the last batch.
    fn decode_prompt(&mut self, tokens: &[LlamaToken]) -> Result<i32, ModelError> {
        let mut logits_at = 0;
        let mut done = 0;
        for chunk in tokens.chunks(self.n_batch) {
            done += chunk.len();
            let last_chunk = done == tokens.len();
            self.batch.clear();
            for (offset, &token) in chunk.iter().enumerate() {
                let pos = position(self.cached.len() + offset)?;
                let logits = last_chunk && offset + 1 == chunk.len();
                self.batch
                    .add(token, pos, &[0], logits)
                    .map_err(|error| ModelError::Inference(format!("batching: {error}")))?;
            }
            self.decode_batch()?;
            self.cached.extend_from_slice(chunk);
            logits_at = self.batch.n_tokens() - 1;
        }
        Ok(logits_at)
    }

    /// Evaluates one generated token; returns the index of its logits.
    fn decode_next(&mut self, token: LlamaToken) -> Result<i32, ModelError> {
        self.batch.clear();
        let pos = position(self.cached.len())?;
        self.batch
            .add(token, pos, &[0], true)
            .map_err(|error| ModelError::Inference(format!("batching: {error}")))?;
        self.decode_batch()?;
        self.cached.push(token);
        Ok(0)
    }

    fn decode_batch(&mut self) -> Result<(), ModelError> {
        if let Err(error) = self.ctx.decode(&mut self.batch) {
            // The cache may hold part of the batch: forget it rather than trust it.
            self.ctx.clear_kv_cache();
            self.cached.clear();
            return Err(ModelError::Inference(format!("decoding: {error}")));
        }
        Ok(())
    }
}

/// Sends an event from a worker thread, waiting while the stream is full; `false` once the
/// request is cancelled or the reader is gone.
fn deliver(events: &mpsc::Sender<Event>, cancel: &CancellationToken, event: Event) -> bool {
    // Neither future needs a runtime; a plain `blocking_send` could wait forever on a reader
    // that cancelled but keeps its receiver.
    futures::executor::block_on(async {
        tokio::select! {
            biased;
            () = cancel.cancelled() => false,
            sent = events.send(event) => sent.is_ok(),
        }
    })
}

/// The probability (softmax of `logits`) that the next token is one of `tokens`.
fn first_token_probability(logits: &[f32], tokens: &[LlamaToken]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let wanted: f32 = tokens
        .iter()
        .filter_map(|t| usize::try_from(t.0).ok().and_then(|i| logits.get(i)))
        .map(|l| (l - max).exp())
        .sum();
    if total > 0.0 { wanted / total } else { 0.0 }
}

fn position(index: usize) -> Result<i32, ModelError> {
    i32::try_from(index).map_err(|_| ModelError::Input("the prompt is too long".into()))
}
