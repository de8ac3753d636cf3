//! The llama.cpp backends against the real models of `make models`: embeddings match a
//! reference computed independently (sentence-transformers), generation passes the compliance
//! suite, reuses a shared prompt prefix, cancels promptly and serves tenants fairly.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

mod common;

use coach_brain::llama::{GeneratorConfig, LlamaEmbedder, LlamaGenerator};
use coach_brain::model::{Embedder, GenerateEvent, Generator, ModelError};
use common::{LONG_ASK, Outcome, SYSTEM, drain, model_file, next_event, request, tenant};
use tokio_util::sync::CancellationToken;

const EMBEDDER: &str = "all-MiniLM-L6-v2.f16.gguf";
const GENERATOR: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const REFERENCE: &str = "all-MiniLM-L6-v2.reference.json";

/// Sentences embedded by sentence-transformers (numpy), with the tokenizer's ids.
#[derive(serde::Deserialize)]
struct Reference {
    sentences: Vec<String>,
    token_ids: Vec<Vec<u32>>,
    embeddings: Vec<Vec<f32>>,
}

fn embedder() -> LlamaEmbedder {
    LlamaEmbedder::load(model_file(EMBEDDER), 2).unwrap()
}

fn generator(config: GeneratorConfig) -> LlamaGenerator {
    LlamaGenerator::load(
        model_file(GENERATOR),
        GeneratorConfig {
            threads: 2,
            ..config
        },
    )
    .unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (norm(a) * norm(b))
}

fn norm(vector: &[f32]) -> f32 {
    vector.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[tokio::test]
async fn embeddings_match_the_reference() {
    let text = std::fs::read_to_string(model_file(REFERENCE)).unwrap();
    let reference: Reference = serde_json::from_str(&text).unwrap();
    let embedder = embedder();
    assert_eq!(embedder.model_id(), "all-MiniLM-L6-v2.f16");
    assert_eq!(embedder.dimension(), 384);
    assert_eq!(embedder.max_tokens(), 512);

    // All sentences in one call (packed into one pass), then each alone.
    let together = embedder.embed(reference.sentences.clone()).await.unwrap();
    assert_eq!(together.len(), reference.sentences.len());
    for (i, sentence) in reference.sentences.iter().enumerate() {
        let tokens = embedder.count_tokens(sentence).unwrap();
        let expected_tokens = reference.token_ids[i].len();
        let similarity = cosine(&together[i], &reference.embeddings[i]);
        assert!(
            similarity >= 0.999,
            "sentence {i} {sentence:?}: cosine {similarity} to the reference (llama.cpp counts \
             {tokens} tokens, the reference tokenizer {expected_tokens})"
        );
        assert_eq!(
            tokens, expected_tokens,
            "token count of sentence {i} {sentence:?}"
        );
        let length = norm(&together[i]);
        assert!((length - 1.0).abs() < 1e-4, "vector {i} has norm {length}");
        let alone = embedder.embed(vec![sentence.clone()]).await.unwrap();
        let same = cosine(&alone[0], &together[i]);
        assert!(same > 0.9999, "sentence {i}: alone vs packed cosine {same}");
    }
}

#[tokio::test]
async fn long_inputs_are_truncated_and_many_inputs_packed() {
    let embedder = embedder();
    let long = "Consistency beats intensity when you train for endurance. ".repeat(120);
    assert!(embedder.count_tokens(&long).unwrap() > embedder.max_tokens());
    let vectors = embedder
        .embed(vec![long, "short".to_string()])
        .await
        .unwrap();
    assert_eq!(vectors.len(), 2);

    let many: Vec<String> = (0..70)
        .map(|i| format!("Session {i}: an easy run, then stretching."))
        .collect();
    let packed = embedder.embed(many.clone()).await.unwrap();
    assert_eq!(packed.len(), 70);
    for vector in vectors.iter().chain(&packed) {
        assert_eq!(vector.len(), 384);
        assert!((norm(vector) - 1.0).abs() < 1e-4);
    }
    let last = embedder.embed(vec![many[69].clone()]).await.unwrap();
    assert!(
        cosine(&last[0], &packed[69]) > 0.9999,
        "the 70th text lost its place"
    );
    assert!(embedder.embed(Vec::new()).await.unwrap().is_empty());
}

#[tokio::test]
async fn generator_compliance() {
    let generator = generator(GeneratorConfig {
        stream_buffer: 4,
        ..GeneratorConfig::default()
    });
    assert_eq!(generator.model_id(), "SmolLM2-135M-Instruct.Q4_1");
    assert_eq!(generator.context_tokens(), 2048);
    common::generator_compliance(&generator, 4).await;
}

#[tokio::test]
async fn the_probability_of_an_opening_is_reported_before_the_first_token() {
    let generator = generator(GeneratorConfig::default());
    let who = tenant();
    let ask = |abstain: Vec<String>| {
        let mut request = request(who, "You are a helpful assistant.", "Say hello.", 3);
        request.params.abstain = abstain;
        request
    };
    let plain = drain(
        generator
            .generate(ask(Vec::new()), CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(plain.abstain, None, "not asked for, not reported");
    let opening = plain.tokens.first().expect("a token").clone();
    assert!(!opening.trim().is_empty());

    // Greedy decoding opens with the most likely token: its probability beats an odd opening's.
    let likely = drain(
        generator
            .generate(ask(vec![opening.clone()]), CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    let odd = drain(
        generator
            .generate(ask(vec!["Zygote".into()]), CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    let (likely, odd) = (
        likely.abstain.expect("reported"),
        odd.abstain.expect("reported"),
    );
    assert!(
        likely > 0.05 && likely > odd * 10.0,
        "{opening:?}: {likely}, Zygote: {odd}"
    );
}

#[tokio::test]
async fn a_shared_prompt_prefix_comes_from_the_cache() {
    let generator = generator(GeneratorConfig::default());
    let persona = "You are Coach Maya, a patient running coach. You answer in two sentences, \
                   you never give medical advice, and you always end with one small step the \
                   runner can take today.";
    let maya = tenant();
    let ask = |question: &str| request(maya, persona, question, 8);

    let first = drain(
        generator
            .generate(
                ask("How often should I run each week?"),
                CancellationToken::new(),
            )
            .await
            .unwrap(),
    )
    .await;
    let first = first.usage.expect("Done");
    assert_eq!(
        first.cached_tokens, 0,
        "a fresh worker has nothing cached: {first:?}"
    );

    let second = drain(
        generator
            .generate(ask("What shoes should I buy?"), CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    let second = second.usage.expect("Done");
    let persona_tokens = generator.count_tokens(persona).unwrap();
    assert!(
        second.cached_tokens > 0 && second.cached_tokens >= persona_tokens * 3 / 4,
        "{second:?}: the persona ({persona_tokens} tokens) should come from the cache"
    );
    assert!(
        second.prompt_tokens < first.prompt_tokens,
        "{first:?} then {second:?}"
    );

    // The same prompt again: everything but the last token (whose logits are needed) is cached.
    let third = drain(
        generator
            .generate(ask("What shoes should I buy?"), CancellationToken::new())
            .await
            .unwrap(),
    )
    .await;
    let third = third.usage.expect("Done");
    assert_eq!(third.prompt_tokens, 1, "{third:?}");
    assert_eq!(
        third.cached_tokens,
        second.prompt_tokens + second.cached_tokens - 1
    );
}

#[tokio::test]
async fn cancelling_stops_generation_within_a_token_or_two() {
    // With a one-event buffer the worker cannot run ahead of the reader.
    let generator = generator(GeneratorConfig {
        stream_buffer: 1,
        ..GeneratorConfig::default()
    });
    let full = drain(
        generator
            .generate(
                request(tenant(), SYSTEM, LONG_ASK, 64),
                CancellationToken::new(),
            )
            .await
            .unwrap(),
    )
    .await;
    let full_usage = full.usage.expect("Done");
    assert!(
        full.tokens.len() > 12,
        "precondition: the model writes more than 12 pieces here, got {:?}",
        full.tokens
    );

    let cancel = CancellationToken::new();
    let mut stream = generator
        .generate(request(tenant(), SYSTEM, LONG_ASK, 64), cancel.clone())
        .await
        .unwrap();
    let mut outcome = Outcome::default();
    while outcome.tokens.len() < 2 {
        outcome.record(
            next_event(&mut stream)
                .await
                .expect("the stream ended early"),
        );
    }
    cancel.cancel();
    while let Some(event) = next_event(&mut stream).await {
        outcome.record(event);
    }
    assert!(outcome.tokens.len() <= 4, "{:?}", outcome.tokens);
    if let Some(usage) = outcome.usage {
        assert!(
            usage.completion_tokens < full_usage.completion_tokens,
            "{usage:?}"
        );
    }
}

#[tokio::test]
async fn a_busy_tenant_does_not_starve_another() {
    let generator = generator(GeneratorConfig {
        workers: 1,
        ..GeneratorConfig::default()
    });
    let (a, b) = (tenant(), tenant());
    let mut streams = Vec::new();
    for (tenant, question) in [
        (a, "Name one stretch."),
        (a, "Name one drink."),
        (a, "Name one shoe brand."),
        (b, "Name one race."),
    ] {
        let ask = request(tenant, SYSTEM, question, 4);
        streams.push(
            generator
                .generate(ask, CancellationToken::new())
                .await
                .unwrap(),
        );
    }
    let mut outcomes = Vec::new();
    for outcome in futures::future::join_all(streams.into_iter().map(drain)).await {
        assert!(outcome.error.is_none(), "{:?}", outcome.error);
        assert!(outcome.usage.is_some(), "{outcome:?}");
        outcomes.push(outcome.started.expect("Started"));
    }
    let [a1, a2, a3, b1] = outcomes.as_slice() else {
        panic!("four outcomes expected");
    };
    // One worker runs one request at a time, so start instants order the runs.
    assert!(a1 < a2 && a2 < a3, "a tenant's requests run in order");
    assert!(b1 < a3, "B's only request must run before A's third");
}

#[tokio::test]
async fn queue_limits_answer_busy() {
    let generator = generator(GeneratorConfig {
        workers: 1,
        max_queue: 2,
        per_tenant_queue: 1,
        stream_buffer: 1,
        ..GeneratorConfig::default()
    });
    let (a, b, c) = (tenant(), tenant(), tenant());
    // Occupy the only worker: once Started is read, it is stuck on this unread stream.
    let hold = CancellationToken::new();
    let mut running = generator
        .generate(request(a, SYSTEM, LONG_ASK, 256), hold.clone())
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut running).await,
        Some(Ok(GenerateEvent::Started { .. }))
    ));

    let short = |tenant| request(tenant, SYSTEM, "Say hi.", 2);
    let a_waiting = generator
        .generate(short(a), CancellationToken::new())
        .await
        .unwrap();
    let refused = generator.generate(short(a), CancellationToken::new()).await;
    assert!(
        matches!(refused, Err(ModelError::Busy(_))),
        "a tenant may have one waiting"
    );
    let b_waiting = generator
        .generate(short(b), CancellationToken::new())
        .await
        .unwrap();
    let refused = generator.generate(short(c), CancellationToken::new()).await;
    assert!(
        matches!(refused, Err(ModelError::Busy(_))),
        "two may wait in all"
    );

    hold.cancel();
    drop(running);
    for outcome in futures::future::join_all([a_waiting, b_waiting].map(drain)).await {
        assert!(outcome.usage.is_some(), "{outcome:?}");
    }
}

#[tokio::test]
async fn an_oversized_prompt_is_refused() {
    let generator = generator(GeneratorConfig::default());
    let huge = "stride ".repeat(3000);
    let result = generator
        .generate(
            request(tenant(), SYSTEM, &huge, 8),
            CancellationToken::new(),
        )
        .await;
    assert!(matches!(result, Err(ModelError::Input(_))));
}

#[test]
fn a_missing_model_file_says_how_to_get_it() {
    let Err(error) = LlamaGenerator::load("/nonexistent/model.gguf", GeneratorConfig::default())
    else {
        panic!("loading a missing file must fail");
    };
    assert!(error.to_string().contains("make models"), "{error}");
}
