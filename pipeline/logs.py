"""The third-party loggers docrag keeps to their errors unless asked (``--verbose``, or the docrag logger at
INFO): the parsers' and the model libraries'. One list, for the CLI's process and the plan workers'."""

from __future__ import annotations

import logging

__all__ = ["NOISY_LOGGERS", "quiet_third_party"]

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


def quiet_third_party() -> None:
    """Set the third-party loggers to ERROR."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
