"""Why a checkpoint cannot be had, in words that say what to do: ``ModelUnavailableError`` (one checkpoint) and
``ModelsUnavailableError`` (a profile's, all at once). The first line of the latter is the way out; the
``hf download`` commands follow, one a line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FAILED",
    "LOCAL",
    "OFFLINE",
    "UNREACHABLE",
    "Checkpoint",
    "ModelUnavailableError",
    "ModelsUnavailableError",
    "is_local",
    "looks_like_path",
]


def is_local(model: str) -> bool:
    return Path(model).expanduser().is_dir()


def looks_like_path(model: str) -> bool:
    return Path(model).expanduser().is_absolute() or model.startswith((".", "~"))


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint a spec needs, and the setting that names it (for messages)."""

    model: str
    revision: str | None
    setting: str = "visual.model"  # dotted path in Settings: visual.model, text.model, image.vision_model …

    def hf_command(self) -> str:
        return f"hf download {self.model}" + (f" --revision {self.revision}" if self.revision else "")

    def local_env(self) -> str:
        return "DOCRAG_" + self.setting.upper().replace(".", "__") + "=/path"

    def local_dir_hint(self) -> str:
        section, _, key = self.setting.rpartition(".")
        return f'`[{section}] {key} = "/path"` in the config file, or {self.local_env()}'


# Why a checkpoint cannot be had, as ``ModelUnavailableError.kind``: downloads are off (HF_HUB_OFFLINE, --offline),
# the hub cannot be reached, the hub answered but the download failed (not found, gated …), or a local directory
# that is missing or holds no checkpoint.
OFFLINE, UNREACHABLE, FAILED, LOCAL = "offline", "unreachable", "failed", "local"
_WHY = {OFFLINE: "downloads are off (HF_HUB_OFFLINE=1 or --offline)", UNREACHABLE: "the hub cannot be reached"}


class ModelUnavailableError(RuntimeError):
    """A checkpoint cannot be had: not a directory, not in the Hugging Face cache, and not downloadable
    (offline, or the download failed). The message says what to do. ``kind``: why (``OFFLINE``,
    ``UNREACHABLE``, ``FAILED`` or ``LOCAL``); ``detail``: the reason in words."""

    def __init__(
        self, model: str, revision: str | None, detail: str = "", *, setting: str = "", kind: str = FAILED
    ) -> None:
        self.model, self.revision, self.detail, self.kind = model, revision, detail, kind
        ckpt = Checkpoint(model, revision, setting or "visual.model")
        self.missing = [ckpt]
        self.profile = ""
        msg = f"model {model!r} (revision {revision or 'main, unpinned'}) is not available"
        msg += f": {detail}" if detail else ""
        super().__init__("\n".join([msg, *_remedies([ckpt], {kind})]))


class ModelsUnavailableError(ModelUnavailableError):
    """Checkpoints of a profile are missing: one message names them all, before any file is read.

    Its first line is the way out (``--profile lite``, ``docrag models pull PROFILE``) and why the models cannot
    be had; then one ``hf download`` command a line, each with the setting that takes a local copy instead.
    """

    def __init__(self, failed: list[ModelUnavailableError], *, profile: str = "", total: int = 0) -> None:
        self.failed = list(failed)
        self.missing = [c for e in failed for c in e.missing]
        self.model, self.revision = failed[0].model, failed[0].revision
        kinds = {e.kind for e in failed}
        self.kind = next(iter(kinds)) if len(kinds) == 1 else FAILED
        self.detail = "; ".join(dict.fromkeys(e.detail for e in failed))
        self.profile = profile
        RuntimeError.__init__(self, "\n".join([_headline(failed, profile, total), *_remedies(self.missing, kinds)]))


def _headline(failed: list[ModelUnavailableError], profile: str, total: int) -> str:
    """The first line: whose models, why they cannot be had, and the way out. A model that is wrong (a missing
    directory, a download refused) comes first; models that only the network keeps away follow in one clause."""
    net = [e for e in failed if e.kind in (OFFLINE, UNREACHABLE)]
    kinds = {e.kind for e in net}
    why = _WHY[next(iter(kinds))] if len(kinds) == 1 else "they cannot be downloaded"
    bad = [e for e in failed if e not in net]
    if bad:
        head = "; ".join(f"model {e.model!r} is not available: {e.detail}" for e in bad)
        return head + (f"; and {len(net)} more not on this machine, as {why}" if net else "")
    n = len(net)
    if profile and n >= total:
        who = f"the {profile} profile's model{'s are' if n > 1 else ' is'}"
    elif profile:
        who = f"{n} of the {profile} profile's {total} models {'are' if n > 1 else 'is'}"
    else:
        who = f"{n} model{'s are' if n > 1 else ' is'}"
    if profile and profile != "lite":
        way = f"use `--profile lite` (offline), or run `docrag models pull {profile}` on a connected machine"
    else:
        way = f"run `docrag models pull{' ' + profile if profile else ''}` on a connected machine"
    return f"{who} not on this machine and {why}: {way}"


def _remedies(missing: list[Checkpoint], kinds: set[str]) -> list[str]:
    """The lines after the first: the unreachable endpoint, one ``hf download`` command a line, each with the
    setting that names a local copy instead."""
    lines = []
    if UNREACHABLE in kinds:
        from huggingface_hub import constants

        lines.append(f"  the hub is {constants.ENDPOINT} (HF_ENDPOINT); no connection could be made")
    hub = [c for c in missing if not (looks_like_path(c.model) or is_local(c.model))]
    if hub:
        lines.append("  download on a connected machine, then copy its Hugging Face cache (HF_HOME) here:")
        width = max(len(c.hf_command()) for c in hub)
        lines += [f"    {c.hf_command():<{width}}   # or a local copy: {c.local_env()}" for c in hub]
    for c in missing:
        if c not in hub:
            lines.append(f"  give a checkpoint directory as {c.setting}: {c.local_dir_hint()}")
    if hub:
        how = "a directory (`save_pretrained`, `hf download --local-dir`)"
        lines.append(f'  a local copy is {how}, named in the config file (`[section] key = "/path"`) or as above')
    return lines
