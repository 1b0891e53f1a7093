/* The batched path for small circuits: QODE_TILE_LANES circuits at a time.
 *
 * A circuit of a few qubits has so few amplitudes (16 for 4 qubits) that a
 * loop over them cannot use the vector units, and per-gate overheads dominate.
 * Here the state vectors of QODE_TILE_LANES circuits are interleaved, amplitude
 * by amplitude ("lanes", as in SIMD), with real and imaginary parts in separate
 * planes:
 *     re[i * LANES + l], im[i * LANES + l]   (amplitude i of circuit l).
 * Each gate then updates all lanes of an amplitude pair in one short loop that
 * the compiler vectorises, every lane with its own gate matrix (the circuits
 * differ in their data angles).  Arithmetic is in double for both state
 * dtypes; complex64 results are rounded when stored.
 *
 * Used by simulate.c and adjoint.c when n_qubits <= QODE_TILE_MAX_QUBITS and
 * the batch has more than one circuit.  tiled_schedule.c plans the steps,
 * tiled.c runs them (forward, read-outs, adjoint) with the state passes of
 * tile_kernels.c, the per-lane block algebra of tiled_blocks.c and the
 * product-state prefix of tiled_prefix.c.
 *
 * Six shortcuts make a variational circuit cheap (tiled_schedule.c):
 *   - the product-state prefix: a block that is the first step on its wire
 *     acts on |0>, commutes with every earlier step and can run first; all
 *     such blocks together make a product state, built directly, and their
 *     gradients come from contractions of lambda with that product state;
 *   - trailing CNOT, SWAP and CZ gates are folded into Z-type observables;
 *   - a run of CNOT, Toffoli and SWAP gates (a CNOT ring) is one permutation
 *     of the amplitudes, applied as one gather from a precomputed table;
 *   - the adjoint stores the forward state before each remaining step that it
 *     differentiates (when they fit) instead of un-applying gates to it;
 *   - the last layer, shared blocks on distinct wires right before the
 *     read-out, needs no stored states: its blocks commute, so all are
 *     differentiated from the final state and lambda, none un-applied, and
 *     for diagonal read-outs (lambda = d phi, d real) from phi and d alone
 *     (8 qubits, seed 002's VQC: adjoint x1.09 on one thread, x1.23 on two);
 *   - dense mode (tiled_dense.h): when everything after a real encoding reads
 *     no data and the circuit is small, it is one matrix U per call, and the
 *     weight gradients come from one sweep per call, not per circuit.
 *
 * Counted and not built (December 2026), for seed 002's VQC:
 *   - read-outs in the Heisenberg picture (Pauli strings evaluated on the
 *     product state): the folded CNOT ring makes <Z_q> a Z word on up to n
 *     wires (weights 3, 2, 3, 4 at 4 qubits), and the last layer's rotations
 *     make a word of weight w into 3^w strings: 144 strings per 4-qubit
 *     circuit, 12024 per 8-qubit one, no less work than U psi or the eight
 *     block passes;
 *   - keeping the final state from the forward pass for the last layer's
 *     adjoint (16 MB per 4096 eight-qubit circuits): it would spare the
 *     adjoint its forward pass, about 4.5 ms of a 22 ms forward+backward on
 *     one thread, less the 16 MB written and read back.
 */
#ifndef QODE_QUANTUM_TILED_H
#define QODE_QUANTUM_TILED_H

#include <stddef.h>
#include <stdint.h>

#include "quantum/circuit.h"
#include "quantum/prepare.h"

#define QODE_TILE_LANES 8
#define QODE_TILE_MAX_QUBITS 10
/* The observable matrix (below) up to 8 qubits: its two products beat a
 * signed pass per term (8 qubits, seed 002's VQC: forward x1.26, adjoint
 * x1.13 on one thread), and |psi|^2 and M^T g of a tile still fit on the
 * stack (16 KiB each) */
#define QODE_TILE_OBS_MATRIX_MAX_QUBITS 8
#define QODE_TILE_OBS_MATRIX_MAX_OBS 64

/* Gate fusion.  One-qubit gates on different wires commute, and a one-qubit
 * gate commutes with every gate that does not touch its wire.  So the circuit
 * is executed as a list of steps: a multi-qubit gate, or a "block", the
 * product of all one-qubit gates on one wire since that wire was last touched
 * by a multi-qubit gate.  A block costs one pass over the state however many
 * gates it holds (seed 002's RY + RX RY RZ on a wire is one pass), and in the
 * adjoint sweep all its angles are differentiated from one reduced 2x2
 * matrix (see qode_tile_adjoint). */
typedef struct {
    int32_t op;        /* multi-qubit step: index of the op; block and permutation: -1 */
    int32_t wire;      /* block: its wire */
    int32_t start;     /* block: first entry in block_ops; permutation: its tables in perms */
    int32_t count;     /* block: number of ops; permutation: number of gates (>= 2) */
    int32_t seg_start; /* block: first of its segments */
    int32_t seg_count;
    int32_t shared;    /* block: 1 if no op of it reads data (same for all lanes) */
    int32_t prefix;    /* block: the first step on its wire (part of the product state) */
    int32_t checkpoint; /* adjoint: slot of the stored state before this step, or -1 */
    int32_t permutation; /* 1 for a run of permutation gates merged into one step */
    int32_t tail;       /* dense schedule, prefix block: 1 when the shared run after its
                         * last data segment (at seg_start + seg_count) moved into the
                         * dense matrix (tiled_dense.h) */
} qode_tile_step;

/* A block is a product of segments: a single op that reads data (different
 * in every circuit), or a run of ops that do not (pre-multiplied once per
 * call into `m`).  For each trainable angle in a run, `grad` lists the 2x2
 * A = (run after the op) dU/dt (run before the op), so that the angle's
 * gradient is 2 Re Tr(A Q) with Q the per-lane reduced matrix of the run. */
typedef struct {
    int32_t data_op;    /* index of the op, or -1 for a shared run */
    double m[8];        /* shared run: its product */
    int32_t grad_start; /* shared run: its entries in the schedule's grads */
    int32_t grad_count;
    /* A data op RX/RY/RZ(data(k)) is U(t) = cos(t/2) U(0) + sin(t/2) U(pi):
     * rotation = 1, column k, m = U(0), m_pi = U(pi); no general gate build. */
    int32_t rotation;
    int32_t column;
    double m_pi[8];
} qode_tile_segment;

typedef struct {
    double a[8];
    int32_t index; /* trainable index */
} qode_tile_shared_grad;

typedef struct qode_tile_wire_rotation {
    int32_t column; /* data column of the wire's rotation, -1 for none */
    double a[2], b[2]; /* U(0)|0> and U(pi)|0> of the rotation (real) */
    double k[4];       /* K, row-major: dv/dt = K v / 2 for the column v */
} qode_tile_wire_rotation;

typedef struct {
    int32_t n_steps;
    qode_tile_step *steps;
    int32_t *block_ops; /* op indices of all blocks, each block in circuit order */
    int32_t max_block;  /* longest block */
    qode_tile_segment *segments;
    qode_tile_shared_grad *grads;
    int32_t n_prefix;      /* prefix blocks */
    int32_t main_end;      /* steps [main_end, n_steps) are folded into obs */
    qode_observables obs;  /* what is read after step main_end - 1 (n_obs = 0: none) */
    uint64_t *folded_z;    /* its z masks, when folded (owned) */
    int32_t n_checkpoints; /* states the adjoint stores per tile */
    /* adjoint: the main steps in [last_layer, main_end) are shared blocks on
     * distinct wires (a variational circuit's last rotation layer), all
     * differentiated from the final state, with no checkpoints (see
     * qode_tile_adjoint); main_end when there are none.  first_reader: the
     * first main step before last_layer whose adjoint reads the forward
     * state before it (a block or an op; main_end when none does), so that
     * without checkpoints the state is moved back only as far as some step
     * will read it. */
    int32_t last_layer, first_reader;
    /* permutation steps: at perms + start, 2^n source indices of the gather
     * out[j] = in[src[j]], then 2^n of the inverse gather */
    int32_t n_permutations;
    int32_t *perms;
    /* dense mode (tiled_dense.h): steps [0, main_end) after the prefix, and
     * the prefix blocks' tails, as one matrix U; dense_u holds its re plane
     * then its im plane, dim x dim each, row-major (owned) */
    /* Diagonal observables of up to QODE_TILE_OBS_MATRIX_MAX_QUBITS qubits
     * as one matrix: entry (k, i) = sum over the terms t of observable k of
     * coeff_t (-1)^{popcount(i & z_t)}, so that the read-outs are M |psi|^2
     * and the diagonal of the adjoint seed is M^T g, two small matrix
     * products per tile.  obs_rows = n_obs rounded up to 4 (zero rows);
     * obs_matrix_t is M^T.  NULL when not used (owned). */
    int32_t obs_rows;
    double *obs_matrix, *obs_matrix_t;
    int32_t dense;
    /* dense mode, when every prefix head is a single real rotation of data
     * (RY(x) as the first gate of each wire): per wire, its data column (-1:
     * the wire stays |0>), its column v = c a + s b (c, s of half the
     * angle) and the derivative dv/dt = (c b - s a) / 2 = K v / 2 (NULL
     * otherwise; owned) */
    struct qode_tile_wire_rotation *rotations;
    double *dense_u;
    double *dense_w; /* (Re U^T | Im U^T): dim x 2 dim, row-major (owned) */
    int32_t n_dense_factors; /* the steps that make up U, in the order they act */
    int32_t *dense_factors;
} qode_tile_schedule;

/* Builds the schedule of a validated circuit (NULL when out of memory), with
 * the shared matrices taken from `prepared` (with derivatives when
 * `with_derivatives`, as qode_prepare_gates was called).  `obs` (may be NULL)
 * are the observables read out; `fold` allows folding trailing gates into
 * them, which is right only when nothing else (states, probabilities) is
 * read. */
qode_tile_schedule *qode_tile_schedule_new(const qode_circuit *c,
                                           const qode_prepared_gate *prepared,
                                           int with_derivatives, const qode_observables *obs,
                                           int fold);
void qode_tile_schedule_free(qode_tile_schedule *s);

/* Doubles of work space one thread needs: forward (adjoint = 0) or adjoint. */
size_t qode_tile_work_doubles(const qode_tile_schedule *s, int n_qubits, int adjoint);

/* Of which the per-lane matrices of one block (tiled_blocks.h). */
size_t qode_tile_block_scratch_doubles(const qode_tile_schedule *s);

/* Doubles of one tile state (both planes). */
size_t qode_tile_state_doubles(int n_qubits);

/* Everything one tile computation reads; rows [b0, b0 + valid) of the batch. */
typedef struct {
    const qode_circuit *c;
    const qode_tile_schedule *sched;
    const qode_prepared_gate *prepared;
    const double *data;
    const double *trainable;
    int64_t b0;
    int valid; /* 1 .. QODE_TILE_LANES; the other lanes repeat row b0 */
    int slot;  /* adjoint: the tile's place in its chunk (0, 1, ...) */
} qode_tile_job;

/* Runs the circuits of the tile from |0...0> up to step main_end into
 * `state` (a tile state: the re plane, then the im plane); `work` as from
 * qode_tile_work_doubles(..., 0) minus the tile state. */
void qode_tile_forward(const qode_tile_job *job, double *state, double *work);

/* The forward record of a dense schedule whose encoding is wire rotations
 * (tiled_dense.h): per tile, the product state psi (one plane) and U psi
 * (re plane, im plane), written by the forward so that the adjoint need not
 * build them again (4 qubits, seed 002's VQC: the adjoint x1.4 on one
 * thread, the forward x0.9).
 *   qode_tile_record_tile_doubles: the doubles of one tile's record.
 *   qode_tile_record_doubles: those a call with schedule s keeps per tile, 0
 *     when it keeps none.  s must be such a schedule, and only expectation
 *     values may be read or differentiated (`fold`, as for
 *     qode_tile_schedule_new): then the forward and the adjoint plan the
 *     same U.
 *   qode_tile_record_forward: the forward pass of the tile into its record;
 *     work as for qode_tile_forward; the read-outs then take U psi from
 *     record + L 2^n. */
size_t qode_tile_record_tile_doubles(int n_qubits);
size_t qode_tile_record_doubles(const qode_tile_schedule *s, int n_qubits, int fold);
void qode_tile_record_forward(const qode_tile_job *job, double *record, double *work);

/* Read-outs of a simulated tile (each may be NULL):
 *   expval  rows b0.. of a (batch, n_obs) matrix (the schedule's observables),
 *   probs   rows b0.. of a (batch, 2^n) matrix,
 *   states  rows b0.. of a (batch, 2^n) complex matrix of dtype. */
void qode_tile_readout(const qode_tile_job *job, const double *re, const double *im,
                       double *expval, double *probs, void *states, qode_dtype dtype);

/* A dense schedule's adjoint (tiled_dense.h) sums C = sum_b psi_b lam_b^+
 * over the tiles of a chunk in the work space, from the chunk's first tile
 * (slot 0; the first sums overwrite what the space held) to its last:
 * qode_tile_chunk_finish completes them after that one (`tiles` in all, at
 * least 1) and writes them (qode_tile_chunk_doubles: 2 dim^2, none for
 * other schedules) to `out`.  qode_tile_dense_gradients takes their total. */
size_t qode_tile_chunk_doubles(const qode_tile_schedule *s, int n_qubits);
void qode_tile_chunk_finish(const qode_tile_schedule *s, int n_qubits, int64_t tiles,
                            double *work, double *out);

/* Adjoint sweep for a tile (the schedule's observables, with derivatives).
 * Work space: qode_tile_work_doubles(..., 1).  `record` is the tile's
 * forward record (qode_tile_record_forward, same circuit, data and
 * trainable values) or NULL (then the forward pass runs again); NULL for a
 * call that keeps none (qode_tile_record_doubles).  Adds the trainable gradients (summed
 * over the valid lanes) into grad_trainable and writes rows b0.. of
 * grad_data. */
void qode_tile_adjoint(const qode_tile_job *job, const double *grad_expval,
                       const double *grad_probs, const double *record, double *work,
                       double *grad_data, double *grad_trainable);

#endif /* QODE_QUANTUM_TILED_H */
