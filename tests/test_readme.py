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
def test_readme_python_examples_run(tmp_path, monkeypatch):
    blocks = _python_blocks()
    assert len(blocks) >= 2 and "docrag.open" in blocks[0]
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    # The object-storage example runs against the local S3 emulator, with the bucket it names.
    buckets = sorted(set(re.findall(r"s3://([a-z0-9-]+)/", "".join(blocks))))
    servers = []
    if buckets:
        from s3server import S3Server

        servers = [S3Server(bucket=buckets[0])]
        for b in buckets[1:]:
            servers[0].client.create_bucket(Bucket=b)
        for key, value in servers[0].env.items():
            if key.startswith("AWS_"):
                monkeypatch.setenv(key, value)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    finally:
        os.chdir(cwd)
        for server in servers:
            server.stop()
    assert (tmp_path / "docrag-demo.db").is_dir()
