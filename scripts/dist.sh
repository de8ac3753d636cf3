#!/usr/bin/env bash
# `make dist`: a release tarball that runs on a Linux machine of the same architecture without
# a Rust toolchain: the gateway binary, the example SMS plugin, an example configuration, the
# systemd unit, the README and docs, and the model fetcher (scripts/models.sh needs python3 and
# its venv module; models are not shipped: hundreds of MB, fetched and verified on the target).
# Usage: scripts/dist.sh [OUT_DIR] (default ./dist); prints the tarball's path last.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$HOME/.cache/coach-gateway/target}"
out="${1:-dist}"
bin="$CARGO_TARGET_DIR/release/gateway"
# The speech worker for voice notes (whisper.cpp cannot share the gateway's binary).
whisper="$CARGO_TARGET_DIR/release/coach-whisper"
# `cargo build` puts the plugin beside the binary, `cargo test` only in deps/.
plugin="$CARGO_TARGET_DIR/release/libcoach_sms_twilio.so"
[ -f "$plugin" ] || plugin="$CARGO_TARGET_DIR/release/deps/libcoach_sms_twilio.so"
for f in "$bin" "$whisper" "$plugin"; do
  [ -f "$f" ] || { echo "dist: $f is missing; run make build first" >&2; exit 1; }
done
# Every shared library the binary needs must be on a stock machine (no llama.cpp .so left
# behind in the build tree).
if missing=$(ldd "$bin" "$whisper" | grep "not found"); then
  echo "dist: the binary needs libraries that are not installed: $missing" >&2
  exit 1
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
name="coach-gateway-$version-$(uname -m)-linux"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
mkdir -p "$root/bin" "$root/plugins" "$root/scripts" "$root/models"
install -m 0755 "$bin" "$root/bin/gateway"
install -m 0755 "$whisper" "$root/bin/coach-whisper"
# The build keeps line tables for backtraces (about 690 MB); the release does without them.
if command -v strip >/dev/null; then strip --strip-debug "$root/bin/gateway" "$root/bin/coach-whisper"; fi
install -m 0644 "$plugin" "$root/plugins/"
install -m 0644 deploy/gateway.toml.example deploy/coach-gateway.service README.md "$root/"
cp -r docs "$root/docs"
install -m 0755 scripts/models.sh "$root/scripts/"
# The fetcher and the converters it runs.
install -m 0644 scripts/models.py scripts/convert_minilm.py scripts/reference_embeddings.py \
  scripts/check_minilm_gguf.py scripts/convert_whisper.py "$root/scripts/"
cp -r scripts/model-parts "$root/scripts/model-parts"
cat > "$root/INSTALL.txt" <<TEXT
Coaching gateway $version ($(uname -m), Linux)

  bin/gateway serve                      serve on embedded defaults (./data, port 8080)
  scripts/models.sh --profile default    fetch and verify the models into ./models
                                         (needs python3 with venv: apt-get install python3-venv)
  bin/gateway config                     every setting with its value

As a service: gateway.toml.example and coach-gateway.service (instructions at its top).
README.md has the configuration table and the API.
TEXT
mkdir -p "$out"
tarball="$(cd "$out" && pwd)/$name.tar.gz"
tar -C "$stage" -czf "$tarball" "$name"
echo "dist: $(du -h "$tarball" | cut -f1) in $tarball" >&2
echo "$tarball"
