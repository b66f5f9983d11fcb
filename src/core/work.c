/*
 * work.c: the worker pool (see work.h). One mutex-protected FIFO and a condition variable; jobs
 * are intrusive, so submitting allocates nothing.
 */
#include "work.h"

#include <pthread.h>
#include <stdlib.h>

#include "base.h"
#include "log.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct cf_job *head, *tail;
static size_t queued;
static bool stopping;
static pthread_t *threads;
static unsigned nthreads;
static void (*thread_exit)(void);

static void *worker_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (head == NULL && !stopping)
            pthread_cond_wait(&cond, &lock);
        if (head == NULL) {
            pthread_mutex_unlock(&lock);
            if (thread_exit != NULL)
                thread_exit();
            return NULL;
        }
        struct cf_job *job = head;
        head = job->next;
        if (head == NULL)
            tail = NULL;
        queued--;
        pthread_mutex_unlock(&lock);

        job->next = NULL;
        if (job->run(job))
            cf_work_reply(job);
    }
}

void cf_work_reply(struct cf_job *job)
{
    if (job->reply_to != NULL) {
        job->msg.link.next = job->msg.link.prev = NULL;
        h2o_multithread_send_message(job->reply_to, &job->msg);
    } else if (job->done != NULL) {
        job->done(job);
    }
}

void cf_work_start(unsigned n, void (*on_exit)(void))
{
    thread_exit = on_exit;
    nthreads = n == 0 ? 1 : n;
    threads = cf_xcalloc(nthreads, sizeof *threads);
    stopping = false;
    for (unsigned i = 0; i < nthreads; i++)
        if (pthread_create(&threads[i], NULL, worker_main, NULL) != 0) {
            cf_log_error("cannot start worker thread %u", i);
            abort();
        }
}

void cf_work_stop(void)
{
    pthread_mutex_lock(&lock);
    stopping = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&lock);
    for (unsigned i = 0; i < nthreads; i++)
        pthread_join(threads[i], NULL);
    free(threads);
    threads = NULL;
    nthreads = 0;
}

void cf_work_submit(struct cf_job *job)
{
    job->next = NULL;
    /* h2o asserts that a message is not linked (next == NULL) when it is sent. */
    job->msg.link.next = job->msg.link.prev = NULL;
    pthread_mutex_lock(&lock);
    if (tail == NULL)
        head = job;
    else
        tail->next = job;
    tail = job;
    queued++;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
}

void cf_work_on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    (void)receiver;
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m = H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        struct cf_job *job = H2O_STRUCT_FROM_MEMBER(struct cf_job, msg, m);
        job->done(job);
    }
}

size_t cf_work_queued(void)
{
    pthread_mutex_lock(&lock);
    size_t n = queued;
    pthread_mutex_unlock(&lock);
    return n;
}

struct background {
    struct cf_job job;
    void (*fn)(void *arg);
    void *arg;
};

static bool background_run(struct cf_job *job)
{
    struct background *b = (struct background *)(void *)job;
    b->fn(b->arg);
    return true;
}

static void background_done(struct cf_job *job)
{
    free(job);
}

void cf_work_background(void (*fn)(void *arg), void *arg)
{
    struct background *b = cf_xcalloc(1, sizeof *b);
    b->fn = fn;
    b->arg = arg;
    b->job.run = background_run;
    b->job.done = background_done;
    b->job.reply_to = NULL;
    cf_work_submit(&b->job);
}
