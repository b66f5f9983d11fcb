/*
 * render_conf.h: the renderer family's options from the configuration's render: section (phase 2 of
 * issue 20), shared by `coffer serve` (server.c) and `coffer serve --check` (check.c).
 */
#ifndef CF_RENDER_CONF_H
#define CF_RENDER_CONF_H

#include <limits.h>

#include "config.h"
#include "render.h"

/* The options and the strings they point to (worker is beside the coffer executable). */
struct cf_render_conf {
    struct cf_render_opts opts;
    char worker[PATH_MAX];
};

/* cf_render_conf_fill(cfg, out): out->opts from cfg->render; the worker is coffer-render beside this
 * program (cf_child_program). cfg must outlive out. */
void cf_render_conf_fill(const struct cf_config *cfg, struct cf_render_conf *out);

#endif
