"""Builds and runs the C core's own test programs under the sanitizers.

Every ``tests/c/test_*.c`` is a plain C program (no Python) that checks the
core through its C interface and ends by printing ``N passed, M failed``.  Each
one is compiled together with every ``csrc/**/*.c`` except the CPython binding
(``csrc/binding/``), with AddressSanitizer (which includes LeakSanitizer) and
UndefinedBehaviorSanitizer, and must exit 0 with ``0 failed`` on its last line.
The programs that run thread pools also run under ThreadSanitizer.
New parts of the core (``csrc/quantum``, ``csrc/social``, ...) and their test
programs are picked up without changes here.

Without gcc these tests are skipped, except in CI (``CI=true``), where a
missing compiler must not pass silently.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
C_TESTS = sorted((ROOT / "tests" / "c").glob("test_*.c"))

CFLAGS = [
    "-std=c11", "-O1", "-g",
    "-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all",
    f"-I{CSRC}",
]
LIBS = ["-lm", "-pthread"]
UBSAN_OPTIONS = "print_stacktrace=1:halt_on_error=1"
SUMMARY = re.compile(r"^(\d+) passed, (\d+) failed$")
RUN_TIMEOUT_S = 300


def core_sources() -> list[Path]:
    """Every C file of the core: all of csrc/ but the Python binding."""
    binding = CSRC / "binding"
    return sorted(p for p in CSRC.rglob("*.c") if binding not in p.parents)


def _run(cmd: list[str], env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                          timeout=timeout, text=True, errors="replace")


@pytest.fixture(scope="session")
def gcc() -> str:
    path = shutil.which("gcc")
    if path is None:
        message = "gcc not found: the C core's sanitizer tests cannot run"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def core_objects(gcc: str, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Compiles the core once per session; each test program links against it."""
    out_dir = tmp_path_factory.mktemp("c_core_objects")

    def compile_one(source: Path) -> tuple[Path, subprocess.CompletedProcess]:
        # Flatten the path so that csrc/a/x.c and csrc/b/x.c do not collide.
        obj = out_dir / (str(source.relative_to(CSRC)).replace(os.sep, "__") + ".o")
        return obj, _run([gcc, *CFLAGS, "-c", str(source), "-o", str(obj)])

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(compile_one, core_sources()))
    failures = [r.stdout for _, r in results if r.returncode != 0]
    if failures:
        pytest.fail("compiling the C core failed:\n" + "\n".join(failures))
    return [obj for obj, _ in results]


@pytest.fixture(scope="session")
def sanitizer_env(gcc: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The environment the test programs run in, with leak checking if it works.

    LeakSanitizer stops the process with ptrace to scan its memory, so it does
    not work when the process is already traced (a debugger, strace, some
    sandboxes and CI containers without CAP_SYS_PTRACE); it then aborts with
    "LeakSanitizer does not work under ptrace" and every program would fail.
    A deliberately leaking probe tells whether leaks are reported here; if not,
    the tests still run with AddressSanitizer and UBSan, without leak checking.
    """
    probe_dir = tmp_path_factory.mktemp("lsan_probe")
    source = probe_dir / "leak.c"
    source.write_text("#include <stdlib.h>\n"
                      "void *volatile keep;\n"
                      "int main(void) { keep = malloc(33); keep = 0; return 0; }\n")
    exe = probe_dir / "leak"
    build = _run([gcc, *CFLAGS, str(source), "-o", str(exe), *LIBS])
    if build.returncode != 0:
        pytest.fail("gcc cannot build with -fsanitize=address,undefined:\n" + build.stdout)

    env = dict(os.environ, UBSAN_OPTIONS=UBSAN_OPTIONS,
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=0")
    probe = _run([str(exe)], env=env, timeout=60)
    if "detected memory leaks" not in probe.stdout:
        reason = ("LeakSanitizer does not work under ptrace here"
                  if "does not work under ptrace" in probe.stdout
                  else "LeakSanitizer did not report a deliberate leak here")
        warnings.warn(f"{reason}; running the C tests without leak checking "
                      f"(probe output: {probe.stdout.strip()[:300]!r})")
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
    return env


@pytest.mark.parametrize("source", C_TESTS, ids=[p.name for p in C_TESTS])
def test_c_program(source: Path, gcc: str, core_objects: list[Path], sanitizer_env: dict,
                   tmp_path: Path) -> None:
    exe = tmp_path / source.stem
    build = _run([gcc, *CFLAGS, str(source), *map(str, core_objects), "-o", str(exe), *LIBS])
    assert build.returncode == 0, f"compiling {source.name} failed:\n{build.stdout}"

    result = _run([str(exe)], env=sanitizer_env, timeout=RUN_TIMEOUT_S)
    _assert_all_checks_passed(result, f"{source.name} "
                              f"(ASAN_OPTIONS={sanitizer_env['ASAN_OPTIONS']})")


def _assert_all_checks_passed(result: subprocess.CompletedProcess, what: str) -> None:
    """Exit status 0 and a last line "N passed, 0 failed" with N > 0."""
    output = result.stdout
    lines = output.strip().splitlines()
    summary = SUMMARY.match(lines[-1] if lines else "")
    context = f"{what} exited with {result.returncode}; output:\n{output}"
    assert result.returncode == 0, context
    assert summary is not None and summary.group(2) == "0", context
    assert int(summary.group(1)) > 0, context


def _fma_flags() -> list[str]:
    """The instruction set the core's AVX2/FMA clones use, where this CPU has it."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read().split()
    except OSError:
        return []
    return ["-march=x86-64-v3"] if {"avx2", "fma"} <= set(flags) else []


def test_fast_sincos_built_as_the_tiled_path(gcc: str, tmp_path: Path) -> None:
    """tiled.c compiles fast_sincos.h with fused multiply-adds at -O3, which the
    sanitizer build (-O1, no contraction) does not exercise: check that build."""
    source = ROOT / "tests" / "c" / "test_fast_math.c"
    exe = tmp_path / "test_fast_sincos_contracted"
    build = _run([gcc, "-std=c11", "-O3", "-ffp-contract=fast", *_fma_flags(),
                  "-DQODE_FAST_MATH_CONTRACTED", f"-I{CSRC}", str(source), "-o", str(exe), "-lm"])
    assert build.returncode == 0, build.stdout
    _assert_all_checks_passed(_run([str(exe)], timeout=RUN_TIMEOUT_S),
                              "test_fast_math.c built with contraction")


THREADED_C_TESTS = ["test_quantum.c", "test_social.c"]


@pytest.mark.parametrize("name", THREADED_C_TESTS)
def test_threaded_c_program_under_thread_sanitizer(name: str, gcc: str, tmp_path: Path) -> None:
    """The thread pools (quantum worker pool, social threads) under
    ThreadSanitizer: no data races in the threaded tests, which include
    repeated jobs on the pool and threads against one thread.  A child
    forked from a threaded process starting threads is outside what TSan
    supports, so it runs with die_after_fork=0."""
    source = ROOT / "tests" / "c" / name
    exe = tmp_path / (source.stem + "_tsan")
    build = _run([gcc, "-std=c11", "-O1", "-g", "-fsanitize=thread", f"-I{CSRC}", str(source),
                  *map(str, core_sources()), "-o", str(exe), *LIBS])
    assert build.returncode == 0, f"compiling {name} with -fsanitize=thread failed:\n{build.stdout}"
    env = dict(os.environ, TSAN_OPTIONS="halt_on_error=1:die_after_fork=0")
    _assert_all_checks_passed(_run([str(exe)], env=env, timeout=RUN_TIMEOUT_S),
                              f"{name} under ThreadSanitizer")
