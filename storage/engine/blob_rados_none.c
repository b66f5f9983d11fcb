/*
 * blob_rados_none.c: cf_blobs_open_rados in a build without librados (meson -Drados=disabled, or
 * librados-dev not installed): a configuration that asks for RADOS fails at open with a clear message.
 */
#include <stdlib.h>
#include <string.h>

#include "blob.h"

int cf_blobs_open_rados(const struct cf_rados_conf *conf, struct cf_blobs **out, char **err)
{
    (void)conf;
    *out = NULL;
    *err = strdup("rados: this build has no librados (rebuild with librados-dev installed, meson -Drados=enabled)");
    if (*err == NULL)
        abort();
    return CF_ENG_ERR;
}
