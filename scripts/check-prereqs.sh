#!/usr/bin/env bash
# Checks the system prerequisites before anything is compiled, so a missing one stops `make` in
# seconds with the line that fixes it, not after minutes of compiling (llama.cpp's bindgen needs
# libclang; its build needs cmake; the models need Python's venv).
#
#   scripts/check-prereqs.sh build     what `make build` / `make run` need
#   scripts/check-prereqs.sh test      the same, plus the services and browser the tests use
set -uo pipefail

what="${1:-build}"
missing_pkgs=()   # Debian package names
missing_text=()   # what each one is for

need() { # need PACKAGE WHY: record a missing prerequisite
  missing_pkgs+=("$1")
  missing_text+=("  - $2 ($1)")
}

have() { command -v "$1" >/dev/null 2>&1; }

# libclang itself (libclang.so, libclang-14.so.1...), not libclang-cpp, which bindgen cannot use.
libclang_in() {
  compgen -G "$1/libclang.so*" >/dev/null || compgen -G "$1/libclang-[0-9]*.so*" >/dev/null \
    || compgen -G "$1/libclang.dylib" >/dev/null
}

# libclang as clang-sys (bindgen) finds it: LIBCLANG_PATH, llvm-config, the loader cache, LLVM dirs.
have_libclang() {
  local d
  if [ -n "${LIBCLANG_PATH:-}" ]; then
    libclang_in "$LIBCLANG_PATH" && return 0
  fi
  if have llvm-config; then
    d=$(llvm-config --libdir 2>/dev/null) && libclang_in "$d" && return 0
  fi
  if have ldconfig || [ -x /sbin/ldconfig ]; then
    { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -Eq 'libclang(-[0-9.]+)?\.so' && return 0
  fi
  for d in /usr/lib/llvm-*/lib /usr/lib64 /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu \
    /usr/local/lib /opt/homebrew/opt/llvm/lib /usr/local/opt/llvm/lib \
    /Library/Developer/CommandLineTools/usr/lib; do
    libclang_in "$d" && return 0
  done
  return 1
}

have cargo || need "rustup" "a Rust toolchain 1.95+: curl https://sh.rustup.rs -sSf | sh"
have cmake || need cmake "cmake, to build llama.cpp"
have clang || need clang "clang, for llama.cpp's bindings"
have_libclang || need libclang-dev "libclang, which bindgen loads to read llama.cpp's headers"
have pkg-config || need pkg-config "pkg-config"
if ! have python3; then
  need python3 "Python 3.11+, to fetch and convert the models"
elif ! python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  need python3 "Python 3.11+, to fetch and convert the models (found $(python3 -V 2>&1))"
elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need python3-venv "Python's venv with pip, for the models' packages"
fi

if [ "$what" = test ]; then
  # The test scripts use the servers at TEST_DATABASE_URL / TEST_REDIS_URL when they answer, and
  # start throwaway ones from the installed binaries otherwise; either needs the client tools.
  have psql || need postgresql "PostgreSQL (client and server) for the store's tests"
  have redis-cli || need redis-tools "redis-cli, to check the Redis the tests use"
  have redis-server || [ -n "${TEST_REDIS_URL:-}" ] || need redis-server "Redis for the fan-out tests"
  have chromium || have chromium-browser || [ -n "${CHROMIUM:-}" ] \
    || need chromium "Chromium for the browser tests"
  have node || need nodejs "Node.js for the browser tests"
  have espeak-ng || need espeak-ng "espeak-ng, to speak the voice notes the tests transcribe"
  have opusenc || need opus-tools "opusenc, to encode them as WhatsApp does (Ogg/Opus)"
fi

[ "${#missing_pkgs[@]}" -eq 0 ] && exit 0

{
  echo "Missing system prerequisites (checked before compiling):"
  printf '%s\n' "${missing_text[@]}"
  apt=()
  for p in "${missing_pkgs[@]}"; do [ "$p" != rustup ] && apt+=("$p"); done
  if [ "${#apt[@]}" -gt 0 ]; then
    if have apt-get; then
      echo "Install them with:"
      sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo "
      echo "  ${sudo}apt-get install -y --no-install-recommends ${apt[*]}"
    elif have brew; then
      echo "Install them with Homebrew (llvm gives libclang; then export LIBCLANG_PATH=\$(brew --prefix llvm)/lib):"
      echo "  brew install cmake llvm pkg-config python node"
    else
      echo "Install these packages (Debian names): ${apt[*]}"
    fi
  fi
  echo "Then run the same make command again. (If libclang is installed somewhere unusual, set LIBCLANG_PATH.)"
} >&2
exit 1
