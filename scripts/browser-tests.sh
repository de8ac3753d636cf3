#!/usr/bin/env bash
# The widget's browser tests: Playwright (npm, pinned in tests/browser/package-lock.json) driving
# Debian's chromium against the gateway binary that `cargo test` just built.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$HOME/.cache/coach-gateway/target}"
export GATEWAY_BIN="${GATEWAY_BIN:-$CARGO_TARGET_DIR/release/gateway}"
export MODELS_DIR="${MODELS_DIR:-$PWD/models}"
# Screenshots of the console's main screens, for review.
export SCREENSHOTS_DIR="${SCREENSHOTS_DIR:-$CARGO_TARGET_DIR/console-screenshots}"
export CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$CHROMIUM" ]; then
  echo "browser tests: chromium is missing; install Debian's package: apt-get install chromium" >&2
  exit 1
fi
command -v node >/dev/null || { echo "browser tests: node is missing (apt-get install nodejs)" >&2; exit 1; }
[ -x "$GATEWAY_BIN" ] || { echo "browser tests: $GATEWAY_BIN is missing; run make build" >&2; exit 1; }
cd tests/browser
{ [ -d node_modules/playwright-core ] && [ -d node_modules/axe-core ]; } || npm ci --no-audit --no-fund --loglevel=error
node --test --test-concurrency=1 --test-reporter=spec
