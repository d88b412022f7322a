/* tests/test_memory.c - the memory lecture's arithmetic (nn/memory.h): preset parameter counts
 * against the published totals, KV-cache bytes per token by hand. (The printed report: the
 * course_memory tests in tests/test_course.c.) */
#include <math.h>
#include <string.h>

#include "nn/memory.h"
#include "tests/test.h"

/* The totals the model cards publish, and what the architecture gives (to the last parameter:
 * any change to a preset or the counting shows here). */
TEST(memory_preset_counts_match_the_model_cards) {
    const struct { const char *name; double card, card_active; int64_t params, active; } want[] = {
        {"qwen3-0.6b", 0.6e9, 0.6e9, 596049920, 596049920},
        {"qwen3-1.7b", 1.7e9, 1.7e9, 1720574976, 1720574976},
        {"qwen3-4b", 4.0e9, 4.0e9, 4022468096, 4022468096},
        {"qwen3-8b", 8.2e9, 8.2e9, 8190735360, 8190735360},
        {"qwen3-14b", 14.8e9, 14.8e9, 14768307200, 14768307200},
        {"qwen3-32b", 32.8e9, 32.8e9, 32762123264, 32762123264},
        {"qwen3-30b-a3b", 30.5e9, 3.3e9, 30532122624, 3353032704},
        {"deepseek-v2", 236e9, 21e9, 235741434880, 21375800320},
        {"deepseek-v3", 671e9, 37e9, 671026419200, 37552297472},
    };
    int n;
    cf_llm_presets(&n);
    CHECK(n == (int)(sizeof want / sizeof want[0]));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const cf_llm_arch *a = cf_llm_preset(want[i].name);
        CHECK_MSG(a, "no preset %s", want[i].name);
        if (!a) continue;
        cf_llm_counts c = cf_llm_count(a);
        CHECK_MSG(c.params == want[i].params && c.active_params == want[i].active, "%s: %lld / %lld active",
                  want[i].name, (long long)c.params, (long long)c.active_params);
        /* the cards round to the digits given (0.6B, 3.3B, 37B): within 2.5% */
        CHECK(fabs((double)c.params / want[i].card - 1) < 0.025 && fabs((double)c.active_params / want[i].card_active - 1) < 0.025);
    }
    CHECK(cf_llm_preset("qwen3-33b") == NULL);
}

/* Per token and layer: mha 2 d, gqa 2 Hkv D, mqa 2 D, mla r + dr. */
TEST(memory_kv_bytes_per_token) {
    const cf_llm_arch *q = cf_llm_preset("qwen3-32b"), *d = cf_llm_preset("deepseek-v2");
    CHECK(cf_llm_kv_bytes_per_token(q, CF_ATTN_MHA, 2) == 64LL * 2 * 5120 * 2);
    CHECK(cf_llm_kv_bytes_per_token(q, CF_ATTN_GQA, 2) == 64LL * 2 * 8 * 128 * 2);
    CHECK(cf_llm_kv_bytes_per_token(q, CF_ATTN_MQA, 1) == 64LL * 2 * 128);
    CHECK(cf_llm_kv_bytes_per_token(q, CF_ATTN_MLA, 4) == 64LL * (512 + 64) * 4); /* 4 x head dim + half of it */
    CHECK(cf_llm_kv_bytes_per_token(d, CF_ATTN_MLA, 2) == 60LL * 576 * 2);
    /* the lecture's example: 42.9 GB at batch 16, 85.9 GB at batch 32 (85.899..., not 85.8) */
    double kv16 = (double)cf_llm_kv_bytes_per_token(q, CF_ATTN_MHA, 2) * 16 * 2048 / 1e9;
    CHECK(fabs(kv16 - 42.9497) < 1e-4 && fabs(2 * kv16 - 85.8993) < 1e-4);
}
