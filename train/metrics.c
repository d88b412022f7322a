/* train/metrics.c - metrics.jsonl logging (with resume truncation) and the curves.svg plot. */
#include "train/metrics.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/common.h"
#include "core/fileio.h"

static void series_add(cf_series *s, double x, double y) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->p = cf_xrealloc(s->p, (size_t)s->cap * sizeof *s->p);
    }
    s->p[s->n++] = (cf_point){x, y};
}

static void remember(cf_metrics *m, const cJSON *line) {
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(line, "event");
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(line, "step");
    if (!cJSON_IsString(ev) || !cJSON_IsNumber(step)) return;
    double x = step->valuedouble;
    if (strcmp(ev->valuestring, "train") == 0) {
        const cJSON *loss = cJSON_GetObjectItemCaseSensitive(line, "loss");
        if (cJSON_IsNumber(loss)) series_add(&m->train_loss, x, loss->valuedouble);
    } else if (strcmp(ev->valuestring, "eval") == 0) {
        const cJSON *vl = cJSON_GetObjectItemCaseSensitive(line, "valid_loss");
        const cJSON *bleu = cJSON_GetObjectItemCaseSensitive(line, "bleu");
        if (cJSON_IsNumber(vl)) series_add(&m->valid_loss, x, vl->valuedouble);
        if (cJSON_IsNumber(bleu)) series_add(&m->valid_bleu, x, bleu->valuedouble);
    }
}

/* Keep the lines with step <= resume_step (rewriting the file atomically: temp file, fsync,
 * rename, fsync of the directory) and load them. */
static int truncate_history(cf_metrics *m, int64_t resume_step) {
    FILE *in = fopen(m->path, "r");
    if (!in) return 0; /* nothing logged yet */
    size_t cap = 0, used = 0;
    char *kept = NULL, *line = NULL;
    size_t line_cap = 0;
    ssize_t len;
    while ((len = getline(&line, &line_cap, in)) > 0) {
        cJSON *j = cJSON_ParseWithLength(line, (size_t)len);
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(j, "step");
        /* A torn last line from a kill is not valid JSON: dropped with everything past the checkpoint. */
        if (cJSON_IsNumber(step) && step->valuedouble <= (double)resume_step) {
            kept = cf_grow(kept, &cap, used + (size_t)len + 2, 1);
            memcpy(kept + used, line, (size_t)len);
            used += (size_t)len;
            if (line[len - 1] != '\n') kept[used++] = '\n';
            remember(m, j);
        }
        cJSON_Delete(j);
    }
    bool failed = ferror(in);
    free(line);
    fclose(in);
    int rc = 0;
    if (failed) {
        cf_error_set("%s: read error", m->path);
        rc = -1;
    } else {
        rc = cf_write_file_atomic(m->path, kept ? kept : "", used);
    }
    free(kept);
    return rc;
}

int cf_metrics_open(cf_metrics *m, const char *run_dir, int64_t resume_step) {
    memset(m, 0, sizeof *m);
    m->fd = -1;
    m->path = cf_path_join(run_dir, "metrics.jsonl");
    m->svg_path = cf_path_join(run_dir, "curves.svg");
    if (resume_step >= 0 && truncate_history(m, resume_step) != 0) return -1;
    m->fd = cf_io_open(m->path, O_WRONLY | O_CREAT | O_APPEND | (resume_step >= 0 ? 0 : O_TRUNC));
    if (m->fd < 0) {
        cf_error_set("%s: cannot open for writing: %s", m->path, strerror(errno));
        return -1;
    }
    return 0;
}

/* One whole line with one write(2) on an O_APPEND descriptor, so a kill leaves at most a torn last
 * line. A line that could not be written is kept in m->unwritten: the trainer stores it in its
 * final checkpoint and the resumed run writes it first (cf_metrics_write_raw), so no line is lost.
 * The line is sized to fit (an MoE model's expert loads make it as long as layers x experts). */
static int write_line(cf_metrics *m, const char *fmt, ...) {
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    CF_ASSERT(n > 0, "metrics line of %d bytes", n);
    char *buf = cf_xmalloc((size_t)n + 1);
    vsnprintf(buf, (size_t)n + 1, fmt, again);
    va_end(again);
    int rc = 0;
    if (!m->unwritten && cf_write_all(m->fd, buf, (size_t)n) == 0) goto out;
    if (!m->unwritten) cf_error_set("%s: write failed: %s", m->path, strerror(errno));
    else cf_error_set("%s: an earlier line could not be written", m->path);
    size_t old = m->unwritten ? strlen(m->unwritten) : 0;
    m->unwritten = cf_xrealloc(m->unwritten, old + (size_t)n + 1);
    memcpy(m->unwritten + old, buf, (size_t)n + 1);
    rc = -1;
out:
    free(buf);
    return rc;
}

int cf_metrics_write_raw(cf_metrics *m, const char *lines) {
    size_t n = strlen(lines);
    if (n == 0) return 0;
    if (cf_write_all(m->fd, lines, n) != 0) {
        cf_error_set("%s: write failed: %s", m->path, strerror(errno));
        return -1;
    }
    /* the lines count for the curves too */
    const char *s = lines;
    for (const char *nl; (nl = strchr(s, '\n')); s = nl + 1) {
        cJSON *j = cJSON_ParseWithLength(s, (size_t)(nl - s));
        remember(m, j);
        cJSON_Delete(j);
    }
    return 0;
}

/* ,"moe_aux":a,"expert_load":[[...],...] into buf (empty without MoE); malloc'ed. */
static char *moe_fields(const cf_moe_load *l) {
    size_t cap = 64 + (size_t)(l ? l->n_layers * (l->n_experts + 1) : 0) * 12, n = 0;
    char *buf = cf_xmalloc(cap);
    buf[0] = 0;
    if (!l) return buf;
    n += (size_t)snprintf(buf + n, cap - n, ",\"moe_aux\":%.6g,\"expert_load\":[", l->aux);
    for (int i = 0; i < l->n_layers; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s[", i ? "," : "");
        for (int64_t e = 0; e < l->n_experts; e++)
            n += (size_t)snprintf(buf + n, cap - n, "%s%.4f", e ? "," : "", l->share[i * l->n_experts + e]);
        n += (size_t)snprintf(buf + n, cap - n, "]");
    }
    snprintf(buf + n, cap - n, "]");
    return buf;
}

int cf_metrics_log_train(cf_metrics *m, const cf_train_event *e) {
    series_add(&m->train_loss, (double)e->step, e->loss);
    char *moe = moe_fields(e->moe);
    int rc = write_line(m,
                        "{\"event\":\"train\",\"step\":%lld,\"epoch\":%lld,\"loss\":%.6g,\"lr\":%.6g,\"grad_norm\":%.6g,"
                        "\"tokens_per_s\":%.1f,\"rate_tokens\":%.0f,\"elapsed_s\":%.2f,\"threads\":%d%s}\n",
                        (long long)e->step, (long long)e->epoch, e->loss, e->lr, e->grad_norm, e->tokens_per_s,
                        e->rate_tokens, e->elapsed_s, e->threads, moe);
    free(moe);
    return rc;
}

int cf_metrics_log_eval(cf_metrics *m, const cf_eval_event *e) {
    series_add(&m->valid_loss, (double)e->step, e->valid_loss);
    series_add(&m->valid_bleu, (double)e->step, e->bleu);
    return write_line(m,
                      "{\"event\":\"eval\",\"step\":%lld,\"valid_loss\":%.6g,\"valid_ppl\":%.6g,\"bleu\":%.2f,"
                      "\"sentences\":%lld,\"elapsed_s\":%.2f}\n",
                      (long long)e->step, e->valid_loss, e->valid_ppl, e->bleu, (long long)e->n_sentences, e->elapsed_s);
}

void cf_metrics_close(cf_metrics *m) {
    if (m->fd >= 0) close(m->fd);
    free(m->path);
    free(m->svg_path);
    free(m->unwritten);
    free(m->train_loss.p);
    free(m->valid_loss.p);
    free(m->valid_bleu.p);
    memset(m, 0, sizeof *m);
    m->fd = -1;
}

/* ---- SVG ---- */

typedef struct text_buf {
    char *s;
    size_t n, cap;
} text_buf;

static void tb_printf(text_buf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k >= 0 && (size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        b->cap = b->cap * 2 + (size_t)(k > 0 ? k : 0) + 256;
        b->s = realloc(b->s, b->cap);
        CF_ASSERT(b->s != NULL);
    }
}

/* A "nice" tick step (1, 2 or 5 x 10^k) giving about `want` ticks over span. */
static double nice_step(double span, int want) {
    double raw = span / want, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * mag;
}

typedef struct panel {
    double x0, y0, w, h;            /* plot area in pixels */
    double xmin, xmax, ymin, ymax;  /* data range */
} panel;

static double px(const panel *p, double x) { return p->x0 + (x - p->xmin) / (p->xmax - p->xmin) * p->w; }
static double py(const panel *p, double y) { return p->y0 + p->h - (y - p->ymin) / (p->ymax - p->ymin) * p->h; }

static void range_of(const cf_series *s, double *lo, double *hi) {
    for (int64_t i = 0; i < s->n; i++) {
        if (!isfinite(s->p[i].y)) continue;
        *lo = fmin(*lo, s->p[i].y);
        *hi = fmax(*hi, s->p[i].y);
    }
}

static void draw_axes(text_buf *b, const panel *p, const char *title, const char *ylabel) {
    tb_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fff\" stroke=\"#999\"/>\n", p->x0,
              p->y0, p->w, p->h);
    tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">%s</text>\n",
              p->x0 + p->w / 2, p->y0 - 12, title);
    double xs = nice_step(p->xmax - p->xmin, 6), ys = nice_step(p->ymax - p->ymin, 5);
    for (double x = ceil(p->xmin / xs) * xs; x <= p->xmax + 1e-9; x += xs) {
        tb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", px(p, x), p->y0,
                  px(p, x), p->y0 + p->h);
        tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%g</text>\n", px(p, x),
                  p->y0 + p->h + 15, x);
    }
    for (double y = ceil(p->ymin / ys) * ys; y <= p->ymax + 1e-9; y += ys) {
        tb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", p->x0, py(p, y),
                  p->x0 + p->w, py(p, y));
        tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%g</text>\n", p->x0 - 5,
                  py(p, y) + 4, fabs(y) < 1e-12 ? 0 : y);
    }
    tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">step</text>\n", p->x0 + p->w / 2,
              p->y0 + p->h + 32);
    tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
              p->x0 - 42, p->y0 + p->h / 2, p->x0 - 42, p->y0 + p->h / 2, ylabel);
}

static void draw_series(text_buf *b, const panel *p, const cf_series *s, const char *color, bool dots) {
    if (s->n == 0) return;
    tb_printf(b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" points=\"", color);
    for (int64_t i = 0; i < s->n; i++)
        if (isfinite(s->p[i].y)) tb_printf(b, "%.1f,%.1f ", px(p, s->p[i].x), py(p, s->p[i].y));
    tb_printf(b, "\"/>\n");
    if (dots)
        for (int64_t i = 0; i < s->n; i++)
            if (isfinite(s->p[i].y))
                tb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px(p, s->p[i].x),
                          py(p, s->p[i].y), color);
}

static void legend(text_buf *b, double x, double y, const char *color, const char *label) {
    tb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n", x, y,
              x + 18, y, color);
    tb_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%s</text>\n", x + 24, y + 4, label);
}

char *cf_curves_svg(const cf_series *train_loss, const cf_series *valid_loss, const cf_series *valid_bleu) {
    text_buf b = {cf_xmalloc(4096), 0, 4096};
    b.s[0] = 0;
    const double W = 1000, H = 420;
    tb_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                  "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fafafa\"/>\n", W, H, W, H);
    double xmax = 1;
    const cf_series *all[3] = {train_loss, valid_loss, valid_bleu};
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < all[k]->n; i++) xmax = fmax(xmax, all[k]->p[i].x);
    /* Loss panel */
    double lo = INFINITY, hi = -INFINITY;
    range_of(train_loss, &lo, &hi);
    range_of(valid_loss, &lo, &hi);
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-6) hi = lo + 1;
    panel loss = {70, 45, 380, 300, 0, xmax, fmin(0, lo), hi * 1.05};
    draw_axes(&b, &loss, "loss", "cross-entropy (nats)");
    draw_series(&b, &loss, train_loss, "#1f77b4", false);
    draw_series(&b, &loss, valid_loss, "#d62728", true);
    legend(&b, loss.x0 + 10, H - 20, "#1f77b4", "train loss");
    legend(&b, loss.x0 + 150, H - 20, "#d62728", "valid loss");
    /* BLEU panel */
    lo = 0, hi = 1;
    range_of(valid_bleu, &lo, &hi);
    panel bleu = {580, 45, 380, 300, 0, xmax, 0, fmin(100, fmax(10, hi * 1.1))};
    draw_axes(&b, &bleu, "validation BLEU", "BLEU");
    draw_series(&b, &bleu, valid_bleu, "#2ca02c", true);
    legend(&b, bleu.x0 + 10, H - 20, "#2ca02c", "valid BLEU");
    tb_printf(&b, "</svg>\n");
    return b.s;
}

int cf_metrics_write_svg(const cf_metrics *m) {
    char *svg = cf_curves_svg(&m->train_loss, &m->valid_loss, &m->valid_bleu);
    int rc = cf_write_file_atomic(m->svg_path, svg, strlen(svg));
    free(svg);
    return rc;
}
