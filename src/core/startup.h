/*
 * startup.h: what `coffer serve` (src/app/server.c) and the offline commands (src/ops: check, backup,
 * key rotation) share at start-up: reading the master key, explaining why the store did not open,
 * resolving a `listen:` entry. Any thread; no global state.
 */
#ifndef CF_STARTUP_H
#define CF_STARTUP_H

#include "config.h"
#include "storage.h"

/* cf_master_key_load(path, out, err): reads a master key file (exactly 32 bytes, mode 0600 or
 * stricter, owned by us). CF_EINVAL with a message in *err otherwise. */
enum cf_status cf_master_key_load(const char *path, struct cf_key *out, char **err) CF_WUR;

/* cf_store_open_error(cfg, st): why cf_store_open(_readonly) of cfg->data_dir failed with st, as a
 * malloc'ed sentence naming the directory (and the master key, or the command to run). */
char *cf_store_open_error(const struct cf_config *cfg, enum cf_status st);

/* cf_store_configure(cfg): tells the store where it lives (`store:`, docs/CLUSTER.md): with engine:
 * cluster, the metadata of cfg->data_dir's store in PostgreSQL (store.postgres) and, with a rados
 * section, the chunk bodies in RADOS; else nothing (RocksDB in data_dir). cfg must outlive every
 * store opened after. Call once before opening the store (serve, every offline command). */
void cf_store_configure(const struct cf_config *cfg);

/* cf_listen_resolve(spec, err): the addresses of one `listen:` entry ("host:port", "[v6]:port"),
 * resolved without binding (getaddrinfo; the caller frees with freeaddrinfo), or NULL with a
 * malloc'ed "listen: SPEC: why" in *err. Used by serve and by serve --check. */
struct addrinfo;
struct addrinfo *cf_listen_resolve(const char *spec, char **err);

#endif
