/*
 * webhook.h: delivering alert events to a tenant's webhook (see webhook.c for the safeguards).
 */
#ifndef CF_WEBHOOK_H
#define CF_WEBHOOK_H

#include <stdbool.h>

/* cf_webhook_url_ok(url): an https URL this module would deliver to (syntax only). */
bool cf_webhook_url_ok(const char *url);
/* cf_webhook_send(url, ca_pem, json, allow_private): one asynchronous POST of json (copied); a
 * private or loopback address only if allow_private (audit.webhook_allow_private). Any thread. */
void cf_webhook_send(const char *url, const char *ca_pem, const char *json, bool allow_private);

#endif
