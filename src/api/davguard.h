/*
 * davguard.h: WebDAV locks on the API's own writes (davguard.c). A lock taken through /dav/ binds
 * the web UI, tus and the JSON API too: they carry no lock token, so only the user who took the
 * lock may write what it covers; anyone else gets 423 locked (docs/WEBDAV.md "Dead properties and
 * locks in the store"). Loop thread.
 */
#ifndef CF_DAVGUARD_H
#define CF_DAVGUARD_H

#include <stdbool.h>
#include <stddef.h>

struct cf_req;
struct cf_id;

/* cf_davguard_node_or_respond(r, node): node (a file or folder about to change, be moved or
 * deleted, or a folder whose members change) is covered by no live lock of another user; else
 * answers 423 locked (or the store's error) and returns false. */
bool cf_davguard_node_or_respond(struct cf_req *r, const struct cf_id *node);

/* cf_davguard_upload_or_respond(r, parent, name, n): the same for an upload of name into folder
 * parent: the folder (a new member) and the file of that name if there is one (a new version). */
bool cf_davguard_upload_or_respond(struct cf_req *r, const struct cf_id *parent, const char *name, size_t n);

#endif
