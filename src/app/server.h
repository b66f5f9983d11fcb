/*
 * server.h: `coffer serve`: start-up in phases, the event-loop threads, the graceful shutdown (the
 * helpers it shares with the offline commands are core/startup.h). The process-wide server state (struct
 * cf_server) is private to server.c; what handlers and jobs need of it is struct cf_app (context.h).
 *
 * Threads: N loop threads (struct cf_loop, loop.h), M workers (work.c), and the main thread, which
 * waits for signals with sigwait (h2o's messaging is not async-signal-safe) and relays them to the
 * loops.
 */
#ifndef CF_SERVER_H
#define CF_SERVER_H

#include "config.h"

/* cf_serve(cfg): runs the server until SIGTERM/SIGINT; returns the process exit code. */
int cf_serve(struct cf_config *cfg);

#endif
