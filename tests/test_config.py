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
