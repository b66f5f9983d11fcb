/*
 * render_conf.c: the render: section of the configuration as struct cf_render_opts (render_conf.h).
 */
#include "render_conf.h"

#include <stdio.h>
#include <string.h>

#include "child.h"
#include "log.h"

void cf_render_conf_fill(const struct cf_config *cfg, struct cf_render_conf *out)
{
    memset(out, 0, sizeof *out);
    cf_child_program("coffer-render", out->worker, sizeof out->worker);
    struct cf_render_opts *o = &out->opts;
    o->worker = out->worker;
    o->scratch_dir = cfg->render.scratch_dir;
    o->processes = cfg->render.processes;
    o->max_seconds = cfg->render.max_seconds;
    o->max_pages = cfg->render.max_pages;
    o->idle_stop_s = (unsigned)cfg->render.idle_stop_s; /* at most 7 days (config.c) */
    o->max_input = cfg->render.max_input;
    o->max_output = cfg->render.max_output;
    o->max_pixels = cfg->render.max_pixels;
    o->memory = cfg->render.memory;
    o->max_queued = cfg->render.queue;
    o->text_language = cfg->render.text_language;
    o->soffice = cfg->render.office ? cfg->render.soffice : "";
    o->log_level = cfg->log.level;
    o->log_json = cfg->log.format == CF_LOG_JSON;
}
