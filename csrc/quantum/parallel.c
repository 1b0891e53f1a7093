/* Threads for batches of circuits (see parallel.h): a pool of worker threads
 * started on first use, and chunks handed out through an atomic counter. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "common/cpus.h"
#include "quantum/parallel.h"

/* Below about this many amplitude updates in total, one thread is faster
 * (a tile's update of all its circuits counts as one: see parallel.h).  On a
 * 2-vCPU virtual machine an update took about 1 ns, so this is some 60 us;
 * a dense-mode adjoint of 256 four-qubit circuits (53k) ran 25-40% slower on
 * two threads than on one, and 512 of them (106k) broke even. */
#define QODE_PARALLEL_MIN_WORK 65536.0
#define QODE_MAX_THREADS 64
/* Chunks per thread: the threads finish at most about one chunk apart, so
 * many small ones (taking one is a single atomic add). */
#define QODE_CHUNKS_PER_THREAD 16
/* After a job a worker watches for the next one this long before it goes to
 * sleep: training calls the simulator in quick succession (forward, then
 * backward), and waking a sleeping thread (on a virtual machine, its idle
 * CPU too) takes tens of microseconds.  Measured on a 2-vCPU virtual machine
 * (December 2026, 4096 four-qubit VQCs, torch forward+backward, 25
 * interleaved rounds): median 565 us with this spin, 732 us with 30 us or
 * none, where one thread takes 766 us: the worker then joins too late to
 * help. */
#define QODE_SPIN_NS 300000

int qode_qbatch_threads(int requested, int64_t batch, double work_per_item)
{
    if ((double)batch * work_per_item < QODE_PARALLEL_MIN_WORK)
        return 1;
    int n = requested > 0 ? requested : qode_online_cpus();
    if (n > QODE_MAX_THREADS)
        n = QODE_MAX_THREADS;
    if (n > batch)
        n = batch < 1 ? 1 : (int)batch;
    return n;
}

int64_t qode_qbatch_chunks(int64_t batch, int n_threads)
{
    if (n_threads <= 1 || batch <= 1)
        return 1;
    int64_t chunks = (int64_t)n_threads * QODE_CHUNKS_PER_THREAD;
    return chunks < batch ? chunks : batch;
}

/* One job: fn over n_chunks chunks of [0, batch), next_chunk handing them out. */
typedef struct {
    qode_qbatch_fn fn;
    void *ctx;
    int64_t batch, n_chunks;
    atomic_llong next_chunk;
} job;

static void take_chunks(job *j, int thread)
{
    for (;;) {
        int64_t k = (int64_t)atomic_fetch_add(&j->next_chunk, 1);
        if (k >= j->n_chunks)
            return;
        j->fn(j->ctx, thread, k, j->batch * k / j->n_chunks, j->batch * (k + 1) / j->n_chunks);
    }
}

/* The workers and the job they are offered.  A job is "open" from when it
 * is posted until the calling thread has run out of chunks to take; a
 * worker joins it only while it is open (a worker that wakes late, say on a
 * busy machine, is not waited for), and the caller then waits for the
 * workers that joined. */
typedef struct {
    pthread_mutex_t lock; /* guards the fields below */
    pthread_cond_t wake;  /* a job was posted */
    pthread_cond_t done;  /* the last worker left a closed job */
    int n_workers;        /* worker w runs as thread w + 1 */
    atomic_ullong generation; /* counts posted jobs; changed with the lock held, also
                                 watched without it (spin_for_next_job) */
    job *current;
    int n_threads; /* threads the current job may use */
    int open;
    atomic_int running; /* workers inside the current job; changed with the lock
                           held, also watched without it (wait_for_workers) */
} worker_pool;

static worker_pool pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                           PTHREAD_COND_INITIALIZER, 0, 0, NULL, 0, 0, 0};
/* Held for a whole job: one job at a time uses the workers. */
static pthread_mutex_t pool_in_use = PTHREAD_MUTEX_INITIALIZER;
/* The generation each worker was started at (so it does not miss a job
 * posted before it first took the lock). */
static uint64_t start_generation[QODE_MAX_THREADS];

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Watches the generation for up to QODE_SPIN_NS (see there). */
static void spin_for_next_job(uint64_t seen)
{
    int64_t until = now_ns() + QODE_SPIN_NS;
    for (int k = 1; atomic_load_explicit(&pool.generation, memory_order_relaxed) == seen; k++) {
        cpu_relax();
        if (k % 64 == 0 && now_ns() > until)
            return;
    }
}

/* Takes pool.lock, trying for a while before blocking: it is held only for
 * a few stores at a time, and a thread that blocks on it sleeps in the
 * kernel and takes tens of microseconds to wake (this machine measured 4 to
 * 7 such sleeps per forward and backward pass without it). */
static void lock_pool(void)
{
    for (int k = 0; k < 4096; k++) {
        if (pthread_mutex_trylock(&pool.lock) == 0)
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&pool.lock);
}

/* Waits until no worker is inside the closed job (called and returning
 * with pool.lock held): first watching the count without the lock for up to
 * QODE_SPIN_NS (the workers finish their last chunks about when the caller
 * does), then sleeping on pool.done. */
static void wait_for_workers(void)
{
    if (atomic_load(&pool.running) > 0) {
        pthread_mutex_unlock(&pool.lock);
        int64_t until = now_ns() + QODE_SPIN_NS;
        for (int k = 1; atomic_load_explicit(&pool.running, memory_order_acquire) > 0; k++) {
            cpu_relax();
            if (k % 64 == 0 && now_ns() > until)
                break;
        }
        lock_pool();
    }
    while (atomic_load(&pool.running) > 0)
        pthread_cond_wait(&pool.done, &pool.lock);
}

static void *worker_main(void *arg)
{
    int thread = (int)(intptr_t)arg;
    pthread_mutex_lock(&pool.lock);
    uint64_t seen = start_generation[thread];
    for (;;) {
        if (pool.generation == seen) {
            pthread_mutex_unlock(&pool.lock);
            spin_for_next_job(seen);
            lock_pool();
        }
        while (pool.generation == seen)
            pthread_cond_wait(&pool.wake, &pool.lock);
        seen = pool.generation;
        if (!pool.open || thread >= pool.n_threads)
            continue;
        job *j = pool.current;
        pool.running++;
        pthread_mutex_unlock(&pool.lock);
        take_chunks(j, thread);
        lock_pool();
        if (atomic_fetch_sub(&pool.running, 1) == 1 && !pool.open)
            pthread_cond_signal(&pool.done);
    }
    return NULL;
}

/* A child process after fork() has none of the parent's workers: forget
 * them (the child's only thread runs this, so nothing else holds the locks
 * there). */
static void forget_workers_after_fork(void)
{
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pthread_mutex_init(&pool_in_use, NULL);
    pool.n_workers = 0;
    pool.open = 0;
    pool.running = 0;
    pool.current = NULL;
}

static pthread_once_t fork_handler_once = PTHREAD_ONCE_INIT;

static void register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, forget_workers_after_fork);
}

/* Starts workers until there are `wanted` (called with pool.lock held);
 * returns how many there are. */
static int start_workers(int wanted)
{
    pthread_once(&fork_handler_once, register_fork_handler);
    while (pool.n_workers < wanted) {
        int thread = pool.n_workers + 1;
        pthread_attr_t attr;
        pthread_t id;
        if (pthread_attr_init(&attr) != 0)
            break;
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        start_generation[thread] = pool.generation;
        int failed = pthread_create(&id, &attr, worker_main, (void *)(intptr_t)thread);
        pthread_attr_destroy(&attr);
        if (failed)
            break;
        pool.n_workers++;
    }
    return pool.n_workers;
}

qode_status qode_qbatch_run(qode_qbatch_fn fn, void *ctx, int64_t batch, int n_threads)
{
    if (n_threads > QODE_MAX_THREADS)
        n_threads = QODE_MAX_THREADS;
    job j = {fn, ctx, batch, qode_qbatch_chunks(batch, n_threads), 0};
    if (j.n_chunks <= 1 || pthread_mutex_trylock(&pool_in_use) != 0) {
        take_chunks(&j, 0); /* alone: the same chunks, one after the other */
        return QODE_OK;
    }
    lock_pool();
    int workers = start_workers(n_threads - 1);
    pool.current = &j;
    pool.n_threads = workers + 1 < n_threads ? workers + 1 : n_threads;
    pool.open = 1;
    pool.running = 0;
    atomic_fetch_add(&pool.generation, 1);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    take_chunks(&j, 0);

    lock_pool();
    pool.open = 0;
    wait_for_workers();
    pool.current = NULL;
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool_in_use);
    return QODE_OK;
}
