/*
 * rocks_backup.c: backups of the RocksDB engine (engine.h "backups"), over RocksDB's BackupEngine:
 * table and blob files shared between backups, the WAL tail copied so that a backup is consistent
 * across column families, every file synced.
 */
#include <stdlib.h>

#include "engine_impl.h"
#include "rocks.h"

struct cf_eng_backups {
    rocksdb_backup_engine_t *be;
    rocksdb_backup_engine_options_t *opts;
    rocksdb_env_t *env;
};

int cf_eng_backups_open(const char *dir, struct cf_eng_backups **out, char **err)
{
    struct cf_eng_backups *b = calloc(1, sizeof *b);
    if (b == NULL)
        abort();
    *err = NULL;
    b->env = rocksdb_create_default_env();
    b->opts = rocksdb_backup_engine_options_create(dir);
    rocksdb_backup_engine_options_set_share_table_files(b->opts, 1);
    rocksdb_backup_engine_options_set_sync(b->opts, 1);
    rocksdb_backup_engine_options_set_backup_log_files(b->opts, 1);
    b->be = rocksdb_backup_engine_open_opts(b->opts, b->env, err);
    if (*err != NULL) {
        rocksdb_backup_engine_options_destroy(b->opts);
        rocksdb_env_destroy(b->env);
        free(b);
        return CF_ENG_ERR;
    }
    *out = b;
    return CF_ENG_OK;
}

void cf_eng_backups_close(struct cf_eng_backups *b)
{
    if (b == NULL)
        return;
    rocksdb_backup_engine_close(b->be);
    rocksdb_backup_engine_options_destroy(b->opts);
    rocksdb_env_destroy(b->env);
    free(b);
}

size_t cf_eng_backups_list(struct cf_eng_backups *b, struct cf_eng_backup **out)
{
    const rocksdb_backup_engine_info_t *info = rocksdb_backup_engine_get_backup_info(b->be);
    int count = rocksdb_backup_engine_info_count(info);
    *out = NULL;
    if (count > 0 && (*out = calloc((size_t)count, sizeof **out)) == NULL)
        abort();
    for (int i = 0; i < count; i++) {
        struct cf_eng_backup *e = &(*out)[i];
        e->id = rocksdb_backup_engine_info_backup_id(info, i);
        e->timestamp = rocksdb_backup_engine_info_timestamp(info, i);
        e->size = rocksdb_backup_engine_info_size(info, i);
        e->files = rocksdb_backup_engine_info_number_files(info, i);
    }
    rocksdb_backup_engine_info_destroy(info);
    return count > 0 ? (size_t)count : 0;
}

int cf_eng_backup_create(struct cf_eng_backups *b, struct cf_eng *e, char **err)
{
    *err = NULL;
    if (!cf_rocks_is(e)) {
        *err = cf_eng_msg("backups are not supported by the %s engine: back up the database with its own tools "
                          "(PostgreSQL: pg_dump or pg_basebackup; docs/CLUSTER.md)",
                          cf_eng_name(e));
        return CF_ENG_ERR;
    }
    /* flush_before_backup: the memtables go to table files first, so the backup needs little or no
     * WAL; the engine still copies the WAL tail, which keeps it consistent across column families. */
    rocksdb_backup_engine_create_new_backup_flush(b->be, cf_rocks_db(e), 1, err);
    return *err != NULL ? CF_ENG_ERR : CF_ENG_OK;
}

int cf_eng_backups_purge(struct cf_eng_backups *b, uint32_t keep, char **err)
{
    *err = NULL;
    rocksdb_backup_engine_purge_old_backups(b->be, keep, err);
    return *err != NULL ? CF_ENG_ERR : CF_ENG_OK;
}

int cf_eng_backup_verify(struct cf_eng_backups *b, uint32_t id, char **err)
{
    *err = NULL;
    rocksdb_backup_engine_verify_backup(b->be, id, err);
    return *err != NULL ? CF_ENG_ERR : CF_ENG_OK;
}

int cf_eng_backup_restore(struct cf_eng_backups *b, uint32_t id, const char *to, char **err)
{
    *err = NULL;
    rocksdb_restore_options_t *ro = rocksdb_restore_options_create();
    rocksdb_backup_engine_restore_db_from_backup(b->be, to, to, ro, id, err);
    rocksdb_restore_options_destroy(ro);
    return *err != NULL ? CF_ENG_ERR : CF_ENG_OK;
}
