//! llama.cpp in-process: sentence embeddings ([`LlamaEmbedder`]) and streamed chat generation
//! ([`LlamaGenerator`]). Inference runs on dedicated OS threads that own their llama.cpp
//! contexts, never on the async runtime; async callers talk to them through channels.
//!
//! Loading blocks (it reads the model file): call `load` at start-up or in `spawn_blocking`.

mod embed;
mod generate;
mod queue;
mod text;
mod worker;

pub use embed::LlamaEmbedder;
pub use generate::{GeneratorConfig, LlamaGenerator};

use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;

use crate::model::ModelError;

/// llama.cpp may be initialised only once per process (`LlamaBackend::init` fails the second
/// time), so every model shares this handle; it lives until the process exits.
static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();

/// The process-wide llama.cpp backend, initialised on first use with its logs sent to `tracing`.
pub fn backend() -> Result<&'static LlamaBackend, ModelError> {
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|error| error.to_string())
        })
        .as_ref()
        .map_err(|reason| ModelError::Inference(format!("initialising llama.cpp: {reason}")))
}

/// Loads a GGUF model, with an actionable error when the file is missing or unreadable.
fn load_model(path: &Path, gpu_layers: Option<u32>) -> Result<LlamaModel, ModelError> {
    let shown = path.display().to_string();
    // `load_from_file` debug-asserts that the file exists: check first and say what to do.
    if !path.is_file() {
        return Err(ModelError::Load {
            path: shown,
            reason: "no such file: run `make models` or fix the configured model path".into(),
        });
    }
    let backend = backend()?;
    let mut params = LlamaModelParams::default();
    if let Some(layers) = gpu_layers {
        params = params.with_n_gpu_layers(layers);
    }
    let started = Instant::now();
    let model =
        LlamaModel::load_from_file(backend, path, &params).map_err(|error| ModelError::Load {
            path: shown.clone(),
            reason: format!("{error}: is it a GGUF model file llama.cpp supports?"),
        })?;
    tracing::info!(
        path = %shown,
        parameters = model.n_params(),
        bytes = model.size(),
        elapsed = ?started.elapsed(),
        "model loaded"
    );
    Ok(model)
}

/// The model id recorded with vectors and usage: the file name without `.gguf`.
fn model_id(path: &Path) -> String {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .unwrap_or("model")
        .to_string()
}

/// Inference threads as llama.cpp wants them (at least one).
fn thread_count(threads: u32) -> i32 {
    i32::try_from(threads.max(1)).unwrap_or(i32::MAX)
}

/// The default inference thread count: the machine's parallelism.
fn default_threads() -> u32 {
    std::thread::available_parallelism()
        .map_or(4, |threads| u32::try_from(threads.get()).unwrap_or(4))
}
