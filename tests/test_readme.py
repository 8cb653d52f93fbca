"""The README's Python examples run as written."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path):
    blocks = _python_blocks()
    assert len(blocks) >= 2 and "docrag.open" in blocks[0]
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
    assert (tmp_path / "docrag-demo.db").is_dir()
