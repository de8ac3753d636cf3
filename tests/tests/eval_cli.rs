//! `gateway eval retrieval` as an operator runs it: a small BEIR-format benchmark written here,
//! the real embedding model from `make models`, the figures on standard output, the embedding
//! cache reused by a second run, and clear errors for unusable input.

#![allow(clippy::unwrap_used, missing_docs)] // tests may unwrap: a panic is a failure report

use std::path::{Path, PathBuf};

use coach_e2e::gateway_bin;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// Five abstracts on distinct coaching topics and one query for each of three of them.
fn write_benchmark(dir: &Path) {
    let docs = [
        (
            "d1",
            "Sleep hygiene",
            "A regular bedtime, a dark bedroom and no caffeine after noon improve sleep quality.",
        ),
        (
            "d2",
            "Running for beginners",
            "Start with intervals of jogging and walking three times a week to build endurance.",
        ),
        (
            "d3",
            "Saving money",
            "Automatic transfers to a savings account on payday make a budget easier to keep.",
        ),
        (
            "d4",
            "Public speaking",
            "Rehearse the talk aloud and slow down your breathing to calm stage fright.",
        ),
        (
            "d5",
            "Houseplants",
            "Most houseplants prefer indirect light and soil that dries between waterings.",
        ),
    ];
    let corpus: String = docs
        .iter()
        .map(|(id, title, text)| {
            format!(
                "{}\n",
                serde_json::json!({ "_id": id, "title": title, "text": text })
            )
        })
        .collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus).unwrap();
    let queries = [
        ("q1", "why do I sleep badly after coffee in the afternoon?"),
        ("q2", "how should a beginner start jogging?"),
        ("q3", "nervous before giving a talk"),
        ("q9", "a query nobody judged"),
    ];
    let queries: String = queries
        .iter()
        .map(|(id, text)| format!("{}\n", serde_json::json!({ "_id": id, "text": text })))
        .collect();
    std::fs::write(dir.join("queries.jsonl"), queries).unwrap();
    std::fs::write(
        dir.join("qrels.tsv"),
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td4\t1\n",
    )
    .unwrap();
}

async fn eval(dir: &Path, extra: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::process::Command::new(gateway_bin())
        .args(["eval", "retrieval"])
        .arg("--corpus")
        .arg(dir.join("corpus.jsonl"))
        .arg("--queries")
        .arg(dir.join("queries.jsonl"))
        .arg("--qrels")
        .arg(dir.join("qrels.tsv"))
        .args(extra)
        .env("GATEWAY__DATA_DIR", dir.join("data"))
        .env("GATEWAY__BRAIN__MODELS_DIR", models_dir())
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// (mode, nDCG@10, recall@100, fusion) of each result line.
fn figures(stdout: &str) -> Vec<(String, f64, f64, String)> {
    stdout
        .lines()
        .skip(1)
        .take_while(|line| !line.is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (
                cols[0].to_string(),
                cols[1].parse().unwrap(),
                cols[2].parse().unwrap(),
                cols[4..].join(" "),
            )
        })
        .collect()
}

#[tokio::test]
async fn eval_prints_each_mode_and_fusion_setting_and_reuses_its_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    write_benchmark(dir.path());
    let (code, stdout, stderr) = eval(dir.path(), &["--fusion-k", "10,60"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("5 documents, 3 judged queries"), "{stderr}");
    assert!(stderr.contains("0 cached embeddings"), "{stderr}");
    let rows = figures(&stdout);
    let modes: Vec<(&str, &str)> = rows
        .iter()
        .map(|(mode, _, _, fusion)| (mode.as_str(), fusion.as_str()))
        .collect();
    assert_eq!(
        modes,
        [
            ("keyword", ""),
            ("dense", ""),
            ("hybrid", "k=10 keyword_weight=1.1"),
            ("hybrid", "k=60 keyword_weight=1.1"),
        ],
        "{stdout}"
    );
    for (mode, ndcg, recall, _) in &rows {
        // Each query has one relevant abstract among five unrelated ones.
        assert!(*ndcg > 0.99 && *recall > 0.99, "{mode}: {stdout}");
    }
    // Grounding: the relevant abstract is among the passages placed in the prompt at every
    // budget; more passages cost more prompt tokens; the configured budget is marked.
    let grounding: Vec<(usize, f64, f64, bool)> = stdout
        .lines()
        .skip_while(|line| !line.starts_with("passages"))
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (
                cols[0].parse().unwrap(),
                cols[2].parse().unwrap(),
                cols[3].parse().unwrap(),
                line.ends_with("(configured)"),
            )
        })
        .collect();
    assert_eq!(grounding.len(), 5, "{stdout}");
    assert!(grounding.iter().all(|g| g.1 > 0.99), "{stdout}");
    assert!(
        grounding[0].2 > 5.0 && grounding[0].2 < grounding[2].2,
        "{stdout}"
    );
    let configured: Vec<usize> = grounding.iter().filter(|g| g.3).map(|g| g.0).collect();
    assert_eq!(configured, [3], "{stdout}");

    // The second run embeds nothing: all five abstracts come from the cache.
    let (code, again, stderr) = eval(dir.path(), &["--mode", "dense"]).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("5 cached embeddings"), "{stderr}");
    assert_eq!(figures(&again)[0].1, rows[1].1, "{again}");
}

#[tokio::test]
async fn unusable_benchmark_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write_benchmark(dir.path());
    let (code, _, stderr) = eval(dir.path(), &["--fusion-k", "0"]).await;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("--fusion-k"), "{stderr}");

    std::fs::write(dir.path().join("qrels.tsv"), "q7\td1\t1\n").unwrap();
    let (code, _, stderr) = eval(dir.path(), &["--mode", "keyword"]).await;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("no query of"), "{stderr}");

    std::fs::write(dir.path().join("corpus.jsonl"), "{\"title\": 3}\n").unwrap();
    let (code, _, stderr) = eval(dir.path(), &["--mode", "keyword"]).await;
    assert_ne!(code, Some(0));
    assert!(stderr.contains("line 1: not a BEIR record"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
