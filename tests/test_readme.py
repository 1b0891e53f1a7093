"""The README's Python examples run as written."""
import os
import re

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def python_blocks():
    with open(README, encoding="utf-8") as handle:
        return re.findall(r"```python\n(.*?)```", handle.read(), flags=re.S)


def test_readme_has_examples():
    assert len(python_blocks()) >= 1


def test_readme_examples_run():
    for block in python_blocks():
        exec(compile(block, README, "exec"), {"__name__": "readme"})
