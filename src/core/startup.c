/*
 * startup.c: what `coffer serve` and the offline commands share at start-up (see startup.h).
 */
#include "startup.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

void cf_store_configure(const struct cf_config *cfg)
{
    static struct cf_store_rados rados;
    if (cfg->store.engine != CF_STORE_CLUSTER) {
        cf_store_use_postgres(NULL, NULL, NULL, 0);
        cf_store_rados = NULL;
        return;
    }
    cf_store_use_postgres(cfg->data_dir, cfg->store.pg_conninfo, cfg->store.pg_password,
                          (unsigned)cfg->store.pg_timeout_ms);
    if (cfg->store.rados) {
        rados = (struct cf_store_rados){cfg->store.rados_conf, cfg->store.rados_pool, cfg->store.rados_user,
                                        cfg->store.rados_keyring, (unsigned)cfg->store.rados_op_timeout_s,
                                        cfg->data_dir};
        cf_store_rados = &rados;
    } else
        cf_store_rados = NULL; /* chunk bodies in the metadata engine (a PostgreSQL table) */
}

char *cf_store_open_error(const struct cf_config *cfg, enum cf_status st)
{
    if (cfg->store.engine == CF_STORE_CLUSTER &&
        (st == CF_ENOTFOUND || st == CF_EBUSY || st == CF_EUNAVAIL || st == CF_EIO)) {
        switch (st) {
        case CF_ENOTFOUND:
            return cf_xasprintf("the PostgreSQL database of store.postgres.conninfo holds no store (or cannot be "
                                "reached): run `coffer init -c %s` first",
                                cfg->path);
        case CF_EBUSY:
            return cf_xasprintf("the store in PostgreSQL is busy: see the line above");
        default:
            return cf_xasprintf("cannot open the store in PostgreSQL (%s): see the line above", cf_status_name(st));
        }
    }
    switch (st) {
    case CF_ENOTFOUND:
        return cf_xasprintf("%s is not initialised: run `coffer init -c %s` first", cfg->data_dir, cfg->path);
    case CF_EBUSY:
        return cf_xasprintf("%s is in use by another coffer process", cfg->data_dir);
    case CF_ECRYPTO:
        return cf_xasprintf("%s: the master key %s does not open this data directory", cfg->data_dir,
                            cfg->master_key_file);
    case CF_EROLLBACK:
        return cf_xasprintf("%s: refusing to open it: it does not continue the metadata journal recorded in %s (see "
                            "the line above). If you restored an older copy on purpose, run `coffer journal accept "
                            "-c %s` (docs/OPERATIONS.md \"Rollback detection\")",
                            cfg->data_dir, cfg->journal_anchor_file, cfg->path);
    default:
        return cf_xasprintf("%s: cannot open the store (%s)", cfg->data_dir, cf_status_name(st));
    }
}

enum cf_status cf_master_key_load(const char *path, struct cf_key *out, char **err)
{
    struct stat st;
    uint8_t buf[CF_KEY_LEN + 1];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        *err = cf_xasprintf("%s: cannot open the master key: %s", path, strerror(errno));
        return CF_EINVAL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        *err = cf_xasprintf("%s: the master key is not a regular file", path);
        return CF_EINVAL;
    }
    if ((st.st_mode & 077) != 0) {
        close(fd);
        *err = cf_xasprintf("%s: the master key must not be readable by group or others (chmod 600)", path);
        return CF_EINVAL;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n != CF_KEY_LEN) {
        cf_wipe(buf, sizeof buf);
        *err = cf_xasprintf("%s: a master key is exactly %d bytes", path, CF_KEY_LEN);
        return CF_EINVAL;
    }
    memcpy(out->k, buf, CF_KEY_LEN);
    cf_wipe(buf, sizeof buf);
    return CF_OK;
}

struct addrinfo *cf_listen_resolve(const char *spec, char **err)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || colon[1] == '\0') {
        *err = cf_xasprintf("listen: %s: expected host:port", spec);
        return NULL;
    }
    size_t hl = (size_t)(colon - spec);
    const char *h = spec;
    if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof host) {
        *err = cf_xasprintf("listen: %s: host too long", spec);
        return NULL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV},
                    *res = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        *err = cf_xasprintf("listen: %s: %s", spec, gai_strerror(rc));
        return NULL;
    }
    return res;
}
