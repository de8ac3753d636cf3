// Throughput of one GGUF model through llama.cpp's C API, the way the gateway's brain uses it:
// a prompt of P tokens decoded in one batch (time to first token), then R reply tokens one at a
// time; with N conversations at once, N prompts and then N tokens per step.
// usage: bench MODEL.gguf GPU_LAYERS THREADS PROMPT REPLY CONVERSATIONS[,N2,...] REPEATS
#include "llama.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

static double now_s() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

static void quiet(ggml_log_level, const char *, void *) {}

int main(int argc, char ** argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s MODEL GPU_LAYERS THREADS PROMPT REPLY CONVERSATIONS REPEATS\n", argv[0]);
        return 2;
    }
    const int gpu_layers = atoi(argv[2]), threads = atoi(argv[3]);
    const int prompt = atoi(argv[4]), reply = atoi(argv[5]), repeats = atoi(argv[7]);
    std::vector<int> sizes;
    std::stringstream list(argv[6]);
    for (std::string item; std::getline(list, item, ',');) sizes.push_back(atoi(item.c_str()));

    llama_log_set(quiet, nullptr);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.n_gpu_layers = gpu_layers;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const int vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));

    for (int n : sizes) {
        llama_context_params cp = llama_context_default_params();
        cp.n_ctx = (uint32_t) (n * (prompt + reply) + 16);
        cp.n_batch = (uint32_t) (n * prompt > 512 ? n * prompt : 512);
        cp.n_ubatch = 512;
        cp.n_seq_max = (uint32_t) n;
        cp.n_threads = threads;
        cp.n_threads_batch = threads;
        llama_context * ctx = llama_init_from_model(model, cp);
        if (!ctx) { fprintf(stderr, "cannot make a context for %d conversations\n", n); return 1; }
        llama_batch batch = llama_batch_init(n * prompt, 0, 1);
        double first_sum = 0, total_sum = 0;
        for (int r = 0; r <= repeats; r++) {  // round 0 warms up
            llama_memory_clear(llama_get_memory(ctx), true);
            batch.n_tokens = 0;
            for (int s = 0; s < n; s++) {
                for (int i = 0; i < prompt; i++) {
                    int k = batch.n_tokens++;
                    batch.token[k] = (llama_token) ((s * 7919 + i * 104729) % vocab);
                    batch.pos[k] = i;
                    batch.n_seq_id[k] = 1;
                    batch.seq_id[k][0] = s;
                    batch.logits[k] = i == prompt - 1;
                }
            }
            double t0 = now_s();
            if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "prompt decode failed\n"); return 1; }
            llama_synchronize(ctx);
            double t1 = now_s();
            for (int step = 0; step < reply; step++) {
                batch.n_tokens = 0;
                for (int s = 0; s < n; s++) {
                    int k = batch.n_tokens++;
                    batch.token[k] = (llama_token) ((step * 31 + s) % vocab);
                    batch.pos[k] = prompt + step;
                    batch.n_seq_id[k] = 1;
                    batch.seq_id[k][0] = s;
                    batch.logits[k] = true;
                }
                if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "reply decode failed\n"); return 1; }
            }
            llama_synchronize(ctx);
            double t2 = now_s();
            if (r > 0) { first_sum += t1 - t0; total_sum += t2 - t0; }
        }
        const double first = first_sum / repeats, total = total_sum / repeats;
        const double gen = total - first;
        printf("| %s | %s | %d | %d | %d | %.3f | %.3f | %.0f | %.1f | %.1f |\n",
               argv[1], gpu_layers > 0 ? "GPU" : "CPU", threads, n, prompt, first, total,
               n * prompt / first, reply / gen, n * reply / gen);
        fflush(stdout);
        llama_batch_free(batch);
        llama_free(ctx);
    }
    llama_model_free(model);
    return 0;
}
