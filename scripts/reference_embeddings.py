#!/usr/bin/env python3
"""Reference sentence embeddings for all-MiniLM-L6-v2, computed independently of llama.cpp: the
model's own tokenizer (tokenizer.json through the `tokenizers` package) and a float64 numpy
forward pass of the original safetensors weights (BERT encoder, exact erf GELU), then mean pooling
over the attention mask and L2 normalisation, as sentence-transformers does for this model.

Usage: reference_embeddings.py MODEL_DIR OUT.json

Writes {"model", "sentences", "token_ids", "embeddings"}: one unit-length 384-float vector per
sentence, and the ids the reference tokenizer gave (with [CLS] ... [SEP]) to compare tokenizers.
Sequences are neither truncated nor padded to the 128 tokens tokenizer.json asks for: llama.cpp
embeds the whole text, and so does this reference (each sentence stays under 256 tokens, the
model's max_seq_length).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "How do I reset my password?",
    "¿Dónde está la estación de tren más cercana?",
    "Mañana tengo una reunión con mi entrenador a las 9:30; ¡no puedo llegar tarde!",
    "I've been training for a marathon (42.195 km) and my knees hurt... a lot!",
    "Coaching helps people set goals, track progress & stay motivated: 100% of the time?",
    "hello",
    "When you start working with a new coach, the first few sessions are usually about "
    "understanding where you are today and where you would like to be in six months. "
    "Your coach will ask about your sleep, your work schedule, how often you exercise, "
    "what you eat on a typical day, and which habits you have tried to change before. "
    "Together you will pick one or two small goals, agree on how to measure them, and "
    "decide how you will check in between sessions, whether by chat, email or a short "
    "weekly call, so that progress stays visible and setbacks can be discussed honestly.",
]

MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x: np.ndarray) -> np.ndarray:
    """HF "gelu": the exact, erf-based GELU."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def load_weights(model_dir: Path) -> dict[str, np.ndarray]:
    """All float tensors as float64, names without any "bert." prefix."""
    w = load_file(str(model_dir / "model.safetensors"))
    return {k.removeprefix("bert."): v.astype(np.float64) for k, v in w.items() if v.dtype.kind == "f"}


def encode(w: dict[str, np.ndarray], hp: dict, ids: np.ndarray, mask: np.ndarray,
           prefix: str = "") -> np.ndarray:
    """BertModel forward pass. ids, mask: [batch, seq]; returns the last hidden state
    [batch, seq, hidden]. Token types are all 0 (single sentences)."""
    eps = hp["layer_norm_eps"]
    n_head = hp["num_attention_heads"]
    bsz, seq = ids.shape
    d = hp["hidden_size"]
    hd = d // n_head

    def p(name: str) -> np.ndarray:
        return w[prefix + name]

    x = p("embeddings.word_embeddings.weight")[ids]
    x = x + p("embeddings.position_embeddings.weight")[np.arange(seq)][None]
    x = x + p("embeddings.token_type_embeddings.weight")[0]
    x = layer_norm(x, p("embeddings.LayerNorm.weight"), p("embeddings.LayerNorm.bias"), eps)

    # additive attention mask over keys: padding positions get -inf-ish
    key_bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9)

    def linear(t: np.ndarray, name: str) -> np.ndarray:
        return t @ p(name + ".weight").T + p(name + ".bias")

    for i in range(hp["num_hidden_layers"]):
        L = f"encoder.layer.{i}."
        q = linear(x, L + "attention.self.query").reshape(bsz, seq, n_head, hd).transpose(0, 2, 1, 3)
        k = linear(x, L + "attention.self.key").reshape(bsz, seq, n_head, hd).transpose(0, 2, 1, 3)
        v = linear(x, L + "attention.self.value").reshape(bsz, seq, n_head, hd).transpose(0, 2, 1, 3)
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd) + key_bias
        scores = scores - scores.max(-1, keepdims=True)
        probs = np.exp(scores)
        probs = probs / probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(bsz, seq, d)
        attn = linear(ctx, L + "attention.output.dense")
        x = layer_norm(attn + x, p(L + "attention.output.LayerNorm.weight"),
                       p(L + "attention.output.LayerNorm.bias"), eps)
        h = gelu(linear(x, L + "intermediate.dense"))
        out = linear(h, L + "output.dense")
        x = layer_norm(out + x, p(L + "output.LayerNorm.weight"), p(L + "output.LayerNorm.bias"), eps)
    return x


def embed(w: dict[str, np.ndarray], hp: dict, batch_ids: list[list[int]], batch: int = 1) -> np.ndarray:
    """Embed token id lists, `batch` at a time (padding changes nothing but the time spent)."""
    return np.concatenate([embed_batch(w, hp, batch_ids[i:i + batch]) for i in range(0, len(batch_ids), batch)])


def embed_batch(w: dict[str, np.ndarray], hp: dict, batch_ids: list[list[int]]) -> np.ndarray:
    """Pad to a batch, run the encoder, mean-pool over the attention mask, L2-normalise."""
    seq = max(len(t) for t in batch_ids)
    ids = np.zeros((len(batch_ids), seq), dtype=np.int64)  # [PAD] = 0
    mask = np.zeros((len(batch_ids), seq), dtype=np.float64)
    for r, t in enumerate(batch_ids):
        ids[r, : len(t)] = t
        mask[r, : len(t)] = 1.0
    hidden = encode(w, hp, ids, mask)
    pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def tokenize(model_dir: Path, sentences: list[str]) -> list[list[int]]:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return [tok.encode(s).ids for s in sentences]  # adds [CLS] ... [SEP]


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    hp = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    ids = tokenize(model_dir, SENTENCES)
    for s, t in zip(SENTENCES, ids):
        if len(t) > MAX_TOKENS:
            raise ValueError(f"{len(t)} tokens > {MAX_TOKENS}: {s[:40]!r}...")
    emb = embed(load_weights(model_dir), hp, ids)
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "sentences": SENTENCES,
        "token_ids": ids,
        "embeddings": [[round(float(v), 8) for v in row] for row in emb],
    }
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(f"reference_embeddings: wrote {out} ({len(SENTENCES)} sentences, {emb.shape[1]} dims, "
          f"{min(map(len, ids))}-{max(map(len, ids))} tokens each)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
