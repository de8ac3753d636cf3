//! `gateway eval answers`: end-to-end answer quality on a SQuAD 2.0 file. Each chosen article
//! becomes one document of a fresh tenant through the normal ingestion; each question goes
//! through the chat answer's path (retrieval, prompt, generation, the confidence decision), and
//! the reply is judged as SQuAD does (lower case, no punctuation, no articles): an answerable
//! question counts when the coach answered (`confident`) and the reply contains a gold answer;
//! an unanswerable one when the coach declined. The tenant is erased afterwards.
//!
//! Two extensions of the format serve the project's own sets (`evals/`): an article may name a
//! `source` file (relative to the JSON file) whose text is the document, and a question may list
//! `facts`, all of which a correct reply must contain (instead of any one of `answers`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use coach_brain::model::GenerateEvent;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::knowledge::Knowledge;
use crate::state::AppState;
use crate::store::documents::{DocumentStatus, NewDocument};
use crate::tenancy::{SystemScope, TenantScope};

/// What to evaluate besides the file.
#[derive(Clone, Debug, Default)]
pub struct AnswerOptions {
    /// Article indexes to index and ask about (empty: all).
    pub articles: Vec<usize>,
    /// Ask a balanced sample of this many questions (half answerable) instead of all.
    pub sample: Option<usize>,
    /// The sample's seed.
    pub seed: u64,
    /// Print each question with its reply and verdict.
    pub verbose: bool,
    /// Answer every question (no relevance floor, no decline by probability) and print how
    /// each setting of the two would have scored ([`super::calibrate`]).
    pub calibrate: bool,
    /// Write each question's signals and outcome here, one JSON object a line.
    pub trace: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct Squad {
    data: Vec<Article>,
}

#[derive(Debug, Deserialize)]
struct Article {
    title: String,
    #[serde(default)]
    paragraphs: Vec<Paragraph>,
    /// Extension: a file whose text is the document (its questions are in `paragraphs`).
    #[serde(default)]
    source: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
struct Paragraph {
    #[serde(default)]
    context: String,
    qas: Vec<Qa>,
}

#[derive(Clone, Debug, Deserialize)]
struct Qa {
    #[serde(default)]
    id: String,
    question: String,
    #[serde(default)]
    answers: Vec<Gold>,
    #[serde(default)]
    is_impossible: bool,
    /// Extension: every one of these must be in the reply.
    #[serde(default)]
    facts: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
struct Gold {
    text: String,
}

/// One question's outcome.
#[derive(Clone, Debug)]
pub struct Judged {
    /// The question's id.
    pub id: String,
    /// Whether the sources answer it.
    pub answerable: bool,
    /// Whether the coach answered (false: it declined).
    pub confident: bool,
    /// Answerable and right, or unanswerable and declined.
    pub correct: bool,
    /// The reply repeated a sentence or a fragment (after the loop guard).
    pub repeats: bool,
    /// The reply holds a gold answer (whether or not the coach declined).
    pub holds: bool,
    /// What the decision to answer was made from.
    pub signals: crate::knowledge::answer::Signals,
    /// The best support of a sentence of the reply by the passages (1: nothing to judge).
    pub support: f32,
    /// Sentences dropped as unsupported at the configured `brain.support_floor`.
    pub dropped: usize,
    /// The reply at each of [`SUPPORT_FLOORS`] (calibration; empty: not recorded).
    pub grounded: Vec<Grounding>,
    /// Time to the first token.
    pub first_token: Duration,
    /// Time to the whole answer.
    pub total: Duration,
}

/// The `brain.support_floor`s calibration scores.
pub const SUPPORT_FLOORS: &[f32] = &[0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8];

/// A reply checked at one support floor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grounding {
    /// Something supported was left (false: the coach declines).
    pub answered: bool,
    /// What was left holds a gold answer.
    pub holds: bool,
}

/// The figures `gateway eval answers` prints.
#[derive(Clone, Debug, Default)]
pub struct AnswerReport {
    /// Every question's outcome.
    pub judged: Vec<Judged>,
}

impl AnswerReport {
    /// The share of the answerable (or unanswerable) questions that `pick` holds for.
    pub fn share(&self, answerable: bool, pick: impl Fn(&Judged) -> bool) -> f64 {
        let of: Vec<&Judged> = self
            .judged
            .iter()
            .filter(|j| j.answerable == answerable)
            .collect();
        if of.is_empty() {
            return 0.0;
        }
        of.iter().filter(|j| pick(j)).count() as f64 / of.len() as f64
    }

    /// Answerable questions answered with a gold answer.
    pub fn answerable(&self) -> f64 {
        self.share(true, |j| j.correct)
    }

    /// Unanswerable questions declined.
    pub fn declined(&self) -> f64 {
        self.share(false, |j| j.correct)
    }

    /// Answerable questions declined.
    pub fn false_refusals(&self) -> f64 {
        self.share(true, |j| !j.confident)
    }

    /// The mean of the two parts (each part counts once, whatever the mix of questions).
    pub fn mean(&self) -> f64 {
        let has = |a: bool| self.judged.iter().any(|j| j.answerable == a);
        match (has(true), has(false)) {
            (true, true) => f64::midpoint(self.answerable(), self.declined()),
            (true, false) => self.answerable(),
            (false, true) => self.declined(),
            (false, false) => 0.0,
        }
    }
}

/// Whether a reply given with confidence holds the gold answer (or all the facts).
fn holds(reply: &str, qa: &Qa) -> bool {
    super::scoring::holds(reply, qa.answers.iter().map(|g| g.text.as_str()), &qa.facts)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A balanced sample: `n / 2` answerable and `n - n / 2` unanswerable questions (fewer when a
/// side runs out), drawn with `seed`, in a stable order.
fn sample(questions: Vec<Qa>, n: usize, seed: u64) -> Vec<Qa> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (mut yes, mut no): (Vec<Qa>, Vec<Qa>) =
        questions.into_iter().partition(|q| !q.is_impossible);
    rng.shuffle(&mut yes);
    rng.shuffle(&mut no);
    yes.truncate(n / 2);
    no.truncate(n - n / 2);
    let mut picked: Vec<Qa> = yes.into_iter().chain(no).collect();
    rng.shuffle(&mut picked);
    picked
}

fn read_squad(path: &Path) -> anyhow::Result<Squad> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a SQuAD 2.0 file ({{\"data\": [{{\"title\", \"paragraphs\": [{{\"context\", \"qas\"}}]}}]}})",
            path.display()
        )
    })
}

/// Index the chosen articles into a fresh tenant, ask their questions, print the figures.
pub async fn answers(
    config: Config,
    squad_path: &Path,
    options: &AnswerOptions,
) -> anyhow::Result<AnswerReport> {
    crate::telemetry::init_tracing(&config.log);
    let mut config = config;
    if options.calibrate {
        config.brain.relevance_floor = 0.0;
        config.brain.abstain_threshold = f32::INFINITY;
        config.brain.coverage_floor = 0.0;
        config.brain.support_floor = 0.0;
    }
    let squad = read_squad(squad_path)?;
    let chosen: Vec<usize> = if options.articles.is_empty() {
        (0..squad.data.len()).collect()
    } else {
        options.articles.clone()
    };
    if let Some(bad) = chosen.iter().find(|&&i| i >= squad.data.len()) {
        anyhow::bail!(
            "--articles: {bad} is out of range: the file has {} articles (0 to {})",
            squad.data.len(),
            squad.data.len().saturating_sub(1)
        );
    }
    let base = squad_path.parent().unwrap_or(Path::new("."));
    let mut documents = Vec::new();
    let mut questions = Vec::new();
    for &i in &chosen {
        let article = &squad.data[i];
        let text = match &article.source {
            Some(source) => std::fs::read_to_string(base.join(source))
                .with_context(|| format!("article {i}: reading {}", source.display()))?,
            None => article
                .paragraphs
                .iter()
                .map(|p| p.context.trim())
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n"),
        };
        anyhow::ensure!(
            !text.trim().is_empty(),
            "article {i} ({}) has no text",
            article.title
        );
        let kind = if article
            .source
            .as_ref()
            .is_some_and(|s| s.extension().is_some_and(|e| e == "md"))
        {
            "markdown"
        } else {
            "text"
        };
        documents.push((article.title.clone(), kind, text));
        questions.extend(
            article
                .paragraphs
                .iter()
                .flat_map(|p| p.qas.iter().cloned()),
        );
    }
    for qa in &mut questions {
        // SQuAD 2.0 lists no answers for impossible questions; a question with neither answers
        // nor facts cannot be judged as answerable.
        if qa.answers.is_empty() && qa.facts.is_empty() {
            qa.is_impossible = true;
        }
    }
    let questions = match options.sample {
        Some(n) => sample(questions, n, options.seed),
        None => questions,
    };
    anyhow::ensure!(
        !questions.is_empty(),
        "no questions to ask in the chosen articles"
    );

    let shutdown = CancellationToken::new();
    let store = crate::cli::open_ready_store(&config, &shutdown).await?;
    let knowledge = Knowledge::load(&config).await;
    let brain = knowledge.get().map_err(|e| anyhow::anyhow!("{e}"))?.clone();
    let settings = format!(
        "model: {}; relevance_floor {}, coverage_floor {}, abstain_threshold {}, support_floor {}",
        brain.generator.model_id(),
        config.brain.relevance_floor,
        config.brain.coverage_floor,
        config.brain.abstain_threshold,
        config.brain.support_floor
    );
    let sys = SystemScope::new("gateway eval answers");
    let tenant = store
        .create_tenant(
            &sys,
            &format!(
                "eval answers {}",
                chrono::Utc::now().format("%Y-%m-%d %H:%M:%S")
            ),
        )
        .await?;
    let scope = sys.for_tenant(tenant.id);
    let state = crate::knowledge::cli::offline_state(config, store.clone(), knowledge)?;

    let result = run(&state, &scope, documents, &questions, options).await;
    // The eval tenant goes whatever happened: its rows and its vectors.
    let _ = brain
        .vectors
        .delete_tenant(crate::knowledge::tenant(&scope))
        .await;
    if let Err(error) = store.erase_tenant(&scope).await {
        tracing::warn!(%error, tenant = %tenant.id, "the eval tenant was not erased");
    }
    store.close().await;
    let report = result?;
    println!("{settings}");
    if let Some(path) = &options.trace {
        super::calibrate::trace(&report, path)
            .with_context(|| format!("--trace {}", path.display()))?;
    }
    if options.calibrate {
        super::calibrate::print(&report);
    }
    print(&report);
    Ok(report)
}

async fn run(
    state: &AppState,
    scope: &TenantScope,
    documents: Vec<(String, &'static str, String)>,
    questions: &[Qa],
    options: &AnswerOptions,
) -> anyhow::Result<AnswerReport> {
    let store = state.store.as_ref();
    let mut ids = Vec::new();
    for (title, kind, text) in documents {
        let document = store
            .create_document(
                scope,
                NewDocument {
                    title: title.clone(),
                    filename: None,
                    source_url: None,
                    kind: kind.into(),
                    sha256: hex::encode(Sha256::digest(text.as_bytes())),
                    content: text.into_bytes(),
                },
            )
            .await?;
        ids.push((title, document.id));
    }
    let indexing = super::bar(ids.len(), "indexing");
    while crate::knowledge::ingest::poll_once(state).await? > 0 {
        indexing.inc(1);
    }
    indexing.finish_and_clear();
    for (title, id) in &ids {
        let d = store.document(scope, *id).await?;
        anyhow::ensure!(
            d.status == DocumentStatus::Ready,
            "{title}: not indexed ({:?}: {})",
            d.status,
            d.error.unwrap_or_default()
        );
    }

    let brain = state.knowledge.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let asking = super::bar(questions.len(), "asking");
    let mut report = AnswerReport::default();
    for qa in questions {
        let started = Instant::now();
        let mut answer = brain
            .answer(store, scope, &qa.question, &[], CancellationToken::new())
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let mut reply = String::new();
        let mut first_token = None;
        while let Some(event) = answer.next().await {
            match event {
                Ok(GenerateEvent::Token(piece)) => {
                    first_token.get_or_insert_with(|| started.elapsed());
                    reply.push_str(&piece);
                }
                Ok(GenerateEvent::Done(_)) => break,
                Ok(_) => {}
                Err(e) => anyhow::bail!("question {:?}: {e}", qa.question),
            }
        }
        // As the responder stores it: repetition removed, unsupported sentences dropped.
        let finished = answer.finish(&reply);
        let grounded = SUPPORT_FLOORS
            .iter()
            .map(|&floor| {
                let at = answer.finish_at(&reply, floor);
                Grounding {
                    answered: at.confident,
                    holds: !qa.is_impossible && holds(&at.text, qa),
                }
            })
            .collect();
        let reply = finished.text;
        let confident = finished.confident;
        let total = started.elapsed();
        let answerable = !qa.is_impossible;
        let holds = answerable && holds(&reply, qa);
        let correct = if answerable {
            confident && holds
        } else {
            !confident
        };
        if options.verbose {
            let line = format!(
                "[{}] {} {:?}\n    -> {}{}",
                if correct { "ok" } else { "--" },
                if answerable {
                    "answerable"
                } else {
                    "unanswerable"
                },
                qa.question,
                if confident { "" } else { "(declined) " },
                reply.replace('\n', " ")
            );
            asking.suspend(|| println!("{line}"));
        }
        report.judged.push(Judged {
            id: qa.id.clone(),
            answerable,
            confident,
            correct,
            repeats: super::scoring::repeats(&reply),
            holds,
            signals: answer.signals,
            support: finished.support,
            dropped: finished.dropped,
            grounded,
            first_token: first_token.unwrap_or(total),
            total,
        });
        asking.inc(1);
    }
    asking.finish_and_clear();
    Ok(report)
}

fn print(report: &AnswerReport) {
    let n = |a: bool| report.judged.iter().filter(|j| j.answerable == a).count();
    let mut first: Vec<Duration> = report.judged.iter().map(|j| j.first_token).collect();
    let mut total: Vec<Duration> = report.judged.iter().map(|j| j.total).collect();
    first.sort_unstable();
    total.sort_unstable();
    let ms = |d: Duration| d.as_millis();
    println!(
        "questions: {} ({} answerable, {} unanswerable)",
        report.judged.len(),
        n(true),
        n(false)
    );
    println!(
        "false refusals: {:.2} of answerable; replies repeating themselves: {}",
        report.false_refusals(),
        report.judged.iter().filter(|j| j.repeats).count()
    );
    println!(
        "grounding: {} sentence(s) dropped as unsupported; {} repl(ies) with nothing supported, declined",
        report.judged.iter().map(|j| j.dropped).sum::<usize>(),
        report
            .judged
            .iter()
            .filter(|j| j.dropped > 0 && !j.confident)
            .count()
    );
    println!(
        "latency: first token p50 {} ms, p95 {} ms; full answer p50 {} ms, p95 {} ms",
        ms(percentile(&first, 50.0)),
        ms(percentile(&first, 95.0)),
        ms(percentile(&total, 50.0)),
        ms(percentile(&total, 95.0))
    );
    println!(
        "answers: answerable {:.2}, unanswerable declined {:.2}, mean {:.2}",
        report.answerable(),
        report.declined(),
        report.mean()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_must_all_be_there() {
        let qa = Qa {
            id: "x".into(),
            question: "q".into(),
            answers: vec![],
            is_impossible: false,
            facts: vec!["SQLite".into(), "data_dir".into()],
        };
        assert!(holds("SQLite, in the data_dir.", &qa));
        assert!(!holds("SQLite.", &qa));
        let either = Qa {
            facts: vec!["15 minutes|900".into()],
            ..qa
        };
        assert!(holds("They last 900 seconds.", &either));
        assert!(holds("Fifteen... no: 15 minutes.", &either));
        assert!(!holds("An hour.", &either));
    }

    #[test]
    fn a_sample_is_balanced_and_repeatable() {
        let qa = |i: usize, impossible: bool| Qa {
            id: i.to_string(),
            question: format!("q{i}"),
            answers: vec![],
            is_impossible: impossible,
            facts: vec![],
        };
        let all: Vec<Qa> = (0..40).map(|i| qa(i, i % 4 == 0)).collect();
        let a = sample(all.clone(), 10, 7);
        let b = sample(all, 10, 7);
        assert_eq!(a.len(), 10);
        assert_eq!(a.iter().filter(|q| q.is_impossible).count(), 5);
        assert_eq!(
            a.iter().map(|q| &q.id).collect::<Vec<_>>(),
            b.iter().map(|q| &q.id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_mean_weighs_both_parts_equally() {
        let j = |answerable: bool, correct: bool| Judged {
            id: String::new(),
            answerable,
            confident: answerable && correct,
            correct,
            repeats: false,
            holds: correct,
            signals: Default::default(),
            support: 1.0,
            dropped: 0,
            grounded: Vec::new(),
            first_token: Duration::ZERO,
            total: Duration::ZERO,
        };
        let report = AnswerReport {
            judged: vec![
                j(true, true),
                j(true, false),
                j(true, false),
                j(false, true),
            ],
        };
        assert!((report.answerable() - 1.0 / 3.0).abs() < 1e-9);
        assert!((report.declined() - 1.0).abs() < 1e-9);
        assert!((report.mean() - 2.0 / 3.0).abs() < 1e-9);
        assert!((report.false_refusals() - 2.0 / 3.0).abs() < 1e-9);
    }
}
