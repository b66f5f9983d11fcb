/*
 * priv.c: dropping root for the service account (see priv.h).
 */
#include "priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static const char *account_name(uid_t uid, char *buf, size_t cap)
{
    struct passwd *pw = getpwuid(uid);
    if (pw != NULL)
        snprintf(buf, cap, "%s", pw->pw_name);
    else
        snprintf(buf, cap, "uid %u", (unsigned)uid);
    return buf;
}

int cf_priv_resolve(const struct cf_config *cfg, const char *command, struct cf_priv *out, char **err)
{
    memset(out, 0, sizeof *out);
    const char *u = cfg->user;
    uid_t me = geteuid();
    char mine[64];
    if (me == 0 && u == NULL) {
        if (strcmp(command, "serve") != 0)
            return 0;
        *err = cf_xasprintf("%s: user: required when coffer serve is started as root: name the account the server "
                            "drops to once it has bound its ports and read its keys (e.g. `user: coffer`, created "
                            "with `useradd --system coffer`), or write `user: root` to keep root on purpose",
                            cfg->path);
        return 2;
    }
    if (u == NULL)
        return 0;
    errno = 0;
    struct passwd *pw = getpwnam(u);
    if (pw == NULL) {
        *err = cf_xasprintf("%s: user: %s: no such account%s%s", cfg->path, u, errno != 0 ? ": " : "",
                            errno != 0 ? strerror(errno) : "");
        return 2;
    }
    if (me != 0) {
        if (pw->pw_uid == me)
            return 0;
        *err = cf_xasprintf("%s: user: %s: coffer %s runs as %s and cannot switch to %s: start it as root (it drops "
                            "to %s after binding its ports and reading its keys) or as %s",
                            cfg->path, u, command, account_name(me, mine, sizeof mine), u, u, u);
        return 2;
    }
    if (pw->pw_uid == 0) {
        if (strcmp(command, "serve") == 0)
            cf_log_warn("user: %s: coffer %s keeps running as root (uid 0), scanners included; set user: to a service "
                        "account", u, command);
        return 0;
    }
    if (strlen(pw->pw_name) >= sizeof out->name) {
        *err = cf_xasprintf("%s: user: %s: name too long", cfg->path, u);
        return 2;
    }
    out->drop = true;
    out->uid = pw->pw_uid;
    out->gid = pw->pw_gid;
    snprintf(out->name, sizeof out->name, "%s", pw->pw_name);
    return 0;
}

static char *not_ours(const struct cf_priv *p, const char *dir, const char *what, uid_t owner)
{
    char who[64];
    return cf_xasprintf("%s is owned by %s, not by %s, the account coffer runs as (user: %s): run `chown -R %s: %s` "
                        "(coffer never changes the owner of existing files)",
                        what, account_name(owner, who, sizeof who), p->name, p->name, p->name, dir);
}

int cf_priv_check_dir(const struct cf_priv *p, const char *dir, bool create, char **err)
{
    struct stat st;
    if (!p->drop)
        return 0;
    if (lstat(dir, &st) != 0) {
        if (errno == ENOENT && !create)
            return 0; /* opening the store says it is not initialised */
        if (errno != ENOENT) {
            *err = cf_xasprintf("%s: %s", dir, strerror(errno));
            return 1;
        }
        if (mkdir(dir, 0700) != 0) {
            *err = cf_xasprintf("%s: cannot create the data directory: %s", dir, strerror(errno));
            return 1;
        }
        if (chown(dir, p->uid, p->gid) != 0 || chmod(dir, 0700) != 0) {
            *err = cf_xasprintf("%s: cannot give the data directory to %s: %s", dir, p->name, strerror(errno));
            rmdir(dir);
            return 1;
        }
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        *err = cf_xasprintf("%s: the data directory is not a directory", dir);
        return 1;
    }
    if (st.st_uid != p->uid) {
        *err = not_ours(p, dir, dir, st.st_uid);
        return 1;
    }
    /* RocksDB keeps everything directly in the directory: a file left by a run as root would make the
     * store fail obscurely (EACCES) after the drop. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        if (dfd >= 0)
            close(dfd);
        *err = cf_xasprintf("%s: %s", dir, strerror(errno));
        return 1;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_uid != p->uid) {
            char *what = cf_xasprintf("%s/%s", dir, de->d_name);
            *err = not_ours(p, dir, what, st.st_uid);
            free(what);
            rc = 1;
        }
    }
    closedir(d);
    return rc;
}

/* After a drop to uid/gid: the ids took, and root cannot be regained. */
static int verify(uid_t uid, gid_t gid, char **err)
{
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0 || r != uid || e != uid || s != uid ||
        rg != gid || eg != gid || sg != gid) {
        *err = cf_xasprintf("dropping privileges: the ids did not change as asked (uid %u, gid %u)", (unsigned)uid,
                            (unsigned)gid);
        return 1;
    }
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        *err = cf_xasprintf("dropping privileges: root could be regained after switching to uid %u", (unsigned)uid);
        return 1;
    }
    if (gid != 0 && (setgid(0) == 0 || setegid(0) == 0)) {
        *err = cf_xasprintf("dropping privileges: group 0 could be regained after switching to gid %u", (unsigned)gid);
        return 1;
    }
    return 0;
}

int cf_priv_drop(const struct cf_priv *p, char **err)
{
    if (!p->drop)
        return 0;
    /* Groups first (they need root), then the group id, then the user id (after which nothing can be
     * undone). glibc applies each to every thread of the process. */
    if (initgroups(p->name, p->gid) != 0) {
        *err = cf_xasprintf("user: %s: cannot set its groups: %s", p->name, strerror(errno));
        return 1;
    }
    if (setgid(p->gid) != 0 || setuid(p->uid) != 0) {
        *err = cf_xasprintf("user: %s: cannot switch to uid %u gid %u: %s", p->name, (unsigned)p->uid,
                            (unsigned)p->gid, strerror(errno));
        return 1;
    }
    /* The change of uid set dumpable to fs.suid_dumpable, which an administrator may have set to 1:
     * non-dumpable again (no core, no ptrace by other processes of the account, the scanners
     * included). */
    if (cf_priv_no_dumps() != 0) {
        *err = cf_xasprintf("user: %s: cannot make the process non-dumpable: %s", p->name, strerror(errno));
        return 1;
    }
    return verify(p->uid, p->gid, err);
}

char *cf_priv_unreadable(const char *cert, const char *key)
{
    const char *bad = access(cert, R_OK) != 0 ? cert : access(key, R_OK) != 0 ? key : NULL;
    if (bad == NULL)
        return NULL;
    char who[64];
    return cf_xasprintf("%s is not readable by %s (uid %u), the account the server runs as: make the certificate "
                        "and the key readable by it (e.g. chgrp GROUP %s && chmod 640 %s, with the account in GROUP)",
                        bad, account_name(geteuid(), who, sizeof who), (unsigned)geteuid(), bad, bad);
}

int cf_priv_drop_ids(uid_t uid, gid_t gid, char **err)
{
    if (getuid() == uid && geteuid() == uid && getgid() == gid && getegid() == gid && uid != 0)
        return verify(uid, gid, err); /* spawned by a server that already dropped */
    if (geteuid() != 0) {
        *err = cf_xasprintf("cannot switch to uid %u gid %u: not root", (unsigned)uid, (unsigned)gid);
        return 1;
    }
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
        *err = cf_xasprintf("cannot switch to uid %u gid %u: %s", (unsigned)uid, (unsigned)gid, strerror(errno));
        return 1;
    }
    if (cf_priv_no_dumps() != 0) { /* see cf_priv_drop */
        *err = cf_xasprintf("cannot make the process non-dumpable: %s", strerror(errno));
        return 1;
    }
    return verify(uid, gid, err);
}

int cf_priv_no_dumps(void)
{
    const struct rlimit none = {0, 0};
    if (setrlimit(RLIMIT_CORE, &none) != 0)
        return -1;
    return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 && prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : -1;
}
