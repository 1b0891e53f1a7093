"""The quantum benchmark runs (small sizes) and its checks against PennyLane
hold: it asserts that qode's read-outs and gradients agree with
default.qubit and lightning.qubit before it prints a speed-up."""
import os
import subprocess
import sys

import qode

ROOT = os.path.join(os.path.dirname(__file__), "..")


def test_quantum_benchmark_quick_run():
    # the benchmark imports qode from python/ (as its docstring says to run
    # it); point it at the qode this test session imported instead
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(qode.__file__)))
    run = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "quantum_vs_pennylane.py"),
                          "--quick"], capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    for n in (4, 8):
        assert f"-- {n} qubits (read-outs and gradients agree with PennyLane" in run.stdout
    assert run.stdout.count("speed-up of qode (all cores)") == 2
    assert run.stdout.count("in turn (11 rounds") == 2
    assert run.stdout.count("(middle half of the rounds") == 4  # forward, fwd+grad at 4 and 8
    assert "Gate throughput, one 14-qubit state" in run.stdout
