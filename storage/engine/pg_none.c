/*
 * pg_none.c: cf_eng_open_pg in a build without libpq (meson -Dpostgres=disabled, or auto on a machine
 * without libpq-dev): it says so. pg.c is the engine.
 */
#include "engine_impl.h"

int cf_eng_open_pg(const struct cf_eng_pg_target *t, const struct cf_eng_spec *spec, unsigned flags,
                   struct cf_eng **out, char **err)
{
    (void)t, (void)spec, (void)flags, (void)out;
    *err = cf_eng_msg("this build has no PostgreSQL engine: rebuild with libpq-dev installed (meson "
                      "-Dpostgres=enabled; scripts/deps.sh cluster)");
    return CF_ENG_ERR;
}
