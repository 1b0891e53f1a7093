"""Shared pytest configuration."""
import os
import sys

# The tests import the installed package; a checkout with an in-place build
# (`python setup.py build_ext --inplace`) works too when python/ is on the path.
HERE = os.path.dirname(os.path.abspath(__file__))
if os.environ.get("QODE_TEST_INPLACE") == "1":
    sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, HERE)  # for the shared helpers in tests/ (problems.py, ...)
