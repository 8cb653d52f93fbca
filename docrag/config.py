"""Configuration: the profiles, the settings, and the one function that resolves them.

Every knob is a pydantic field with a description, so the options document themselves
(``docrag.config.Settings.model_json_schema()``). ``resolve`` is the only place settings are put together, from
(later wins) a built-in profile, the database's own record, a TOML file, the environment (``DOCRAG_*``) and
explicit overrides; the API and every command call it once.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from docrag.indexes.models import MINILM_ID, ModelSpec
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
    "read_config",
    "resolve",
    "storage_options",
]


def _spec(**kw: Any) -> dict[str, Any]:
    return kw


# Built-in profiles. Specs are plain dicts so a TOML file or the environment can override single fields.
# Revisions are hub commits taken from public code that pins them (mteb's model registry, which records the
# commit it evaluated; README "Models"). A PEFT adapter's base is a second checkpoint (options.base_model):
# the adapters do not pin their bases, and no base revision could be confirmed, so those stay unpinned and
# `docrag models` marks them "unverified".
# The text leg's embedders are passage retrievers chosen by text-retrieval evidence (BEIR / MTEB retrieval), the
# image leg's by text→image evidence; each with its documented query prefix and pooling (benchmarks/RESULTS.md,
# "Text and image legs: the evidence"). ``pooling`` is checked against the checkpoint's own configuration.
ARCTIC_M = _spec(
    type="sentence-transformers",
    model="Snowflake/snowflake-arctic-embed-m-v1.5",
    revision="97eab2e17fcb7ccb8bb94d6e547898fa1a6a0f47",
    batch_size=16,
    options={"pooling": "cls", "query_prefix": "Represent this sentence for searching relevant passages: "},
)
QWEN3_EMBEDDING = _spec(
    type="sentence-transformers",
    model="Qwen/Qwen3-Embedding-0.6B",
    revision="b22da495047858cce924d27d76261e96be6febc0",
    batch_size=16,
    options={
        "pooling": "lasttoken",
        "query_prefix": "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:",
    },
)
MINILM = _spec(
    type="sentence-transformers",
    model=MINILM_ID,
    revision="8b3219a92973c328a8e22fadcfa821b5dc75636a",
    batch_size=32,
    options={"pooling": "mean"},
)
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
            # The vision tower in OpenVINO, its MLP blocks int8 (activations quantised at run time, no calibration), at
            # a 1024-px longest edge (5 tiles for an A4 page, against the checkpoint's 2048 and 13): the cost and
            # the evidence are in benchmarks/RESULTS.md, "Visual pages on a CPU: the path and the edge".
            options={
                "base_model": "ModernVBERT/colmodernvbert-base",
                "backend": "openvino",
                "precision": "int8",
                "max_edge": 1024,
            },
            batch_size=2,
        ),
        "text": ARCTIC_M,
        "image": SIGLIP2_BASE,
    },
    "gpu": {
        "visual": _spec(
            type="colqwen2_5",
            model="vidore/colqwen2.5-v0.2",
            revision="6f6fcdfd1a114dfe365f529701b33d66b9349014",
            options={"base_model": "vidore/colqwen2.5-base"},
            batch_size=8,
        ),
        "text": QWEN3_EMBEDDING,
        "image": _spec(
            type="siglip",
            model="google/siglip2-so400m-patch14-384",
            revision="e8e487298228002f3d8a82e0cd5c8ea9c567f57f",
            batch_size=64,
        ),
    },
    "lite": {
        "visual": None,
        "text": MINILM,
        "image": None,
        "router": {"visual_pages": "none"},
        # Two text legs: calibrated scores keep the margins that ranks throw away (dev set: fused nDCG@5
        # 0.916 weighted vs 0.869 RRF; benchmarks/RESULTS.md). RRF stays the default where legs differ in kind.
        "search": {"fusion": "weighted"},
    },
}
PROFILE_NOTES = {
    "cpu": "ColModernVBERT (250M; its vision tower in OpenVINO int8, pages at 1024 px) for visual pages, "
    "snowflake-arctic-embed-m-v1.5 for text, SigLIP 2 base for figures and image files; the default, no remote code",
    "gpu": "ColQwen2.5-v0.2 (3B) for visual pages, Qwen3-Embedding-0.6B for text, SigLIP 2 so400m for images; a "
    "CUDA GPU and torchvision (`make gpu`)",
    "lite": "no visual or image model: all-MiniLM-L6-v2 text leg + BM25, OCR for scanned pages; fully offline",
}


class Settings(BaseModel):
    """Everything docrag needs: models, router, limits, ingest and search options (made by ``resolve``)."""

    model_config = ConfigDict(extra="forbid")

    profile: str = Field("cpu", description="Built-in profile the settings started from: cpu, gpu or lite.")
    offline: bool = Field(
        False, description="Never download checkpoints (as HF_HUB_OFFLINE=1): a missing one is an error naming it."
    )
    visual: ModelSpec | None = Field(None, description="Multi-vector model for visual pages (None: no visual leg).")
    text: ModelSpec | None = Field(
        None, description="Single-vector text embedder for text chunks (a passage retriever; None: no text leg)."
    )
    image: ModelSpec | None = Field(
        None,
        description="Single-vector image–text model for figures and image files; its text tower embeds the query "
        "for the image leg only (None: no image leg). The same spec as ``text`` shares one model.",
    )
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
    # Legs a setting names a model for that cannot be built (no type, and the profile has no spec of that leg to
    # take one from): {leg: why}. The leg stays off; only what needs it is refused (``need``).
    _unresolved: dict[str, str] = PrivateAttr(default_factory=dict)

    def need(self, leg: str) -> None:
        """A ValueError saying why, when a setting names a model for ``leg`` that cannot be used; else nothing."""
        if leg in self._unresolved:
            raise ValueError(self._unresolved[leg])


ENV_PREFIX = "DOCRAG_"
LEGS = ("visual", "text", "image")  # the settings that are model specs, by the leg they serve
FIXED_INDEX = ("storage", "pool_factor", "first_stage_vectors")  # VisualIndexSpec fields fixed at creation


def read_config(path: str | Path | None) -> dict[str, Any]:
    """A TOML settings file as a dict ({} for None); a ValueError naming the file when it cannot be read."""
    if path is None:
        return {}
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the config file ({exc})") from None


def env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """``DOCRAG_SEARCH__FUSION=weighted`` → ``{"search": {"fusion": "weighted"}}``: the settings the environment
    sets (names are case-insensitive, ``__`` nests; a value that looks like a JSON object or list is one)."""
    out: dict[str, Any] = {}
    for key, value in env.items():
        if not key.upper().startswith(ENV_PREFIX):
            continue
        path = key[len(ENV_PREFIX) :].lower().split("__")
        if path[0] not in Settings.model_fields or not all(path):
            continue
        if value.strip().startswith(("{", "[")):
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        elif "options" in path[:-1]:  # a model's options are untyped: 2048 and true as TOML would give them
            value = _scalar(value)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = value
    return out


def _scalar(value: str) -> Any:
    """A number or a boolean written as text (``2048``, ``0.5``, ``true``) as that value; anything else as it is."""
    with contextlib.suppress(json.JSONDecodeError):
        parsed = json.loads(value.strip().lower() if value.strip().lower() in ("true", "false") else value)
        if isinstance(parsed, bool) or (isinstance(parsed, (int, float)) and math.isfinite(parsed)):
            return parsed
    return value


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


# How a model runs, not what it computes: kept when another checkpoint of the same type replaces a profile's.
RUNTIME_OPTIONS = frozenset({"backend", "precision", "threads"})


def _runtime_options(spec: Mapping[str, Any], runtime: bool = True) -> dict[str, Any]:
    """A spec's options that say how it runs (``runtime``), or all its other options."""
    return {k: v for k, v in (spec.get("options") or {}).items() if (k in RUNTIME_OPTIONS) == runtime}


def _apply(base: dict[str, Any], layer: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``layer`` (everything the user set: file, environment and overrides together) over ``base`` (a profile, or a
    database's record). A model spec naming another type replaces the base's spec whole; another model of the
    same type keeps the base's run-time fields (device, batch size, and the options that say how it runs:
    ``RUNTIME_OPTIONS``) but not its revision or its other options. A leg the base turns off takes a spec only with
    its type; a model named without one leaves the leg off, and why is returned as {leg: why}."""
    base, layer, unresolved = dict(base), dict(layer), {}
    for leg in LEGS:
        over = layer.get(leg)
        if not isinstance(over, Mapping):
            continue
        if not isinstance(base.get(leg), dict):
            if "type" not in over:  # nothing to build a spec from: the leg stays off
                layer.pop(leg)
                if "model" in over:
                    unresolved[leg] = (
                        f"a {leg} model is named ({over['model']}, by [{leg}] model or DOCRAG_{leg.upper()}__MODEL) "
                        f"without its type, and the {base.get('profile')} profile has no {leg} model to take one "
                        f"from: give the type too ([{leg}] type or DOCRAG_{leg.upper()}__TYPE), or use a profile "
                        f"with a {leg} model"
                    )
        elif "type" in over and over["type"] != base[leg].get("type"):
            base[leg] = None
        elif "model" in over and over["model"] != base[leg].get("model"):
            kept = {"options": _runtime_options(base[leg])}
            base[leg] = {k: v for k, v in base[leg].items() if k not in ("revision", "options")} | kept
    return _merge(base, layer), unresolved


def storage_options(
    file: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The object-storage options the file, the environment and the overrides give (all a database needs to be
    opened, before its record says anything)."""
    layers = (file or {}, env_layer(os.environ if env is None else env), overrides or {})
    out: dict[str, str] = {}
    for layer in layers:
        out |= dict(layer.get("storage_options") or {})
    return out


def resolve(
    stored: Mapping[str, Any] | None = None,
    profile: str | None = None,
    file: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    source: str = "",
) -> Settings:
    """The settings, from (later wins): a built-in profile, the database's record (``stored``), a TOML file's
    contents (``file``), the environment (``env``, default ``os.environ``: ``DOCRAG_*``) and ``overrides``.

    The profile is ``profile``, else the file's, else ``DOCRAG_PROFILE``, else the database's, else ``cpu``. A
    database whose profile was not chosen again brings its own model specs (its vectors came from them) and
    always how its visual vectors are stored; asking for other storage is a ``ModelMismatchError``. ``source``
    names the file in errors. Nothing is read here: the caller reads the file and the record.
    """
    from docrag.indexes.database import ModelMismatchError

    stored, file, overrides = dict(stored or {}), dict(file or {}), dict(overrides or {})
    raw_env = os.environ if env is None else env
    environment = env_layer(raw_env)
    chosen = profile or file.get("profile") or environment.get("profile")
    name = chosen or stored.get("profile") or "cpu"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    old = [
        (f"{source}: " if source else "") if "unified" in file else None,
        "" if "unified" in overrides else None,
        "DOCRAG_UNIFIED__*: " if any(k.upper().startswith(f"{ENV_PREFIX}UNIFIED") for k in raw_env) else None,
    ]
    where = next((w for w in old if w is not None), None)  # the first place that still says "unified"
    if where is not None:
        raise ValueError(
            f"{where}the unified setting is now two: [text] (the text chunks' embedder) and [image] (figures and "
            "image files); the same spec in both shares one model"
        )
    data: dict[str, Any] = {"profile": name, **copy.deepcopy(PROFILES[name])}
    if not chosen and any(k.endswith("_spec") for k in stored):  # reopened as made: its vectors' models
        for leg in LEGS:  # ... run as this machine's profile runs that type (backend, precision, threads)
            spec, here = stored.get(f"{leg}_spec"), data.get(leg)
            if isinstance(spec, dict) and isinstance(here, dict) and spec.get("type") == here.get("type"):
                spec = {**spec, "options": _runtime_options(spec, runtime=False) | _runtime_options(here)}
            data[leg] = spec
    user: dict[str, Any] = {}
    for layer in (file, environment, overrides):  # one layer, so a setting acts the same wherever it is given
        user = _merge(user, layer)
    data, unresolved = _apply(data, user)
    data["profile"] = name
    if stored.get("visual_index") and not stored.get("visual_dim"):  # no visual vectors: nothing is fixed yet
        data["visual_index"] = dict(stored["visual_index"]) | dict(data.get("visual_index") or {})
    elif stored.get("visual_index"):
        index = dict(stored["visual_index"])
        asked = dict(data.get("visual_index") or {})
        for key in FIXED_INDEX:
            if key in asked and asked[key] != index.get(key):
                raise ModelMismatchError(
                    f"the database stores visual vectors as {index}; it cannot be searched or extended with "
                    f"visual_index.{key} = {asked[key]!r}. Use another --db, or rebuild this one "
                    "(`docrag index … --rebuild`)."
                )
        data["visual_index"] = index | {"first_stage": asked.get("first_stage", index.get("first_stage"))}
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        where = f"{source}: " if source else ""
        raise ValueError(f"{where}invalid settings (file or DOCRAG_* environment): {one_line(exc)}") from None
    settings._unresolved = unresolved
    return settings


def load_settings(profile: str | None = None, config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Settings for a new database: ``resolve`` of a profile, a TOML file and overrides (no stored record)."""
    return resolve(None, profile, read_config(config_file), overrides, source=str(config_file or ""))


def one_line(exc: ValidationError, prefix: str = "") -> str:
    """A pydantic error as one line: ``loc: message; loc: message``."""
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors(include_url=False)
    )
