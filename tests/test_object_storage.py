"""Databases on object storage, against a local S3 emulator (moto on 127.0.0.1): the CLI, mistakes, and the
writer lock's lease (wait, take over a dead writer's lease, refuse writes after losing it)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clirun import Ran, invoke

from docrag.indexes.store import Store

pytestmark = pytest.mark.s3

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(env: dict[str, str], *args: str) -> Ran:
    """``docrag ARGS`` in this process, with ``env`` (the emulator's AWS_* variables) set for the call."""
    return invoke(*args, env={**env, "DOCRAG_INGEST__ELEMENTS": "text-layer"})


def one_line(res: Ran, *words: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
    for w in words:
        assert w in res.stderr, res.stderr


@pytest.mark.slow
def test_cli_on_s3_index_search_stats_show_check_remove(s3, tmp_path):
    db = s3.uri("cli")
    res = run(s3.env, "index", str(EXAMPLES), "--db", db, "--profile", "lite", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["indexed"] == 8  # 4 PDFs, LICENSES.md, examples/mixed (3)
    assert Store.exists(db, s3.options)  # the database is in the bucket
    assert not any(k.endswith(".docrag-writer.lock") for k in s3.keys(db.split("/", 3)[3]))  # released at the end

    again = run(s3.env, "index", str(EXAMPLES), "--db", db, "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["skipped"] == 8

    stats = json.loads(run(s3.env, "stats", "--db", db, "--json").stdout)
    assert stats["documents"] == 8 and stats["incomplete_documents"] == 0

    hits = json.loads(run(s3.env, "search", "Huckleberry widow Miss Watson", "--db", db, "-k", "3", "--json").stdout)
    assert Path(hits["hits"][0]["file"]).name == "huckfinn_scan.pdf"

    out = tmp_path / "page.png"
    res = run(s3.env, "show", "huckfinn_scan.pdf", "1", "--db", db, "--out", str(out))
    assert res.returncode == 0 and out.stat().st_size > 1000, res.stderr

    check = json.loads(run(s3.env, "check", "--db", db, "--json").stdout)
    assert check["ok"] and check["tables"]["documents"]["rows"] == 8

    res = run(s3.env, "remove", str(EXAMPLES / "zoo_excerpt.pdf"), "--db", db, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(run(s3.env, "stats", "--db", db, "--json").stdout)["documents"] == 7


@pytest.mark.slow
def test_object_storage_mistakes_get_one_line(s3):
    one_line(run(s3.env, "search", "x", "--db", s3.uri("nothing")), "no docrag database at s3://")
    one_line(run(s3.env, "stats", "--db", "s3://no-such-bucket/db"), "the bucket does not exist")
    dead = {**s3.env, "AWS_ENDPOINT": "http://127.0.0.1:9", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}
    one_line(run(dead, "stats", "--db", s3.uri()), "cannot reach the storage endpoint http://127.0.0.1:9")
    # No writer lock for this kind of storage: refused rather than racing another writer.
    one_line(run(s3.env, "index", str(EXAMPLES), "--db", "memory://db", "--profile", "lite"), "no writer lock")


def test_a_second_writer_on_s3_waits_and_says_so(s3):
    from docrag.indexes.store import LockTimeout, Store

    db = s3.uri("lock")
    store = Store(db, storage_options=s3.options)
    with store.writer_lock():
        res = run(s3.env, "index", str(EXAMPLES), "--db", db, "--profile", "lite", "--wait", "1")
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("waiting: ") and "being written by pid" in lines[1], lines
        other = Store(db, writable=False, storage_options=s3.options)
        with pytest.raises(LockTimeout), other.writer_lock(wait_s=0.3):
            pass
    with Store(db, writable=False, storage_options=s3.options).writer_lock(wait_s=1):
        pass  # released


def test_a_dead_writers_lease_expires_and_is_taken_over(s3):
    from docrag.indexes.locks import LockTimeout, hold_writer_lock

    db = s3.uri("dead")
    # A writer that takes a 2-second lease and dies without releasing it.
    code = (
        "import os\nfrom docrag.indexes.locks import hold_writer_lock\n"
        f"with hold_writer_lock({db!r}, {s3.options!r}, lease_s=2):\n    os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert any(k.endswith(".docrag-writer.lock") for k in s3.keys(db.split("/", 3)[3]))
    with pytest.raises(LockTimeout, match="being written by pid"), hold_writer_lock(db, s3.options, wait_s=0.2):
        pass
    t0 = time.monotonic()
    with hold_writer_lock(db, s3.options, wait_s=30) as lock:
        assert not lock.lost
    assert time.monotonic() - t0 < 15


def test_a_writer_that_lost_its_lease_stops_writing(s3, monkeypatch):
    from docrag.indexes import locks
    from docrag.indexes.locks import LockError, hold_writer_lock
    from docrag.indexes.store import Store, StoreError

    db = s3.uri("lost")
    store = Store(db, storage_options=s3.options, writable=True)
    monkeypatch.setattr(locks, "LEASE_S", 1.5)  # renewed every 0.5 s
    with store.writer_lock():
        lease = store.db._lock
        real_put = lease.renew_client.put_object

        def unreachable(**kw):  # the writer stalls: its renewals do not get through
            raise LockError("stalled")

        lease.renew_client.put_object = unreachable
        with hold_writer_lock(db, s3.options, wait_s=60, lease_s=1.5):  # another writer takes the stale lease
            lease.renew_client.put_object = real_put
            deadline = time.monotonic() + 30
            while not lease.lost and time.monotonic() < deadline:
                time.sleep(0.1)
            assert lease.lost
            with pytest.raises(StoreError, match="lock expired"):
                store.documents.add("d" * 64, "/x.pdf", 1, 0.0, 1, {})
