"""Checkpoints download on first use, through the real huggingface_hub client, from a local hub server.

The server (tests/hubserver.py) serves tiny random checkpoints in the hub's layout on 127.0.0.1; the
commands run in subprocesses with ``HF_ENDPOINT`` pointed at it and an empty ``HF_HOME``. This is the only
place the test run lets downloads happen (everything else keeps HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hubserver import HubServer

EXE = str(Path(sys.executable).with_name("docrag"))
VISUAL, UNIFIED = "tiny-org/colsmol-tiny", "tiny-org/siglip-tiny"


OFFLINE_FIRST_LINE = (
    "error the cpu profile's models are not on this machine and downloads are off (HF_HUB_OFFLINE=1 or --offline): "
    "use `--profile lite` (offline), or run `docrag models pull cpu` on a connected machine"
)


@pytest.fixture
def hub(tiny):
    with HubServer({VISUAL: tiny["colidefics3"], UNIFIED: tiny["siglip"]}) as server:
        yield server


def _config(tmp_path: Path, hub: HubServer) -> Path:
    cfg = tmp_path / "docrag.toml"
    cfg.write_text(
        "\n".join(
            [
                'profile = "cpu"',
                "[visual]",
                'type = "colidefics3"',
                f'model = "{VISUAL}"',
                f'revision = "{hub.sha(VISUAL)}"',
                "batch_size = 2",
                "[text]",
                'type = "siglip"',  # a tiny two-tower model serves both legs here: one checkpoint
                f'model = "{UNIFIED}"',
                f'revision = "{hub.sha(UNIFIED)}"',
                "[image]",
                'type = "siglip"',
                f'model = "{UNIFIED}"',
                f'revision = "{hub.sha(UNIFIED)}"',
                "[router]",
                'visual_pages = "auto"',
            ]
        )
        + "\n"
    )
    return cfg


def _run(
    args: list[str], hub: HubServer, hf_home: Path, *, offline: bool, endpoint: str | None = None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_OFFLINE", "DOCRAG_"))}
    env["DOCRAG_CACHE_DIR"] = os.environ["DOCRAG_CACHE_DIR"]  # conftest's folder: exports never reach ~/.cache
    env.update(HF_ENDPOINT=endpoint or hub.endpoint, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1")
    env["HF_HUB_OFFLINE"] = "1" if offline else "0"
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_index_downloads_missing_checkpoints_then_runs_offline(tmp_path, hub, docs):
    cfg, hf_home, db = _config(tmp_path, hub), tmp_path / "hf", tmp_path / "db"
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("prose", "chart"):
        shutil.copy(docs[name], folder)

    proc = _run(["index", str(folder), "--db", str(db), "--config", str(cfg), "--json"], hub, hf_home, offline=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["indexed"] == 2
    # Both checkpoints came over HTTP from the local hub into the standard cache, at their pinned commits.
    fetched = hub.downloads()
    assert any(p.startswith(f"/{VISUAL}/resolve/{hub.sha(VISUAL)}/") for p in fetched)
    assert any(p.startswith(f"/{UNIFIED}/resolve/{hub.sha(UNIFIED)}/") for p in fetched)
    for repo in (VISUAL, UNIFIED):
        snap = hf_home / "hub" / f"models--{repo.replace('/', '--')}" / "snapshots" / hub.sha(repo)
        assert (snap / "config.json").is_file()
        assert (snap / "model.safetensors").is_file()

    # From the cache, without the network: search works offline and asks the server for nothing.
    hub.requests.clear()
    proc = _run(["search", "quarterly revenue", "--db", str(db), "--json"], hub, hf_home, offline=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["hits"], proc.stdout
    # A second index run online finds everything cached: no file is fetched again.
    proc = _run(["index", str(folder), "--db", str(db), "--config", str(cfg), "--json"], hub, hf_home, offline=False)
    assert proc.returncode == 0, proc.stderr
    assert hub.downloads() == []


def test_offline_with_empty_cache_fails_once_naming_every_model(tmp_path, hub, docs):
    cfg, hf_home, db = _config(tmp_path, hub), tmp_path / "hf", tmp_path / "db"
    proc = _run(["index", str(docs["prose"]), "--db", str(db), "--config", str(cfg)], hub, hf_home, offline=True)
    assert proc.returncode == 2
    err = " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
    assert err.count("error") == 1
    lines = proc.stderr.splitlines()
    assert lines[0] == OFFLINE_FIRST_LINE  # the way out first; then one command a line
    commands = [line.split("#")[0].strip() for line in lines if line.lstrip().startswith("hf download")]
    assert commands == [f"hf download {repo} --revision {hub.sha(repo)}" for repo in (VISUAL, UNIFIED)]
    assert "DOCRAG_VISUAL__MODEL=/path" in err and "DOCRAG_TEXT__MODEL=/path" in err
    assert not db.exists(), "no database may be left behind"
    assert hub.requests == [], "offline: nothing may be asked of the hub"
    # --offline does the same with HF_HUB_OFFLINE unset.
    proc = _run(["--offline", "index", str(docs["prose"]), "--db", str(db), "--config", str(cfg)], hub, hf_home,
                offline=False)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.splitlines()[0] == OFFLINE_FIRST_LINE
    assert VISUAL in proc.stderr and UNIFIED in proc.stderr
    assert not db.exists() and hub.requests == []


def test_models_pull_and_listing(tmp_path, hub):
    cfg, hf_home = _config(tmp_path, hub), tmp_path / "hf"
    before = _run(["models", "--config", str(cfg), "--json"], hub, hf_home, offline=True)
    assert before.returncode == 0, before.stderr
    rows = json.loads(before.stdout)["models"]
    assert {r["model"]: r["available"] for r in rows} == {VISUAL: False, UNIFIED: False}
    assert all(r["pinned"] and r["download"].startswith("hf download ") for r in rows)

    pulled = _run(["models", "pull", "--config", str(cfg), "--json"], hub, hf_home, offline=False)
    assert pulled.returncode == 0, pulled.stderr
    assert set(json.loads(pulled.stdout)["models"]) == {VISUAL, UNIFIED}

    after = _run(["models", "--config", str(cfg), "--json"], hub, hf_home, offline=True)
    rows = json.loads(after.stdout)["models"]
    assert all(r["available"] and r["where"] == "HF cache" for r in rows), rows


def test_unknown_repo_and_unreachable_hub_are_one_line(tmp_path, hub, docs):
    hf_home, db = tmp_path / "hf", tmp_path / "db"
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[visual]\ntype = "colidefics3"\nmodel = "tiny-org/no-such-model"\n'
                   f'[text]\ntype = "siglip"\nmodel = "{UNIFIED}"\n'
                   f'[image]\ntype = "siglip"\nmodel = "{UNIFIED}"\n')  # fmt: skip
    proc = _run(["index", str(docs["prose"]), "--db", str(db), "--config", str(cfg)], hub, hf_home, offline=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "tiny-org/no-such-model" in proc.stderr and "download failed" in proc.stderr
    assert not db.exists()

    # No hub listening at the endpoint: the same one clear line, naming both models.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    cfg = _config(tmp_path, hub)
    proc = _run(["models", "pull", "--config", str(cfg)], hub, hf_home, offline=False, endpoint=dead)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == (  # not "downloads are off": the hub is what cannot be had
        "error the cpu profile's models are not on this machine and the hub cannot be reached: use `--profile lite` "
        "(offline), or run `docrag models pull cpu` on a connected machine"
    )
    assert lines[1] == f"  the hub is {dead} (HF_ENDPOINT); no connection could be made"
    assert VISUAL in proc.stderr and UNIFIED in proc.stderr


def test_doctor_reports_the_machine_and_what_each_profile_lacks(tmp_path, hub):
    proc = _run(["doctor", "--json"], hub, tmp_path / "hf", offline=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["torch"] and report["offline"] is True
    assert report["hf_cache"].startswith(str(tmp_path / "hf"))
    assert report["profiles"]["lite"]["ready"], report["profiles"]["lite"]  # the packaged MiniLM, BM25, OCR
    cpu = report["profiles"]["cpu"]
    assert not cpu["ready"] and any("hf download" in why for why in cpu["lacks"])


@pytest.mark.slow
def test_adapter_and_its_base_download_and_index(tmp_path, tiny, docs):
    """A PEFT adapter on the hub and the base it declares: both fetched at their revisions, then indexed."""
    from docrag.testing import tiny_models

    adapter = tiny_models.build_lora_adapter(
        tiny["colmodernvbert"], tmp_path / "adapter", "ColModernVBert", "tiny-org/modernvbert-base"
    )
    repos = {"tiny-org/colmodernvbert": adapter, "tiny-org/modernvbert-base": tiny["colmodernvbert"]}
    with HubServer({**repos, UNIFIED: tiny["siglip"]}) as hub:
        cfg = tmp_path / "adapter.toml"
        cfg.write_text(
            '[visual]\ntype = "colmodernvbert"\nmodel = "tiny-org/colmodernvbert"\n'
            f'revision = "{hub.sha("tiny-org/colmodernvbert")}"\n'
            '[visual.options]\nbase_model = "tiny-org/modernvbert-base"\n'
            f'base_revision = "{hub.sha("tiny-org/modernvbert-base")}"\n'
            f'[text]\ntype = "siglip"\nmodel = "{UNIFIED}"\nrevision = "{hub.sha(UNIFIED)}"\n'
            f'[image]\ntype = "siglip"\nmodel = "{UNIFIED}"\nrevision = "{hub.sha(UNIFIED)}"\n'
        )
        hf_home, db = tmp_path / "hf", tmp_path / "db"
        proc = _run(["index", str(docs["chart"]), "--db", str(db), "--config", str(cfg), "--json"], hub, hf_home,
                    offline=False)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["indexed"] == 1
        for repo in repos:
            assert any(p.startswith(f"/{repo}/resolve/{hub.sha(repo)}/") for p in hub.downloads()), repo
        stats = json.loads(_run(["stats", "--db", str(db), "--json"], hub, hf_home, offline=True).stdout)
        assert stats["visual_pages"] >= 1 and stats["visual_model"] == "tiny-org/colmodernvbert", stats


def test_unknown_type_and_missing_directory_are_named_before_any_download(tmp_path, hub, docs):
    hf_home, db = tmp_path / "hf", tmp_path / "db"
    cfg = tmp_path / "typo.toml"
    cfg.write_text(f'[visual]\ntype = "colqwen9"\nmodel = "{VISUAL}"\n')
    proc = _run(["index", str(docs["prose"]), "--db", str(db), "--config", str(cfg)], hub, hf_home, offline=False)
    assert proc.returncode == 2 and "unknown visual model type 'colqwen9'" in proc.stderr
    assert hub.requests == [] and not db.exists()
    cfg.write_text('[visual]\ntype = "colidefics3"\nmodel = "/no/such/checkpoint"\n')
    proc = _run(["index", str(docs["prose"]), "--db", str(db), "--config", str(cfg)], hub, hf_home, offline=True)
    err = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "'/no/such/checkpoint'" in err and "no such directory" in err
    assert "hf download /no/such" not in err and "DOCRAG_VISUAL__MODEL=/path" in err and not db.exists()


def test_settings_mistakes_and_non_checkpoint_folders_are_one_line(tmp_path, hub, docs):
    hf_home, db = tmp_path / "hf", tmp_path / "db"
    cfg = tmp_path / "typo.toml"
    cfg.write_text("ofline = true\n")
    proc = _run(["index", str(docs["prose"]), "--db", str(db), "--config", str(cfg)], hub, hf_home, offline=True)
    assert proc.returncode == 2 and str(cfg) in proc.stderr and "ofline" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "pydantic" not in proc.stderr
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    cfg.write_text(f'[text]\ntype = "siglip"\nmodel = "{empty}"\n')
    proc = _run(["index", str(docs["prose"]), "--db", str(db), "--config", str(cfg), "--profile", "lite"], hub,
                hf_home, offline=True)  # fmt: skip
    assert proc.returncode == 2 and "not a checkpoint directory" in proc.stderr and not db.exists()
    # `models --profile lite pull` pulls lite (the group's option reaches the subcommand).
    proc = _run(["models", "--profile", "lite", "pull", "--json"], hub, hf_home, offline=True)
    assert proc.returncode == 0 and json.loads(proc.stdout)["profile"] == "lite"
