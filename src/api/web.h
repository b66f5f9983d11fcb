/*
 * web.h: the web UI's static files (web/), read into memory once at start-up and served from there
 * (no file I/O on a loop thread), plus /healthz.
 */
#ifndef CF_WEB_H
#define CF_WEB_H

#include "base.h"

struct cf_static;

/* cf_web_load(dir, out, err): reads every regular file directly in dir (web_dir). CF_EIO with a
 * malloc'ed message in *err if dir cannot be read. Also what `coffer serve --check` runs. */
enum cf_status cf_web_load(const char *dir, struct cf_static **out, char **err) CF_WUR;
void cf_web_free(struct cf_static *w);

struct cf_req;
/* cf_web_respond_file(r, name): answers 200 with the static file name (404 if there is none). */
void cf_web_respond_file(struct cf_req *r, const char *name);

/* cf_web_scan_status(): whether uploads are being scanned, for /healthz and the UI's banner (the
 * "scan" field of GET /api/v1/me): "ok"; "disabled" (a development server without signatures:
 * uploads are accepted unscanned); "down" (no scanner answers: uploads fail with 503). Any thread. */
const char *cf_web_scan_status(void);

#endif
