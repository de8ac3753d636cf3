#!/usr/bin/env bash
# GPU throughput of the three model profiles with the llama.cpp that llama-cpp-2 vendors, built
# with CUDA (the device machine has nvcc and CMake but no Rust toolchain, and takes 64 MiB per
# call, so the weights cannot travel: the models are rebuilt from their headers with zeroed
# weights, see scripts/gguf-skeleton.py; same shapes and types, so the same speed).
#
# Prepare here:   scripts/gpu-bench.sh prepare     (writes .gpu/: llama.cpp source, model headers)
# Run there:      scripts/gpu-bench.sh run OUTDIR  (builds, then llama-bench on GPU and on CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="SmolLM2-135M-Instruct.Q4_1 qwen2.5-coder-0.5b-instruct-awq-q4_k_m qwen2.5-coder-1.5b-instruct-q4_k_m"

case "${1:-}" in
prepare)
    mkdir -p .gpu
    for m in $MODELS; do python3 scripts/gguf-skeleton.py "models/$m.gguf" ".gpu/$m"; done
    src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-"$(grep -A1 'name = "llama-cpp-sys-2"' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')" | head -1)
    tar -C "$src" -czf .gpu/llama.tgz --exclude=llama.cpp/models --exclude=llama.cpp/docs \
        --exclude=llama.cpp/tests --exclude=llama.cpp/pocs --exclude=llama.cpp/examples \
        --exclude=llama.cpp/tools/server --exclude=llama.cpp/tools/ui llama.cpp
    echo "prepared .gpu from $src"
    ;;
run)
    out=${2:?OUTDIR}
    work=/tmp/gpu-bench
    mkdir -p "$work" "$out"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
    nvcc --version | tail -2 | tee -a "$out/gpu.txt"
    nproc | tee -a "$out/gpu.txt"
    tar -C "$work" -xzf .gpu/llama.tgz
    start=$(date +%s)
    cmake -S "$work/llama.cpp" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DBUILD_SHARED_LIBS=ON -DLLAMA_CURL=OFF \
        -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF > "$out/cmake.log" 2>&1 \
        || { tail -40 "$out/cmake.log"; exit 1; }
    cmake --build "$work/build" --target llama -j "$(nproc)" > "$out/build.log" 2>&1 \
        || { tail -40 "$out/build.log"; exit 1; }
    lib=$(dirname "$(find "$work/build" -name 'libllama.so' | head -1)")
    g++ -O2 -std=c++17 scripts/gpu-bench/bench.cpp -o "$work/bench" -I"$work/llama.cpp/include" \
        -I"$work/llama.cpp/ggml/include" -L"$lib" -lllama -Wl,-rpath,"$lib"
    echo "cuda build: $(( $(date +%s) - start )) s on $(nproc) cores" | tee -a "$out/gpu.txt"
    header="| model | on | threads | conversations | prompt | first token s | full reply s | prompt tok/s | reply tok/s each | reply tok/s all |"
    rule="|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n%s\n' "$header" "$rule" | tee "$out/bench.md"
    for m in $MODELS; do
        cat ".gpu/$m.head" > "$work/$m.gguf"
        truncate -s "$(cat ".gpu/$m.size")" "$work/$m.gguf"
        "$work/bench" "$work/$m.gguf" 99 4 512 128 1,8,32,64 3 | tee -a "$out/bench.md"
    done
    for m in $MODELS; do
        CUDA_VISIBLE_DEVICES= "$work/bench" "$work/$m.gguf" 0 2 512 128 1 1 | tee -a "$out/bench.md" || true
    done
    ;;
*)
    echo "usage: scripts/gpu-bench.sh prepare | run OUTDIR" >&2
    exit 2
    ;;
esac
