/*
 * pg.c: the PostgreSQL engine (engine.h, issue 24): the model's key/value metadata in a PostgreSQL
 * database, for cluster mode. The only file of the tree that calls PQ*.
 *
 * Layout: one table per keyspace, "coffer_<name>" (k bytea PRIMARY KEY, v bytea NOT NULL), in the
 * schema the connection's search_path names. One table per keyspace rather than one table with a
 * keyspace column: each keyspace keeps its own primary-key index (smaller, hotter), the operator can
 * see, vacuum and size each one, range scans and range deletes never need a composite key, and a
 * forced compaction (crypto-shredding of wrapped keys) rewrites only the small `keys` table. bytea
 * compares as unsigned bytes, shorter first on a tie (byteacmp): exactly engine.h's key order. Values
 * are ciphertext, so the value columns are STORAGE EXTERNAL (never compressed).
 *
 * Mapping of the seam: a get is one prepared SELECT; a batch is one transaction (puts as INSERT … ON
 * CONFLICT DO UPDATE, deletes, range deletes as `k >= lo AND k < hi`), in the batch's order, sent in
 * one round trip (libpq's pipeline mode) when it has at most PIPELINE_MAX operations;
 * `sync` is synchronous_commit on or off for that transaction (off: a database crash may lose the
 * latest commits, as a whole and in commit order, never a part of one, and the next synchronous
 * commit flushes the WAL over every earlier one); an iterator is a REPEATABLE READ, READ ONLY
 * transaction (its snapshot taken at open) on a connection of its own, read in pages of PAGE rows by
 * keyset pagination (k >= x ORDER BY k LIMIT PAGE), so memory stays bounded; the large keyspace
 * (chunk bodies) is paged by key only and a value is read when asked for, in the same snapshot.
 *
 * Threads: the model calls from many threads at once. Connections come from a pool (a mutex and an
 * idle list): a call takes one, uses it alone, and gives it back; an iterator keeps its own until
 * closed. The pool grows on demand (no thread ever waits for a connection, so nested iterators
 * cannot deadlock it) and keeps at most POOL_IDLE idle ones.
 *
 * Failures: every connection has connect_timeout, TCP keepalives and tcp_user_timeout, and
 * statement_timeout/lock_timeout set, so a stalled database gives errors, not hangs. An error from a
 * database that cannot be reached (connection lost or refused, shutting down, starting up, a
 * timeout, too many connections) is reported as "Unavailable: …" (the model answers 503); damage
 * (SQLSTATE XX001/XX002) as "Corruption: …". No fail-stop: reads and writes fail as "Unavailable"
 * while the database is away and work again once it is back (a write whose COMMIT got no answer may
 * or may not be in the database: its caller answers 503, as for any request cut off mid-way; what the
 * model keeps in memory about the store is re-read under its cluster locks). A lost connection closes
 * the idle ones too, and a read that finds its pooled connection dropped is tried once more on a new
 * one.
 *
 * Several writers per database (cluster mode, docs/CLUSTER.md "Stateless nodes"): any number of
 * read-write opens, in any number of processes, write the same tables; what must not interleave
 * between them is serialised by the model's cluster locks. Read-only opens see the live database.
 *
 * The change feed (engine.h, docs/CLUSTER.md "Stateless nodes"): each batch's transaction ends with
 * one row of coffer_changes (seq bigserial, at, ops: the batch's keys and ranges, feed_encode), written
 * under a transaction-scoped advisory lock (FEED_LOCK_KEY) taken just before it, so that change rows
 * commit in seq order: a reader that sees row n sees every committed row below n, and may take the
 * newest seq it read as its position without a set of holes to re-read. coffer_changes_trim holds the
 * highest seq trimmed (a reader behind it has lost changes: CF_ENG_GAP). Every writer trims rows older
 * than FEED_KEEP_S seconds or more than FEED_KEEP_ROWS behind, at most once per FEED_TRIM_EVERY_MS,
 * one writer at a time (FEED_TRIM_KEY, tried, never waited for). Every open with a feed follows it:
 * other processes may write.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine_impl.h"

enum {
    PAGE = 256,              /* rows per iterator page (small keyspaces) */
    PAGE_LARGE = 64,         /* keys per page of the large keyspace (values read one by one) */
    POOL_IDLE = 32,          /* idle connections kept */
    PIPELINE_MAX = 64,       /* batches up to this many operations go in one round trip */
    TIMEOUT_MS = 30000,      /* default statement and connection timeout */
    BYTEA_OID = 17,
};
/* Advisory lock keys are fixed bigints from "Coffer" in ASCII, 0x436F66666572 = 74145738417522 (the
 * key of the one-writer lock of earlier versions, no longer taken), upwards. */
#define TABLE_PREFIX "coffer_"
/* The change feed: its tables (keyspace names may not start with "changes"), the advisory lock that
 * puts change rows in commit order, the one that lets one writer at a time trim, and the rule. */
#define FEED_TABLE TABLE_PREFIX "changes"
#define FEED_TRIM_TABLE TABLE_PREFIX "changes_trim"
#define FEED_LOCK_KEY "74145738417523"
#define FEED_TRIM_KEY "74145738417524"
enum { FEED_KEEP_S = 600, FEED_KEEP_ROWS = 100000, FEED_TRIM_EVERY_MS = 60000, FEED_PAGE = 4096 };
static const char feed_lock_sql[] = "SELECT pg_advisory_xact_lock(" FEED_LOCK_KEY ")";
static const char feed_insert_sql[] = "INSERT INTO " FEED_TABLE " (at, ops) VALUES (clock_timestamp(), $1)";

/* The prepared statements of a keyspace, one letter each. */
enum stmt { ST_GET, ST_PUT, ST_DEL, ST_RANGE, ST_FWD, ST_FWD_HI, ST_BACK_LE, ST_BACK_LT, ST_COUNT };
static const char stmt_letter[ST_COUNT] = {'g', 'p', 'd', 'r', 'f', 'h', 'b', 'l'};

struct pg_conn {
    PGconn *c;
    uint8_t *prepared; /* [nks]: bit s set once statement s of that keyspace is prepared */
    uint8_t feed_prepared; /* bit q set once feed query q (feed_sql) is prepared */
    struct pg_conn *next;
};

struct pg {
    struct cf_eng base; /* pg_ops */
    const struct cf_eng_spec *spec;
    size_t nks;
    bool *present; /* [nks]: the table exists (read-only opens of an older store may lack some) */
    bool readonly;
    char *conninfo, *password;
    unsigned timeout_ms;
    pthread_mutex_t mu;
    struct pg_conn *idle;
    size_t nidle;
    atomic_bool lost;
    bool feed;                  /* the change feed's tables exist */
    _Atomic uint64_t next_trim; /* read-write: when (monotonic ms) this open next trims the feed */
};

struct pg_op {
    enum cf_batch_op op;
    unsigned ks;
    size_t kl, vl;
    char *k, *v; /* one allocation: k, then v */
};

struct pg_batch {
    struct cf_batch base;
    struct pg *e;
    struct pg_op *ops;
    size_t n, cap;
    size_t *saves;
    size_t nsaves, capsaves;
};

struct pg_iter {
    struct cf_eiter base;
    struct pg *e;
    unsigned ks;
    struct pg_conn *pc;
    char *lo, *hi;
    size_t lolen, hilen;
    bool has_lo, has_hi, lazy;
    PGresult *res;  /* the current page, NULL: none */
    int row, nrows; /* position in the page */
    bool forward;   /* the page's order */
    bool full;      /* the page was full: more rows may follow in its order */
    char *err;      /* the error that stopped it */
    char *val;      /* lazy: the current row's value */
    size_t vlen;
    int val_row;    /* the row val belongs to, -1: none */
};

static const struct cf_eng_ops pg_ops;

static void *xmalloc(size_t n)
{
    void *p = malloc(n != 0 ? n : 1);
    if (p == NULL)
        abort();
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message; /* NOTICEs ("relation already exists, skipping") are not news */
}

/* ---- errors ---------------------------------------------------------------------------------- */

/* Whether SQLSTATE state says the database is out of reach for now (not that the request is wrong). */
static bool state_unavailable(const char *state)
{
    static const char *const codes[] = {"57P01", "57P02", "57P03", "57014", "55P03", "53300", "53000", "40001",
                                        "40P01", NULL};
    if (state == NULL)
        return false;
    if (strncmp(state, "08", 2) == 0) /* connection exceptions */
        return true;
    for (size_t i = 0; codes[i] != NULL; i++)
        if (strcmp(state, codes[i]) == 0)
            return true;
    return false;
}

/* The message for a failed call on c (r: its result, may be NULL), and the lost flag if c is gone. */
static char *pg_error(struct pg *e, PGconn *c, const PGresult *r, const char *what)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r != NULL && PQresultErrorMessage(r)[0] != '\0' ? PQresultErrorMessage(r)
                      : c != NULL                                      ? PQerrorMessage(c)
                                                                       : "out of memory";
    bool gone = c == NULL || PQstatus(c) != CONNECTION_OK;
    if (gone && e != NULL)
        atomic_store(&e->lost, true);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        n--;
    const char *kind = gone || state_unavailable(state) ? "Unavailable: "
                       : state != NULL && (strcmp(state, "XX001") == 0 || strcmp(state, "XX002") == 0)
                           ? "Corruption: "
                           : "";
    return cf_eng_msg("%sPostgreSQL: %s: %.*s", kind, what, (int)n, msg);
}

/* Runs sql (no parameters, text results) on c; true if it gave want. On failure *err is set. */
static bool exec_ok(struct pg *e, PGconn *c, const char *sql, ExecStatusType want, PGresult **out, char **err)
{
    PGresult *r = PQexec(c, sql);
    if (r == NULL || PQresultStatus(r) != want) {
        *err = pg_error(e, c, r, sql);
        PQclear(r);
        return false;
    }
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return true;
}

/* ---- connections ----------------------------------------------------------------------------- */

static PGconn *connect_db(struct pg *e, char **err)
{
    char connect_timeout[16], user_timeout[16], set[160];
    unsigned secs = (e->timeout_ms + 999) / 1000;
    snprintf(connect_timeout, sizeof connect_timeout, "%u", secs < 2 ? 2 : secs);
    snprintf(user_timeout, sizeof user_timeout, "%u", e->timeout_ms);
    /* Ours first: the conninfo (dbname, expanded) overrides any of them. */
    const char *keys[10], *vals[10];
    size_t n = 0;
    keys[n] = "connect_timeout", vals[n++] = connect_timeout;
    keys[n] = "application_name", vals[n++] = "coffer";
    keys[n] = "keepalives", vals[n++] = "1";
    keys[n] = "keepalives_idle", vals[n++] = "10";
    keys[n] = "keepalives_interval", vals[n++] = "5";
    keys[n] = "keepalives_count", vals[n++] = "3";
    keys[n] = "tcp_user_timeout", vals[n++] = user_timeout;
    if (e->password != NULL)
        keys[n] = "password", vals[n++] = e->password;
    keys[n] = "dbname", vals[n++] = e->conninfo;
    keys[n] = NULL, vals[n] = NULL;
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL || PQstatus(c) != CONNECTION_OK) {
        const char *m = c != NULL ? PQerrorMessage(c) : "out of memory";
        size_t ml = strlen(m);
        while (ml > 0 && (m[ml - 1] == '\n' || m[ml - 1] == ' '))
            ml--;
        *err = cf_eng_msg("Unavailable: PostgreSQL: cannot connect: %.*s", (int)ml, m);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, quiet, NULL);
    /* No idle_in_transaction_session_timeout: an iterator may rightly sit in its snapshot while the
     * model works, and a connection the server ends counts as lost (fail-stop). */
    /* jit off: every statement here is a point or range lookup, and a generic plan of the feed's page
     * query costs past jit_above_cost once coffer_changes holds ~10 000 rows: each catch-up then
     * compiled it (≈ 80 ms of CPU for a 0.06 ms query; bench/README.md "Cluster"). */
    snprintf(set, sizeof set, "SET statement_timeout = %u; SET lock_timeout = %u; SET jit = off", e->timeout_ms,
             e->timeout_ms);
    if (!exec_ok(NULL, c, set, PGRES_COMMAND_OK, NULL, err)) {
        PQfinish(c);
        return NULL;
    }
    return c;
}

static void conn_free(struct pg_conn *pc)
{
    if (pc == NULL)
        return;
    PQfinish(pc->c);
    free(pc->prepared);
    free(pc);
}

/* A connection for the calling thread alone: an idle one, or a new one. NULL and *err on failure. An
 * idle connection the server has closed meanwhile (a restart: its goodbye and end of stream are
 * waiting in the socket) is seen as such by reading what is there, without a round trip, and is
 * replaced (with every other idle one: they went to the same server). */
/* pc's connection is gone: the engine notes it (lost), and closes pc and every idle connection,
 * which went to the same server, now gone or restarted. */
static void conn_lost(struct pg *e, struct pg_conn *pc)
{
    atomic_store(&e->lost, true);
    conn_free(pc);
    pthread_mutex_lock(&e->mu);
    struct pg_conn *idle = e->idle;
    e->idle = NULL;
    e->nidle = 0;
    pthread_mutex_unlock(&e->mu);
    while (idle != NULL) {
        struct pg_conn *next = idle->next;
        conn_free(idle);
        idle = next;
    }
}

static struct pg_conn *conn_get(struct pg *e, char **err)
{
    pthread_mutex_lock(&e->mu);
    struct pg_conn *pc = e->idle;
    if (pc != NULL) {
        e->idle = pc->next;
        e->nidle--;
    }
    pthread_mutex_unlock(&e->mu);
    /* Twice: the first read may stop at the server's goodbye message, the second then sees the end. */
    if (pc != NULL && PQconsumeInput(pc->c) == 1 && PQconsumeInput(pc->c) == 1 && PQstatus(pc->c) == CONNECTION_OK)
        return pc;
    if (pc != NULL)
        conn_lost(e, pc);
    PGconn *c = connect_db(e, err);
    if (c == NULL)
        return NULL;
    pc = xmalloc(sizeof *pc);
    pc->c = c;
    pc->prepared = calloc(e->nks, 1);
    if (pc->prepared == NULL)
        abort();
    pc->feed_prepared = 0;
    pc->next = NULL;
    return pc;
}

/* Gives pc back: kept if it is healthy and outside a transaction, else closed. A lost connection
 * closes every idle one too: they went to the same server, which is gone or was restarted. */
static void conn_put(struct pg *e, struct pg_conn *pc)
{
    if (pc == NULL)
        return;
    if (PQstatus(pc->c) != CONNECTION_OK) {
        conn_lost(e, pc);
        return;
    }
    if (PQtransactionStatus(pc->c) != PQTRANS_IDLE) {
        conn_free(pc);
        return;
    }
    pthread_mutex_lock(&e->mu);
    if (e->nidle < POOL_IDLE) {
        pc->next = e->idle;
        e->idle = pc;
        e->nidle++;
        pc = NULL;
    }
    pthread_mutex_unlock(&e->mu);
    conn_free(pc);
}

/* ---- statements ------------------------------------------------------------------------------ */

static void table_name(const struct pg *e, unsigned ks, char *out, size_t n)
{
    snprintf(out, n, "\"" TABLE_PREFIX "%s\"", e->spec->names[ks]);
}

static bool is_large(const struct pg *e, unsigned ks)
{
    return e->spec->large >= 0 && ks == (unsigned)e->spec->large;
}

/* Prepares statement s of keyspace ks on pc if it is not yet. */
static bool prepare(struct pg *e, struct pg_conn *pc, unsigned ks, enum stmt s, char **err)
{
    if (pc->prepared[ks] & (1u << s))
        return true;
    char t[96], sql[320], name[16];
    table_name(e, ks, t, sizeof t);
    const char *cols = is_large(e, ks) ? "k" : "k, v";
    int page = is_large(e, ks) ? PAGE_LARGE : PAGE;
    int np = 1;
    switch (s) {
    case ST_GET:
        snprintf(sql, sizeof sql, "SELECT v FROM %s WHERE k = $1", t);
        break;
    case ST_PUT:
        snprintf(sql, sizeof sql, "INSERT INTO %s (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v",
                 t);
        np = 2;
        break;
    case ST_DEL:
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE k = $1", t);
        break;
    case ST_RANGE:
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE k >= $1 AND k < $2", t);
        np = 2;
        break;
    case ST_FWD:
        snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE k >= $1 ORDER BY k LIMIT %d", cols, t, page);
        break;
    case ST_FWD_HI:
        snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE k >= $1 AND k < $2 ORDER BY k LIMIT %d", cols, t, page);
        np = 2;
        break;
    case ST_BACK_LE:
        snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE k <= $1 AND k >= $2 ORDER BY k DESC LIMIT %d", cols, t,
                 page);
        np = 2;
        break;
    case ST_BACK_LT:
        snprintf(sql, sizeof sql, "SELECT %s FROM %s WHERE k < $1 AND k >= $2 ORDER BY k DESC LIMIT %d", cols, t,
                 page);
        np = 2;
        break;
    default:
        abort();
    }
    snprintf(name, sizeof name, "%c%u", stmt_letter[s], ks);
    static const Oid types[2] = {BYTEA_OID, BYTEA_OID};
    PGresult *r = PQprepare(pc->c, name, sql, np, types);
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
        *err = pg_error(e, pc->c, r, "prepare");
        PQclear(r);
        return false;
    }
    PQclear(r);
    pc->prepared[ks] |= (uint8_t)(1u << s);
    return true;
}

/* Runs statement s of ks with n binary parameters; binary results. NULL and *err on failure. */
static PGresult *run(struct pg *e, struct pg_conn *pc, unsigned ks, enum stmt s, int n, const char *const *p,
                     const size_t *len, char **err)
{
    if (!prepare(e, pc, ks, s, err))
        return NULL;
    char name[16];
    snprintf(name, sizeof name, "%c%u", stmt_letter[s], ks);
    int lens[2], fmts[2] = {1, 1};
    for (int i = 0; i < n; i++) {
        if (len[i] > INT32_MAX) {
            *err = cf_eng_msg("PostgreSQL: a value of %zu bytes is too large", len[i]);
            return NULL;
        }
        lens[i] = (int)len[i];
    }
    PGresult *r = PQexecPrepared(pc->c, name, n, p, lens, fmts, 1);
    ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        *err = pg_error(e, pc->c, r, e->spec->names[ks]);
        PQclear(r);
        return NULL;
    }
    return r;
}

/* ---- opening --------------------------------------------------------------------------------- */

static void pg_close(struct cf_eng *e_)
{
    struct pg *e = (struct pg *)e_;
    while (e->idle != NULL) {
        struct pg_conn *pc = e->idle;
        e->idle = pc->next;
        conn_free(pc);
    }
    pthread_mutex_destroy(&e->mu);
    free(e->present);
    if (e->password != NULL) {
        volatile char *p = e->password;
        while (*p != '\0')
            *p++ = 0;
        free(e->password);
    }
    free(e->conninfo);
    free(e);
}

/* Which tables exist: present[ks]. */
static bool find_tables(struct pg *e, PGconn *c, char **err)
{
    PGresult *r;
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()");
    if (!exec_ok(e, c, sql, PGRES_TUPLES_OK, &r, err))
        return false;
    for (size_t ks = 0; ks < e->nks; ks++) {
        e->present[ks] = false;
        for (int i = 0; i < PQntuples(r) && !e->present[ks]; i++) {
            const char *t = PQgetvalue(r, i, 0);
            e->present[ks] = strncmp(t, TABLE_PREFIX, sizeof TABLE_PREFIX - 1) == 0 &&
                             strcmp(t + sizeof TABLE_PREFIX - 1, e->spec->names[ks]) == 0;
        }
    }
    for (int i = 0; i < PQntuples(r); i++)
        e->feed |= strcmp(PQgetvalue(r, i, 0), FEED_TABLE) == 0;
    PQclear(r);
    return true;
}

/* Creates every missing table, in one transaction. */
static bool create_tables(struct pg *e, PGconn *c, char **err)
{
    if (!exec_ok(e, c, "BEGIN", PGRES_COMMAND_OK, NULL, err))
        return false;
    for (size_t ks = 0; ks < e->nks; ks++) {
        if (e->present[ks])
            continue;
        char t[96], sql[320];
        table_name(e, (unsigned)ks, t, sizeof t);
        snprintf(sql, sizeof sql,
                 "CREATE TABLE IF NOT EXISTS %s (k bytea PRIMARY KEY, v bytea NOT NULL); "
                 "ALTER TABLE %s ALTER COLUMN v SET STORAGE EXTERNAL",
                 t, t);
        if (!exec_ok(e, c, sql, PGRES_COMMAND_OK, NULL, err)) {
            PQclear(PQexec(c, "ROLLBACK"));
            return false;
        }
    }
    if (!exec_ok(e, c,
                 "CREATE TABLE IF NOT EXISTS " FEED_TABLE " (seq bigserial PRIMARY KEY, at timestamptz NOT NULL, "
                 "ops bytea NOT NULL); ALTER TABLE " FEED_TABLE " ALTER COLUMN ops SET STORAGE EXTERNAL; "
                 "CREATE TABLE IF NOT EXISTS " FEED_TRIM_TABLE " (id int PRIMARY KEY CHECK (id = 1), "
                 "trimmed bigint NOT NULL); INSERT INTO " FEED_TRIM_TABLE " VALUES (1, 0) ON CONFLICT DO NOTHING",
                 PGRES_COMMAND_OK, NULL, err)) {
        PQclear(PQexec(c, "ROLLBACK"));
        return false;
    }
    if (!exec_ok(e, c, "COMMIT", PGRES_COMMAND_OK, NULL, err))
        return false;
    e->feed = true;
    for (size_t ks = 0; ks < e->nks; ks++)
        e->present[ks] = true;
    return true;
}

int cf_eng_open_pg(const struct cf_eng_pg_target *t, const struct cf_eng_spec *spec, unsigned flags,
                   struct cf_eng **out, char **err)
{
    *err = NULL;
    for (size_t i = 0; i < spec->n; i++) {
        if (strspn(spec->names[i], "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(spec->names[i]) ||
            strlen(spec->names[i]) > 48 || spec->names[i][0] == '\0' || strncmp(spec->names[i], "changes", 7) == 0) {
            *err = cf_eng_msg("PostgreSQL: keyspace name %s is not a plain identifier (or is reserved)", spec->names[i]);
            return CF_ENG_ERR;
        }
    }
    if (spec->n > 64 || t->conninfo == NULL) {
        *err = cf_eng_msg("PostgreSQL: %s", t->conninfo == NULL ? "no conninfo" : "too many keyspaces");
        return CF_ENG_ERR;
    }
    struct pg *e = xmalloc(sizeof *e);
    *e = (struct pg){.base = {.ops = &pg_ops}, .spec = spec, .nks = spec->n,
                     .readonly = (flags & CF_ENG_READONLY) != 0, .conninfo = xstrdup(t->conninfo),
                     .password = t->password != NULL ? xstrdup(t->password) : NULL,
                     .timeout_ms = t->statement_timeout_ms != 0 ? t->statement_timeout_ms : TIMEOUT_MS};
    pthread_mutex_init(&e->mu, NULL);
    atomic_init(&e->lost, false);
    e->present = calloc(spec->n, sizeof *e->present);
    if (e->present == NULL)
        abort();
    struct pg_conn *pc = conn_get(e, err);
    bool ok = pc != NULL && find_tables(e, pc->c, err);
    if (ok && (flags & CF_ENG_CREATE) && e->present[0]) {
        *err = cf_eng_msg("PostgreSQL: a store already exists in this database (table " TABLE_PREFIX "%s)",
                          spec->names[0]);
        ok = false;
    } else if (ok && !(flags & CF_ENG_CREATE) && !e->present[0]) {
        *err = cf_eng_msg("PostgreSQL: no store in this database (no table " TABLE_PREFIX "%s): does not exist",
                          spec->names[0]);
        ok = false;
    }
    for (size_t ks = 0; ok && e->readonly && ks < spec->required; ks++) {
        if (!e->present[ks]) {
            *err = cf_eng_msg("PostgreSQL: table " TABLE_PREFIX "%s is missing", spec->names[ks]);
            ok = false;
        }
    }
    if (ok && !e->readonly)
        ok = create_tables(e, pc->c, err);
    conn_put(e, pc);
    if (!ok) {
        pg_close(&e->base);
        return CF_ENG_ERR;
    }
    atomic_store(&e->lost, false);
    *out = &e->base;
    return CF_ENG_OK;
}

static bool pg_has(const struct cf_eng *e_, unsigned ks)
{
    const struct pg *e = (const struct pg *)e_;
    return ks < e->nks && e->present[ks];
}

/* Nothing is kept in memory only: a committed transaction is in the database's WAL. */
static int pg_flush(struct cf_eng *e_, char **err)
{
    (void)e_;
    *err = NULL;
    return CF_ENG_OK;
}

static void pg_stats(struct cf_eng *e_, struct cf_eng_stats *out)
{
    (void)e_;
    memset(out, 0, sizeof *out); /* write_stopped false: no fail-stop (503 while the database is away) */
}

/* ---- point reads ----------------------------------------------------------------------------- */

static int pg_get_view(struct cf_eng *e_, unsigned ks, const void *key, size_t klen,
                       void (*fn)(void *ctx, const char *val, size_t vlen), void *ctx, char **err)
{
    struct pg *e = (struct pg *)e_;
    *err = NULL;
    if (!pg_has(e_, ks))
        return CF_ENG_NOTFOUND;
    const char *p[1] = {key};
    size_t l[1] = {klen};
    struct pg_conn *pc;
    PGresult *r;
    for (int attempt = 0;; attempt++) {
        if ((pc = conn_get(e, err)) == NULL)
            return CF_ENG_ERR;
        r = run(e, pc, ks, ST_GET, 1, p, l, err);
        if (r != NULL || attempt > 0 || PQstatus(pc->c) == CONNECTION_OK)
            break;
        /* A pooled connection the database dropped (a restart): a read is safe to try once more on a
         * new one. */
        conn_put(e, pc);
        free(*err);
        *err = NULL;
    }
    conn_put(e, pc); /* the result outlives its connection */
    int rc = r == NULL ? CF_ENG_ERR : PQntuples(r) == 0 ? CF_ENG_NOTFOUND : CF_ENG_OK;
    if (rc == CF_ENG_OK)
        fn(ctx, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
    return rc;
}

struct copy_ctx {
    char *val;
    size_t vlen;
};

static void copy_val(void *ctx, const char *val, size_t vlen)
{
    struct copy_ctx *c = ctx;
    c->val = xmalloc(vlen);
    if (vlen > 0)
        memcpy(c->val, val, vlen);
    c->vlen = vlen;
}

static int pg_get(struct cf_eng *e, unsigned ks, const void *key, size_t klen, char **val, size_t *vlen, char **err)
{
    struct copy_ctx c = {NULL, 0};
    int rc = pg_get_view(e, ks, key, klen, copy_val, &c, err);
    *val = c.val;
    *vlen = c.vlen;
    return rc;
}

/* ---- batches --------------------------------------------------------------------------------- */

static struct cf_batch *pg_batch_new(struct cf_eng *e)
{
    struct pg_batch *b = xmalloc(sizeof *b);
    *b = (struct pg_batch){.base = {.ops = &pg_ops}, .e = (struct pg *)e};
    return &b->base;
}

static void pg_batch_clear(struct cf_batch *b_)
{
    struct pg_batch *b = (struct pg_batch *)b_;
    for (size_t i = 0; i < b->n; i++)
        free(b->ops[i].k);
    b->n = 0;
    b->nsaves = 0;
}

static void pg_batch_free(struct cf_batch *b_)
{
    struct pg_batch *b = (struct pg_batch *)b_;
    pg_batch_clear(b_);
    free(b->ops);
    free(b->saves);
    free(b);
}

static void batch_add(struct pg_batch *b, enum cf_batch_op op, unsigned ks, const void *k, size_t kl, const void *v,
                      size_t vl)
{
    if (b->n == b->cap) {
        b->cap = b->cap != 0 ? 2 * b->cap : 8;
        b->ops = realloc(b->ops, b->cap * sizeof *b->ops);
        if (b->ops == NULL)
            abort();
    }
    struct pg_op *o = &b->ops[b->n++];
    o->op = op;
    o->ks = ks;
    o->kl = kl;
    o->vl = vl;
    o->k = xmalloc(kl + vl);
    if (kl > 0)
        memcpy(o->k, k, kl);
    if (vl > 0)
        memcpy(o->k + kl, v, vl);
    o->v = o->k + kl;
}

static void pg_batch_put(struct cf_batch *b, unsigned ks, const void *key, size_t klen, const void *val, size_t vlen)
{
    batch_add((struct pg_batch *)b, CF_BATCH_PUT, ks, key, klen, val, vlen);
}

static void pg_batch_delete(struct cf_batch *b, unsigned ks, const void *key, size_t klen)
{
    batch_add((struct pg_batch *)b, CF_BATCH_DELETE, ks, key, klen, NULL, 0);
}

static void pg_batch_delete_range(struct cf_batch *b, unsigned ks, const void *lo, size_t lolen, const void *hi,
                                  size_t hilen)
{
    batch_add((struct pg_batch *)b, CF_BATCH_DELETE_RANGE, ks, lo, lolen, hi, hilen);
}

static size_t pg_batch_count(const struct cf_batch *b)
{
    return ((const struct pg_batch *)b)->n;
}

static void pg_batch_save(struct cf_batch *b_)
{
    struct pg_batch *b = (struct pg_batch *)b_;
    if (b->nsaves == b->capsaves) {
        b->capsaves = b->capsaves != 0 ? 2 * b->capsaves : 4;
        b->saves = realloc(b->saves, b->capsaves * sizeof *b->saves);
        if (b->saves == NULL)
            abort();
    }
    b->saves[b->nsaves++] = b->n;
}

static int pg_batch_rollback(struct cf_batch *b_, char **err)
{
    struct pg_batch *b = (struct pg_batch *)b_;
    *err = NULL;
    if (b->nsaves == 0) {
        *err = cf_eng_msg("no save point to roll back to");
        return CF_ENG_ERR;
    }
    size_t to = b->saves[--b->nsaves];
    while (b->n > to)
        free(b->ops[--b->n].k);
    return CF_ENG_OK;
}

static int pg_batch_each(const struct cf_batch *b_, cf_batch_fn fn, void *ctx)
{
    const struct pg_batch *b = (const struct pg_batch *)b_;
    for (size_t i = 0; i < b->n; i++) {
        const struct pg_op *o = &b->ops[i];
        int r = fn(ctx, o->op, o->ks, (const uint8_t *)o->k, o->kl,
                   o->op == CF_BATCH_DELETE ? NULL : (const uint8_t *)o->v, o->vl);
        if (r != 0)
            return r;
    }
    return CF_ENG_OK;
}

/* ---- the change feed -------------------------------------------------------------------------- */

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24), p[1] = (char)(v >> 16), p[2] = (char)(v >> 8), p[3] = (char)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (uint8_t)p[i];
    return v;
}

/* What b changes, for the feed: per operation its kind (1 byte), keyspace (1), key length (4, big-endian)
 * and key, and for a range deletion the end key likewise. Values are not recorded; nor is the large
 * keyspace (chunk bodies, written once and never cached). NULL if there is nothing to record. */
static char *feed_encode(const struct pg *e, const struct pg_batch *b, size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!is_large(e, b->ops[i].ks))
            n += 6 + b->ops[i].kl + (b->ops[i].op == CF_BATCH_DELETE_RANGE ? 4 + b->ops[i].vl : 0);
    if (!e->feed || n == 0)
        return NULL;
    if (n > INT32_MAX) {
        /* Too large for one bytea (cannot happen with the model's batches): a record naming keyspace
         * 255, which every reader takes as a gap (it drops its whole cache). */
        *len = 6;
        return memcpy(xmalloc(6), "\0\377\0\0\0\0", 6);
    }
    char *out = xmalloc(n), *p = out;
    for (size_t i = 0; i < b->n; i++) {
        const struct pg_op *o = &b->ops[i];
        if (is_large(e, o->ks))
            continue;
        *p++ = (char)o->op;
        *p++ = (char)o->ks;
        put_be32(p, (uint32_t)o->kl);
        memcpy(p + 4, o->k, o->kl);
        p += 4 + o->kl;
        if (o->op == CF_BATCH_DELETE_RANGE) {
            put_be32(p, (uint32_t)o->vl);
            memcpy(p + 4, o->v, o->vl);
            p += 4 + o->vl;
        }
    }
    *len = n;
    return out;
}

/* Hands the operations of one change record to fn: 0, CF_ENG_GAP (fn said stop, or a keyspace this
 * open does not know), or CF_ENG_ERR (a damaged record). */
static int feed_decode(const struct pg *e, const uint8_t *p, size_t n, cf_batch_fn fn, void *ctx, char **err)
{
    while (n > 0) {
        if (n < 6 || p[0] > CF_BATCH_DELETE_RANGE || get_be32(p + 2) > n - 6)
            goto damaged;
        enum cf_batch_op op = (enum cf_batch_op)p[0];
        unsigned ks = p[1];
        size_t kl = get_be32(p + 2), vl = 0;
        const uint8_t *k = p + 6, *v = NULL;
        p += 6 + kl, n -= 6 + kl;
        if (op == CF_BATCH_DELETE_RANGE) {
            if (n < 4 || get_be32(p) > n - 4)
                goto damaged;
            vl = get_be32(p);
            v = p + 4;
            p += 4 + vl, n -= 4 + vl;
        }
        if (ks >= e->nks || fn(ctx, op, ks, k, kl, v, vl) != 0)
            return CF_ENG_GAP;
    }
    return CF_ENG_OK;
damaged:
    *err = cf_eng_msg("Corruption: PostgreSQL: a row of " FEED_TABLE " is damaged");
    return CF_ENG_ERR;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* After a write: drops the rows every reader has had FEED_KEEP_S seconds to read, and the ones more
 * than FEED_KEEP_ROWS behind, at most once per FEED_TRIM_EVERY_MS per open, and raises the trim mark
 * in the same statement (a reader sees both or neither). Several writers: the statement first tries
 * FEED_TRIM_KEY (transaction-scoped, not waited for), so one trims at a time and the others skip; the
 * mark only rises (GREATEST), and rows deleted by one are not returned to another. A failure is left
 * for the next time. */
static void feed_trim(struct pg *e, struct pg_conn *pc)
{
    uint64_t now = now_ms(), next = atomic_load(&e->next_trim);
    if (!e->feed || now < next || !atomic_compare_exchange_strong(&e->next_trim, &next, now + FEED_TRIM_EVERY_MS))
        return;
    char sql[512], *err = NULL;
    snprintf(sql, sizeof sql,
             "WITH g AS (SELECT pg_try_advisory_xact_lock(" FEED_TRIM_KEY ") AS got), d AS (DELETE FROM " FEED_TABLE
             " WHERE (SELECT got FROM g) AND (at < clock_timestamp() - interval '%d seconds' OR seq <= "
             "(SELECT max(seq) - %d FROM " FEED_TABLE ")) RETURNING seq) UPDATE " FEED_TRIM_TABLE
             " SET trimmed = GREATEST(trimmed, (SELECT max(seq) FROM d)) WHERE EXISTS (SELECT 1 FROM d)",
             FEED_KEEP_S, FEED_KEEP_ROWS);
    if (!exec_ok(e, pc->c, sql, PGRES_COMMAND_OK, NULL, &err))
        free(err);
}

/* The feed's two reads, prepared once per connection: the position, and a page of changes with the
 * trim mark in the same snapshot (at least one row: the mark's, with NULLs if nothing is newer). */
enum { FQ_SEQ, FQ_PAGE };
static const char *const feed_sql[2] = {
    "SELECT t.trimmed, (SELECT max(seq) FROM " FEED_TABLE ") FROM " FEED_TRIM_TABLE " t",
    "SELECT t.trimmed, c.seq, c.ops FROM " FEED_TRIM_TABLE " t LEFT JOIN " FEED_TABLE
    " c ON c.seq > $1::bigint ORDER BY c.seq LIMIT 4096", /* FEED_PAGE */
};

/* Runs feed query q (text parameter param, NULL: none; binary results) once, and once more on a new
 * connection if the pooled one was dropped (a restart), as reads do. */
static PGresult *feed_query(struct pg *e, int q, const char *param, char **err)
{
    for (int attempt = 0;; attempt++) {
        struct pg_conn *pc = conn_get(e, err);
        if (pc == NULL)
            return NULL;
        const char *p[1] = {param};
        char name[8];
        snprintf(name, sizeof name, "feed%d", q);
        PGresult *r = NULL;
        if (!(pc->feed_prepared & (1u << q))) {
            r = PQprepare(pc->c, name, feed_sql[q], param != NULL ? 1 : 0, NULL);
            if (r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK)
                pc->feed_prepared |= (uint8_t)(1u << q);
            PQclear(r);
        }
        r = PQexecPrepared(pc->c, name, param != NULL ? 1 : 0, p, NULL, NULL, 1);
        bool ok = r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) >= 1 && PQnfields(r) >= 2;
        if (!ok) {
            *err = pg_error(e, pc->c, r, "change feed");
            PQclear(r);
            r = NULL;
        }
        bool retry = !ok && attempt == 0 && PQstatus(pc->c) != CONNECTION_OK;
        conn_put(e, pc);
        if (!retry)
            return r;
        free(*err);
        *err = NULL;
    }
}

/* Whether this open has a feed to follow: the tables exist (every other process may write). */
static bool feed_to_follow(struct pg *e)
{
    return e->feed;
}

static int pg_change_seq(struct cf_eng *e_, uint64_t *seq, char **err)
{
    struct pg *e = (struct pg *)e_;
    if (!feed_to_follow(e))
        return CF_ENG_NOTFOUND;
    PGresult *r = feed_query(e, FQ_SEQ, NULL, err);
    if (r == NULL)
        return CF_ENG_ERR;
    *seq = get_be64(PQgetvalue(r, 0, 0));
    if (!PQgetisnull(r, 0, 1) && get_be64(PQgetvalue(r, 0, 1)) > *seq)
        *seq = get_be64(PQgetvalue(r, 0, 1));
    PQclear(r);
    return CF_ENG_OK;
}

/* One snapshot per page of FEED_PAGE rows, with the trim mark: the rows seen form a prefix of the
 * feed (commit order), so a later page goes on from the last seq read. */
static int pg_changes(struct cf_eng *e_, uint64_t after, cf_batch_fn fn, void *ctx, uint64_t *last, char **err)
{
    struct pg *e = (struct pg *)e_;
    if (!feed_to_follow(e))
        return CF_ENG_NOTFOUND;
    int rc = CF_ENG_OK;
    for (;;) {
        char param[24];
        snprintf(param, sizeof param, "%llu", (unsigned long long)after);
        PGresult *r = feed_query(e, FQ_PAGE, param, err);
        if (r == NULL)
            return CF_ENG_ERR;
        int n = PQntuples(r);
        uint64_t trimmed = get_be64(PQgetvalue(r, 0, 0));
        if (trimmed > after) {
            rc = CF_ENG_GAP; /* rows after `after` were trimmed before this reader saw them */
            *last = after = trimmed;
        }
        int rows = 0;
        for (int i = 0; i < n && !PQgetisnull(r, i, 1); i++, rows++) {
            uint64_t seq = get_be64(PQgetvalue(r, i, 1));
            if (seq <= after)
                continue;
            if (rc == CF_ENG_OK) {
                int d = feed_decode(e, (const uint8_t *)PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2), fn, ctx,
                                    err);
                if (d == CF_ENG_ERR) {
                    *last = seq; /* past it: the caller drops everything on an error and goes on */
                    PQclear(r);
                    return CF_ENG_ERR;
                }
                rc = d;
            }
            *last = after = seq;
        }
        PQclear(r);
        if (rows < FEED_PAGE)
            return rc;
    }
}

/* The batch's change row, last in its open transaction (the non-pipelined path). */
static bool feed_record(struct pg *e, struct pg_conn *pc, const struct pg_batch *b, char **err)
{
    size_t reclen = 0;
    char *rec = feed_encode(e, b, &reclen);
    if (rec == NULL)
        return true;
    static const Oid type[1] = {BYTEA_OID};
    const char *p[1] = {rec};
    int lens[1] = {(int)reclen}, fmts[1] = {1};
    bool ok = exec_ok(e, pc->c, feed_lock_sql, PGRES_TUPLES_OK, NULL, err);
    PGresult *r = ok ? PQexecParams(pc->c, feed_insert_sql, 1, type, p, lens, fmts, 0) : NULL;
    if (ok && (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)) {
        *err = pg_error(e, pc->c, r, "change feed");
        ok = false;
    }
    PQclear(r);
    free(rec);
    return ok;
}

/* Applies the operations of b in order inside the open transaction of pc. */
static bool apply_ops(struct pg *e, struct pg_conn *pc, const struct pg_batch *b, char **err)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct pg_op *o = &b->ops[i];
        if (o->ks >= e->nks || !e->present[o->ks]) {
            *err = cf_eng_msg("PostgreSQL: keyspace %u is not open", o->ks);
            return false;
        }
        const char *p[2] = {o->k, o->v};
        size_t l[2] = {o->kl, o->vl};
        enum stmt s = o->op == CF_BATCH_PUT ? ST_PUT : o->op == CF_BATCH_DELETE ? ST_DEL : ST_RANGE;
        PGresult *r = run(e, pc, o->ks, s, s == ST_DEL ? 1 : 2, p, l, err);
        if (r == NULL)
            return false;
        PQclear(r);
    }
    return true;
}

/* Reads the result of one pipelined query (and the NULL that ends it); the first error goes to *err. */
static bool pipeline_result(struct pg *e, struct pg_conn *pc, bool *ok, char **err)
{
    PGresult *r = PQgetResult(pc->c);
    if (r == NULL) {
        if (*ok)
            *err = pg_error(e, pc->c, NULL, "pipeline");
        *ok = false;
        return false; /* nothing more will come */
    }
    ExecStatusType st = PQresultStatus(r);
    if (*ok && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        *err = pg_error(e, pc->c, r, "write");
        *ok = false;
    }
    PQclear(r);
    if ((r = PQgetResult(pc->c)) != NULL) { /* the end of this query's results */
        PQclear(r);
        if (*ok)
            *err = pg_error(e, pc->c, NULL, "pipeline: an unexpected result");
        *ok = false;
        return false;
    }
    return true;
}

/* The batch as one round trip (libpq's pipeline mode): BEGIN, synchronous_commit, every operation,
 * COMMIT, then a sync; an error aborts the rest, COMMIT included, and leaves the transaction to roll
 * back. Small batches only: the results come back while the queries are still being sent, and a
 * blocking connection could otherwise fill both socket buffers. */
static bool write_pipelined(struct pg *e, struct pg_conn *pc, const struct pg_batch *b, bool sync, char **err)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct pg_op *o = &b->ops[i];
        enum stmt s = o->op == CF_BATCH_PUT ? ST_PUT : o->op == CF_BATCH_DELETE ? ST_DEL : ST_RANGE;
        if (o->ks >= e->nks || !e->present[o->ks]) {
            *err = cf_eng_msg("PostgreSQL: keyspace %u is not open", o->ks);
            return false;
        }
        if (o->kl > INT32_MAX || o->vl > INT32_MAX) {
            *err = cf_eng_msg("PostgreSQL: a value of %zu bytes is too large", o->vl);
            return false;
        }
        if (!prepare(e, pc, o->ks, s, err))
            return false;
    }
    if (PQenterPipelineMode(pc->c) != 1) {
        *err = pg_error(e, pc->c, NULL, "pipeline");
        return false;
    }
    bool sent = PQsendQueryParams(pc->c, "BEGIN ISOLATION LEVEL READ COMMITTED", 0, NULL, NULL, NULL, NULL, 0) == 1 &&
                PQsendQueryParams(pc->c,
                                  sync ? "SET LOCAL synchronous_commit = on" : "SET LOCAL synchronous_commit = off", 0,
                                  NULL, NULL, NULL, NULL, 0) == 1;
    for (size_t i = 0; sent && i < b->n; i++) {
        const struct pg_op *o = &b->ops[i];
        enum stmt s = o->op == CF_BATCH_PUT ? ST_PUT : o->op == CF_BATCH_DELETE ? ST_DEL : ST_RANGE;
        char name[16];
        snprintf(name, sizeof name, "%c%u", stmt_letter[s], o->ks);
        const char *p[2] = {o->k, o->v};
        int lens[2] = {(int)o->kl, (int)o->vl}, fmts[2] = {1, 1};
        sent = PQsendQueryPrepared(pc->c, name, s == ST_DEL ? 1 : 2, p, lens, fmts, 1) == 1;
    }
    size_t reclen = 0, extra = 0;
    char *rec = feed_encode(e, b, &reclen);
    if (rec != NULL) {
        static const Oid type[1] = {BYTEA_OID};
        const char *p[1] = {rec};
        int lens[1] = {(int)reclen}, fmts[1] = {1};
        sent = sent && PQsendQueryParams(pc->c, feed_lock_sql, 0, NULL, NULL, NULL, NULL, 0) == 1 &&
               PQsendQueryParams(pc->c, feed_insert_sql, 1, type, p, lens, fmts, 0) == 1;
        extra = 2;
    }
    free(rec);
    sent = sent && PQsendQueryParams(pc->c, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1 && PQpipelineSync(pc->c) == 1;
    if (!sent) {
        *err = pg_error(e, pc->c, NULL, "pipeline");
        PQexitPipelineMode(pc->c);
        return false;
    }
    bool ok = true;
    for (size_t q = 0; q < b->n + 3 + extra && pipeline_result(e, pc, &ok, err); q++)
        ;
    PGresult *r = ok ? PQgetResult(pc->c) : NULL;
    if (ok && (r == NULL || PQresultStatus(r) != PGRES_PIPELINE_SYNC)) {
        *err = pg_error(e, pc->c, r, "pipeline sync");
        ok = false;
    }
    PQclear(r);
    /* After an error: drain to the sync point, leave pipeline mode, roll the failed transaction back. */
    while (!ok && PQstatus(pc->c) == CONNECTION_OK && PQpipelineStatus(pc->c) != PQ_PIPELINE_OFF) {
        r = PQgetResult(pc->c);
        bool at_sync = r != NULL && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
        PQclear(r);
        if (at_sync || (r == NULL && PQexitPipelineMode(pc->c) == 1))
            break;
    }
    PQexitPipelineMode(pc->c);
    if (!ok && PQstatus(pc->c) == CONNECTION_OK && PQtransactionStatus(pc->c) != PQTRANS_IDLE)
        PQclear(PQexec(pc->c, "ROLLBACK"));
    return ok;
}

/* ---- cluster locks (engine.h cf_eng_lock) ----------------------------------------------------- */

/* What the calling thread holds of one open's cluster locks, and the connection holding them: one
 * connection per thread for all its locks (ns, audit, journal nest), kept from the first lock to the
 * last unlock, and every write the thread makes meanwhile goes over it (pg_write). A session
 * advisory lock lives exactly as long as its session: if the connection dies (a database restart,
 * a network cut), the locks are gone (another node may take them) and so is the only way this
 * thread could write under them, so a write under a lost lock cannot commit. */
struct pg_held {
    struct pg *e;
    struct pg_conn *pc; /* NULL: none held */
    unsigned held;      /* bit 1 << which: held in the database */
    unsigned failed;    /* bit 1 << which: could not be taken: this thread's writes are refused */
    bool drop;          /* an unlock failed on a live connection: close it rather than pool it */
};
enum { HELD_SLOTS = 4 }; /* stores one thread may lock at once (tests open two in one process) */
static _Thread_local struct pg_held tl_held[HELD_SLOTS];

/* The advisory locks' keys, in the two-int4 form (pg_locks: classid, objid, objsubid 2), so apart from
 * the feed's bigint keys: 0x436F6666 ("Coff") and the lock's number. */
#define CLUSTER_LOCK_CLASS "1131374182"

static struct pg_held *held_slot(struct pg *e, bool create)
{
    struct pg_held *free_slot = NULL;
    for (int i = 0; i < HELD_SLOTS; i++) {
        bool used = tl_held[i].pc != NULL || tl_held[i].failed != 0;
        if (used && tl_held[i].e == e)
            return &tl_held[i];
        if (!used && free_slot == NULL)
            free_slot = &tl_held[i];
    }
    if (!create)
        return NULL;
    if (free_slot == NULL)
        abort(); /* more stores locked by one thread at once than any caller does: a bug */
    *free_slot = (struct pg_held){.e = e};
    return free_slot;
}

/* Gives the thread's lock connection back once it holds nothing (and has no failure to report). */
static void held_release(struct pg_held *h)
{
    if (h->held != 0 || h->failed != 0 || h->pc == NULL)
        return;
    if (h->drop && PQstatus(h->pc->c) == CONNECTION_OK)
        conn_free(h->pc); /* may still hold a lock the unlock did not release: closing does */
    else
        conn_put(h->e, h->pc);
    *h = (struct pg_held){0};
}

static int pg_lock(struct cf_eng *e_, enum cf_eng_lock which, char **err)
{
    struct pg *e = (struct pg *)e_;
    *err = NULL;
    if (e->readonly)
        return CF_ENG_OK;
    struct pg_held *h = held_slot(e, true);
    unsigned bit = 1u << which;
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(" CLUSTER_LOCK_CLASS ", %d)", (int)which);
    /* Waits at most lock_timeout (store.postgres.timeout), then fails as "Unavailable". */
    if ((h->pc == NULL && (h->pc = conn_get(e, err)) == NULL) ||
        !exec_ok(e, h->pc->c, sql, PGRES_TUPLES_OK, NULL, err)) {
        h->failed |= bit;
        return CF_ENG_ERR;
    }
    h->held |= bit;
    return CF_ENG_OK;
}

static void pg_unlock(struct cf_eng *e_, enum cf_eng_lock which)
{
    struct pg *e = (struct pg *)e_;
    if (e->readonly)
        return;
    struct pg_held *h = held_slot(e, false);
    unsigned bit = 1u << which;
    if (h == NULL)
        return;
    if (h->held & bit) {
        char sql[96], *err = NULL;
        PGresult *r = NULL;
        snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(" CLUSTER_LOCK_CLASS ", %d)", (int)which);
        bool ok = PQstatus(h->pc->c) == CONNECTION_OK && exec_ok(e, h->pc->c, sql, PGRES_TUPLES_OK, &r, &err) &&
                  PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
        free(err);
        h->drop = h->drop || !ok;
        h->held &= ~bit;
    }
    h->failed &= ~bit;
    held_release(h);
}

static bool pg_multiwriter(const struct cf_eng *e_)
{
    return !((const struct pg *)e_)->readonly;
}

/* A batch too large for one pipeline: one transaction, statement by statement. */
static bool write_stepwise(struct pg *e, struct pg_conn *pc, const struct pg_batch *b, bool sync, char **err)
{
    bool ok = exec_ok(e, pc->c,
                      sync ? "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit = on"
                           : "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit = off",
                      PGRES_COMMAND_OK, NULL, err) &&
              apply_ops(e, pc, b, err) && feed_record(e, pc, b, err);
    if (ok) {
        /* A COMMIT that gets no answer may or may not have happened: the connection is then gone and the
         * caller hears "Unavailable" (its client a 503, as for any request cut off mid-way). */
        ok = exec_ok(e, pc->c, "COMMIT", PGRES_COMMAND_OK, NULL, err);
    } else if (PQstatus(pc->c) == CONNECTION_OK) {
        PQclear(PQexec(pc->c, "ROLLBACK"));
    }
    return ok;
}

static int pg_write(struct cf_eng *e_, const struct cf_batch *b_, bool sync, char **err)
{
    struct pg *e = (struct pg *)e_;
    const struct pg_batch *b = (const struct pg_batch *)b_;
    *err = NULL;
    if (e->readonly) {
        *err = cf_eng_msg("PostgreSQL: the store is open read-only");
        return CF_ENG_ERR;
    }
    /* Under the calling thread's cluster locks: on the connection holding them (a lost one fails the
     * write); after a lock that could not be taken: refused. */
    struct pg_held *h = held_slot(e, false);
    if (h != NULL && h->failed != 0) {
        *err = cf_eng_msg("Unavailable: PostgreSQL: a cluster lock this write needs could not be taken");
        return CF_ENG_ERR;
    }
    if (b->n == 0)
        return CF_ENG_OK;
    struct pg_conn *pc = h != NULL ? h->pc : conn_get(e, err);
    if (pc == NULL)
        return CF_ENG_ERR;
    if (h != NULL && PQstatus(pc->c) != CONNECTION_OK) {
        *err = cf_eng_msg("Unavailable: PostgreSQL: the connection holding this thread's cluster locks was lost");
        return CF_ENG_ERR;
    }
    bool ok = b->n <= PIPELINE_MAX ? write_pipelined(e, pc, b, sync, err) : write_stepwise(e, pc, b, sync, err);
    if (ok)
        feed_trim(e, pc);
    if (h == NULL)
        conn_put(e, pc);
    if (ok)
        atomic_store(&e->lost, false);
    return ok ? CF_ENG_OK : CF_ENG_ERR;
}

/* Every acknowledged commit durable: a synchronous commit of a transaction that has an id flushes the
 * WAL up to its commit record, and so over every earlier (asynchronous) commit. */
static int pg_sync(struct cf_eng *e_, char **err)
{
    struct pg *e = (struct pg *)e_;
    *err = NULL;
    if (e->readonly)
        return CF_ENG_OK;
    struct pg_conn *pc = conn_get(e, err);
    if (pc == NULL)
        return CF_ENG_ERR;
    bool ok = exec_ok(e, pc->c,
                      "BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_current_xact_id(); COMMIT",
                      PGRES_COMMAND_OK, NULL, err);
    conn_put(e, pc);
    return ok ? CF_ENG_OK : CF_ENG_ERR;
}

/* VACUUM reclaims dead rows for reuse; force rewrites the table into new files (VACUUM FULL), so no
 * live file of the table holds a row deleted before the call (WAL segments keep theirs until they are
 * recycled, as backups do: docs/CLUSTER.md). The whole table: PostgreSQL has no ranged vacuum. */
static void pg_compact(struct cf_eng *e_, unsigned ks, const void *lo, size_t lolen, const void *hi, size_t hilen,
                       bool force)
{
    struct pg *e = (struct pg *)e_;
    (void)lo, (void)lolen, (void)hi, (void)hilen;
    char *err = NULL, t[96], sql[160];
    if (e->readonly || !pg_has(e_, ks))
        return;
    struct pg_conn *pc = conn_get(e, &err);
    if (pc == NULL) {
        free(err);
        return;
    }
    table_name(e, ks, t, sizeof t);
    snprintf(sql, sizeof sql, "VACUUM %s%s", force ? "FULL " : "", t);
    if (!exec_ok(e, pc->c, sql, PGRES_COMMAND_OK, NULL, &err))
        free(err);
    conn_put(e, pc);
}

/* ---- iteration ------------------------------------------------------------------------------- */

/* memcmp order, shorter first on a tie (engine.h). */
static int keycmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c != 0 ? c : al < bl ? -1 : al > bl ? 1 : 0;
}

static void iter_drop_page(struct pg_iter *it)
{
    PQclear(it->res);
    it->res = NULL;
    it->row = it->nrows = 0;
    it->val_row = -1;
}

static void iter_fail(struct pg_iter *it, char *err)
{
    iter_drop_page(it);
    if (it->err == NULL)
        it->err = err;
    else
        free(err);
}

/* Fetches a page: forward from k (the first key ≥ k, or > k if !inclusive; k NULL: from lo), or
 * backward from k (the last key ≤ k, or < k). Bounds applied. */
static void iter_fetch(struct pg_iter *it, bool forward, const char *k, size_t kl, bool inclusive)
{
    char *err = NULL;
    if (it->err != NULL || it->pc == NULL) {
        iter_drop_page(it);
        return;
    }
    /* Own copies: k may point into the page about to be freed. */
    size_t bl = k != NULL ? kl + 1 : 0;
    char *bound = xmalloc(bl);
    if (k != NULL) {
        memcpy(bound, k, kl);
        bound[kl] = 0;
    }
    iter_drop_page(it);
    const char *p[2];
    size_t l[2];
    enum stmt s;
    if (forward) {
        /* lower: k (> k is ≥ k ‖ 0x00, the next key in byte order), at least lo */
        const char *lower = "";
        size_t ll = 0;
        if (k != NULL)
            lower = bound, ll = inclusive ? kl : kl + 1;
        if (it->has_lo && (k == NULL || keycmp(it->lo, it->lolen, lower, ll) > 0))
            lower = it->lo, ll = it->lolen;
        if (it->has_hi && keycmp(lower, ll, it->hi, it->hilen) >= 0) {
            free(bound);
            return; /* nothing in range */
        }
        p[0] = lower, l[0] = ll, p[1] = it->hi, l[1] = it->hilen;
        s = it->has_hi ? ST_FWD_HI : ST_FWD;
    } else {
        s = inclusive ? ST_BACK_LE : ST_BACK_LT;
        p[0] = bound, l[0] = kl;
        if (it->has_hi && keycmp(bound, kl, it->hi, it->hilen) >= 0)
            p[0] = it->hi, l[0] = it->hilen, s = ST_BACK_LT;
        p[1] = it->has_lo ? it->lo : "", l[1] = it->has_lo ? it->lolen : 0;
    }
    PGresult *r = run(it->e, it->pc, it->ks, s, s == ST_FWD ? 1 : 2, p, l, &err);
    free(bound);
    if (r == NULL) {
        iter_fail(it, err);
        return;
    }
    it->res = r;
    it->nrows = PQntuples(r);
    it->row = 0;
    it->forward = forward;
    it->full = it->nrows == (is_large(it->e, it->ks) ? PAGE_LARGE : PAGE);
}

static struct cf_eiter *pg_iter_open(struct cf_eng *e_, unsigned ks, const void *lo, size_t lolen, const void *hi,
                                     size_t hilen)
{
    struct pg *e = (struct pg *)e_;
    struct pg_iter *it = xmalloc(sizeof *it);
    *it = (struct pg_iter){.base = {.ops = &pg_ops}, .e = e, .ks = ks, .has_lo = lo != NULL, .has_hi = hi != NULL,
                           .lolen = lolen, .hilen = hilen, .lazy = is_large(e, ks), .val_row = -1};
    it->lo = xmalloc(lolen);
    it->hi = xmalloc(hilen);
    if (lo != NULL && lolen > 0)
        memcpy(it->lo, lo, lolen);
    if (hi != NULL && hilen > 0)
        memcpy(it->hi, hi, hilen);
    if (!pg_has(e_, ks))
        return &it->base; /* an absent keyspace is empty */
    char *err = NULL;
    for (int attempt = 0;; attempt++) {
        if ((it->pc = conn_get(e, &err)) == NULL) {
            it->err = err;
            return &it->base;
        }
        /* The snapshot is taken by the first statement after BEGIN: take it now. */
        if (exec_ok(e, it->pc->c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1", PGRES_TUPLES_OK,
                    NULL, &err))
            return &it->base;
        if (attempt > 0 || PQstatus(it->pc->c) == CONNECTION_OK) {
            it->err = err;
            return &it->base;
        }
        conn_put(e, it->pc); /* dropped by the database (a restart): once more on a new connection */
        it->pc = NULL;
        free(err);
        err = NULL;
    }
}

static void pg_iter_close(struct cf_eiter *it_)
{
    struct pg_iter *it = (struct pg_iter *)it_;
    iter_drop_page(it);
    if (it->pc != NULL) {
        if (PQstatus(it->pc->c) == CONNECTION_OK && PQtransactionStatus(it->pc->c) != PQTRANS_IDLE)
            PQclear(PQexec(it->pc->c, "ROLLBACK"));
        conn_put(it->e, it->pc);
    }
    free(it->val);
    free(it->err);
    free(it->lo);
    free(it->hi);
    free(it);
}

static bool pg_iter_valid(const struct cf_eiter *it_)
{
    const struct pg_iter *it = (const struct pg_iter *)it_;
    return it->res != NULL && it->err == NULL && it->row >= 0 && it->row < it->nrows;
}

static void pg_iter_seek_to_first(struct cf_eiter *it_)
{
    iter_fetch((struct pg_iter *)it_, true, NULL, 0, true);
}

static void pg_iter_seek(struct cf_eiter *it_, const void *k, size_t kl)
{
    iter_fetch((struct pg_iter *)it_, true, k, kl, true);
}

static void pg_iter_seek_for_prev(struct cf_eiter *it_, const void *k, size_t kl)
{
    iter_fetch((struct pg_iter *)it_, false, k, kl, true);
}

/* Moves one key up (up) or down in key order. */
static void iter_step(struct pg_iter *it, bool up)
{
    if (!pg_iter_valid(&it->base))
        return;
    it->val_row = -1;
    /* Within the page: its order is it->forward. */
    if (up == it->forward && it->row + 1 < it->nrows) {
        it->row++;
        return;
    }
    if (up != it->forward && it->row > 0) {
        it->row--;
        return;
    }
    if (up == it->forward && !it->full) {
        iter_drop_page(it); /* the end */
        return;
    }
    iter_fetch(it, up, PQgetvalue(it->res, it->row, 0), (size_t)PQgetlength(it->res, it->row, 0), false);
}

static void pg_iter_next(struct cf_eiter *it_)
{
    iter_step((struct pg_iter *)it_, true);
}

static void pg_iter_prev(struct cf_eiter *it_)
{
    iter_step((struct pg_iter *)it_, false);
}

static const char *pg_iter_key(const struct cf_eiter *it_, size_t *kl)
{
    const struct pg_iter *it = (const struct pg_iter *)it_;
    *kl = (size_t)PQgetlength(it->res, it->row, 0);
    return PQgetvalue(it->res, it->row, 0);
}

static const char *pg_iter_value(const struct cf_eiter *it_, size_t *vl)
{
    struct pg_iter *it = (struct pg_iter *)(uintptr_t)it_; /* the lazy value is a cache */
    if (!it->lazy) {
        *vl = (size_t)PQgetlength(it->res, it->row, 1);
        return PQgetvalue(it->res, it->row, 1);
    }
    if (it->val_row != it->row) {
        /* The large keyspace: the value on demand, in the iterator's snapshot. */
        char *err = NULL;
        const char *p[1] = {PQgetvalue(it->res, it->row, 0)};
        size_t l[1] = {(size_t)PQgetlength(it->res, it->row, 0)};
        PGresult *r = run(it->e, it->pc, it->ks, ST_GET, 1, p, l, &err);
        free(it->val);
        it->val = NULL;
        it->vlen = 0;
        if (r == NULL || PQntuples(r) != 1) {
            /* Report it through cf_eiter_status; the caller sees an empty value meanwhile. */
            if (it->err == NULL)
                it->err = err != NULL ? err : cf_eng_msg("PostgreSQL: a listed value vanished from the snapshot");
            else
                free(err);
        } else {
            it->vlen = (size_t)PQgetlength(r, 0, 0);
            it->val = xmalloc(it->vlen);
            memcpy(it->val, PQgetvalue(r, 0, 0), it->vlen);
        }
        PQclear(r);
        it->val_row = it->row;
    }
    *vl = it->vlen;
    return it->val != NULL ? it->val : "";
}

static int pg_iter_status(const struct cf_eiter *it_, char **err)
{
    const struct pg_iter *it = (const struct pg_iter *)it_;
    *err = NULL;
    if (it->err == NULL)
        return CF_ENG_OK;
    *err = xstrdup(it->err);
    return CF_ENG_ERR;
}

/* Leases and shared counters (issue 24): defined in the block at the end of this file. */
static int pg_lease(struct cf_eng *e_, const void *name, size_t nl, const uint8_t *holder, uint32_t ttl_ms, bool *held,
                    char **err);
static int pg_lease_drop(struct cf_eng *e_, const void *name, size_t nl, const uint8_t *holder, char **err);
static int pg_counter(struct cf_eng *e_, enum cf_eng_ctr_op op, const void *key, size_t kl, struct cf_eng_ctr *ctr,
                      char **err);
static int pg_window(struct cf_eng *e_, const void *key, size_t kl, struct cf_eng_window *w, char **err);

static const struct cf_eng_ops pg_ops = {
    .name = "postgresql",
    .close = pg_close,
    .has = pg_has,
    .flush = pg_flush,
    .stats = pg_stats,
    .get = pg_get,
    .get_view = pg_get_view,
    .write = pg_write,
    .sync = pg_sync,
    .compact = pg_compact,
    .batch_new = pg_batch_new,
    .batch_free = pg_batch_free,
    .batch_put = pg_batch_put,
    .batch_delete = pg_batch_delete,
    .batch_delete_range = pg_batch_delete_range,
    .batch_count = pg_batch_count,
    .batch_clear = pg_batch_clear,
    .batch_save = pg_batch_save,
    .batch_rollback = pg_batch_rollback,
    .batch_each = pg_batch_each,
    .change_seq = pg_change_seq,
    .changes = pg_changes,
    .lock = pg_lock,
    .unlock = pg_unlock,
    .multiwriter = pg_multiwriter,
    .lease = pg_lease,           /* leases and shared counters (issue 24): the block at the end */
    .lease_drop = pg_lease_drop,
    .counter = pg_counter,
    .window = pg_window,
    .iter_open = pg_iter_open,
    .iter_close = pg_iter_close,
    .iter_seek_to_first = pg_iter_seek_to_first,
    .iter_seek = pg_iter_seek,
    .iter_seek_for_prev = pg_iter_seek_for_prev,
    .iter_valid = pg_iter_valid,
    .iter_next = pg_iter_next,
    .iter_prev = pg_iter_prev,
    .iter_key = pg_iter_key,
    .iter_value = pg_iter_value,
    .iter_status = pg_iter_status,
};

/* ---- leases and shared counters (issue 24) ---- */

/* Coordination between the nodes of one database (engine.h "leases and shared counters",
 * docs/CLUSTER.md "Leases and shared throttles"). Two tables, created on first use (a missing table,
 * SQLSTATE 42P01, creates both under an advisory lock and the operation runs once more), holding only
 * what the model hands in (keyed hashes), node ids, counts and times:
 *   coffer_coord_leases (name bytea PRIMARY KEY, holder bytea, expires_at timestamptz)
 *   coffer_coord_events (k bytea, id bigserial, at bigint: ms of the database's clock, until bigint: at +
 *                        the window; PRIMARY KEY (k, id), an index on until)
 *   coffer_coord_windows (k bytea PRIMARY KEY, start, files, bytes, fired, until bigint, fired_now bool):
 *                        the shared sums of cf_eng_window (start: the window's, fired: the start of the
 *                        window whose alert fired, -1 none; until: start + the window, for the sweep)
 * A lease is one INSERT … ON CONFLICT DO UPDATE … WHERE (the row is free, expired or ours) RETURNING:
 * the row lock that statement takes makes the test and the take one step against every other node.
 * A counter operation is one transaction that first takes a transaction-scoped advisory lock on the
 * key (two-int4 form, class COORD_CLASS: a space apart from the engine's bigint locks), so every
 * operation on one key, from any node, runs alone and sees every earlier one (READ COMMITTED takes a
 * snapshot per statement, each after the lock). Times are the database's clock: nodes need not agree.
 * An operation forgets its own key's old events; keys nobody touches again are swept, at most once per
 * COORD_SWEEP_MS per process, after a counter operation: events past their window, and lease rows
 * expired for an hour. */
#define COORD_LEASES TABLE_PREFIX "coord_leases"
#define COORD_EVENTS TABLE_PREFIX "coord_events"
#define COORD_WINDOWS TABLE_PREFIX "coord_windows"
#define COORD_CLASS 1131374179 /* "Cofc" */
#define COORD_CREATE_KEY "74145738417530"
enum { COORD_SWEEP_MS = 60000 };
static _Atomic uint64_t coord_next_sweep; /* monotonic ms: when this process next sweeps */

static bool coord_create(struct pg *e, PGconn *c, char **err)
{
    if (exec_ok(e, c,
                "BEGIN; SELECT pg_advisory_xact_lock(" COORD_CREATE_KEY "); "
                "CREATE TABLE IF NOT EXISTS " COORD_LEASES " (name bytea PRIMARY KEY, holder bytea NOT NULL, "
                "expires_at timestamptz NOT NULL); "
                "CREATE TABLE IF NOT EXISTS " COORD_EVENTS " (k bytea NOT NULL, id bigserial, at bigint NOT NULL, "
                "until bigint NOT NULL, PRIMARY KEY (k, id)); "
                "CREATE INDEX IF NOT EXISTS " COORD_EVENTS "_until ON " COORD_EVENTS " (until); "
                "CREATE TABLE IF NOT EXISTS " COORD_WINDOWS " (k bytea PRIMARY KEY, start bigint NOT NULL, files bigint "
                "NOT NULL, bytes bigint NOT NULL, fired bigint NOT NULL, until bigint NOT NULL, fired_now boolean NOT "
                "NULL); COMMIT",
                PGRES_COMMAND_OK, NULL, err))
        return true;
    PQclear(PQexec(c, "ROLLBACK"));
    return false;
}

/* Whether r failed because a coordination table does not exist yet. */
static bool coord_missing(const PGresult *r)
{
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return state != NULL && strcmp(state, "42P01") == 0;
}

/* Runs sql with n parameters (binary: bytea; text: numbers given as strings, bin[i] false); text
 * results. A missing table sets *missing; outside a transaction the tables are then created and sql
 * runs once more (inside one, the caller starts again). NULL and *err on failure. */
static PGresult *coord_exec(struct pg *e, PGconn *c, const char *sql, int n, const char *const *p, const int *len,
                            const bool *bin, bool *missing, char **err)
{
    int fmts[8];
    if (n > 8)
        abort(); /* a caller's mistake: at most 8 parameters */
    for (int i = 0; i < n; i++)
        fmts[i] = bin[i] ? 1 : 0;
    for (;;) {
        PGresult *r = PQexecParams(c, sql, n, NULL, p, len, fmts, 0);
        ExecStatusType st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
            return r;
        if (coord_missing(r) && !*missing) {
            *missing = true;
            if (PQtransactionStatus(c) == PQTRANS_IDLE) { /* a statement of its own: create, then again */
                PQclear(r);
                if (!coord_create(e, c, err))
                    return NULL;
                continue;
            }
        }
        *err = pg_error(e, c, r, "coordination");
        PQclear(r);
        return NULL;
    }
}

/* A connection for a coordination operation (NULL and *err: a read-only open, or none to be had). */
static struct pg_conn *coord_conn(struct pg *e, char **err)
{
    if (e->readonly) {
        *err = cf_eng_msg("PostgreSQL: coordination needs a read-write open");
        return NULL;
    }
    return conn_get(e, err);
}

static int pg_lease(struct cf_eng *e_, const void *name, size_t nl, const uint8_t *holder, uint32_t ttl_ms, bool *held,
                    char **err)
{
    struct pg *e = (struct pg *)e_;
    struct pg_conn *pc = coord_conn(e, err);
    if (pc == NULL)
        return CF_ENG_ERR;
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%u", ttl_ms);
    const char *p[3] = {name, (const char *)holder, ttl};
    int len[3] = {(int)nl, CF_ENG_HOLDER_LEN, 0};
    bool bin[3] = {true, true, false}, missing = false;
    PGresult *r = coord_exec(e, pc->c,
                             "INSERT INTO " COORD_LEASES " AS l (name, holder, expires_at) VALUES ($1, $2, "
                             "clock_timestamp() + $3::bigint * interval '1 millisecond') ON CONFLICT (name) DO "
                             "UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at WHERE "
                             "l.holder = excluded.holder OR l.expires_at <= clock_timestamp() RETURNING 1",
                             3, p, len, bin, &missing, err);
    if (r != NULL)
        *held = PQntuples(r) == 1;
    PQclear(r);
    conn_put(e, pc);
    return r != NULL ? CF_ENG_OK : CF_ENG_ERR;
}

static int pg_lease_drop(struct cf_eng *e_, const void *name, size_t nl, const uint8_t *holder, char **err)
{
    struct pg *e = (struct pg *)e_;
    struct pg_conn *pc = coord_conn(e, err);
    if (pc == NULL)
        return CF_ENG_ERR;
    const char *p[2] = {name, (const char *)holder};
    int len[2] = {(int)nl, CF_ENG_HOLDER_LEN};
    bool bin[2] = {true, true}, missing = false;
    PGresult *r = coord_exec(e, pc->c, "DELETE FROM " COORD_LEASES " WHERE name = $1 AND holder = $2", 2, p, len,
                             bin, &missing, err);
    PQclear(r);
    conn_put(e, pc);
    return r != NULL ? CF_ENG_OK : CF_ENG_ERR;
}

/* The key's events after the operation: count and oldest time. */
static bool coord_stat(struct pg *e, PGconn *c, const void *key, size_t kl, unsigned *count, int64_t *oldest,
                       bool *missing, char **err)
{
    const char *p[1] = {key};
    int len[1] = {(int)kl};
    bool bin[1] = {true};
    PGresult *r = coord_exec(e, c, "SELECT count(*), coalesce(min(at), 0) FROM " COORD_EVENTS " WHERE k = $1", 1, p,
                             len, bin, missing, err);
    if (r == NULL)
        return false;
    *count = (unsigned)strtoul(PQgetvalue(r, 0, 0), NULL, 10);
    *oldest = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    PQclear(r);
    return true;
}

/* One statement on the key's events: the key ($1) and n numbers ($2, $3…); *ret: the first column of
 * the first row if any (an inserted id). */
static bool coord_keyed_n(struct pg *e, PGconn *c, const char *sql, const void *key, size_t kl, const int64_t *num,
                          int n, int64_t *ret, bool *missing, char **err)
{
    char v[2][24];
    const char *p[3] = {key, v[0], v[1]};
    int len[3] = {(int)kl, 0, 0};
    bool bin[3] = {true, false, false};
    for (int i = 0; i < n && i < 2; i++)
        snprintf(v[i], sizeof v[i], "%lld", (long long)num[i]);
    PGresult *r = coord_exec(e, c, sql, 1 + (n < 2 ? n : 2), p, len, bin, missing, err);
    if (r == NULL)
        return false;
    if (ret != NULL && PQntuples(r) > 0)
        *ret = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return true;
}

static bool coord_keyed(struct pg *e, PGconn *c, const char *sql, const void *key, size_t kl, int64_t num,
                        int64_t *ret, bool *missing, char **err)
{
    return coord_keyed_n(e, c, sql, key, kl, &num, 1, ret, missing, err);
}

/* The operation itself, inside the key's transaction; now is the database's clock at its start. */
static bool coord_counter_op(struct pg *e, PGconn *c, enum cf_eng_ctr_op op, const void *key, size_t kl,
                             struct cf_eng_ctr *ctr, int64_t now, bool *missing, char **err)
{
    unsigned count;
    int64_t oldest, cutoff = now - (int64_t)ctr->window_ms;
    /* Events that left the window count for nothing: forgotten first, so the table stays small. */
    if (!coord_keyed(e, c, "DELETE FROM " COORD_EVENTS " WHERE k = $1 AND at <= $2", key, kl, cutoff, NULL, missing,
                     err))
        return false;
    bool ok = true, record = op == CF_CTR_FAIL;
    if (op == CF_CTR_RESERVE) {
        ok = coord_stat(e, c, key, kl, &count, &oldest, missing, err);
        record = ctr->granted = ok && count < ctr->limit;
    }
    if (ok && record) {
        int64_t at_until[2] = {now, now + (int64_t)ctr->window_ms};
        ok = coord_keyed_n(e, c, "INSERT INTO " COORD_EVENTS " (k, at, until) VALUES ($1, $2, $3) RETURNING id", key,
                           kl, at_until, 2, &ctr->id, missing, err);
        ctr->at_ms = (uint64_t)now;
    }
    switch (op) {
    case CF_CTR_RESERVE:
        break;
    case CF_CTR_FAIL: /* at most limit kept, as the in-process limiter does: the oldest make way */
        ok = ok && coord_keyed(e, c,
                               "DELETE FROM " COORD_EVENTS " WHERE k = $1 AND id IN (SELECT id FROM " COORD_EVENTS
                               " WHERE k = $1 ORDER BY id DESC OFFSET $2)",
                               key, kl, ctr->limit, NULL, missing, err);
        break;
    case CF_CTR_RELEASE:
        ok = coord_keyed(e, c, "DELETE FROM " COORD_EVENTS " WHERE k = $1 AND id = $2", key, kl, ctr->id, NULL,
                         missing, err);
        break;
    case CF_CTR_SETTLE:
        ok = coord_keyed(e, c, "DELETE FROM " COORD_EVENTS " WHERE k = $1 AND id <= $2", key, kl, ctr->id, NULL,
                         missing, err);
        break;
    case CF_CTR_RESET:
        ok = coord_keyed(e, c, "DELETE FROM " COORD_EVENTS " WHERE k = $1 AND $2::bigint = 0", key, kl, 0, NULL, missing,
                         err);
        break;
    case CF_CTR_COUNT:
        break;
    }
    if (!ok || !coord_stat(e, c, key, kl, &count, &oldest, missing, err))
        return false;
    ctr->count = count;
    if (count >= ctr->limit) {
        int64_t left = oldest + (int64_t)ctr->window_ms - now;
        ctr->retry_ms = left < 1 ? 1 : (uint64_t)left;
    }
    return true;
}

/* Events past their window and leases expired for an hour, whatever their key: at most once per
 * COORD_SWEEP_MS per process (a failure waits for the next turn: they count for nothing meanwhile). */
static void coord_sweep(struct pg *e, PGconn *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000, next = atomic_load(&coord_next_sweep);
    if (now < next || !atomic_compare_exchange_strong(&coord_next_sweep, &next, now + COORD_SWEEP_MS))
        return;
    char *err = NULL;
    if (!exec_ok(e, c,
                 "DELETE FROM " COORD_EVENTS " WHERE until <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint; "
                 "DELETE FROM " COORD_LEASES " WHERE expires_at < clock_timestamp() - interval '1 hour'; "
                 "DELETE FROM " COORD_WINDOWS " WHERE until < (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
                 PGRES_COMMAND_OK, NULL, &err))
        free(err);
}

static int pg_counter(struct cf_eng *e_, enum cf_eng_ctr_op op, const void *key, size_t kl, struct cf_eng_ctr *ctr,
                      char **err)
{
    struct pg *e = (struct pg *)e_;
    struct pg_conn *pc = coord_conn(e, err);
    if (pc == NULL)
        return CF_ENG_ERR;
    /* The key's lock: 32 bits of a keyed hash (a collision only makes two keys wait for each other). */
    uint8_t k4[4] = {0};
    memcpy(k4, key, kl < 4 ? kl : 4);
    int32_t obj = (int32_t)get_be32(k4);
    char sql[192];
    snprintf(sql, sizeof sql,
             "BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock(%d, %d); "
             "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
             COORD_CLASS, (int)obj);
    PGresult *r;
    bool missing = false, ok = exec_ok(e, pc->c, sql, PGRES_TUPLES_OK, &r, err);
    if (ok) {
        int64_t now = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        ok = coord_counter_op(e, pc->c, op, key, kl, ctr, now, &missing, err);
        if (!ok && missing) {
            /* The tables were missing: the transaction is aborted. Create them and start again. */
            PQclear(PQexec(pc->c, "ROLLBACK"));
            free(*err);
            *err = NULL;
            ok = coord_create(e, pc->c, err) && exec_ok(e, pc->c, sql, PGRES_TUPLES_OK, &r, err);
            if (ok) {
                now = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
                PQclear(r);
                ctr->granted = false;
                ok = coord_counter_op(e, pc->c, op, key, kl, ctr, now, &missing, err);
            }
        }
    }
    if (ok)
        ok = exec_ok(e, pc->c, "COMMIT", PGRES_COMMAND_OK, NULL, err);
    else if (PQstatus(pc->c) == CONNECTION_OK && PQtransactionStatus(pc->c) != PQTRANS_IDLE)
        PQclear(PQexec(pc->c, "ROLLBACK"));
    if (!ok)
        ctr->granted = false;
    if (ok)
        coord_sweep(e, pc->c);
    conn_put(e, pc);
    return ok ? CF_ENG_OK : CF_ENG_ERR;
}

/* cf_eng_window: one upsert. The row lock it takes serialises every addition to one key across the
 * nodes; the window restarts (reset) when it began window_ms or more ago; fired_now says whether this
 * statement is the one that crossed a threshold first in this window (fired then holds its start).
 * statement_timestamp() is one instant for the whole statement: the database's clock, not a node's. */
#define WIN_NOW "(extract(epoch FROM statement_timestamp()) * 1000)::bigint"
#define WIN_RESET "(" WIN_NOW " - w.start >= $2::bigint)"
#define WIN_FILES "(CASE WHEN " WIN_RESET " THEN 0 ELSE w.files END + $3::bigint)"
#define WIN_BYTES "(CASE WHEN " WIN_RESET " THEN 0 ELSE w.bytes END + $4::bigint)"
#define WIN_OVER(f, b) "(($5::bigint > 0 AND " f " >= $5::bigint) OR ($6::bigint > 0 AND " b " >= $6::bigint))"
static const char window_sql[] =
    "INSERT INTO " COORD_WINDOWS " AS w (k, start, files, bytes, fired, until, fired_now) VALUES ($1, " WIN_NOW
    ", $3::bigint, $4::bigint, CASE WHEN " WIN_OVER("$3::bigint", "$4::bigint") " THEN " WIN_NOW " ELSE -1 END, "
    WIN_NOW " + $2::bigint, " WIN_OVER("$3::bigint", "$4::bigint") ") ON CONFLICT (k) DO UPDATE SET "
    "start = CASE WHEN " WIN_RESET " THEN " WIN_NOW " ELSE w.start END, "
    "files = " WIN_FILES ", bytes = " WIN_BYTES ", "
    "fired_now = " WIN_OVER(WIN_FILES, WIN_BYTES) " AND (" WIN_RESET " OR w.fired <> w.start), "
    "fired = CASE WHEN " WIN_OVER(WIN_FILES, WIN_BYTES) " THEN (CASE WHEN " WIN_RESET " THEN " WIN_NOW
    " ELSE w.start END) WHEN " WIN_RESET " THEN -1 ELSE w.fired END, "
    "until = (CASE WHEN " WIN_RESET " THEN " WIN_NOW " ELSE w.start END) + $2::bigint "
    "RETURNING files, bytes, fired_now";

static int pg_window(struct cf_eng *e_, const void *key, size_t kl, struct cf_eng_window *w, char **err)
{
    struct pg *e = (struct pg *)e_;
    struct pg_conn *pc = coord_conn(e, err);
    if (pc == NULL)
        return CF_ENG_ERR;
    char num[5][24];
    const uint64_t v[5] = {w->window_ms, w->files, w->bytes, w->files_max, w->bytes_max};
    const char *p[6] = {key};
    int len[6] = {(int)kl};
    bool bin[6] = {true};
    for (int i = 0; i < 5; i++) {
        /* bigint: the thresholds are capped below 2^63 (a larger one cannot be reached anyway) */
        snprintf(num[i], sizeof num[i], "%llu", (unsigned long long)(v[i] > INT64_MAX ? INT64_MAX : v[i]));
        p[i + 1] = num[i];
        len[i + 1] = 0;
        bin[i + 1] = false;
    }
    bool missing = false;
    PGresult *r = coord_exec(e, pc->c, window_sql, 6, p, len, bin, &missing, err);
    if (r != NULL) {
        w->files = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
        w->bytes = strtoull(PQgetvalue(r, 0, 1), NULL, 10);
        w->fire = PQgetvalue(r, 0, 2)[0] == 't';
        PQclear(r);
        coord_sweep(e, pc->c);
    }
    conn_put(e, pc);
    return r != NULL ? CF_ENG_OK : CF_ENG_ERR;
}
