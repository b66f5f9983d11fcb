/*
 * work.h: the worker pool. Event loops never hash, encrypt, decrypt, scan or write content; they
 * package such work as a job, and a worker runs it and hands it back to the loop that submitted it.
 *
 * Life of a job: a loop thread fills in run/done and calls cf_work_submit; one worker thread calls
 * run(job); then done(job) is called on the submitting loop thread (through the loop's
 * h2o_multithread receiver). run must not touch any h2o object; done may. Jobs are owned by their
 * submitter, which frees them in done (or later). Jobs run in FIFO order; there is no cancellation:
 * a job whose request died is told so by the request guard (see http.h) when it comes back.
 */
#ifndef CF_WORK_H
#define CF_WORK_H

#include <h2o.h>
#include <stdbool.h>

struct cf_job;
typedef void (*cf_job_fn)(struct cf_job *job);
/* A job's run: true to have done() called as usual; false if run handed the job to someone else
 * (who will submit it again, or send it to its loop), after which the pool must not touch it. */
typedef bool (*cf_job_run_fn)(struct cf_job *job);

struct cf_job {
    h2o_multithread_message_t msg;       /* link in the loop's completion queue */
    h2o_multithread_receiver_t *reply_to; /* the submitting loop's receiver; NULL: done runs on the worker */
    cf_job_run_fn run;                   /* on a worker thread */
    cf_job_fn done;                      /* on the submitting loop thread */
    struct cf_job *next;                 /* pool queue link (private) */
};

/* cf_work_reply(job): sends a job to its loop's done() now, from any thread (for jobs whose run
 * handed them off). */
void cf_work_reply(struct cf_job *job);

/* cf_work_start(n, on_exit): starts n worker threads. Call once, before any submit. on_exit (may be
 * NULL) runs on each worker thread as it ends, to release per-thread caches (libmagic cookies). */
void cf_work_start(unsigned n, void (*on_exit)(void));
/* cf_work_stop(): lets the queued jobs finish, then joins the workers. */
void cf_work_stop(void);
/* cf_work_submit(job): queue job. Any thread; from a loop thread set job->reply_to first. */
void cf_work_submit(struct cf_job *job);
/* cf_work_on_done: the receiver callback each loop registers for job completions. */
void cf_work_on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
/* cf_work_background(fn, arg): runs fn(arg) on a worker, with no reply (fire and forget: history
 * records, clean-ups). fn owns arg. */
void cf_work_background(void (*fn)(void *arg), void *arg);
/* cf_work_queued(): jobs waiting for a worker (for metrics and back-pressure). */
size_t cf_work_queued(void);

#endif
