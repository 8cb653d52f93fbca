"""The third-party loggers docrag keeps to their errors unless asked (``--verbose``, or the docrag logger at
INFO): the parsers' and the model libraries'. One list, for the CLI's process and the plan workers'. And
tqdm's notebook bars, which warn in a Jupyter kernel without ipywidgets."""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings

__all__ = ["NOISY_LOGGERS", "PARSER_LOGGERS", "quiet_notebook_progress", "quiet_third_party"]

NOISY_LOGGERS = (
    "pdfminer",
    "pypdf",
    "pdfplumber",
    "unstructured",
    "unstructured_inference",
    "PIL",
    "transformers",
    "sentence_transformers",
)
# The parsers' own loggers (what a plan worker captures per page: ``pipeline.chatter``).
PARSER_LOGGERS = ("pdfminer", "pypdf", "pdfplumber", "unstructured", "unstructured_inference", "PIL", "pypdfium2")


def quiet_third_party() -> None:
    """Set the third-party loggers to ERROR."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def quiet_notebook_progress() -> None:
    """Import ``tqdm.auto`` once without its ``TqdmWarning: IProgress not found``.

    In a Jupyter kernel without ipywidgets, the first import of ``tqdm.auto`` (by huggingface_hub, transformers
    …: whichever comes first) warns and falls back to text bars. Imported here first, with that one warning
    filtered for the import alone, every later import gets the same text bars silently. Nothing else changes:
    with ipywidgets, the widgets are used; outside IPython (a script, the command line), nothing is imported.
    """
    if "tqdm.auto" in sys.modules or "IPython" not in sys.modules:
        return
    with warnings.catch_warnings(), contextlib.suppress(ImportError):  # no tqdm: nothing draws its bars either
        warnings.filterwarnings("ignore", message=".*IProgress not found")
        import tqdm.auto  # noqa: F401
