/* tests/test_metrics.c - metrics.jsonl resume truncation and the SVG plot. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/test.h"
#include "tests/testlib.h"
#include "train/metrics.h"

static int count_lines(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) return -1;
    int n = 0, c;
    while ((c = fgetc(fp)) != EOF) n += c == '\n';
    fclose(fp);
    return n;
}

TEST(metrics_resume_drops_lines_past_checkpoint) {
    const char *dir = test_tmpdir("metrics");
    char path[512];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    cf_metrics m;
    CHECK(cf_metrics_open(&m, dir, -1) == 0);
    for (int s = 10; s <= 50; s += 10) cf_metrics_log_train(&m, &(cf_train_event){.step = s, .loss = 5.0 - s / 20.0});
    cf_metrics_log_eval(&m, &(cf_eval_event){.step = 20, .valid_loss = 4, .bleu = 12.5});
    cf_metrics_log_eval(&m, &(cf_eval_event){.step = 40, .valid_loss = 3, .bleu = 20});
    const char *torn = "{\"event\":\"train\",\"st"; /* a torn line, as after kill -9 */
    CHECK(write(m.fd, torn, strlen(torn)) == (ssize_t)strlen(torn));
    cf_metrics_close(&m);
    CHECK(count_lines(path) == 7);
    /* Resume from a checkpoint at step 30: steps 40, 50, the eval at 40 and the torn line go. */
    CHECK(cf_metrics_open(&m, dir, 30) == 0);
    CHECK(m.train_loss.n == 3 && m.valid_loss.n == 1 && m.valid_bleu.n == 1);
    CHECK(m.valid_bleu.n == 1 && m.valid_bleu.p[0].y == 12.5);
    cf_metrics_log_train(&m, &(cf_train_event){.step = 40, .loss = 3});
    CHECK(cf_metrics_write_svg(&m) == 0);
    cf_metrics_close(&m);
    CHECK(count_lines(path) == 5);
    char svg[512];
    snprintf(svg, sizeof svg, "%s/curves.svg", dir);
    CHECK(access(svg, R_OK) == 0);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

TEST(metrics_svg_is_well_formed) {
    cf_series tl = {0}, vl = {0}, vb = {0};
    cf_point tp[3] = {{100, 4.0}, {200, 3.0}, {300, 2.5}}, vp[1] = {{300, 2.7}}, bp[1] = {{300, 41.3}};
    tl = (cf_series){tp, 3, 3};
    vl = (cf_series){vp, 1, 1};
    vb = (cf_series){bp, 1, 1};
    char *svg = cf_curves_svg(&tl, &vl, &vb);
    CHECK(strncmp(svg, "<svg", 4) == 0 && strstr(svg, "</svg>\n") != NULL);
    CHECK(strstr(svg, "validation BLEU") && strstr(svg, "train loss") && strstr(svg, "<polyline"));
    /* Every opened element is closed: count '<' that are not '</' against '/>' and '</'. */
    int open = 0, closed = 0;
    for (const char *p = svg; *p; p++) {
        if (p[0] == '<' && p[1] != '/') open++;
        if ((p[0] == '/' && p[1] == '>') || (p[0] == '<' && p[1] == '/')) closed++;
    }
    CHECK_MSG(open == closed, "%d opened, %d closed", open, closed);
    free(svg);
    /* Empty series still give a valid picture. */
    cf_series empty = {0};
    svg = cf_curves_svg(&empty, &empty, &empty);
    CHECK(strstr(svg, "</svg>") != NULL);
    free(svg);
}
