//! Keyword retrieval as sparse vectors: terms hashed to stable ids, documents weighted with
//! BM25's term-frequency saturation and length normalisation; the store applies the inverse
//! document frequency (Qdrant's `idf` modifier), so together they score like BM25.

use std::collections::BTreeMap;

/// A sparse vector: sorted unique indices with their weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseVector {
    /// Term ids, ascending.
    pub indices: Vec<u32>,
    /// Weight of each term id.
    pub values: Vec<f32>,
}

impl SparseVector {
    /// True when no term survived tokenization.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// BM25's saturation parameter.
const K1: f32 = 1.2;
/// BM25's length normalisation parameter.
const B: f32 = 0.75;
/// The average chunk length in terms that length normalisation compares against.
const AVERAGE_TERMS: f32 = 180.0;

/// Words too common to carry meaning, in the languages the coach speaks by default.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "de", "del", "el", "en", "es", "for", "from",
    "how", "in", "is", "it", "la", "las", "los", "of", "on", "or", "por", "que", "the", "this",
    "to", "un", "una", "was", "what", "with", "y",
];

/// The name of this analysis (tokenizer, stopwords, stemmer). Keyword vectors made by another
/// analysis would not meet this one's queries, so the vector store records it beside the
/// embedding model (see [`index_id`]) and a change asks for `gateway reembed`.
pub const ANALYZER: &str = "snowball-english-1";

/// What a vector collection records as the model that made its vectors: the embedding model and
/// the keyword analysis.
pub fn index_id(embedding_model: &str) -> String {
    format!("{embedding_model} + keywords {ANALYZER}")
}

/// Lower-cased alphanumeric terms of `text` without stopwords, stemmed by Snowball's English
/// stemmer (Porter 2), so "habits" meets "habit" and "coaching" meets "coach".
pub fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .map(|w| STEMMER.stem(&w).into_owned())
}

static STEMMER: std::sync::LazyLock<rust_stemmers::Stemmer> =
    std::sync::LazyLock::new(|| rust_stemmers::Stemmer::create(rust_stemmers::Algorithm::English));

/// A stable 32-bit id of a term (FNV-1a), the same in every process and version.
fn term_id(term: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in term.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

fn collect(counts: BTreeMap<u32, f32>) -> SparseVector {
    let (indices, values) = counts.into_iter().unzip();
    SparseVector { indices, values }
}

/// The keyword vector of a stored chunk: BM25 term weights without the IDF factor.
pub fn document_vector(text: &str) -> SparseVector {
    let mut counts: BTreeMap<u32, f32> = BTreeMap::new();
    let mut length = 0usize;
    for term in terms(text) {
        *counts.entry(term_id(&term)).or_default() += 1.0;
        length += 1;
    }
    let norm = K1 * (1.0 - B + B * length as f32 / AVERAGE_TERMS);
    for tf in counts.values_mut() {
        *tf = *tf * (K1 + 1.0) / (*tf + norm);
    }
    collect(counts)
}

/// The keyword vector of a query: each distinct term once.
pub fn query_vector(text: &str) -> SparseVector {
    collect(terms(text).map(|t| (term_id(&t), 1.0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_terms_meet_document_terms() {
        let doc = document_vector("Habits form when cues repeat. Build habits slowly.");
        let query = query_vector("how do I build a habit?");
        let shared: Vec<_> = query
            .indices
            .iter()
            .filter(|i| doc.indices.contains(i))
            .collect();
        assert_eq!(shared.len(), 2, "habit and build are shared");
        assert!(doc.indices.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn repeated_terms_saturate() {
        let once = document_vector("sleep");
        let many = document_vector("sleep sleep sleep sleep sleep sleep sleep sleep");
        assert!(many.values[0] > once.values[0]);
        assert!(many.values[0] < K1 + 1.0);
    }

    #[test]
    fn inflections_share_a_stem() {
        let stems = |text: &str| terms(text).collect::<Vec<_>>();
        assert_eq!(
            stems("Habits coaching coaches"),
            ["habit", "coach", "coach"]
        );
        assert_eq!(stems("running runs sleeping"), ["run", "run", "sleep"]);
    }

    #[test]
    fn punctuation_and_stopwords_give_an_empty_query() {
        assert!(query_vector("... the, of!").is_empty());
    }
}
