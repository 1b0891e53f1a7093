/* Forward simulation and read-outs of a batch of circuits. */
#include <stdio.h>
#include <stdlib.h>

#include "quantum/kernels.h"
#include "quantum/parallel.h"
#include "quantum/prepare.h"
#include "quantum/simulate.h"
#include "quantum/tiled.h"
#include "quantum/tiled_dense.h"

static qode_status check_dtype(qode_dtype dtype, char *msg, size_t len)
{
    if (dtype != QODE_COMPLEX64 && dtype != QODE_COMPLEX128) {
        if (msg != NULL && len > 0)
            snprintf(msg, len, "state vectors must be complex64 or complex128");
        return QODE_ERR_INVALID_ARGUMENT;
    }
    return QODE_OK;
}

static qode_status check_batch(int64_t batch, char *msg, size_t len)
{
    if (batch < 0) {
        if (msg != NULL && len > 0)
            snprintf(msg, len, "batch size must be >= 0, got %lld", (long long)batch);
        return QODE_ERR_INVALID_ARGUMENT;
    }
    return QODE_OK;
}

/* ---- forward run ---------------------------------------------------------- */

typedef struct {
    const qode_circuit *c;
    qode_dtype dtype;
    const double *data;
    const double *trainable;
    const qode_prepared_gate *prepared;
    const qode_observables *obs;
    double *expval;
    double *probs;
    char *states;   /* may be NULL: then `work` holds one state per thread */
    double *work;   /* tiled: one tile state per thread; else one state if states == NULL */
    size_t work_doubles;
    int tiled;
    int64_t batch_size;
    const qode_tile_schedule *sched;
    double *record;        /* NULL, or the forward record: */
    size_t record_doubles; /* doubles per tile */
} run_ctx;

/* One circuit at a time (large n, or a batch of one). */
static void run_rows(void *arg, int thread, int64_t chunk, int64_t b0, int64_t b1)
{
    const run_ctx *x = (const run_ctx *)arg;
    const qode_circuit *c = x->c;
    int n = c->n_qubits;
    size_t dim = (size_t)1 << n, state_bytes = qode_dtype_size(x->dtype) * dim;
    qode_prepared_gate scratch;
    for (int64_t b = b0; b < b1; b++) {
        void *s = x->states != NULL ? x->states + (size_t)b * state_bytes
                                    : (void *)(x->work + (size_t)thread * x->work_doubles);
        const double *row = c->n_data > 0 ? x->data + (size_t)b * c->n_data : NULL;
        qode_qstate_set_zero_state(s, x->dtype, n);
        for (int32_t k = 0; k < c->n_ops; k++) {
            const qode_prepared_gate *g =
                qode_prepared_op(c, x->prepared, k, row, x->trainable, 0, &scratch);
            qode_qstate_apply(s, x->dtype, n, &g->forward);
        }
        if (x->expval != NULL) {
            const qode_observables *o = x->obs;
            for (int32_t k = 0; k < o->n_obs; k++) {
                double v = 0.0;
                for (int64_t t = o->term_start[k]; t < o->term_start[k + 1]; t++)
                    v += o->coeff[t] * qode_qstate_expval_pauli(s, x->dtype, n, o->x_mask[t],
                                                               o->z_mask[t]);
                x->expval[(size_t)b * o->n_obs + k] = v;
            }
        }
        if (x->probs != NULL)
            qode_qstate_probabilities(s, x->dtype, n, x->probs + (size_t)b * dim);
    }
}

/* QODE_TILE_LANES circuits at a time; rows [b0, b1) are whole tiles except
 * possibly the last of the batch. */
static void run_tiles(void *arg, int thread, int64_t chunk, int64_t t0, int64_t t1)
{
    const run_ctx *x = (const run_ctx *)arg;
    double *re = x->work + (size_t)thread * x->work_doubles;
    double *im = re + qode_tile_state_doubles(x->c->n_qubits) / 2;
    double *rest = re + qode_tile_state_doubles(x->c->n_qubits);
    int64_t batch = x->batch_size;
    for (int64_t t = t0; t < t1; t++) {
        qode_tile_job job = {x->c, x->sched, x->prepared, x->data, x->trainable,
                             t * QODE_TILE_LANES, 0, 0};
        int64_t left = batch - job.b0;
        job.valid = (int)(left < QODE_TILE_LANES ? left : QODE_TILE_LANES);
        if (x->record != NULL) {
            double *rec = x->record + (size_t)t * x->record_doubles;
            size_t plane = (size_t)QODE_TILE_LANES << x->c->n_qubits;
            qode_tile_record_forward(&job, rec, rest);
            qode_tile_readout(&job, rec + plane, rec + 2 * plane, x->expval, x->probs,
                              x->states, x->dtype);
            continue;
        }
        qode_tile_forward(&job, re, rest); /* im follows re */
        qode_tile_readout(&job, re, im, x->expval, x->probs, x->states, x->dtype);
    }
}

int qode_qsim_uses_tiles(int32_t n_qubits, int64_t batch)
{
    return n_qubits <= QODE_TILE_MAX_QUBITS && batch > 1;
}

size_t qode_qsim_record_doubles(int32_t n_qubits, int64_t batch)
{
    if (!qode_qsim_uses_tiles(n_qubits, batch) || n_qubits > QODE_TILE_DENSE_MAX_QUBITS)
        return 0;
    size_t tiles = (size_t)((batch + QODE_TILE_LANES - 1) / QODE_TILE_LANES);
    return tiles * qode_tile_record_tile_doubles(n_qubits);
}

int qode_qsim_path(const qode_circuit *c, const double *trainable, const qode_observables *obs,
                   int64_t batch)
{
    if (!qode_qsim_uses_tiles(c->n_qubits, batch))
        return QODE_PATH_ROWS;
    qode_prepared_gate *prepared = qode_prepare_gates(c, trainable, 1);
    qode_tile_schedule *sched =
        prepared != NULL ? qode_tile_schedule_new(c, prepared, 1, obs, 1) : NULL;
    int path = sched == NULL ? -1 : sched->dense ? QODE_PATH_DENSE : QODE_PATH_TILES;
    qode_tile_schedule_free(sched);
    free(prepared);
    return path;
}

qode_status qode_qsim_forward(const qode_circuit *c, qode_dtype dtype, int64_t batch,
                              const double *data, const double *trainable,
                              const qode_observables *obs, double *expval, double *probs,
                              void *states, double *record, int *recorded, int n_threads,
                              char *msg, size_t len)
{
    qode_status st;
    size_t bytes;
    if (recorded != NULL)
        *recorded = 0;
    if ((st = check_dtype(dtype, msg, len)) != QODE_OK ||
        (st = check_batch(batch, msg, len)) != QODE_OK ||
        (st = qode_circuit_validate(c, msg, len)) != QODE_OK ||
        (st = qode_qstate_bytes(c->n_qubits, batch, dtype, &bytes, msg, len)) != QODE_OK ||
        (st = qode_circuit_check_params(c, batch, data, trainable, msg, len)) != QODE_OK)
        return st;
    if (expval != NULL) {
        if (obs == NULL) {
            if (msg != NULL && len > 0)
                snprintf(msg, len, "expectation values requested without observables");
            return QODE_ERR_INVALID_ARGUMENT;
        }
        if ((st = qode_observables_validate(obs, c->n_qubits, msg, len)) != QODE_OK)
            return st;
    }
    int n = c->n_qubits;
    size_t dim = (size_t)1 << n;
    int tiled = qode_qsim_uses_tiles(n, batch);
    double terms = (expval != NULL) ? (double)obs->term_start[obs->n_obs] : 0.0;
    qode_prepared_gate *prepared = qode_prepare_gates(c, trainable, 0);
    /* only expectation values read: trailing gates may fold into them */
    int fold = expval != NULL && probs == NULL && states == NULL;
    qode_tile_schedule *sched =
        (tiled && prepared != NULL)
            ? qode_tile_schedule_new(c, prepared, 0, expval != NULL ? obs : NULL, fold)
            : NULL;
    /* amplitude updates per circuit: a pass per gate, or U psi in dense mode */
    double work_per_row = sched != NULL && sched->dense
                              ? 2.0 * (double)dim * (double)dim + (double)dim * (terms + 1)
                              : (double)dim * (c->n_ops + terms + 1);
    int64_t units = tiled ? (batch + QODE_TILE_LANES - 1) / QODE_TILE_LANES : batch;
    /* (a tile's work counts as one circuit's: see parallel.h) */
    int threads = qode_qbatch_threads(n_threads, units, work_per_row);
    size_t work_doubles = tiled ? (sched ? qode_tile_work_doubles(sched, n, 0) : 0)
                                : (states == NULL ? 2 * dim : 0);
    double *work = work_doubles > 0 ? malloc(sizeof(double) * work_doubles * (size_t)threads)
                                    : NULL;
    if (prepared == NULL || (tiled && sched == NULL) || (work_doubles > 0 && work == NULL)) {
        if (msg != NULL && len > 0)
            snprintf(msg, len, "the simulation needs %zu bytes of work space",
                     sizeof(double) * work_doubles * (size_t)threads);
        free(prepared);
        qode_tile_schedule_free(sched);
        free(work);
        return QODE_ERR_NO_MEMORY;
    }
    size_t record_doubles =
        record != NULL && sched != NULL ? qode_tile_record_doubles(sched, n, fold) : 0;
    run_ctx x = {c, dtype, data, trainable, prepared, obs, expval, probs, (char *)states,
                 work, work_doubles, tiled, batch, sched,
                 record_doubles > 0 ? record : NULL, record_doubles};
    st = qode_qbatch_run(tiled ? run_tiles : run_rows, &x, units, threads);
    if (recorded != NULL && x.record != NULL && st == QODE_OK)
        *recorded = 1;
    free(prepared);
    free(work);
    qode_tile_schedule_free(sched);
    return st;
}

qode_status qode_qsim_run(const qode_circuit *c, qode_dtype dtype, int64_t batch,
                          const double *data, const double *trainable, void *states,
                          int n_threads, char *msg, size_t len)
{
    return qode_qsim_forward(c, dtype, batch, data, trainable, NULL, NULL, NULL, states, NULL,
                             NULL, n_threads, msg, len);
}

/* ---- expectation values --------------------------------------------------- */

typedef struct {
    const qode_observables *obs;
    qode_dtype dtype;
    int n;
    const char *states;
    double *out;
} expval_ctx;

static void expval_rows(void *arg, int thread, int64_t chunk, int64_t b0, int64_t b1)
{
    const expval_ctx *x = (const expval_ctx *)arg;
    const qode_observables *o = x->obs;
    size_t state_bytes = qode_dtype_size(x->dtype) << x->n;
    for (int64_t b = b0; b < b1; b++) {
        const void *s = x->states + (size_t)b * state_bytes;
        for (int32_t k = 0; k < o->n_obs; k++) {
            double v = 0.0;
            for (int64_t t = o->term_start[k]; t < o->term_start[k + 1]; t++)
                v += o->coeff[t] * qode_qstate_expval_pauli(s, x->dtype, x->n, o->x_mask[t],
                                                           o->z_mask[t]);
            x->out[(size_t)b * o->n_obs + k] = v;
        }
    }
}

qode_status qode_qsim_expval(const qode_observables *obs, qode_dtype dtype, int32_t n,
                             int64_t batch, const void *states, double *out, int n_threads,
                             char *msg, size_t len)
{
    qode_status st;
    if ((st = check_dtype(dtype, msg, len)) != QODE_OK ||
        (st = check_batch(batch, msg, len)) != QODE_OK ||
        (st = qode_observables_validate(obs, n, msg, len)) != QODE_OK)
        return st;
    expval_ctx x = {obs, dtype, n, (const char *)states, out};
    double work = (double)((uint64_t)1 << n) * (double)(obs->term_start[obs->n_obs] + 1);
    return qode_qbatch_run(expval_rows, &x, batch, qode_qbatch_threads(n_threads, batch, work));
}

/* ---- probabilities -------------------------------------------------------- */

typedef struct {
    qode_dtype dtype;
    int n;
    const char *states;
    double *out;
} probs_ctx;

static void probs_rows(void *arg, int thread, int64_t chunk, int64_t b0, int64_t b1)
{
    const probs_ctx *x = (const probs_ctx *)arg;
    size_t dim = (size_t)1 << x->n;
    size_t state_bytes = qode_dtype_size(x->dtype) * dim;
    for (int64_t b = b0; b < b1; b++)
        qode_qstate_probabilities(x->states + (size_t)b * state_bytes, x->dtype, x->n,
                                 x->out + (size_t)b * dim);
}

qode_status qode_qsim_probs(qode_dtype dtype, int32_t n, int64_t batch, const void *states,
                            double *out, int n_threads, char *msg, size_t len)
{
    qode_status st;
    if ((st = check_dtype(dtype, msg, len)) != QODE_OK ||
        (st = check_batch(batch, msg, len)) != QODE_OK)
        return st;
    probs_ctx x = {dtype, n, (const char *)states, out};
    double work = (double)((uint64_t)1 << n);
    return qode_qbatch_run(probs_rows, &x, batch, qode_qbatch_threads(n_threads, batch, work));
}

/* ---- sampling ------------------------------------------------------------- */

/* splitmix64 (Steele, Lea & Flood 2014): tiny, fast, statistically sound. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct {
    qode_dtype dtype;
    int n;
    const char *states;
    int64_t shots;
    uint64_t seed;
    int64_t *out;
    double *cdf; /* one 2^n buffer per thread */
} sample_ctx;

static void sample_rows(void *arg, int thread, int64_t chunk, int64_t b0, int64_t b1)
{
    const sample_ctx *x = (const sample_ctx *)arg;
    size_t dim = (size_t)1 << x->n;
    size_t state_bytes = qode_dtype_size(x->dtype) * dim;
    double *cdf = x->cdf + (size_t)thread * dim;
    for (int64_t b = b0; b < b1; b++) {
        qode_qstate_probabilities(x->states + (size_t)b * state_bytes, x->dtype, x->n, cdf);
        for (size_t i = 1; i < dim; i++)
            cdf[i] += cdf[i - 1];
        double total = cdf[dim - 1];
        /* Generator of circuit b: mix the seed and the row so rows differ. */
        uint64_t state = x->seed;
        uint64_t row_key = splitmix64(&state) ^ ((uint64_t)b * 0xD1B54A32D192ED03ull);
        state = row_key;
        for (int64_t s = 0; s < x->shots; s++) {
            double u = (double)(splitmix64(&state) >> 11) * 0x1.0p-53 * total;
            /* First index with cdf > u. */
            size_t lo = 0, hi = dim - 1;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (cdf[mid] > u)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            x->out[(size_t)b * x->shots + s] = (int64_t)lo;
        }
    }
}

qode_status qode_qsim_sample(qode_dtype dtype, int32_t n, int64_t batch, const void *states,
                             int64_t shots, uint64_t seed, int64_t *out, int n_threads,
                             char *msg, size_t len)
{
    qode_status st;
    if ((st = check_dtype(dtype, msg, len)) != QODE_OK ||
        (st = check_batch(batch, msg, len)) != QODE_OK)
        return st;
    if (shots < 0) {
        if (msg != NULL && len > 0)
            snprintf(msg, len, "shots must be >= 0, got %lld", (long long)shots);
        return QODE_ERR_INVALID_ARGUMENT;
    }
    double work = (double)((uint64_t)1 << n) + (double)shots * n;
    int threads = qode_qbatch_threads(n_threads, batch, work);
    double *cdf = malloc(sizeof(double) * ((size_t)1 << n) * (size_t)threads);
    if (cdf == NULL) {
        if (msg != NULL && len > 0)
            snprintf(msg, len, "sampling needs %zu bytes of work space",
                     sizeof(double) * ((size_t)1 << n) * (size_t)threads);
        return QODE_ERR_NO_MEMORY;
    }
    sample_ctx x = {dtype, n, (const char *)states, shots, seed, out, cdf};
    st = qode_qbatch_run(sample_rows, &x, batch, threads);
    free(cdf);
    return st;
}
