#!/usr/bin/env python3
"""Check the converted all-MiniLM-L6-v2 GGUF against the reference embeddings, without llama.cpp.

Usage: check_minilm_gguf.py MODEL.gguf REFERENCE.json

Reads the GGUF back with gguf.GGUFReader, checks its metadata and tensor types, tokenizes the
reference sentences the way llama.cpp's WPM tokenizer does (llm_tokenizer_wpm_session in
llama-vocab.cpp: BERT normalisation, phantom-space greedy longest match, [CLS] ... [SEP]) from the
GGUF vocab alone, runs the numpy forward pass of scripts/reference_embeddings.py on the GGUF's
(F16/F32) weights, and requires the same token ids as the reference tokenizer and cosine >= 0.999
with every reference embedding. Exits 1 on any failure.
"""
from __future__ import annotations

import json
import sys
import unicodedata
from pathlib import Path

import numpy as np
from gguf import GGUFReader, GGUFValueType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_embeddings import embed  # noqa: E402

MIN_COSINE = 0.999

# GGUF name -> HF name (the inverse of the converter's mapping), per block where {i} appears.
HF_NAMES = {
    "token_embd.weight": "embeddings.word_embeddings.weight",
    "position_embd.weight": "embeddings.position_embeddings.weight",
    "token_types.weight": "embeddings.token_type_embeddings.weight",
    "token_embd_norm.weight": "embeddings.LayerNorm.weight",
    "token_embd_norm.bias": "embeddings.LayerNorm.bias",
}
BLOCK_NAMES = {
    "attn_q": "attention.self.query",
    "attn_k": "attention.self.key",
    "attn_v": "attention.self.value",
    "attn_output": "attention.output.dense",
    "attn_output_norm": "attention.output.LayerNorm",
    "ffn_up": "intermediate.dense",
    "ffn_down": "output.dense",
    "layer_output_norm": "output.LayerNorm",
}


def field(reader: GGUFReader, key: str):
    f = reader.get_field(key)
    if f is None:
        raise KeyError(f"missing {key}")
    if f.types[0] == GGUFValueType.ARRAY:
        if f.types[-1] == GGUFValueType.STRING:
            return [bytes(f.parts[i]) for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    if f.types[0] == GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]].tolist()[0]


def is_chinese(c: int) -> bool:
    return any(a <= c <= b for a, b in (
        (0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)))


def wpm_words(text: str, lowercase: bool, strip_accents: bool) -> list[str]:
    """llm_tokenizer_wpm_session::preprocess."""
    if strip_accents:
        text = unicodedata.normalize("NFD", text)
    words = [""]
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isspace():
            if words[-1]:
                words.append("")
            continue
        if ord(ch) == 0 or ord(ch) == 0xFFFD or cat in ("Cc", "Cf"):
            continue
        if strip_accents and cat == "Mn":
            continue
        s = ch.lower() if lowercase else ch
        if cat.startswith("P") or (ord(ch) < 0x7F and cat.startswith("S")) or is_chinese(ord(ch)):
            if words[-1]:
                words.append("")
            words[-1] = s
            words.append("")
        else:
            words[-1] += s
    if not words[-1]:
        words.pop()
    return words


def wpm_tokenize(text: str, token_to_id: dict[bytes, int], max_len: int, unk: int, bos: int, sep: int,
                 lowercase: bool, strip_accents: bool) -> list[int]:
    """llm_tokenizer_wpm_session::tokenize with add_special (bos first, sep last); works on bytes
    like the C++ (std::string::substr)."""
    out = [bos]
    for word in wpm_words(text, lowercase, strip_accents):
        w = ("\u2581" + word).encode("utf-8")
        n = len(w)
        start = len(out)
        i = 0
        while i < n:
            for j in range(min(n, i + max_len + 1), i, -1):
                tid = token_to_id.get(w[i:j])
                if tid is not None:
                    out.append(tid)
                    i = j
                    break
            else:
                del out[start:]  # no match: discard the word's tokens
                break
        if len(out) == start:
            out.append(unk)
    out.append(sep)
    return out


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    reader = GGUFReader(sys.argv[1])
    ref = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
    errors: list[str] = []

    expect = {
        "general.architecture": "bert", "tokenizer.ggml.model": "bert", "bert.attention.causal": False,
        "bert.pooling_type": 1, "tokenizer.ggml.token_type_count": 2,
    }
    for k, v in expect.items():
        if field(reader, k) != v:
            errors.append(f"{k} = {field(reader, k)!r}, expected {v!r}")
    hp = {
        "layer_norm_eps": field(reader, "bert.attention.layer_norm_epsilon"),
        "num_attention_heads": field(reader, "bert.attention.head_count"),
        "hidden_size": field(reader, "bert.embedding_length"),
        "num_hidden_layers": field(reader, "bert.block_count"),
    }

    weights: dict[str, np.ndarray] = {}
    for t in reader.tensors:
        want = "F32" if (len(t.shape) == 1 or t.name.endswith(("_norm.weight", ".bias"))
                         or t.name in ("position_embd.weight", "token_types.weight")) else "F16"
        if t.tensor_type.name != want:
            errors.append(f"{t.name} is {t.tensor_type.name}, expected {want}")
        if t.name in HF_NAMES:
            hf = HF_NAMES[t.name]
        else:
            _, i, base, suffix = t.name.split(".")
            hf = f"encoder.layer.{i}.{BLOCK_NAMES[base]}.{suffix}"
        weights[hf] = np.asarray(t.data, dtype=np.float64).reshape(tuple(int(x) for x in reversed(t.shape)))

    tokens = field(reader, "tokenizer.ggml.tokens")
    token_to_id = {t: i for i, t in enumerate(tokens)}
    max_len = max(len(t) for t in tokens)
    lowercase = bool(field(reader, "tokenizer.ggml.normalizer.lowercase"))
    strip = bool(field(reader, "tokenizer.ggml.normalizer.strip_accents"))
    ids = [wpm_tokenize(s, token_to_id, max_len, field(reader, "tokenizer.ggml.unknown_token_id"),
                        field(reader, "tokenizer.ggml.bos_token_id"),
                        field(reader, "tokenizer.ggml.seperator_token_id"), lowercase, strip)
           for s in ref["sentences"]]
    for s, mine, theirs in zip(ref["sentences"], ids, ref.get("token_ids", ids)):
        if mine != theirs:
            errors.append(f"tokens differ for {s[:40]!r}: {mine} vs reference {theirs}")

    emb = embed(weights, hp, ids)
    cos = np.sum(emb * np.asarray(ref["embeddings"]), axis=1)
    for s, c in zip(ref["sentences"], cos):
        if c < MIN_COSINE:
            errors.append(f"cosine {c:.5f} < {MIN_COSINE} for {s[:40]!r}")

    for e in errors:
        print(f"check_minilm_gguf: FAIL {e}", file=sys.stderr)
    print(f"check_minilm_gguf: {'FAILED' if errors else 'ok'}: {len(reader.tensors)} tensors, "
          f"{len(tokens)} tokens, llama.cpp-style tokenization "
          f"{'matches' if not any('tokens differ' in e for e in errors) else 'DIFFERS'}, "
          f"cosine vs reference min {cos.min():.7f}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
