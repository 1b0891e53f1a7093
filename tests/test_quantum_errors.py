"""Bad input gives a clear Python exception, never a crash: in the circuit
builder, in the execution functions, and in the C core itself (raw specs sent
straight to qode._C bypass the builder's checks)."""
import numpy as np
import pytest
import torch

import qode.quantum as qq
from qode import _C


def test_builder_rejects_bad_wires_and_angles():
    c = qq.Circuit(3)
    with pytest.raises(ValueError, match="wire 3 out of range"):
        c.rx(3, 0.1)
    with pytest.raises(ValueError, match="wire -1 out of range"):
        c.h(-1)
    with pytest.raises(ValueError, match="repeated wires"):
        c.cnot(1, 1)
    with pytest.raises(ValueError, match="repeated wires"):
        c.toffoli(0, 2, 0)
    with pytest.raises(ValueError, match="non-finite constant angle"):
        c.ry(0, float("nan"))
    with pytest.raises(ValueError, match="takes 3 angle"):
        c.add("Rot", 0, 0.1)
    with pytest.raises(ValueError, match="unknown gate"):
        c.add("Foo", 0)
    with pytest.raises(ValueError, match="not unitary"):
        c.unitary(np.array([[1, 1], [0, 1]]), 0)
    with pytest.raises(ValueError, match="at least one qubit"):
        qq.Circuit(0)
    with pytest.raises(ValueError, match="letters"):
        qq.pauli("XZ", [0])


def test_execution_rejects_wrong_shapes_and_nan():
    c = qq.vqc_circuit(3, 1)  # 3 data columns, 9 weights
    obs = qq.z_all(3)
    good_d, good_w = np.zeros((4, 3)), np.zeros(9)
    with pytest.raises(ValueError, match=r"data must have shape \(\.\.\., 3\)"):
        qq.expval(c, obs, np.zeros((4, 2)), good_w)
    with pytest.raises(ValueError, match=r"weights must have shape \(9,\)"):
        qq.expval(c, obs, good_d, np.zeros(8))
    with pytest.raises(ValueError, match=r"weights must have shape \(9,\)"):
        qq.expval(c, obs, good_d, np.zeros((9, 1)))
    with pytest.raises(ValueError, match="pass data"):
        qq.expval(c, obs, None, good_w)
    bad = good_d.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite angle nan in the data of circuit 2, column 1"):
        qq.expval(c, obs, bad, good_w)
    with pytest.raises(ValueError, match="non-finite trainable angle inf at index 0"):
        qq.expval(c, obs, torch.tensor(good_d), torch.full((9,), float("inf")))
    with pytest.raises(ValueError, match="wire 3"):
        qq.expval(c, [qq.pauli("Z", 3)], good_d, good_w)
    with pytest.raises(ValueError, match="dtype"):
        qq.expval(c, obs, good_d, good_w, dtype="float16")
    with pytest.raises(ValueError, match="shots"):
        qq.sample(c, 0, good_d, good_w)


def test_state_too_large_for_memory_names_the_bytes():
    c = qq.Circuit(40).h(0)
    with pytest.raises(MemoryError, match=r"needs 17592186044416 bytes"):
        qq.state(c)
    c = qq.Circuit(62).h(0)
    with pytest.raises(MemoryError, match="bytes"):
        qq.probs(c)
    # read-outs only still need a state vector
    c = qq.Circuit(41).h(0)
    with pytest.raises(MemoryError, match=r"needs 35184372088832 bytes"):
        qq.expval(c, [qq.pauli("Z", 0)])
    with pytest.raises(MemoryError, match="bytes"):
        qq.expval(c, [qq.pauli("Z", 0)], dtype="complex64")


def raw_spec(ops, refs=((2, 0),), values=(0.3,), n_qubits=2, n_data=0, n_trainable=0):
    return (n_qubits, np.array(ops, np.int32).reshape(-1, 6), np.array(refs, np.int32).reshape(-1, 2),
            np.array(values, np.float64), np.zeros(0, np.complex128), n_data, n_trainable)


@pytest.mark.parametrize("ops,message", [
    ([[7, 5, 0, 0, 0, 0]], "wire 5 out of range for 2 qubits"),
    ([[13, 1, 1, 0, 0, 0]], "wire 1 repeated"),
    ([[99, 0, 0, 0, 0, 0]], "unknown gate kind 99"),
    ([[11, 0, 0, 0, 0, 0]], "parameter references 0..2 out of range"),
    ([[23, 0, 0, 0, 0, 0]], "matrix offset 0 out of range"),
])
def test_core_validates_raw_circuits(ops, message):
    with pytest.raises(ValueError, match=message):
        _C.qsim_run(raw_spec(ops), np.zeros((1, 0)), np.zeros(0), 3, 1)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, -np.nan])
@pytest.mark.parametrize("row", [0, 341, 342, 699])
def test_data_scan_finds_the_first_non_finite_angle_in_any_block(value, row):
    # the core scans data in blocks of 1024 values (3 per row here): the first
    # bad one is named wherever it lies, and the extreme finite values pass
    c, obs = qq.vqc_circuit(3, 1), qq.z_all(3)
    data = np.full((700, 3), 0.5)
    data[1, 0], data[2, 1], data[3, 2] = np.finfo(float).max, -np.finfo(float).max, 5e-324
    qq.expval(c, obs, data, np.zeros(9))  # finite, however large or small
    if row < 699:
        data[699, 2] = np.inf  # a later one is not named
    data[row, 2] = value
    name = "-?nan" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    with pytest.raises(ValueError, match=f"non-finite angle {name} in the data of circuit "
                                         f"{row}, column 2"):
        qq.expval(c, obs, data, np.zeros(9))


def test_core_rejects_out_of_range_parameter_sources_and_nan():
    spec = raw_spec([[7, 0, 0, 0, 0, 0]], refs=((0, 4),), values=(0.0,), n_data=2)
    with pytest.raises(ValueError, match="data column index 4, but there are 2"):
        _C.qsim_run(spec, np.zeros((1, 2)), np.zeros(0), 3, 1)
    spec = raw_spec([[7, 0, 0, 0, 0, 0]], refs=((0, 1),), values=(0.0,), n_data=2)
    with pytest.raises(ValueError, match="non-finite angle nan in the data of circuit 0, column 1"):
        _C.qsim_run(spec, np.array([[0.0, np.nan]]), np.zeros(0), 3, 1)
    with pytest.raises(ValueError, match=r"shape \(batch, 2\)"):
        _C.qsim_run(spec, np.zeros((1, 3)), np.zeros(0), 3, 1)
    with pytest.raises(ValueError, match="dtype"):
        _C.qsim_run(spec, np.zeros((1, 2)), np.zeros(0), 1, 1)


def test_core_rejects_bad_states_and_upstream_gradients():
    c = qq.vqc_circuit(2, 1)
    d, w = np.zeros((3, 2)), np.zeros(6)
    states = qq.state(c, d, w)
    with pytest.raises(ValueError, match="2\\^n"):
        _C.qsim_probs(np.zeros((3, 3), np.complex128), 1)
    with pytest.raises(TypeError, match="complex"):
        _C.qsim_probs(np.zeros((3, 4)), 1)
    obs = qq.observables.observables_spec(qq.z_all(2), 2)
    with pytest.raises(ValueError, match="expectation values must have shape"):
        _C.qsim_adjoint_vjp(c.spec(), d, w, 3, states, None, obs, np.zeros((3, 5)), None, 1)
    with pytest.raises(ValueError, match="states must have shape"):
        _C.qsim_adjoint_vjp(c.spec(), d, w, 3, states[:2], None, obs, None, None, 1)
    bad_obs = (np.array([0, 1]), np.array([8], np.uint64), np.array([0], np.uint64), np.array([1.0]))
    with pytest.raises(ValueError, match="beyond the 2 qubits"):
        _C.qsim_expval(bad_obs, states, 1)
