#!/usr/bin/env python3
"""Convert sentence-transformers/all-MiniLM-L6-v2 (HF BertModel: safetensors + tokenizer.json) to a
GGUF file that llama.cpp loads as a BERT embedding model (arch "bert", mean pooling).

Usage: convert_minilm.py MODEL_DIR OUT.gguf

It follows what llama.cpp's convert_hf_to_gguf.py does for a `BertModel` (class BertModel in
conversion/bert.py, TextModel/ModelBase in conversion/base.py), with numpy instead of torch:

* hparams: context_length, embedding_length, feed_forward_length, block_count,
  attention.head_count, attention.layer_norm_epsilon, attention.causal = false and pooling_type
  from the sentence-transformers Pooling module (MEAN for this model).
* tensors: names through gguf's tensor name map for MODEL_ARCH.BERT (the pooler and
  embeddings.position_ids are dropped); F16 except 1-D tensors (norms, biases), *_norm.weight and
  the position and token-type embeddings, which stay F32 as llama.cpp needs them.
* vocab: WordPiece as tokenizer.ggml.model "bert" in llama.cpp's "phantom space" form: a token
  that starts a word gets a U+2581 prefix, a "##" continuation loses its "##", and control tokens
  ([CLS], [SEP], ...) stay as they are; token types NORMAL/CONTROL; token_type_count from
  type_vocab_size; special token ids and add_*_token flags via gguf.SpecialVocab.

Only numpy, safetensors and gguf are needed. The output is written to OUT.gguf.tmp and renamed.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import gguf
import numpy as np
from safetensors import safe_open

# What convert_hf_to_gguf.py's get_vocab_base_pre() answers for this tokenizer: the sha256 of the
# ids of its check text is 0876d13b…e19f, the BERT-uncased WordPiece hash it maps to "jina-v2-en"
# (the same hash as BAAI/bge-small-en-v1.5). llama.cpp ignores the pre-tokenizer for WPM vocabs.
TOKENIZER_PRE = "jina-v2-en"

# Kept in F32 whatever the file type, as in ModelBase.prepare_tensors().
F32_TENSORS = (gguf.MODEL_TENSOR.POS_EMBD, gguf.MODEL_TENSOR.TOKEN_TYPES)


def log(msg: str) -> None:
    print(f"convert_minilm: {msg}", file=sys.stderr, flush=True)


def pooling_type(model_dir: Path) -> gguf.PoolingType | None:
    """ModelBase._try_set_pooling_type(): read the sentence-transformers Pooling module."""
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        return None
    for mod in json.loads(modules_file.read_text(encoding="utf-8")):
        if mod["type"] == "sentence_transformers.models.Pooling":
            pooling = json.loads((model_dir / mod["path"] / "config.json").read_text(encoding="utf-8"))
            if pooling.get("pooling_mode_mean_tokens"):
                return gguf.PoolingType.MEAN
            if pooling.get("pooling_mode_cls_token"):
                return gguf.PoolingType.CLS
            if pooling.get("pooling_mode_lasttoken"):
                return gguf.PoolingType.LAST
            raise NotImplementedError("Only MEAN, CLS, and LAST pooling types supported")
    return None


def vocab(model_dir: Path, vocab_size: int) -> tuple[list[str], list[int], dict]:
    """TextModel.get_vocab_base() for a WordPiece tokenizer.json, then BertModel's phantom-space
    rewrite. Returns (tokens, token types, the tokenizer.json normalizer)."""
    tok = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    model = tok["model"]
    if model["type"] != "WordPiece" or model.get("continuing_subword_prefix", "##") != "##":
        raise ValueError(f"expected a WordPiece tokenizer with '##' subwords, got {model['type']}")
    reverse = {i: t for t, i in model["vocab"].items()}
    added = {a["id"]: a for a in tok.get("added_tokens", [])}
    for i, a in added.items():
        reverse[i] = a["content"]
    if max(reverse) >= vocab_size:
        raise ValueError(f"token id {max(reverse)} is outside vocab_size {vocab_size}")

    tokens: list[str] = []
    toktypes: list[int] = []
    for i in range(vocab_size):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            toktypes.append(gguf.TokenType.UNUSED)
            continue
        t = reverse[i]
        if i in added:
            # Added tokens of a BERT vocab are its specials ([PAD] [UNK] [CLS] [SEP] [MASK]).
            toktypes.append(gguf.TokenType.CONTROL if added[i].get("special") else gguf.TokenType.USER_DEFINED)
        else:
            toktypes.append(gguf.TokenType.NORMAL)
        tokens.append(t)

    # vocab.txt, where present, must list the same tokens in the same order.
    vocab_txt = model_dir / "vocab.txt"
    if vocab_txt.is_file():
        lines = vocab_txt.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if lines != tokens[: len(lines)] or len(lines) != len(reverse):
            raise ValueError("tokenizer.json and vocab.txt disagree")

    # BertModel.set_vocab(): convert to the phantom space vocab llama.cpp's WPM tokenizer expects.
    def phantom(t: str, toktype: int) -> str:
        if toktype == gguf.TokenType.CONTROL:
            return t
        if t.startswith("##"):
            return t[2:]
        return "\u2581" + t

    tokens = [phantom(t, tt) for t, tt in zip(tokens, toktypes)]
    if len(set(tokens)) != len(tokens):
        raise ValueError("phantom-space vocab has duplicate tokens; llama.cpp would reject it")
    return tokens, [int(t) for t in toktypes], tok.get("normalizer") or {}


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    model_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    hp = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if hp.get("architectures", ["BertModel"])[0] not in ("BertModel", "BertForMaskedLM"):
        raise ValueError(f"not a BertModel: {hp.get('architectures')}")
    n_layer = hp["num_hidden_layers"]
    ftype = gguf.LlamaFileType.MOSTLY_F16

    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(tmp, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])

    # general.* (ModelBase.prepare_metadata; the name is the directory's, as upstream falls back to)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(model_dir.name)

    # TextModel.set_gguf_parameters() + BertModel.set_gguf_parameters()
    writer.add_block_count(n_layer)
    writer.add_context_length(hp["max_position_embeddings"])
    writer.add_embedding_length(hp["hidden_size"])
    writer.add_feed_forward_length(hp["intermediate_size"])
    writer.add_head_count(hp["num_attention_heads"])
    writer.add_layer_norm_eps(hp["layer_norm_eps"])
    writer.add_file_type(ftype)
    writer.add_causal_attention(False)
    if (pt := pooling_type(model_dir)) is not None:
        writer.add_pooling_type(pt)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    # BertModel.set_vocab()
    tokens, toktypes, normalizer = vocab(model_dir, hp["vocab_size"])
    writer.add_token_type_count(hp.get("type_vocab_size", 1))
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre(TOKENIZER_PRE)
    writer.add_token_list(tokens)
    writer.add_token_types(toktypes)
    special = gguf.SpecialVocab(model_dir, n_vocab=len(tokens))
    cls_id = None
    if not hasattr(writer, "add_cls_token_id"):
        # gguf-py from PyPI has no writer for it; the key is llama-arch.cpp's LLM_KV_TOKENIZER_CLS_ID.
        cls_id = special.special_token_ids.pop("cls", None)
    special.add_to_gguf(writer, quiet=True)
    if cls_id is not None:
        writer.add_uint32("tokenizer.ggml.cls_token_id", cls_id)
    # BertNormalizer options (llama.cpp reads them, defaulting to true/true, which is what they are
    # for this uncased model); strip_accents null means "same as lowercase", as in HF.
    if normalizer.get("type") == "BertNormalizer":
        lowercase = bool(normalizer.get("lowercase", True))
        strip = normalizer.get("strip_accents")
        writer.add_bool("tokenizer.ggml.normalizer.lowercase", lowercase)
        writer.add_bool("tokenizer.ggml.normalizer.strip_accents", lowercase if strip is None else bool(strip))

    # ModelBase.prepare_tensors() with BertModel.filter_tensors()
    tensor_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, n_layer)
    f32_names = set()
    for key in F32_TENSORS:
        f32_names.add(gguf.TENSOR_NAMES[key] + ".weight")
    counts: dict[str, int] = {}
    with safe_open(model_dir / "model.safetensors", framework="numpy") as st:
        names = list(st.keys())
        for i, name in enumerate(names):
            hf = name[5:] if name.startswith("bert.") else name
            if hf.endswith(".gamma"):
                hf = hf[:-6] + ".weight"
            if hf.endswith(".beta"):
                hf = hf[:-5] + ".bias"
            if hf in ("embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias") \
                    or hf.startswith(("cls.predictions", "cls.seq_relationship")):
                continue
            new_name = tensor_map.get_name(hf, try_suffixes=(".weight", ".bias"))
            if new_name is None:
                raise ValueError(f"Can not map tensor {name!r}")
            data = st.get_tensor(name)
            if data.dtype not in (np.float16, np.float32):
                data = data.astype(np.float32)
            if data.ndim <= 1 or new_name.endswith("_norm.weight") or new_name in f32_names \
                    or not new_name.endswith(".weight"):
                qtype = gguf.GGMLQuantizationType.F32
            else:
                qtype = gguf.GGMLQuantizationType.F16
            data = gguf.quants.quantize(data.astype(np.float32), qtype)
            writer.add_tensor(new_name, data, raw_dtype=qtype)
            counts[qtype.name] = counts.get(qtype.name, 0) + 1
            if sys.stderr.isatty():
                print(f"\r  tensors {i + 1}/{len(names)}", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr, flush=True)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(out)
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB; {len(tokens)} tokens; tensors {counts})")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
