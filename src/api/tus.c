/*
 * tus.c: resumable uploads, tus 1.0.0 at /api/v1/uploads (SPEC §5; docs/API.md "Resumable uploads").
 * Extensions: creation, creation-with-upload, termination, expiration, checksum (sha1, sha256).
 *
 * Storage (storage/tus.c) keeps each upload's state sealed in the column family "uploads" and its
 * bytes in sealed pending chunks; this file speaks the protocol:
 *
 *   POST   /api/v1/uploads       create (checks edit on the parent folder and the per-user caps);
 *                                with a body, also the first PATCH
 *   HEAD   /api/v1/uploads/{id}  Upload-Offset, Upload-Length, Upload-Expires (and Coffer-Node-Id
 *                                once completed)
 *   PATCH  /api/v1/uploads/{id}  append at Upload-Offset; the PATCH that completes the upload
 *                                re-checks authorisation, hashes, runs the upload-safety step
 *                                (inspect.h) and commits: 204 with Coffer-Node-Id, or the error
 *                                of SPEC §7 (the upload is then discarded)
 *   DELETE /api/v1/uploads/{id}  termination
 *   OPTIONS                      discovery (no authentication)
 *
 * Only the owner sees an upload (anyone else: 404). One request at a time works on an upload: the
 * busy set below answers 423 to a second one (a client retrying while its first PATCH still runs),
 * so the bytes the scanner read are the bytes that get committed. Request bodies are copied on the
 * loop thread (a worker must never read req->entity, notes §2) and wiped after use.
 *
 * A completing PATCH that fails for a passing reason (scanner unavailable, I/O) leaves the upload at
 * its previous offset, so the client retries the same PATCH; one that fails for good (infected,
 * blocked, unscannable, name conflict, access lost) discards the upload, so that a HEAD says 404
 * instead of pretending the upload is complete.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acl.h"
#include "audit.h"
#include "files.h"
#include "handlers.h"
#include "http.h"
#include "inspect.h"
#include "log.h"
#include "loop.h"
#include "tus.h"
#include "validate.h"
#include "work.h"

#define TUS_VERSION "1.0.0"
#define TUS_EXTENSIONS "creation,creation-with-upload,termination,expiration,checksum"
#define OCTETS "application/offset+octet-stream"

/* ---- the busy set: uploads a request is working on ---------------------------------------------- */

#define BUSY_MAX 1024

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static struct busy_entry {
    struct cf_id tenant, id;
} busy[BUSY_MAX];
static size_t nbusy;

static bool busy_take(const struct cf_id *tenant, const struct cf_id *id)
{
    bool ok = true;
    pthread_mutex_lock(&busy_lock);
    for (size_t i = 0; i < nbusy && ok; i++)
        if (cf_id_equal(&busy[i].tenant, tenant) && cf_id_equal(&busy[i].id, id))
            ok = false;
    if (ok && nbusy == BUSY_MAX)
        ok = false;
    if (ok) {
        busy[nbusy].tenant = *tenant;
        busy[nbusy].id = *id;
        nbusy++;
    }
    pthread_mutex_unlock(&busy_lock);
    return ok;
}

static void busy_release(const struct cf_id *tenant, const struct cf_id *id)
{
    pthread_mutex_lock(&busy_lock);
    for (size_t i = 0; i < nbusy; i++)
        if (cf_id_equal(&busy[i].tenant, tenant) && cf_id_equal(&busy[i].id, id)) {
            busy[i] = busy[--nbusy];
            break;
        }
    pthread_mutex_unlock(&busy_lock);
}

static bool claim_take(void *ctx, const struct cf_id *tenant, const struct cf_id *id)
{
    (void)ctx;
    return busy_take(tenant, id);
}

static void claim_release(void *ctx, const struct cf_id *tenant, const struct cf_id *id)
{
    (void)ctx;
    busy_release(tenant, id);
}

static const struct cf_tus_claim server_claim = {claim_take, claim_release, NULL};

const struct cf_tus_claim *cf_tus_claim_server(void)
{
    return &server_claim;
}

void cf_tus_expire_now(struct cf_store *store)
{
    uint64_t purged = 0;
    if (cf_tus_expire(store, cf_now_ms(), &server_claim, &purged) != CF_OK)
        cf_log_error("uploads: expiring unfinished uploads failed; retrying at the next round");
    else if (purged > 0)
        cf_log_info("uploads: %llu expired resumable upload(s) deleted", (unsigned long long)purged);
}

/* ---- headers ---------------------------------------------------------------------------------- */

static void add_u64(struct cf_req *r, const char *name, uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    cf_add_header_str(r, name, b);
}

static void add_expires(struct cf_req *r, uint64_t ms)
{
    char b[H2O_TIMESTR_RFC1123_LEN + 1];
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    h2o_time2str_rfc1123(b, &tm);
    cf_add_header_str(r, "upload-expires", b);
}

/* Every tus response names the protocol version; 412 if the request speaks another one. */
static bool version_or_respond(struct cf_req *r)
{
    cf_add_header_str(r, "tus-resumable", TUS_VERSION);
    h2o_iovec_t v = cf_header(r, "tus-resumable");
    if (v.base != NULL && h2o_memis(v.base, v.len, H2O_STRLIT(TUS_VERSION)))
        return true;
    cf_add_header_str(r, "tus-version", TUS_VERSION);
    cf_respond_error(r, 412, "unsupported_version",
                     v.base == NULL ? "send Tus-Resumable: 1.0.0" : "this server speaks tus 1.0.0 only");
    return false;
}

/* An unsigned decimal header; false (and answered 400) if present and malformed. */
static bool u64_header_or_respond(struct cf_req *r, const char *name, uint64_t *out, bool *present)
{
    h2o_iovec_t v = cf_header(r, name);
    *present = v.base != NULL;
    if (!*present)
        return true;
    if (cf_parse_u64(v.base, v.len, CF_TUS_U64_MAX, out) != CF_OK) {
        char m[96];
        snprintf(m, sizeof m, "%s must be a non-negative decimal integer", name);
        cf_respond_status(r, CF_EINVAL, m);
        return false;
    }
    return true;
}

static bool is_octets(struct cf_req *r)
{
    h2o_iovec_t ct = cf_header(r, "content-type");
    return ct.base != NULL && h2o_memis(ct.base, ct.len, H2O_STRLIT(OCTETS));
}

/* Upload-Checksum: "sha1 BASE64" or "sha256 BASE64". */
enum cf_status cf_tus_checksum_parse(const char *v, size_t n, struct cf_tus_checksum *c)
{
    memset(c, 0, sizeof *c);
    const char *sp = memchr(v, ' ', n);
    size_t al = sp != NULL ? (size_t)(sp - v) : n;
    size_t want;
    if (h2o_memis(v, al, H2O_STRLIT("sha1"))) {
        c->alg = CF_HASH_SHA1;
        want = 20;
    } else if (h2o_memis(v, al, H2O_STRLIT("sha256"))) {
        c->alg = CF_HASH_SHA256;
        want = 32;
    } else {
        return CF_EMEDIA;
    }
    if (sp == NULL || cf_b64_decode(sp + 1, n - al - 1, c->digest, sizeof c->digest, &c->len) != CF_OK ||
        c->len != want)
        return CF_EINVAL;
    return CF_OK;
}

struct checksum {
    bool present;
    struct cf_tus_checksum c;
};

static bool checksum_or_respond(struct cf_req *r, struct checksum *c)
{
    h2o_iovec_t v = cf_header(r, "upload-checksum");
    memset(c, 0, sizeof *c);
    if (v.base == NULL)
        return true;
    enum cf_status st = cf_tus_checksum_parse(v.base, v.len, &c->c);
    if (st == CF_EMEDIA) {
        cf_respond_error(r, 400, "unsupported_checksum", "Upload-Checksum: the algorithm must be sha1 or sha256");
        return false;
    }
    if (st != CF_OK) {
        cf_respond_status(r, CF_EINVAL, "Upload-Checksum: expected the algorithm, a space and the base64 digest");
        return false;
    }
    c->present = true;
    return true;
}

enum cf_status cf_tus_metadata_parse(const char *v, size_t n, struct cf_tus_metadata *m, char *why, size_t cap)
{
    bool have_name = false, have_parent = false;
    char seen[16][32];
    size_t nseen = 0;
    memset(m, 0, sizeof *m);
    if (n > CF_TUS_METADATA_MAX) {
        snprintf(why, cap, "%s", "Upload-Metadata is too long");
        return CF_EINVAL;
    }
    const char *p = v, *end = v + n;
    while (p < end) {
        const char *pe = memchr(p, ',', (size_t)(end - p));
        if (pe == NULL)
            pe = end;
        while (p < pe && *p == ' ')
            p++;
        const char *sp = memchr(p, ' ', (size_t)(pe - p));
        const char *ke = sp != NULL ? sp : pe;
        size_t kl = (size_t)(ke - p);
        if (kl == 0 || kl >= sizeof seen[0] || nseen == sizeof seen / sizeof seen[0]) {
            snprintf(why, cap, "%s", "Upload-Metadata: every pair needs a key (at most 31 bytes, 16 pairs)");
            return CF_EINVAL;
        }
        for (size_t i = 0; i < kl; i++)
            if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f) {
                snprintf(why, cap, "%s", "Upload-Metadata: keys are printable ASCII");
                return CF_EINVAL;
            }
        for (size_t i = 0; i < nseen; i++)
            if (strlen(seen[i]) == kl && memcmp(seen[i], p, kl) == 0) {
                snprintf(why, cap, "%s", "Upload-Metadata: a key appears twice");
                return CF_EINVAL;
            }
        memcpy(seen[nseen], p, kl);
        seen[nseen++][kl] = '\0';
        uint8_t val[CF_TUS_METADATA_MAX];
        size_t vl = 0;
        if (sp != NULL && cf_b64_decode(sp + 1, (size_t)(pe - sp - 1), val, sizeof val, &vl) != CF_OK) {
            snprintf(why, cap, "%s", "Upload-Metadata: values must be base64");
            return CF_EINVAL;
        }
        if (h2o_memis(p, kl, H2O_STRLIT("filename"))) {
            const char *bad = cf_name_check((const char *)val, vl);
            if (bad != NULL) {
                snprintf(why, cap, "Upload-Metadata: filename: %s", bad);
                return CF_EINVAL;
            }
            memcpy(m->name, val, vl);
            m->name[vl] = '\0';
            m->name_len = vl;
            have_name = true;
        } else if (h2o_memis(p, kl, H2O_STRLIT("parent"))) {
            if (cf_id_parse((const char *)val, vl, &m->parent) != CF_OK) {
                snprintf(why, cap, "%s", "Upload-Metadata: parent must be a folder id");
                return CF_EINVAL;
            }
            have_parent = true;
        } else if (h2o_memis(p, kl, H2O_STRLIT("on_conflict"))) {
            if (h2o_memis(val, vl, H2O_STRLIT("fail")))
                m->on_conflict = CF_CONFLICT_FAIL;
            else if (h2o_memis(val, vl, H2O_STRLIT("rename")))
                m->on_conflict = CF_CONFLICT_RENAME;
            else if (h2o_memis(val, vl, H2O_STRLIT("replace")))
                m->on_conflict = CF_CONFLICT_REPLACE;
            else {
                snprintf(why, cap, "%s", "Upload-Metadata: on_conflict must be fail, rename or replace");
                return CF_EINVAL;
            }
        }
        p = pe + 1;
    }
    if (!have_name || !have_parent) {
        snprintf(why, cap, "%s", "Upload-Metadata must carry filename and parent");
        return CF_EINVAL;
    }
    return CF_OK;
}

static bool metadata_or_respond(struct cf_req *r, h2o_iovec_t v, struct cf_tus_metadata *m)
{
    char why[160];
    if (cf_tus_metadata_parse(v.base, v.len, m, why, sizeof why) != CF_OK) {
        cf_respond_status(r, CF_EINVAL, why);
        return false;
    }
    return true;
}

/* ---- the job ---------------------------------------------------------------------------------- */

enum tus_kind { TUS_CREATE, TUS_PATCH, TUS_DELETE };

struct tus_job {
    struct cf_job job;
    struct cf_req *r;          /* watched: NULL once the client is gone */
    enum tus_kind kind;
    enum cf_status st;
    int http;                  /* a protocol error outside the status enum (409, 423, 460...): */
    const char *code;          /*   its code and message */
    const char *message;
    struct cf_tus t;           /* the upload (create: filled from the request) */
    struct cf_id id;
    bool busy;                 /* holds (tenant, id) in the busy set */
    uint64_t offset;           /* PATCH: the client's Upload-Offset */
    uint8_t *body;             /* a copy of the request body, wiped when freed */
    size_t n;
    struct checksum sum;
    bool created;              /* create: the upload exists (answer 201 even if the body failed) */
    bool completing;           /* the body completes the upload */
    bool inspected;            /* the upload-safety step decided */
    bool rejected;             /* ... against it (insp.st) */
    bool committed;
    struct cf_upload *up;
    uint8_t sha256[CF_SHA256_LEN];
    struct cf_inspection insp;
    struct cf_uploader as;     /* the requester */
    struct cf_node out;
    struct cf_event *ev;       /* actor, address and agent of the request: a template */
};

static void job_free(struct tus_job *j)
{
    if (j->busy)
        busy_release(&j->as.who.tenant, &j->id);
    cf_upload_free(j->up);
    cf_inspection_clear(&j->insp);
    cf_free_secret(j->body, j->n);
    cf_uploader_clear(&j->as);
    cf_node_clear(&j->out);
    cf_tus_clear(&j->t);
    cf_event_free(j->ev);
    free(j);
}

static void fail(struct tus_job *j, int http, const char *code, const char *message)
{
    j->http = http;
    j->code = code;
    j->message = message;
    j->st = CF_EINVAL;
}

/* An event like the request's template (actor, address, agent). */
static struct cf_event *event(struct tus_job *j, const char *action, const char *result)
{
    struct cf_event *e = cf_event_new(&j->as.who.tenant, action, result);
    e->actor_type = j->ev->actor_type;
    e->actor = j->ev->actor;
    e->actor_name = j->ev->actor_name != NULL ? cf_xstrdup(j->ev->actor_name) : NULL;
    memcpy(e->ip, j->ev->ip, sizeof e->ip);
    e->user_agent = j->ev->user_agent != NULL ? cf_xstrdup(j->ev->user_agent) : NULL;
    return e;
}

/* An upload event against the folder it is meant for. */
static void upload_event(struct tus_job *j, const char *action, const char *result, const char *reason)
{
    struct cf_event *e = event(j, action, result);
    struct cf_node folder;
    char idhex[CF_ID_HEX_LEN + 1];
    if (cf_node_get(j->as.who.app->store, &j->as.who.tenant, &j->t.parent, &folder) == CF_OK) {
        cf_event_node(e, &folder);
        cf_node_clear(&folder);
    }
    cf_id_hex(&j->t.id, idhex);
    cf_event_detail(e, "upload", json_string(idhex));
    cf_event_detail(e, "name", json_string(j->t.name));
    cf_event_detail(e, "size", json_integer((json_int_t)j->t.length));
    cf_event_detail(e, "via", json_string("tus"));
    if (reason != NULL)
        cf_event_detail(e, "reason", json_string(reason));
    if (j->inspected && j->rejected) {
        char sha[2 * CF_SHA256_LEN + 1];
        cf_hex_encode(j->sha256, CF_SHA256_LEN, sha);
        cf_event_detail(e, "sha256", json_string(sha));
        cf_inspect_event(&j->insp, e);
    }
    if (cf_audit_submit_wait(e, NULL) != CF_OK)
        cf_log_error("uploads: an %s event could not be recorded", action);
}

/* Discards the upload for good after a final refusal. */
static void discard(struct tus_job *j, const char *reason)
{
    if (cf_tus_delete(j->as.who.app->store, &j->t.tenant, &j->t.id) != CF_OK)
        cf_log_error("uploads: a refused upload could not be deleted; it expires on its own");
    if (!j->rejected)
        upload_event(j, "upload.rejected", reason, reason);
}

static void inspected(struct cf_inspection *in)
{
    struct tus_job *j = in->ctx;
    j->inspected = true;
    cf_work_submit(&j->job);
}

/* After the verdict (worker): commit, or refuse and discard. */
static void finish(struct tus_job *j)
{
    cf_inspection_clear(&j->insp);
    if (j->insp.st != CF_OK) {
        j->st = j->insp.st;
        if (j->insp.st == CF_EUNAVAIL || j->insp.st == CF_EIO)
            return; /* passing: the upload stays at its previous offset; the client retries */
        j->rejected = true;
        upload_event(j, "upload.rejected", cf_status_name(j->insp.st), cf_status_name(j->insp.st));
        discard(j, NULL);
        return;
    }
    struct cf_commit c = {
        .parent = j->t.parent,
        .name = j->t.name,
        .name_len = strlen(j->t.name),
        .on_conflict = j->t.on_conflict,
        .uploader = j->as.who.id,
        .size = j->t.length,
        .mime = j->insp.mime,
        .scan = &j->insp.scan,
        .may_replace = cf_uploader_may_replace,
        .ctx = &j->as,
        .tus = &j->t,
    };
    memcpy(c.sha256, j->sha256, CF_SHA256_LEN);
    j->st = cf_upload_commit(j->up, &c, &j->out);
    if (j->st == CF_EEXIST || j->st == CF_EDENIED || j->st == CF_ENOTFOUND) {
        discard(j, cf_status_name(j->st));
        j->message = j->st == CF_EEXIST ? "a node with this name already exists in the folder"
                     : j->st == CF_EDENIED ? "your access level does not allow replacing this file"
                                           : NULL;
        return;
    }
    if (j->st != CF_OK)
        return;
    j->committed = true;
    struct cf_event *e = event(j, "file.upload", "ok");
    char idhex[CF_ID_HEX_LEN + 1];
    cf_id_hex(&j->t.id, idhex);
    cf_upload_event_committed(e, &j->out);
    cf_event_detail(e, "via", json_string("tus"));
    cf_event_detail(e, "upload", json_string(idhex));
    j->st = cf_audit_submit_wait(e, NULL);
}

/* Appends the body at the client's offset; for the completing body, hashes the whole content and
 * starts the upload-safety step. false: the job continues through inspected(). */
static bool append(struct tus_job *j)
{
    if (j->offset != j->t.offset) {
        fail(j, 409, "offset_mismatch", "Upload-Offset differs from the upload's offset: HEAD it and resume there");
        return true;
    }
    if (j->n > j->t.length - j->t.offset) {
        fail(j, 400, "bad_request", "the body goes past Upload-Length");
        return true;
    }
    if (j->sum.present) {
        uint8_t d[CF_SHA256_LEN];
        struct cf_hash *h = cf_hash_new(j->sum.c.alg);
        cf_hash_update(h, j->body, j->n);
        size_t dl = cf_hash_final(h, d);
        cf_hash_free(h);
        if (dl != j->sum.c.len || !cf_ct_equal(d, j->sum.c.digest, dl)) {
            fail(j, 460, "checksum_mismatch", "the body does not match Upload-Checksum; nothing was stored");
            return true;
        }
    }
    j->completing = j->t.offset + j->n == j->t.length;
    if (j->completing) {
        /* Permissions may have changed since the creation: the uploader needs edit on the folder now. */
        struct cf_node pn;
        enum cf_level level;
        enum cf_status st = cf_acl_level(&j->as.who, &j->t.parent, &pn, &level);
        if (st == CF_OK) {
            bool folder = pn.type == CF_NODE_FOLDER;
            cf_node_clear(&pn);
            st = level == CF_LEVEL_NONE || !folder ? CF_ENOTFOUND : level < CF_LEVEL_EDIT ? CF_EDENIED : CF_OK;
        }
        if (st == CF_ENOTFOUND || st == CF_EDENIED) {
            j->st = st;
            discard(j, cf_status_name(st));
            j->message = st == CF_EDENIED ? "you may no longer upload into this folder; the upload was discarded"
                                          : NULL;
            return true;
        }
        if ((j->st = st) != CF_OK)
            return true;
    }
    if ((j->st = cf_tus_append(j->as.who.app->store, &j->t, j->body, j->n,
                               j->as.who.app->cfg->uploads.expire_after_s * 1000)) != CF_OK)
        return true;
    cf_free_secret(j->body, j->n);
    j->body = NULL;
    if (!j->completing)
        return true;
    /* All bytes are stored (sealed): hash them (the simple upload hashes on the way in; here the
     * content arrived over many requests, maybe across restarts), then scan and sniff. */
    if ((j->st = cf_tus_writer(j->as.who.app->store, &j->t, &j->up)) != CF_OK)
        return true;
    uint8_t *buf = cf_try_malloc(CF_CHUNK_SIZE);
    if (buf == NULL) {
        j->st = CF_EIO;
        return true;
    }
    struct cf_hash *h = cf_hash_new(CF_HASH_SHA256);
    uint32_t nchunks = j->t.length == 0 ? 1 : (uint32_t)((j->t.length + CF_CHUNK_SIZE - 1) / CF_CHUNK_SIZE);
    for (uint32_t i = 0; i < nchunks && j->st == CF_OK; i++) {
        size_t len;
        if ((j->st = cf_upload_read_chunk(j->up, j->t.length, i, buf, &len)) == CF_OK)
            cf_hash_update(h, buf, len);
    }
    cf_hash_final(h, j->sha256);
    cf_hash_free(h);
    cf_free_secret(buf, CF_CHUNK_SIZE);
    if (j->st != CF_OK)
        return true;
    j->insp.app = j->as.who.app;
    j->insp.up = j->up;
    j->insp.size = j->t.length;
    j->insp.tenant = j->as.who.tenant;
    j->insp.done = inspected;
    j->insp.ctx = j;
    cf_inspect(&j->insp);
    return false;
}

/* Loads the upload named by the request: 404 unless it exists and is the requester's. */
static bool load(struct tus_job *j)
{
    j->st = cf_tus_get(j->as.who.app->store, &j->as.who.tenant, &j->id, &j->t);
    if (j->st == CF_OK && !cf_id_equal(&j->t.owner, &j->as.who.id)) {
        cf_tus_clear(&j->t);
        j->st = CF_ENOTFOUND;
    }
    if (j->st != CF_OK)
        return false;
    if (!j->t.completed && j->t.expires_at <= cf_now_ms()) {
        fail(j, 410, "upload_expired", "this upload expired; start a new one");
        return false;
    }
    return true;
}

static bool tus_run(struct cf_job *job)
{
    struct tus_job *j = (struct tus_job *)(void *)job;
    if (j->inspected) {
        finish(j);
        return true;
    }
    switch (j->kind) {
    case TUS_CREATE: {
        size_t count;
        uint64_t bytes;
        const struct cf_config *cfg = j->as.who.app->cfg;
        if ((j->st = cf_tus_usage(j->as.who.app->store, &j->as.who.tenant, &j->as.who.id, cf_now_ms(), &count,
                                  &bytes)) != CF_OK)
            return true;
        if (count >= cfg->uploads.max_pending) {
            fail(j, 429, "too_many_uploads",
                 "you have too many unfinished uploads: finish or terminate some (they also expire)");
            return true;
        }
        if (bytes + j->t.length > cfg->uploads.max_pending_bytes) {
            fail(j, 429, "too_many_uploads",
                 "your unfinished uploads would exceed the size allowed: finish or terminate some");
            return true;
        }
        j->t.owner = j->as.who.id;
        j->t.tenant = j->as.who.tenant;
        if ((j->st = cf_tus_create(j->as.who.app->store, &j->t, cfg->uploads.expire_after_s * 1000)) != CF_OK)
            return true;
        j->created = true;
        j->id = j->t.id;
        upload_event(j, "upload.start", "ok", NULL);
        if (j->n == 0 && j->t.length != 0)
            return true;
        j->offset = 0;
        return append(j); /* creation-with-upload, or an empty file (complete at once) */
    }
    case TUS_PATCH:
        if (!load(j))
            return true;
        if (j->t.completed) {
            if (j->offset != j->t.offset || j->n != 0)
                fail(j, 409, "offset_mismatch", "this upload is complete");
            return true;
        }
        return append(j);
    case TUS_DELETE:
        if (!load(j) && j->http != 410)
            return true;
        j->http = 0;
        j->st = cf_tus_delete(j->as.who.app->store, &j->t.tenant, &j->t.id);
        if (j->st == CF_OK && !j->t.completed)
            upload_event(j, "upload.cancel", "ok", NULL);
        return true;
    }
    return true;
}

static void reply(struct tus_job *j)
{
    struct cf_req *r = j->r;
    char loc[64], idhex[CF_ID_HEX_LEN + 1];
    cf_req_unwatch(r);
    if (j->kind == TUS_CREATE && j->created) {
        /* The upload exists: its location, even if the body sent along failed (the client resumes). */
        cf_id_hex(&j->t.id, idhex);
        snprintf(loc, sizeof loc, "/api/v1/uploads/%s", idhex);
        cf_add_header_str(r, "location", loc);
    }
    if (j->rejected) {
        cf_inspect_respond(r, &j->insp);
        return;
    }
    bool ok = j->st == CF_OK;
    if (!ok && j->kind == TUS_CREATE && j->created && !j->completing && j->http != 0) {
        ok = true; /* checksum mismatch etc. on the creation body: created, nothing appended */
    }
    if (!ok) {
        if (j->http != 0)
            cf_respond_error(r, j->http, j->code, j->message);
        else
            cf_respond_status(r, j->st, j->message);
        return;
    }
    if (j->kind == TUS_DELETE) {
        cf_respond_empty(r, 204);
        return;
    }
    add_u64(r, "upload-offset", j->committed ? j->t.length : j->t.offset);
    if (j->committed || j->t.completed) {
        cf_id_hex(j->committed ? &j->out.id : &j->t.node, idhex);
        cf_add_header_str(r, "coffer-node-id", idhex);
    } else {
        add_expires(r, j->t.expires_at);
    }
    cf_respond_empty(r, j->kind == TUS_CREATE ? 201 : 204);
}

static void tus_done(struct cf_job *job)
{
    struct tus_job *j = (struct tus_job *)(void *)job;
    if (j->r != NULL)
        reply(j);
    job_free(j);
}

/* A job for request r (loop thread): the requester, the event template, and a copy of the body. */
static struct tus_job *job_new(struct cf_req *r, enum tus_kind kind)
{
    struct tus_job *j = cf_xcalloc(1, sizeof *j);
    j->kind = kind;
    j->job.run = tus_run;
    j->job.done = tus_done;
    j->job.reply_to = &r->loop->work_done;
    cf_uploader_init(&j->as, r);
    j->t.tenant = j->as.who.tenant;
    j->ev = cf_event_new(&j->as.who.tenant, "upload.start", "ok");
    cf_event_from_req(j->ev, r);
    h2o_iovec_t body = r->req->entity;
    if (body.base != NULL && body.len > 0) {
        j->body = cf_xmalloc(body.len);
        memcpy(j->body, body.base, body.len);
        j->n = body.len;
    }
    return j;
}

static void start(struct cf_req *r, struct tus_job *j)
{
    cf_req_watch(r, &j->r);
    cf_work_submit(&j->job);
}

/* The upload id of the path; 404 if malformed. */
static bool id_or_respond(struct cf_req *r, struct cf_id *id)
{
    if (cf_id_parse(r->params[0].base, r->params[0].len, id) != CF_OK) {
        cf_respond_status(r, CF_ENOTFOUND, NULL);
        return false;
    }
    return true;
}

/* ---- handlers --------------------------------------------------------------------------------- */

void cf_h_tus_options(struct cf_req *r)
{
    cf_add_header_str(r, "tus-resumable", TUS_VERSION);
    cf_add_header_str(r, "tus-version", TUS_VERSION);
    cf_add_header_str(r, "tus-extension", TUS_EXTENSIONS);
    cf_add_header_str(r, "tus-checksum-algorithm", "sha1,sha256");
    add_u64(r, "tus-max-size", r->app->cfg->limits.max_file_bytes);
    cf_respond_empty(r, 204);
}

void cf_h_tus_create(struct cf_req *r)
{
    uint64_t length;
    bool has_length;
    struct cf_tus_metadata m;
    struct checksum sum;
    if (!version_or_respond(r) || !u64_header_or_respond(r, "upload-length", &length, &has_length))
        return;
    if (cf_header(r, "upload-defer-length").base != NULL) {
        cf_respond_status(r, CF_EINVAL, "Upload-Defer-Length is not supported: send Upload-Length");
        return;
    }
    if (!has_length) {
        cf_respond_status(r, CF_EINVAL, "Upload-Length is required");
        return;
    }
    if (length > r->app->cfg->limits.max_file_bytes) {
        cf_respond_status(r, CF_ETOOBIG, "the file is larger than this server accepts (see Tus-Max-Size)");
        return;
    }
    h2o_iovec_t mv = cf_header(r, "upload-metadata");
    if (mv.base == NULL) {
        cf_respond_status(r, CF_EINVAL, "Upload-Metadata must carry filename and parent");
        return;
    }
    if (!metadata_or_respond(r, mv, &m))
        return;
    size_t n = r->req->entity.base != NULL ? r->req->entity.len : 0;
    if (n > 0 && !is_octets(r)) {
        cf_respond_status(r, CF_EMEDIA, "a body sent with the creation needs Content-Type: " OCTETS);
        return;
    }
    if (n > length) {
        cf_respond_status(r, CF_EINVAL, "the body goes past Upload-Length");
        return;
    }
    if (!checksum_or_respond(r, &sum))
        return;
    if (!cf_acl_folder_or_respond(r, &m.parent, CF_LEVEL_EDIT, NULL))
        return;
    struct tus_job *j = job_new(r, TUS_CREATE);
    j->sum = sum;
    j->t.parent = m.parent;
    j->t.name = cf_xstrndup(m.name, m.name_len);
    j->t.on_conflict = m.on_conflict;
    j->t.length = length;
    j->t.metadata = cf_xstrndup(mv.base, mv.len);
    start(r, j);
}

void cf_h_tus_head(struct cf_req *r)
{
    struct cf_id id;
    struct cf_tus t;
    if (!version_or_respond(r) || !id_or_respond(r, &id))
        return;
    enum cf_status st = cf_tus_get(r->app->store, &r->who.user.tenant, &id, &t);
    if (st == CF_OK && !cf_id_equal(&t.owner, &r->who.user.id)) {
        cf_tus_clear(&t);
        st = CF_ENOTFOUND;
    }
    if (st != CF_OK) {
        cf_respond_status(r, st, NULL);
        return;
    }
    if (!t.completed && t.expires_at <= cf_now_ms()) {
        cf_tus_clear(&t);
        cf_respond_error(r, 410, "upload_expired", NULL);
        return;
    }
    add_u64(r, "upload-offset", t.offset);
    add_u64(r, "upload-length", t.length);
    if (t.metadata != NULL)
        cf_add_header_str(r, "upload-metadata", t.metadata);
    if (t.completed) {
        char idhex[CF_ID_HEX_LEN + 1];
        cf_id_hex(&t.node, idhex);
        cf_add_header_str(r, "coffer-node-id", idhex);
    } else {
        add_expires(r, t.expires_at);
    }
    cf_tus_clear(&t);
    cf_respond_empty(r, 200);
}

void cf_h_tus_patch(struct cf_req *r)
{
    struct cf_id id;
    uint64_t offset;
    bool has_offset;
    struct checksum sum;
    if (!version_or_respond(r) || !id_or_respond(r, &id))
        return;
    if (!is_octets(r)) {
        cf_respond_status(r, CF_EMEDIA, "PATCH needs Content-Type: " OCTETS);
        return;
    }
    if (!u64_header_or_respond(r, "upload-offset", &offset, &has_offset))
        return;
    if (!has_offset) {
        cf_respond_status(r, CF_EINVAL, "Upload-Offset is required");
        return;
    }
    if (!checksum_or_respond(r, &sum))
        return;
    if (!busy_take(&r->who.user.tenant, &id)) {
        cf_respond_error(r, 423, "upload_locked",
                         "another request is working on this upload; retry when it has finished");
        return;
    }
    struct tus_job *j = job_new(r, TUS_PATCH);
    j->busy = true;
    j->id = id;
    j->offset = offset;
    j->sum = sum;
    start(r, j);
}

void cf_h_tus_delete(struct cf_req *r)
{
    struct cf_id id;
    if (!version_or_respond(r) || !id_or_respond(r, &id))
        return;
    if (!busy_take(&r->who.user.tenant, &id)) {
        cf_respond_error(r, 423, "upload_locked", "another request is working on this upload");
        return;
    }
    struct tus_job *j = job_new(r, TUS_DELETE);
    j->busy = true;
    j->id = id;
    start(r, j);
}
