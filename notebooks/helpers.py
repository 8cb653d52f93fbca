"""What the notebooks share: the repository root, and an index with a visual leg whatever the machine has.

``visual_index`` opens a database with the default ``cpu`` profile's visual model (ColModernVBERT) when its
weights are in the Hugging Face cache (or can be downloaded), and otherwise with a *tiny random model of
the same architecture* built on the spot (``docrag.testing.tiny_models``): every mechanism is the real one —
the processor's tiling, patch vectors, MaxSim, fusion, regions — but its scores mean nothing. The notebooks
say which one ran.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# A build's download bars are noise in the outputs. (tqdm's "IProgress not found" in a kernel without
# ipywidgets: docrag itself keeps it quiet, as in any user's notebook.)
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "examples").is_dir())
MINILM = {"type": "sentence-transformers", "model": "sentence-transformers/all-MiniLM-L6-v2"}
OFFLINE_INGEST = {"elements": "text-layer"}


def visual_index(db: Path, workdir: Path) -> tuple[Any, str]:
    """(index, what its visual model is): real ColModernVBERT weights if present, else a tiny random one.
    The text leg is all-MiniLM-L6-v2 either way (offline)."""
    import docrag
    from docrag.indexes.models import ModelUnavailableError

    index = docrag.open(db, profile="cpu", text=MINILM, image=None, ingest=OFFLINE_INGEST)
    try:
        index.visual_embedder  # noqa: B018 - loads the checkpoint (from the cache, or downloads it)
        return index, f"ColModernVBERT, real weights ({index.settings.visual.model})"
    except ModelUnavailableError:
        pass
    from docrag.testing import tiny_models
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    tiny = tiny_models.build_colmodernvbert(
        workdir / "tiny-colmodernvbert", vision={**tiny_models.TINY_VISION, "image_size": 64},
        longest_edge=256, tile=64,
    )
    visual = {"type": "colmodernvbert", "model": str(tiny), "batch_size": 4}
    index = docrag.open(db, profile="cpu", text=MINILM, image=None, visual=visual, ingest=OFFLINE_INGEST)
    return index, "a TINY RANDOM ColModernVBERT (no weights on this machine): real mechanics, meaningless scores"
