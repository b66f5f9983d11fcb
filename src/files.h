/*
 * files.h: what the files API shares between its handler files.
 */
#ifndef CF_FILES_H
#define CF_FILES_H

#include <jansson.h>

#include "acl.h"
#include "storage.h"

/* cf_node_json(n, level): the API view of a node (SPEC §5): id, type, name, parent, size, sha256,
 * mime, version, created_at, modified_at, owner, my_level. */
json_t *cf_node_json(const struct cf_node *n, enum cf_level level);

#endif
