#!/usr/bin/env python3
"""Convert a Whisper model in CTranslate2's float16 layout (the one faster-whisper loads) into
whisper.cpp's ggml file, with numpy only.

  convert_whisper.py MODEL_DIR OUT.bin

MODEL_DIR holds `model.bin` (CTranslate2), `config.json` and `tokenizer.json`. What the output holds
and where it comes from:
  - hyperparameters: read off the tensors' shapes and the stored head counts;
  - the mel filterbank (80 x 201): computed here as Whisper computes it (librosa's Slaney-style
    filters for a 400-point FFT at 16 kHz), because CTranslate2 does not store it;
  - the vocabulary: tokenizer.json's byte-level BPE tokens below the first special token, turned
    back into raw bytes (whisper.cpp derives the special tokens from the vocabulary size);
  - the tensors, renamed to the names whisper.cpp looks up; CTranslate2 fuses the self-attention's
    query, key and value (and the cross-attention's key and value) into one matrix, split back
    here; the key projections have no bias in Whisper, so the fused bias's key part (zeros) goes.

Matrices are written as float16, biases, norms and positional embeddings as float32 (the types
whisper.cpp allocates for a float16 model). The output depends on the inputs only, so its sha256
is pinned in scripts/models.py.
"""
from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import numpy as np

GGML_MAGIC = 0x67676D6C
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(path: Path) -> dict[str, np.ndarray]:
    """The variables of a CTranslate2 model.bin (binary version 6), aliases resolved."""
    data = path.read_bytes()
    offset = 0

    def unpack(fmt: str):
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def string() -> str:
        nonlocal offset
        n = unpack("<H")  # length including the trailing NUL
        value = data[offset:offset + n - 1].decode("utf-8")
        offset += n
        return value

    version = unpack("<I")
    if version != 6:
        raise SystemExit(f"{path}: CTranslate2 binary version {version}, expected 6")
    spec = string()
    if spec != "WhisperSpec":
        raise SystemExit(f"{path}: a {spec}, not a Whisper model")
    unpack("<I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(unpack("<I")):
        name = string()
        shape = [unpack("<I") for _ in range(unpack("<B"))]
        dtype = CT2_DTYPES.get(unpack("<B"))
        nbytes = unpack("<I")
        if dtype is None:
            raise SystemExit(f"{path}: {name} has a type this converter does not read")
        variables[name] = np.frombuffer(data, dtype=dtype, count=nbytes // np.dtype(dtype).itemsize,
                                        offset=offset).reshape(shape)
        offset += nbytes
    for _ in range(unpack("<I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    if offset != len(data):
        raise SystemExit(f"{path}: {len(data) - offset} bytes left after the aliases")
    return variables


def hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    f = np.asarray(f, dtype=np.float64)
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filters(sr: int = 16000, n_fft: int = 400, n_mels: int = 80) -> np.ndarray:
    """librosa.filters.mel(sr, n_fft, n_mels) with norm='slaney', as Whisper's mel_filters.npz."""
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    weights = np.zeros((n_mels, len(fft_freqs)))
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level alphabet back to bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def vocabulary(tokenizer: Path) -> list[bytes]:
    spec = json.loads(tokenizer.read_text(encoding="utf-8"))
    first_special = min(t["id"] for t in spec["added_tokens"] if t.get("special"))
    by_id = {i: t for t, i in spec["model"]["vocab"].items() if i < first_special}
    if sorted(by_id) != list(range(first_special)):
        raise SystemExit(f"{tokenizer}: token ids below {first_special} are not contiguous")
    decode = byte_decoder()
    return [bytes(decode[c] for c in by_id[i]) for i in range(first_special)]


def rename(v: dict[str, np.ndarray], layers: tuple[int, int], state: int) -> list[tuple[str, np.ndarray]]:
    """The tensors under whisper.cpp's (OpenAI's) names."""
    out: list[tuple[str, np.ndarray]] = []

    def put(name: str, array: np.ndarray) -> None:
        out.append((name, array))

    def linear(dst: str, src: str, bias: bool = True) -> None:
        put(f"{dst}.weight", v[f"{src}/weight"])
        if bias:
            put(f"{dst}.bias", v[f"{src}/bias"])

    def norm(dst: str, src: str) -> None:
        put(f"{dst}.weight", v[f"{src}/gamma"])
        put(f"{dst}.bias", v[f"{src}/beta"])

    def split_qkv(dst: str, src: str) -> None:
        w, b = v[f"{src}/weight"], v[f"{src}/bias"]
        put(f"{dst}.query.weight", w[:state])
        put(f"{dst}.query.bias", b[:state])
        put(f"{dst}.key.weight", w[state:2 * state])
        put(f"{dst}.value.weight", w[2 * state:])
        put(f"{dst}.value.bias", b[2 * state:])

    put("encoder.positional_embedding", v["encoder/position_encodings/encodings"])
    for i in (1, 2):
        put(f"encoder.conv{i}.weight", v[f"encoder/conv{i}/weight"])
        put(f"encoder.conv{i}.bias", v[f"encoder/conv{i}/bias"].reshape(-1, 1))
    for i in range(layers[0]):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        split_qkv(f"{dst}.attn", f"{src}/self_attention/linear_0")
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
    norm("encoder.ln_post", "encoder/layer_norm")

    put("decoder.positional_embedding", v["decoder/position_encodings/encodings"])
    put("decoder.token_embedding.weight", v["decoder/embeddings/weight"])
    for i in range(layers[1]):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        split_qkv(f"{dst}.attn", f"{src}/self_attention/linear_0")
        linear(f"{dst}.attn.out", f"{src}/self_attention/linear_1")
        norm(f"{dst}.cross_attn_ln", f"{src}/attention/layer_norm")
        linear(f"{dst}.cross_attn.query", f"{src}/attention/linear_0")
        kv_w, kv_b = v[f"{src}/attention/linear_1/weight"], v[f"{src}/attention/linear_1/bias"]
        put(f"{dst}.cross_attn.key.weight", kv_w[:state])
        put(f"{dst}.cross_attn.value.weight", kv_w[state:])
        put(f"{dst}.cross_attn.value.bias", kv_b[state:])
        linear(f"{dst}.cross_attn.out", f"{src}/attention/linear_2")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
    norm("decoder.ln", "decoder/layer_norm")
    return out


def count_layers(v: dict[str, np.ndarray], part: str) -> int:
    n = 0
    while f"{part}/layer_{n}/ffn/linear_0/weight" in v:
        n += 1
    return n


# Kept as float32 although they have two dimensions (whisper.cpp allocates them so).
F32_NAMES = {"encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
             "decoder.positional_embedding"}


def convert(model_dir: Path, out: Path) -> None:
    v = read_ct2(model_dir / "model.bin")
    n_vocab, state = v["decoder/embeddings/weight"].shape
    audio_ctx, audio_state = v["encoder/position_encodings/encodings"].shape
    text_ctx = v["decoder/position_encodings/encodings"].shape[0]
    n_mels = v["encoder/conv1/weight"].shape[1]
    layers = (count_layers(v, "encoder"), count_layers(v, "decoder"))
    heads = (int(v["encoder/num_heads"]), int(v["decoder/num_heads"]))
    if audio_state != state:
        raise SystemExit("encoder and decoder widths differ: not a Whisper model this converter knows")
    tokens = vocabulary(model_dir / "tokenizer.json")
    filters = mel_filters(n_mels=n_mels)
    tensors = rename(v, layers, state)

    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<I", GGML_MAGIC))
        # n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
        # n_text_state, n_text_head, n_text_layer, n_mels, ftype (1: float16)
        f.write(struct.pack("<11i", n_vocab, audio_ctx, audio_state, heads[0], layers[0], text_ctx,
                            state, heads[1], layers[1], n_mels, 1))
        f.write(struct.pack("<2i", *filters.shape))
        f.write(filters.tobytes())
        f.write(struct.pack("<i", len(tokens)))
        for token in tokens:
            f.write(struct.pack("<i", len(token)))
            f.write(token)
        for name, array in tensors:
            f32 = array.ndim < 2 or name in F32_NAMES
            data = np.ascontiguousarray(array, dtype=np.float32 if f32 else np.float16)
            encoded = name.encode("utf-8")
            f.write(struct.pack("<3i", data.ndim, len(encoded), 0 if f32 else 1))
            f.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))  # ggml's order
            f.write(encoded)
            f.write(data.tobytes())
    tmp.replace(out)
    print(f"convert_whisper: {out.name}: {layers[0]}+{layers[1]} layers, width {state}, "
          f"{len(tokens)} tokens, {len(tensors)} tensors", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
