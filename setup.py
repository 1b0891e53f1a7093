"""Build script for the one extension module ``qode._C``.

Metadata lives in ``setup.cfg``; this file only lists the C sources, which are
every ``.c`` file under ``csrc/`` (the C core and its CPython binding).
"""
from pathlib import Path

import numpy
from setuptools import Extension, setup

ROOT = Path(__file__).parent
SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "csrc").rglob("*.c"))

extension = Extension(
    "qode._C",
    sources=SOURCES,
    include_dirs=["csrc", numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=["-std=c11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-pthread"],
    extra_link_args=["-pthread"],
    libraries=["m"],
)

setup(ext_modules=[extension])
