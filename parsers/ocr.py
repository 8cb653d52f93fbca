"""OCR with the tesseract binary (Debian's tesseract-ocr) for pages without a usable text layer."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from typing import TYPE_CHECKING

from .errors import DocumentError
from .text import normalise
from .types import TextSpan

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["OcrResult", "ocr_image", "tesseract_available"]


def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


class OcrResult:
    """Text and word boxes (in pixels of the OCR'd image) with tesseract's mean word confidence."""

    def __init__(self, text: str, spans: list[TextSpan], confidence: float) -> None:
        self.text = text
        self.spans = spans
        self.confidence = confidence


def ocr_image(image: Image.Image, *, lang: str = "eng", timeout: float = 120.0, file: str = "") -> OcrResult:
    """Run tesseract on a PIL image (sent as PNG on stdin; nothing written to disk).

    Lines keep tesseract's reading order; spans are words with boxes in image pixels.
    """
    exe = shutil.which("tesseract")
    if exe is None:
        raise DocumentError(file or "<image>", "OCR needs the tesseract binary: apt-get install tesseract-ocr")
    buf = io.BytesIO()
    image.convert("L").save(buf, format="PNG")
    # tesseract's OpenMP threads spin against each other (and against other work) on small machines: one
    # thread was 7× faster on a 300-dpi page here (benchmarks/RESULTS.md). Parallelism comes from docrag's
    # workers instead. A user's own OMP_THREAD_LIMIT wins.
    env = {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}
    try:
        proc = subprocess.run(
            [exe, "stdin", "stdout", "-l", lang, "--psm", "3", "tsv"],
            input=buf.getvalue(),
            capture_output=True,
            timeout=timeout,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise DocumentError(file or "<image>", f"OCR timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["unknown error"]
        raise DocumentError(file or "<image>", f"tesseract failed: {msg[0]}")
    rows = csv.DictReader(io.StringIO(proc.stdout.decode("utf-8", "replace")), delimiter="\t", quoting=csv.QUOTE_NONE)
    lines: dict[tuple[str, str, str], list[str]] = {}
    spans: list[TextSpan] = []
    confs: list[float] = []
    for row in rows:
        word = normalise(row.get("text") or "").strip()
        if row.get("level") != "5" or not word:
            continue
        left, top = float(row["left"]), float(row["top"])
        spans.append(TextSpan(word, (left, top, left + float(row["width"]), top + float(row["height"]))))
        lines.setdefault((row["block_num"], row["par_num"], row["line_num"]), []).append(word)
        conf = float(row.get("conf") or -1)
        if conf >= 0:
            confs.append(conf)
    text = "\n".join(" ".join(words) for words in lines.values())
    return OcrResult(text, spans, sum(confs) / len(confs) / 100.0 if confs else 0.0)
