/* tests/test_optim.c - optimizers, schedules and clipping against PyTorch 1.13 (tests/ref/optim.py),
 * the NaN guard, optimizer-state checkpoints, thread-count determinism and allocation-free steps
 * (tests/alloc_count.h).
 *
 * Set CF_TEST_VERBOSE=1 to print the observed errors against PyTorch. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/threads.h"
#include "optim/clip.h"
#include "optim/optim.h"
#include "train/optim_state.h"
#include "optim/schedule.h"
#include "tests/test.h"
#include "tests/alloc_count.h"
#include "tests/testlib.h"

static bool verbose(void) { return getenv("CF_TEST_VERBOSE") != NULL; }

/* ---- PyTorch golden values ---- */

#define N_STEPS 10
#define N_PARAMS 3
static const char *const param_names[N_PARAMS] = {"enc.fc.weight", "enc.fc.bias", "src_embed.weight"};

typedef struct optim_case {
    const char *name;
    cf_optim_config cfg;
    bool exempt_embeddings;    /* with cf_param_wants_decay, reproduces the script's decay group */
    const char *decay_group;   /* the script's weight-decay group, "|"-separated */
} optim_case;

/* Mirrors CASES in tests/ref/optim.py. */
static const optim_case optim_cases[] = {
    {"adamw", {CF_OPTIM_ADAMW, 0.9, 0.98, 1e-9, 0.01, 0, 0, false}, true, "enc.fc.weight"},
    {"adamw_default", {CF_OPTIM_ADAMW, 0.9, 0.999, 1e-8, 0.1, 0, 0, false}, false, "enc.fc.weight|src_embed.weight"},
    {"adam", {CF_OPTIM_ADAM, 0.9, 0.98, 1e-9, 0.0, 0, 0, false}, true, "enc.fc.weight"},
    {"adam_l2", {CF_OPTIM_ADAM, 0.9, 0.999, 1e-8, 0.05, 0, 0, false}, true, "enc.fc.weight"},
    {"sgd", {CF_OPTIM_SGD, 0, 0, 0, 0.0, 0.9, 0, false}, true, "enc.fc.weight"},
    {"sgd_wd", {CF_OPTIM_SGD, 0, 0, 0, 0.01, 0.9, 0, false}, false, "enc.fc.weight|src_embed.weight"},
    {"sgd_nesterov", {CF_OPTIM_SGD, 0, 0, 0, 0.01, 0.9, 0, true}, true, "enc.fc.weight"},
    {"sgd_dampening", {CF_OPTIM_SGD, 0, 0, 0, 0.0, 0.9, 0.1, false}, true, "enc.fc.weight"},
};

/* Max |a - b| over a fixture tensor, for the verbose report. */
static double fixture_max_abs(const cf_st_file *f, const char *name, const cf_real *a, int64_t n) {
    const cf_st_tensor *t = cf_st_find(f, name);
    if (!t || t->numel != n) return INFINITY;
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        float b;
        memcpy(&b, (const float *)t->data + i, sizeof b);
        worst = fmax(worst, fabs((double)a[i] - b));
    }
    return worst;
}

static cf_tensor *fixture_param_named(const cf_st_file *f, const char *fixture_name, const char *param_name) {
    const cf_st_tensor *t = cf_st_find(f, fixture_name);
    if (!t) {
        test_fail(__FILE__, __LINE__, "fixture tensor '%s' missing", fixture_name);
        return NULL;
    }
    cf_tensor *p = cf_param_new(param_name, t->ndim, t->shape);
    CHECK(cf_st_read_real(f, fixture_name, p->data, t->ndim, t->shape) == 0);
    return p;
}

/* After 10 updates of parameters of size ~1 with lr up to 0.05, float32 rounding differences
 * (ATen's vectorised add uses FMA, we do not; scalars rounded in a different place) stay at a few
 * ulps of each update, far below atol 1e-6 + rtol 1e-5; an error in the equations (eps placement,
 * bias correction, decay order or group) moves parameters by >= 1e-4. */
#define PARAM_ATOL 1e-6
#define PARAM_RTOL 1e-5

TEST(optim_matches_pytorch) {
    cf_st_file *f = cf_st_open(test_fixture_path("optim.safetensors"));
    CHECK_MSG(f != NULL, "%s (run make fixtures)", cf_error_message());
    if (!f) return;
    for (size_t c = 0; c < sizeof optim_cases / sizeof optim_cases[0]; c++) {
        const optim_case *oc = &optim_cases[c];
        char name[256];
        cf_tensor *p[N_PARAMS];
        cf_param_list pl;
        cf_param_list_init(&pl);
        for (int i = 0; i < N_PARAMS; i++) {
            snprintf(name, sizeof name, "init.%s", param_names[i]);
            p[i] = fixture_param_named(f, name, param_names[i]);
            if (!p[i]) return;
            CHECK(cf_param_list_add_auto(&pl, p[i], oc->exempt_embeddings) == 0);
            /* The name/shape rule reproduces the script's parameter groups. */
            bool in_group = false;
            for (const char *g = oc->decay_group; g && *g;) {
                size_t len = strcspn(g, "|");
                in_group |= strlen(param_names[i]) == len && strncmp(g, param_names[i], len) == 0;
                g += len + (g[len] == '|');
            }
            if (oc->cfg.weight_decay != 0)
                CHECK_MSG(pl.decay[i] == in_group, "%s: decay flag of %s", oc->name, param_names[i]);
        }
        cf_optimizer *opt = cf_optimizer_new(&pl, &oc->cfg);
        CHECK_MSG(opt != NULL, "%s: %s", oc->name, cf_error_message());
        if (!opt) return;
        snprintf(name, sizeof name, "%s.lr", oc->name);
        const cf_st_tensor *lrs = cf_st_find(f, name);
        CHECK(lrs && lrs->numel == N_STEPS && lrs->dtype == CF_ST_F32);
        for (int t = 1; lrs && t <= N_STEPS; t++) {
            for (int i = 0; i < N_PARAMS; i++) {
                snprintf(name, sizeof name, "grad.%d.%s", t, param_names[i]);
                CHECK(cf_st_read_real(f, name, p[i]->grad, p[i]->ndim, p[i]->shape) == 0);
            }
            float lr;
            memcpy(&lr, (const float *)lrs->data + (t - 1), sizeof lr);
            /* The script's lrs are Python doubles stored as float32: rounding them costs < 1e-7
             * relative per update, inside the tolerance. */
            cf_optimizer_step(opt, lr);
            cf_optimizer_zero_grad(opt);
        }
        CHECK(opt->t == N_STEPS);
        double worst_p = 0, worst_s = 0;
        for (int i = 0; i < N_PARAMS; i++) {
            snprintf(name, sizeof name, "%s.final.%s", oc->name, param_names[i]);
            CHECK_FIXTURE(f, name, p[i]->data, p[i]->numel, PARAM_ATOL, PARAM_RTOL);
            worst_p = fmax(worst_p, fixture_max_abs(f, name, p[i]->data, p[i]->numel));
            for (int s = 0; s < opt->n_state; s++) {
                const char *suffix = oc->cfg.kind == CF_OPTIM_SGD ? "momentum_buffer" : s ? "exp_avg_sq" : "exp_avg";
                snprintf(name, sizeof name, "%s.%s.%s", oc->name, param_names[i], suffix);
                cf_real *buf = s ? opt->v[i] : opt->m[i];
                CHECK_FIXTURE(f, name, buf, p[i]->numel, PARAM_ATOL, PARAM_RTOL);
                worst_s = fmax(worst_s, fixture_max_abs(f, name, buf, p[i]->numel));
            }
        }
        if (verbose()) printf("    %-14s max |param - torch| %.3g, max |state - torch| %.3g\n", oc->name, worst_p, worst_s);
        cf_optimizer_free(opt);
        cf_param_list_free(&pl);
        for (int i = 0; i < N_PARAMS; i++) cf_param_free(p[i]);
    }
    cf_st_close(f);
}

/* Mirrors the schedule constants of tests/ref/optim.py. */
TEST(schedule_matches_pytorch) {
    cf_st_file *f = cf_st_open(test_fixture_path("optim.safetensors"));
    CHECK_MSG(f != NULL, "%s", cf_error_message());
    if (!f) return;
    const cf_schedule scheds[] = {
        {CF_SCHED_COSINE, 1e-3, 1e-5, 5, 25, 0, 0},
        {CF_SCHED_LINEAR, 1e-3, 1e-5, 5, 25, 0, 0},
        {CF_SCHED_CONSTANT, 1e-3, 1e-5, 5, 25, 0, 0},
        {CF_SCHED_NOAM, 0, 0, 8, 0, 2.0, 512},
    };
    for (size_t k = 0; k < sizeof scheds / sizeof scheds[0]; k++) {
        CHECK_MSG(cf_schedule_check(&scheds[k]) == 0, "%s", cf_error_message());
        cf_real lr[30];
        double worst = 0;
        for (int t = 1; t <= 30; t++) lr[t - 1] = (cf_real)cf_schedule_lr(&scheds[k], t);
        char name[64];
        snprintf(name, sizeof name, "sched.%s", cf_schedule_kind_name(scheds[k].kind));
        /* Both sides evaluate the same closed form in double and round to float32: 1e-6
         * relative leaves room for libm differences only. */
        CHECK_FIXTURE(f, name, lr, 30, 0, 1e-6);
        const cf_st_tensor *t = cf_st_find(f, name);
        for (int i = 0; t && i < 30; i++) {
            float b;
            memcpy(&b, (const float *)t->data + i, sizeof b);
            worst = fmax(worst, fabs(lr[i] - b) / b);
        }
        if (verbose()) printf("    sched.%-8s max relative error %.3g\n", cf_schedule_kind_name(scheds[k].kind), worst);
    }
    cf_st_close(f);
}

TEST(schedule_edges_and_checks) {
    cf_schedule s = {CF_SCHED_COSINE, 1e-3, 1e-5, 4, 10, 0, 0};
    CHECK_NEAR(cf_schedule_lr(&s, 0), 2.5e-4, 1e-15);     /* below 1 counts as update 1 */
    CHECK_NEAR(cf_schedule_lr(&s, 1), 2.5e-4, 1e-15);
    CHECK_NEAR(cf_schedule_lr(&s, 4), 1e-3, 1e-15);       /* peak at the end of warmup */
    CHECK_NEAR(cf_schedule_lr(&s, 7), 1e-5 + 0.5 * (1e-3 - 1e-5), 1e-15);
    CHECK_NEAR(cf_schedule_lr(&s, 10), 1e-5, 1e-15);
    CHECK_NEAR(cf_schedule_lr(&s, 1000), 1e-5, 1e-15);    /* stays at min_lr after total_steps */
    s.warmup_steps = 0;
    CHECK_NEAR(cf_schedule_lr(&s, 1), 1e-5 + 0.5 * (1e-3 - 1e-5) * (1 + cos(M_PI * 0.1)), 1e-15);
    s.kind = CF_SCHED_LINEAR;
    s.total_steps = 0;                                    /* no decay span: straight to min_lr */
    CHECK_NEAR(cf_schedule_lr(&s, 1), 1e-5, 1e-15);
    cf_schedule noam = {CF_SCHED_NOAM, 0, 0, 4000, 0, 1.0, 512};
    /* The peak is at t = warmup: d^-0.5 * warmup^-0.5. */
    CHECK_NEAR(cf_schedule_lr(&noam, 4000), 1 / sqrt(512.0 * 4000), 1e-12);
    CHECK(cf_schedule_lr(&noam, 3999) < cf_schedule_lr(&noam, 4000) && cf_schedule_lr(&noam, 4001) < cf_schedule_lr(&noam, 4000));

    cf_schedule bad[] = {
        {CF_SCHED_COSINE, 1e-3, 2e-3, 4, 10, 0, 0},       /* min_lr > lr */
        {CF_SCHED_COSINE, 1e-3, 0, 20, 10, 0, 0},         /* total < warmup */
        {CF_SCHED_LINEAR, -1, 0, 0, 10, 0, 0},            /* negative lr */
        {CF_SCHED_CONSTANT, 1e-3, 0, -1, 0, 0, 0},        /* negative warmup */
        {CF_SCHED_NOAM, 0, 0, 0, 0, 1.0, 512},            /* Noam without warmup */
        {CF_SCHED_NOAM, 0, 0, 10, 0, 1.0, 0},             /* Noam without d_model */
    };
    const char *expect[] = {"min_lr", "total_steps", "lr", "warmup_steps", "noam", "noam"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        CHECK_MSG(cf_schedule_check(&bad[k]) != 0, "bad schedule %zu accepted", k);
        CHECK_MSG(strstr(cf_error_message(), expect[k]), "case %zu: '%s'", k, cf_error_message());
    }
    cf_schedule_kind kind;
    CHECK(cf_schedule_kind_parse("noam", &kind) == 0 && kind == CF_SCHED_NOAM);
    CHECK(cf_schedule_kind_parse("cosin", &kind) != 0 && strstr(cf_error_message(), "cosin"));
}

TEST(clip_matches_pytorch) {
    cf_st_file *f = cf_st_open(test_fixture_path("optim.safetensors"));
    CHECK_MSG(f != NULL, "%s", cf_error_message());
    if (!f) return;
    const struct {
        const char *name;
        double max_norm;
    } cases[] = {{"big", 100.0}, {"small", 1.5}};
    const cf_st_tensor *norm_t = cf_st_find(f, "clip.norm");
    CHECK(norm_t && norm_t->numel == 1);
    if (!norm_t) return;
    float torch_norm;
    memcpy(&torch_norm, norm_t->data, sizeof torch_norm);
    for (int c = 0; c < 2; c++) {
        cf_tensor *p[N_PARAMS];
        char name[128];
        for (int i = 0; i < N_PARAMS; i++) {
            snprintf(name, sizeof name, "clip.grad.%s", param_names[i]);
            p[i] = fixture_param_named(f, name, param_names[i]);
            if (!p[i]) return;
            memcpy(p[i]->grad, p[i]->data, (size_t)p[i]->numel * sizeof(cf_real));
        }
        double norm = cf_clip_grad_norm(p, N_PARAMS, cases[c].max_norm);
        /* PyTorch sums in float32, we in double: 1e-6 relative. */
        CHECK_NEAR(norm, torch_norm, 1e-6 * torch_norm);
        for (int i = 0; i < N_PARAMS; i++) {
            snprintf(name, sizeof name, "clip.%s.%s", cases[c].name, param_names[i]);
            CHECK_FIXTURE(f, name, p[i]->grad, p[i]->numel, 1e-7, 1e-6);
        }
        if (c == 1) CHECK_NEAR(cf_grad_norm(p, N_PARAMS), 1.5, 1e-5); /* clipped to max_norm */
        if (verbose()) printf("    clip %-5s norm %.9g vs torch %.9g\n", cases[c].name, norm, torch_norm);
        for (int i = 0; i < N_PARAMS; i++) cf_param_free(p[i]);
    }
    cf_st_close(f);
}

TEST(grads_scale_and_finite_guard) {
    cf_tensor *a = test_param_uniform("a.weight", 2, (int64_t[]){3, 4}, -1, 1, 1);
    cf_tensor *b = test_param_uniform("a.bias", 1, (int64_t[]){4}, -1, 1, 2);
    cf_tensor *ps[2] = {a, b};
    for (int i = 0; i < 12; i++) a->grad[i] = (cf_real)(i + 1);
    for (int i = 0; i < 4; i++) b->grad[i] = 2;
    cf_grads_scale(ps, 2, 0.5);
    CHECK(a->grad[11] == 6 && b->grad[0] == 1);
    CHECK(cf_grads_finite(ps, 2));
    b->grad[2] = NAN;
    CHECK(!cf_grads_finite(ps, 2));
    double norm = cf_clip_grad_norm(ps, 2, 1e-3);
    CHECK(isnan(norm));
    CHECK(a->grad[11] == 6); /* a non-finite norm leaves gradients alone */
    b->grad[2] = -INFINITY;
    CHECK(!cf_grads_finite(ps, 2) && isinf(cf_grad_norm(ps, 2)));
    b->grad[2] = 3e38f;      /* finite extremes square fine in double */
    CHECK(cf_grads_finite(ps, 2));

    cf_nan_guard g;
    cf_nan_guard_init(&g, 3);
    CHECK(cf_nan_guard_check(&g, 1, 2.5, 1.0) == CF_GUARD_OK);
    CHECK(cf_nan_guard_check(&g, 2, INFINITY, 1.0) == CF_GUARD_SKIP);
    CHECK_MSG(strstr(g.message, "step 2") && strstr(g.message, "loss") && strstr(g.message, "Inf"), "%s", g.message);
    CHECK(cf_nan_guard_check(&g, 3, 2.0, NAN) == CF_GUARD_SKIP);
    CHECK_MSG(strstr(g.message, "gradient") && strstr(g.message, "NaN") && strstr(g.message, "2 in a row"), "%s",
              g.message);
    CHECK(cf_nan_guard_check(&g, 4, 2.0, 1.0) == CF_GUARD_OK && g.consecutive == 0); /* a good step resets */
    CHECK(cf_nan_guard_check(&g, 5, NAN, NAN) == CF_GUARD_SKIP);
    CHECK(cf_nan_guard_check(&g, 6, NAN, 1.0) == CF_GUARD_SKIP);
    CHECK(cf_nan_guard_check(&g, 7, NAN, 1.0) == CF_GUARD_STOP);
    CHECK_MSG(strstr(cf_error_message(), "3 non-finite updates in a row"), "%s", cf_error_message());
    CHECK(g.skipped == 5 && g.last_skipped_step == 7);
    cf_nan_guard_init(&g, 0); /* no limit */
    for (int i = 0; i < 100; i++) CHECK(cf_nan_guard_check(&g, i, NAN, 0) == CF_GUARD_SKIP);
    cf_param_free(a);
    cf_param_free(b);
}

TEST(param_list_decay_rule) {
    struct {
        const char *name;
        int ndim;
        int64_t shape[2];
        bool decay, decay_exempt;
    } cases[] = {
        {"encoder.layers.0.self_attn.q_proj.weight", 2, {8, 8}, true, true},
        {"encoder.layers.0.self_attn.q_proj.bias", 1, {8}, false, false},
        {"encoder.layers.0.norm1.weight", 1, {8}, false, false},
        {"src_embed.weight", 2, {10, 8}, true, false},
        {"decoder.tgt_embed.weight", 2, {10, 8}, true, false},
        {"generator.weight", 2, {10, 8}, true, true},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cf_tensor *p = cf_param_new(cases[k].name, cases[k].ndim, cases[k].shape);
        CHECK_MSG(cf_param_wants_decay(p, false) == cases[k].decay, "%s", cases[k].name);
        CHECK_MSG(cf_param_wants_decay(p, true) == cases[k].decay_exempt, "%s (embeddings exempt)", cases[k].name);
        cf_param_free(p);
    }
    cf_tensor *w = cf_param_new("w", 1, (int64_t[]){4});
    cf_tensor *w2 = cf_param_new("w", 1, (int64_t[]){4});
    cf_param_list pl;
    cf_param_list_init(&pl);
    CHECK(cf_param_list_add(&pl, w, true) == 0);
    CHECK(cf_param_list_add(&pl, w, true) != 0 && strstr(cf_error_message(), "twice"));
    CHECK(cf_param_list_add(&pl, w2, true) != 0 && strstr(cf_error_message(), "'w'"));
    CHECK(pl.n == 1 && cf_param_list_numel(&pl) == 4);
    cf_optim_config bad = cf_optim_config_default(CF_OPTIM_ADAMW);
    bad.beta1 = 1.0;
    CHECK(cf_optimizer_new(&pl, &bad) == NULL && strstr(cf_error_message(), "betas"));
    bad = cf_optim_config_default(CF_OPTIM_SGD);
    bad.nesterov = true;
    CHECK(cf_optimizer_new(&pl, &bad) == NULL && strstr(cf_error_message(), "Nesterov"));
    cf_optim_kind kind;
    CHECK(cf_optim_kind_parse("adamw", &kind) == 0 && kind == CF_OPTIM_ADAMW);
    CHECK(cf_optim_kind_parse("adamax", &kind) != 0 && strstr(cf_error_message(), "adamax"));
    cf_param_list_free(&pl);
    cf_param_free(w);
    cf_param_free(w2);
}

TEST(sgd_without_momentum_has_no_state) {
    cf_tensor *w = test_param_uniform("w.weight", 2, (int64_t[]){3, 3}, -1, 1, 1);
    cf_real before[9];
    memcpy(before, w->data, sizeof before);
    cf_param_list pl;
    cf_param_list_init(&pl);
    CHECK(cf_param_list_add(&pl, w, true) == 0);
    cf_optim_config oc = cf_optim_config_default(CF_OPTIM_SGD);
    cf_optimizer *opt = cf_optimizer_new(&pl, &oc);
    CHECK(opt && opt->n_state == 0 && opt->m[0] == NULL);
    for (int i = 0; i < 9; i++) w->grad[i] = (cf_real)i;
    cf_optimizer_step(opt, 0.5);
    for (int i = 0; i < 9; i++) CHECK(w->data[i] == before[i] + (cf_real)-0.5 * (cf_real)i);
    cf_optimizer_zero_grad(opt);
    CHECK(w->grad[8] == 0 && opt->t == 1);
    /* Its checkpoint holds the step alone. */
    const char *dir = test_tmpdir("sgd");
    char path[512];
    snprintf(path, sizeof path, "%s/optim.safetensors", dir);
    cf_st_writer *wr = cf_st_writer_new();
    cf_optimizer_state_save(opt, wr);
    CHECK(cf_st_writer_write(wr, path) == 0);
    cf_st_writer_free(wr);
    opt->t = 0;
    CHECK_MSG(cf_optimizer_state_load_file(opt, path) == 0 && opt->t == 1, "%s", cf_error_message());
    unlink(path);
    rmdir(dir);
    cf_optimizer_free(opt);
    cf_param_list_free(&pl);
    cf_param_free(w);
}

/* ---- optimizer state checkpoints ---- */

static cf_optimizer *make_adamw(cf_param_list *pl, cf_tensor **ps, int n) {
    cf_param_list_init(pl);
    for (int i = 0; i < n; i++) CHECK(cf_param_list_add_auto(pl, ps[i], true) == 0);
    cf_optim_config oc = cf_optim_config_default(CF_OPTIM_ADAMW);
    return cf_optimizer_new(pl, &oc);
}

static void random_steps(cf_optimizer *opt, int steps, uint64_t seed) {
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < opt->n; i++)
            test_fill_uniform(opt->params[i]->grad, opt->params[i]->numel, -1, 1, seed + 100 * (uint64_t)s + (uint64_t)i);
        cf_optimizer_step(opt, 1e-2);
        cf_optimizer_zero_grad(opt);
    }
}

TEST(optim_state_roundtrip_and_mismatch) {
    const char *dir = test_tmpdir("optim");
    char path[512];
    snprintf(path, sizeof path, "%s/optim.safetensors", dir);
    int64_t ws[2] = {6, 5}, bs[1] = {5};
    cf_tensor *a[2] = {test_param_uniform("l.weight", 2, ws, -1, 1, 1), test_param_uniform("l.bias", 1, bs, -1, 1, 2)};
    cf_tensor *b[2] = {test_param_uniform("l.weight", 2, ws, -1, 1, 1), test_param_uniform("l.bias", 1, bs, -1, 1, 2)};
    cf_param_list pla, plb;
    cf_optimizer *oa = make_adamw(&pla, a, 2), *ob = make_adamw(&plb, b, 2);
    random_steps(oa, 3, 7);
    cf_st_writer *w = cf_st_writer_new();
    cf_optimizer_state_save(oa, w);
    CHECK(cf_st_writer_write(w, path) == 0);
    cf_st_writer_free(w);

    cf_st_file *f = cf_st_open(path);
    CHECK_MSG(f != NULL, "%s", cf_error_message());
    if (f) {
        CHECK(cf_st_find(f, "l.weight.exp_avg") && cf_st_find(f, "l.bias.exp_avg_sq") && cf_st_find(f, "optim.step"));
        CHECK_STR(cf_st_metadata(f, "optim.kind"), "adamw");
        cf_st_close(f);
    }
    CHECK_MSG(cf_optimizer_state_load_file(ob, path) == 0, "%s", cf_error_message());
    CHECK(ob->t == 3);
    for (int i = 0; i < 2; i++) {
        CHECK(memcmp(oa->m[i], ob->m[i], (size_t)a[i]->numel * sizeof(cf_real)) == 0);
        CHECK(memcmp(oa->v[i], ob->v[i], (size_t)a[i]->numel * sizeof(cf_real)) == 0);
        memcpy(b[i]->data, a[i]->data, (size_t)a[i]->numel * sizeof(cf_real));
    }
    /* Resumed training continues bit-identically. */
    random_steps(oa, 2, 99);
    random_steps(ob, 2, 99);
    for (int i = 0; i < 2; i++) CHECK(memcmp(a[i]->data, b[i]->data, (size_t)a[i]->numel * sizeof(cf_real)) == 0);

    /* Mismatches are refused with a message naming the file / tensor, and change nothing. */
    cf_param_list pl;
    cf_optim_config sgd = cf_optim_config_default(CF_OPTIM_SGD);
    sgd.momentum = 0.9;
    cf_param_list_init(&pl);
    CHECK(cf_param_list_add(&pl, a[0], true) == 0 && cf_param_list_add(&pl, a[1], false) == 0);
    cf_optimizer *os = cf_optimizer_new(&pl, &sgd);
    CHECK(cf_optimizer_state_load_file(os, path) != 0);
    CHECK_MSG(strstr(cf_error_message(), path) && strstr(cf_error_message(), "optim.kind"), "%s", cf_error_message());
    cf_optimizer_free(os);
    cf_param_list_free(&pl);

    cf_tensor *wrong = test_param_uniform("l.weight", 2, (int64_t[]){5, 6}, -1, 1, 1);
    cf_tensor *extra = test_param_uniform("l2.weight", 2, (int64_t[]){2, 2}, -1, 1, 1);
    struct {
        cf_tensor *ps[3];
        int n;
        const char *expect;
    } bad[] = {
        {{wrong, b[1]}, 2, "'l.weight.exp_avg' has shape [6, 5], expected [5, 6]"},
        {{b[1]}, 1, "'l.weight.exp_avg' belongs to no parameter"},
        {{b[0], b[1], extra}, 3, "no tensor named 'l2.weight.exp_avg'"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        cf_optimizer *o = make_adamw(&pl, bad[k].ps, bad[k].n);
        CHECK(cf_optimizer_state_load_file(o, path) != 0);
        CHECK_MSG(strstr(cf_error_message(), path) && strstr(cf_error_message(), bad[k].expect),
                  "case %zu: '%s' lacks the path or \"%s\"", k, cf_error_message(), bad[k].expect);
        bool untouched = o->t == 0;
        for (int i = 0; i < o->n; i++)
            for (int64_t j = 0; j < o->params[i]->numel; j++) untouched &= o->m[i][j] == 0 && o->v[i][j] == 0;
        CHECK_MSG(untouched, "case %zu: a refused load changed the state", k);
        cf_optimizer_free(o);
        cf_param_list_free(&pl);
    }
    /* A corrupted file (truncated) is refused by the reader, naming the file. */
    FILE *fp = fopen(path, "r+b");
    CHECK(fp && ftruncate(fileno(fp), 40) == 0);
    if (fp) fclose(fp);
    CHECK(cf_optimizer_state_load_file(ob, path) != 0 && strstr(cf_error_message(), path));

    cf_param_free(wrong);
    cf_param_free(extra);
    cf_optimizer_free(oa);
    cf_optimizer_free(ob);
    cf_param_list_free(&pla);
    cf_param_list_free(&plb);
    for (int i = 0; i < 2; i++) cf_param_free(a[i]), cf_param_free(b[i]);
    unlink(path);
    rmdir(dir);
}

/* ---- determinism and allocation ---- */

/* Runs 3 AdamW steps with clipping on a 1M-element parameter (the OpenMP paths) and returns it. */
static cf_tensor *big_run(int threads, double *norm_out) {
    CHECK(cf_threads_init(threads) == 0);
    cf_tensor *p = test_param_uniform("big.weight", 2, (int64_t[]){1000, 1000}, -1, 1, 5);
    cf_tensor *bias = test_param_uniform("big.bias", 1, (int64_t[]){1000}, -1, 1, 6);
    cf_tensor *ps[2] = {p, bias};
    cf_param_list pl;
    cf_param_list_init(&pl);
    cf_param_list_add_auto(&pl, p, true);
    cf_param_list_add_auto(&pl, bias, true);
    cf_optimizer *opt = cf_optimizer_new(&pl, &(cf_optim_config){CF_OPTIM_ADAMW, 0.9, 0.98, 1e-9, 0.01, 0, 0, false});
    for (int s = 0; s < 3; s++) {
        test_fill_uniform(p->grad, p->numel, -1, 1, 10 + (uint64_t)s);
        test_fill_uniform(bias->grad, bias->numel, -1, 1, 20 + (uint64_t)s);
        *norm_out = cf_clip_grad_norm(ps, 2, 1.0);
        cf_optimizer_step(opt, 1e-3);
        cf_optimizer_zero_grad(opt);
    }
    cf_optimizer_free(opt);
    cf_param_list_free(&pl);
    cf_param_free(bias);
    return p;
}

TEST(optim_bit_identical_across_threads) {
    double n1 = 0, n2 = 0;
    cf_tensor *p1 = big_run(1, &n1);
    for (int t = 1; t < TEST_N_THREAD_COUNTS; t++) {
        cf_tensor *p2 = big_run(test_thread_counts[t], &n2);
        CHECK_MSG(memcmp(&n1, &n2, sizeof n1) == 0, "clip norm %.17g (1 thread) vs %.17g (%d threads)", n1, n2,
                  test_thread_counts[t]);
        CHECK(memcmp(p1->data, p2->data, (size_t)p1->numel * sizeof(cf_real)) == 0);
        cf_param_free(p2);
    }
    CHECK(cf_threads_init(0) == 0);
    CHECK(n1 > 1.0); /* clipping was active */
    cf_param_free(p1);
}

/* The training step's fused pass against the three calls it replaces: the same parameters, state
 * and zeroed gradients, bit for bit, for every kind and thread count (scale < 1 as when clipping,
 * and exactly 1; steps repeated so the moments are not at their first-step values). */
static void fused_vs_separate(cf_optim_kind kind, int threads, double scale) {
    CHECK(cf_threads_init(threads) == 0);
    cf_tensor *w[2], *b[2];
    cf_param_list pl[2];
    cf_optimizer *opt[2];
    for (int f = 0; f < 2; f++) {
        w[f] = test_param_uniform("fused.weight", 2, (int64_t[]){300, 257}, -1, 1, 41);
        b[f] = test_param_uniform("fused.bias", 1, (int64_t[]){257}, -1, 1, 42);
        cf_param_list_init(&pl[f]);
        cf_param_list_add_auto(&pl[f], w[f], true);
        cf_param_list_add_auto(&pl[f], b[f], true);
        cf_optim_config oc = cf_optim_config_default(kind);
        oc.momentum = kind == CF_OPTIM_SGD ? 0.9 : 0;
        opt[f] = cf_optimizer_new(&pl[f], &oc);
    }
    for (int s = 0; s < 3; s++) {
        for (int f = 0; f < 2; f++) {
            test_fill_uniform(w[f]->grad, w[f]->numel, -1, 1, 50 + (uint64_t)s);
            test_fill_uniform(b[f]->grad, b[f]->numel, -1, 1, 60 + (uint64_t)s);
        }
        cf_tensor *ps[2] = {w[0], b[0]};
        cf_grads_scale(ps, 2, scale);
        cf_optimizer_step(opt[0], 1e-2);
        cf_optimizer_zero_grad(opt[0]);
        cf_optimizer_step_and_zero(opt[1], 1e-2, scale);
    }
    bool same = opt[0]->t == opt[1]->t, zero = true;
    for (int i = 0; i < 2; i++) {
        cf_tensor *p0 = i ? b[0] : w[0], *p1 = i ? b[1] : w[1];
        size_t bytes = (size_t)p0->numel * sizeof(cf_real);
        same &= memcmp(p0->data, p1->data, bytes) == 0;
        if (opt[0]->m && opt[0]->m[i]) same &= memcmp(opt[0]->m[i], opt[1]->m[i], bytes) == 0;
        if (opt[0]->v && opt[0]->v[i]) same &= memcmp(opt[0]->v[i], opt[1]->v[i], bytes) == 0;
        for (int64_t j = 0; j < p1->numel; j++) zero &= p1->grad[j] == 0;
    }
    CHECK_MSG(same, "%s, %d threads, scale %g: fused step differs from scale + step + zero", cf_optim_kind_name(kind),
              threads, scale);
    CHECK_MSG(zero, "%s, %d threads: fused step left a gradient non-zero", cf_optim_kind_name(kind), threads);
    for (int f = 0; f < 2; f++) {
        cf_optimizer_free(opt[f]);
        cf_param_list_free(&pl[f]);
        cf_param_free(w[f]);
        cf_param_free(b[f]);
    }
    CHECK(cf_threads_init(0) == 0);
}

TEST(optim_fused_step_equals_scale_step_zero) {
    const cf_optim_kind kinds[] = {CF_OPTIM_ADAMW, CF_OPTIM_ADAM, CF_OPTIM_SGD};
    for (int k = 0; k < 3; k++)
        for (int t = 0; t < TEST_N_THREAD_COUNTS; t++) {
            fused_vs_separate(kinds[k], test_thread_counts[t], 0.37);
            fused_vs_separate(kinds[k], test_thread_counts[t], 1.0);
        }
}

TEST(optim_step_does_not_allocate) {
    cf_tensor *p = test_param_uniform("big.weight", 2, (int64_t[]){512, 256}, -1, 1, 5);
    cf_tensor *b = test_param_uniform("big.bias", 1, (int64_t[]){512}, -1, 1, 6);
    cf_tensor *ps[2] = {p, b};
    cf_param_list pl;
    cf_param_list_init(&pl);
    cf_param_list_add_auto(&pl, p, true);
    cf_param_list_add_auto(&pl, b, true);
    const cf_optim_kind kinds[] = {CF_OPTIM_ADAMW, CF_OPTIM_ADAM, CF_OPTIM_SGD};
    for (int k = 0; k < 3; k++) {
        cf_optim_config oc = cf_optim_config_default(kinds[k]);
        oc.momentum = kinds[k] == CF_OPTIM_SGD ? 0.9 : 0;
        cf_optimizer *opt = cf_optimizer_new(&pl, &oc);
        for (int s = 0; s < 4; s++) {
            test_fill_uniform(p->grad, p->numel, -1, 1, 30 + (uint64_t)s);
            /* The first step warms up OpenMP's thread pool; steps after it must not allocate. */
            if (s == 1) test_alloc_count_start();
            cf_grads_scale(ps, 2, 0.5);
            cf_clip_grad_norm(ps, 2, 1.0);
            cf_optimizer_step(opt, 1e-3);
            cf_optimizer_zero_grad(opt);
        }
        long calls = test_alloc_count_stop();
        if (test_alloc_counting()) {
            CHECK_MSG(calls == 0, "%s: %ld allocations in 3 steps", cf_optim_kind_name(kinds[k]), calls);
            /* The counter itself works. */
            test_alloc_count_start();
            void *volatile probe = malloc(16);
            CHECK(test_alloc_count_stop() == 1);
            free(probe);
        }
        cf_optimizer_free(opt);
    }
    cf_param_list_free(&pl);
    cf_param_free(p);
    cf_param_free(b);
}
