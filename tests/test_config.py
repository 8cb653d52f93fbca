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
