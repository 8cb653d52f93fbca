"""Settings resolved in one place: the profiles' legs, the database's record, and the old ``unified`` setting."""

from __future__ import annotations

import pytest

from docrag.config import PROFILES, resolve
from docrag.indexes.models import MINILM_ID


def test_a_database_brings_its_own_models_unless_a_profile_is_named():
    stored = {"profile": "lite", "text_spec": {"type": "siglip", "model": "/models/siglip"}, "image_spec": None}
    s = resolve(stored)
    assert s.profile == "lite" and s.text.model == "/models/siglip" and s.image is None
    assert resolve(stored, "lite").text.model == MINILM_ID  # named: the profile's models
    # A rebuild keeps the database's profile but not its models.
    rebuilt = resolve({"profile": "lite"})
    assert rebuilt.profile == "lite" and rebuilt.text.model == PROFILES["lite"]["text"]["model"]


def test_the_old_unified_setting_is_one_clear_error_wherever_it_is_given():
    with pytest.raises(ValueError, match=r"^my\.toml: the unified setting is now two: \[text\] .* and \[image\]"):
        resolve(None, None, {"unified": {"type": "siglip", "model": "x"}}, source="my.toml")
    with pytest.raises(ValueError, match="the unified setting is now two"):
        resolve(None, None, None, {"unified": {"model": "x"}}, env={})
    with pytest.raises(ValueError, match=r"^DOCRAG_UNIFIED__\*: the unified setting is now two"):
        resolve(None, None, None, None, env={"DOCRAG_UNIFIED__MODEL": "/models/x"})
    assert resolve(None, None, None, None, env={"DOCRAG_TEXT__MODEL": "/models/x"}).text.model == "/models/x"


def test_how_a_model_runs_follows_this_machines_settings_not_the_records():
    """backend, precision and threads say how a model runs here, not what its vectors are: a reopened database
    keeps its vectors' options (max_edge) and runs as the profile runs that type; another checkpoint of the same
    type keeps the profile's run-time options and drops the rest."""
    visual = {"type": "colmodernvbert", "model": "/models/cmvb", "options": {"max_edge": 2048, "backend": "torch"}}
    s = resolve({"profile": "cpu", "visual_spec": visual}, env={})
    assert s.visual.model == "/models/cmvb"
    assert s.visual.options == {"max_edge": 2048, "backend": "openvino", "precision": "int8"}
    other = resolve(None, None, {"visual": {"model": "/models/mine"}}, env={})
    assert other.visual.options == {"backend": "openvino", "precision": "int8"}  # no base_model, no max_edge
    assert other.visual.revision is None
    slow = resolve(None, None, {"visual": {"options": {"backend": "torch"}}}, env={})
    assert slow.visual.options["backend"] == "torch" and slow.visual.options["max_edge"] == 1024
    qwen = {"type": "colqwen2_5", "model": "/models/cq", "options": {"backend": "torch"}}
    assert resolve({"profile": "cpu", "visual_spec": qwen}, env={}).visual.options == {"backend": "torch"}


def test_an_override_acts_the_same_from_the_environment_and_from_toml():
    """Another model named in the environment replaces the profile's spec as the same line in TOML does, whatever
    else the file says; option values from the environment are typed as TOML types them."""
    toml = resolve(None, None, {"visual": {"model": "/models/mine", "options": {"max_edge": 2048}}}, env={})
    split = resolve(
        None, None, {"visual": {"options": {"max_edge": 2048}}}, env={"DOCRAG_VISUAL__MODEL": "/models/mine"}
    )
    env = {"DOCRAG_VISUAL__MODEL": "/models/mine", "DOCRAG_VISUAL__OPTIONS__MAX_EDGE": "2048"}
    assert toml.visual == split.visual == resolve(None, None, None, env=env).visual
    assert toml.visual.revision is None and toml.visual.options == {
        "backend": "openvino",
        "precision": "int8",
        "max_edge": 2048,
    }


def test_a_visual_model_under_lite_is_refused_only_where_the_visual_leg_is_needed(tmp_path, docs):
    """A visual model named without its type (DOCRAG_VISUAL__MODEL, kept from work with the cpu profile) cannot
    be a lite database's visual leg: commands that do not need one work; indexing that may send pages to it is
    refused in one line."""
    import json
    import shutil
    from pathlib import Path

    from clirun import invoke

    env = {"DOCRAG_VISUAL__MODEL": "/models/colmodernvbert"}
    db = tmp_path / "lite.db"
    shutil.copytree(Path(__file__).parent / "data" / "v1_lite.db", db)
    stats = invoke("stats", "--db", db, "--json", env=env)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["profile"] == "lite"
    listed = invoke("models", "--profile", "lite", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [r["model"] for r in json.loads(listed.stdout)["models"]] == [MINILM_ID]

    refused = invoke("index", docs["prose"], "--db", db, env={**env, "DOCRAG_ROUTER__VISUAL_PAGES": "auto"})
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error a visual model is named (/models/colmodernvbert, by [visual] model or DOCRAG_VISUAL__MODEL) without "
        "its type, and the lite profile has no visual model to take one from: give the type too ([visual] type or "
        "DOCRAG_VISUAL__TYPE), or use a profile with a visual model"
    ]
