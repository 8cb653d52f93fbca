"""Configuration: resource limits for untrusted inputs and the router's thresholds.

Every knob is a pydantic field with a description, so the options document themselves
(``docrag.config.RouterConfig.model_json_schema()``) and can come from a TOML file or the environment.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from docrag.indexes.models import ModelSpec
from docrag.indexes.visual_index import VisualIndexSpec
from docrag.parsers.limits import Limits
from docrag.pipeline.options import IngestConfig, RouterConfig, SearchConfig, VisualPages

__all__ = [
    "PROFILES",
    "IngestConfig",
    "Limits",
    "RouterConfig",
    "SearchConfig",
    "Settings",
    "VisualPages",
    "load_settings",
]


def _spec(**kw: Any) -> dict[str, Any]:
    return kw


# Built-in profiles. Specs are plain dicts so a TOML file or the environment can override single fields.
# Revisions are hub commits taken from public code that pins them (mteb's model registry, which records the
# commit it evaluated; README "Models"). A PEFT adapter's base is a second checkpoint (options.base_model):
# the adapters do not pin their bases, and no base revision could be confirmed, so those stay unpinned and
# `docrag models` marks them "unverified".
SIGLIP2_BASE = _spec(
    type="siglip",
    model="google/siglip2-base-patch16-224",
    revision="75de2d55ec2d0b4efc50b3e9ad70dba96a7b2fa2",
    batch_size=16,
)
PROFILES: dict[str, dict[str, Any]] = {
    "cpu": {
        "visual": _spec(
            type="colmodernvbert",
            model="ModernVBERT/colmodernvbert",
            revision="9052fc0ef8acf9fb764681ce0315a7f89ea7d276",
            options={"base_model": "ModernVBERT/colmodernvbert-base"},
            batch_size=2,
        ),
        "unified": SIGLIP2_BASE,
    },
    "gpu": {
        "visual": _spec(
            type="colqwen2_5",
            model="vidore/colqwen2.5-v0.2",
            revision="6f6fcdfd1a114dfe365f529701b33d66b9349014",
            options={"base_model": "vidore/colqwen2.5-base"},
            batch_size=8,
        ),
        "unified": _spec(
            type="siglip",
            model="google/siglip2-so400m-patch14-384",
            revision="e8e487298228002f3d8a82e0cd5c8ea9c567f57f",
            batch_size=64,
        ),
    },
    "lite": {
        "visual": None,
        "unified": _spec(
            type="sentence-transformers",
            model="sentence-transformers/all-MiniLM-L6-v2",
            revision="8b3219a92973c328a8e22fadcfa821b5dc75636a",
            batch_size=32,
        ),
        "router": {"visual_pages": "none"},
        # Two text legs: calibrated scores keep the margins that ranks throw away (dev set: fused nDCG@5
        # 0.916 weighted vs 0.869 RRF; benchmarks/RESULTS.md). RRF stays the default where legs differ in kind.
        "search": {"fusion": "weighted"},
    },
}
PROFILE_NOTES = {
    "cpu": "ColModernVBERT (250M) for visual pages + SigLIP 2 base text/image; the default, no remote code",
    "gpu": "ColQwen2.5-v0.2 (3B) for visual pages + SigLIP 2 so400m; a CUDA GPU and torchvision (`make gpu`)",
    "lite": "no visual model: all-MiniLM-L6-v2 text leg + BM25, OCR for scanned pages; fully offline",
}


class Settings(BaseSettings):
    """Everything docrag needs: models, router, limits, ingest and search options.

    Sources, later wins: the profile's defaults < a TOML file < environment variables
    (``DOCRAG_SEARCH__FUSION=weighted``, ``DOCRAG_VISUAL__DEVICE=cuda`` …).
    """

    model_config = SettingsConfigDict(env_prefix="DOCRAG_", env_nested_delimiter="__", extra="forbid")

    profile: str = Field("cpu", description="Built-in profile the settings started from: cpu, gpu or lite.")
    offline: bool = Field(
        False, description="Never download checkpoints (as HF_HUB_OFFLINE=1): a missing one is an error naming it."
    )
    visual: ModelSpec | None = Field(None, description="Multi-vector model for visual pages (None: no visual leg).")
    unified: ModelSpec | None = Field(None, description="Single-vector text+image embedder.")
    router: RouterConfig = Field(default_factory=RouterConfig)
    limits: Limits = Field(default_factory=Limits)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    storage_options: dict[str, str] = Field(
        default_factory=dict,
        description="Options for object storage databases (s3://…), as LanceDB takes them: aws_endpoint, "
        "aws_region, aws_access_key_id, aws_secret_access_key, allow_http … Unset keys come from the "
        "environment (AWS_*).",
    )
    visual_index: VisualIndexSpec = Field(
        default_factory=VisualIndexSpec,
        description="How visual vectors are stored (float16/int8/binary, token pooling) and which first stage "
        "proposes candidates for two-stage search. Fixed when a database is created.",
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return env_settings, init_settings  # the environment overrides the profile and the file


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_settings(profile: str | None = None, config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings from a built-in profile, a TOML file (optional) and the environment.

    The file may set ``profile`` itself; an explicit ``profile`` argument wins over it.
    """
    data: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{path}: cannot read the config file ({exc})") from None
    name = profile or data.get("profile") or os.environ.get("DOCRAG_PROFILE") or "cpu"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    base = {"profile": name, **PROFILES[name]}
    for layer in (data, overrides):
        for leg in ("visual", "unified"):
            # A spec naming another model or type replaces the profile's whole spec (its options included).
            over = layer.get(leg)
            if not isinstance(over, dict) or isinstance(base.get(leg), dict) is False:
                continue
            if "type" in over:
                base[leg] = None
            elif "model" in over:  # the same type, another checkpoint: not the profile's revision or options
                base[leg] = {k: v for k, v in base[leg].items() if k not in ("revision", "options")}
    merged = _merge(_merge(base, data), overrides)
    merged["profile"] = name
    try:
        return Settings(**merged)
    except ValidationError as exc:
        where = f"{config_file}: " if config_file is not None else ""
        raise ValueError(f"{where}invalid settings (file or DOCRAG_* environment): {one_line(exc)}") from None


def one_line(exc: ValidationError, prefix: str = "") -> str:
    """A pydantic error as one line: ``loc: message; loc: message``."""
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors(include_url=False)
    )
