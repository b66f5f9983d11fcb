/*
 * dept.h: what other handlers use of the department endpoints (dept.c, issue 23).
 */
#ifndef CF_API_DEPT_H
#define CF_API_DEPT_H

#include <jansson.h>

#include "storage.h"

/* cf_dept_user_json(store, tenant, user): {"primary": ID|null, "others": [ID…]} (null if unreadable). */
json_t *cf_dept_user_json(struct cf_store *store, const struct cf_id *tenant, const struct cf_id *user);

/* cf_dept_paths(store, tenant): {"ID": "a/b/c", …} for every department (NULL if unreadable). */
json_t *cf_dept_paths(struct cf_store *store, const struct cf_id *tenant);

#endif
