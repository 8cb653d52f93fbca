"""Office and OpenDocument files (.docx .pptx .xlsx .odt .odp .ods .doc .ppt .xls .rtf) as PDFs.

LibreOffice (``soffice --headless --convert-to pdf``) converts the file; from then on its pages are PDF pages
(routed, text, visual, regions), and every page says the original file: the converted PDF is an
implementation detail. A presentation's page N is its slide N (LibreOffice exports one page per slide).

* **One converter per process.** A process (an isolated plan worker) runs one LibreOffice at a time, with a
  profile directory of its own (``-env:UserInstallation``): two LibreOffice instances sharing a profile
  refuse each other. The profile is kept between conversions (a warm profile starts in about a second).
* **Budgets.** LibreOffice runs in a process group of its own under the conversion's time budget
  (``ConvertOptions.timeout_s``: the group is killed and the file reported) and an address-space cap; the
  group is announced (``OpenContext.on_process``) so that a worker's parent that kills the worker kills the
  converter too.
* **Cache.** The PDF is kept under ``ConvertOptions.cache_dir`` by the sha256 of the original's bytes: a file
  converted once is not converted again (a re-index, a render of a hit, a copy elsewhere). The store says
  where (``Store.conversion_cache``); without a cache directory the PDF lives in a temporary folder for as
  long as the reader is open.
* **Refusals** (``parsers.office_checks``): ZIP bombs, XML entity declarations, macros, passwords, too many
  slides. A file LibreOffice cannot open fails with that reason.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .errors import DocumentError
from .limits import Limits
from .office_checks import check_office_file
from .reader import DocumentReader
from .types import OpenContext, Page

__all__ = ["ConvertOptions", "OfficeReader", "convert_to_pdf", "find_soffice"]

log = logging.getLogger(__name__)

PRESENTATIONS = frozenset({"pptx", "odp", "ppt"})
CACHE_VERSION = "lo1"  # part of the cache key: bump when the conversion's settings change


class ConvertOptions(BaseModel):
    """How Office files are converted (plain settings: they cross into the worker processes)."""

    model_config = ConfigDict(extra="forbid")

    cache_dir: str = Field("", description="Where converted PDFs are kept by content hash ('': not kept).")
    profile_root: str = Field(
        "", description="Where each process's LibreOffice profile folder goes ('': a temporary folder)."
    )
    timeout_s: float = Field(120.0, gt=0, description="Wall time one conversion may take before it is killed.")
    memory_bytes: int = Field(4 << 30, ge=0, description="Address-space cap of the converter (RLIMIT_AS); 0: none.")
    soffice: str = Field("", description="The soffice program ('': found on PATH).")


def find_soffice(given: str = "") -> str | None:
    """The LibreOffice program: ``given``, else ``soffice`` or ``libreoffice`` on PATH."""
    if given:
        return given if shutil.which(given) else None
    return shutil.which("soffice") or shutil.which("libreoffice")


_profiles: dict[int, Path] = {}  # this process's profile folder (a fork gets its own: keyed by pid)


def _profile(root: str) -> Path:
    pid = os.getpid()
    if pid not in _profiles:
        if root:
            path = Path(root) / f"lo-{pid}"
            path.mkdir(parents=True, exist_ok=True)
        else:
            path = Path(tempfile.mkdtemp(prefix="docrag-lo-"))
        atexit.register(shutil.rmtree, path, True)
        _profiles[pid] = path
    return _profiles[pid]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _cap_memory(limit: int):
    def cap() -> None:
        if limit > 0:
            import resource

            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return cap


def _failure(file: str, fmt: str, code: int, said: str) -> DocumentError:
    said = " ".join(line.strip() for line in said.splitlines() if "javaldx" not in line).strip()
    if "could not be loaded" in said or code == 0:
        extra = f": {said[:200]}" if said and "could not be loaded" not in said else ""
        return DocumentError(
            file, f"LibreOffice could not open it (damaged, password-protected, or not a .{fmt} file){extra}"
        )
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return DocumentError(file, f"LibreOffice died by {name} while converting it")
    return DocumentError(file, f"LibreOffice failed to convert it (exit code {code}): {said[:200]}")


def convert_to_pdf(path: Path, fmt: str, options: ConvertOptions, context: OpenContext | None = None) -> Path:
    """``path`` (an Office file of format ``fmt``) as a PDF: from the cache, or converted now. The caller owns a
    PDF that is not in the cache (it lives in a temporary folder: remove ``result.parent``)."""
    file = str(path)
    key = f"{_sha256(path)}-{CACHE_VERSION}"
    cached = Path(options.cache_dir) / key[:2] / f"{key}.pdf" if options.cache_dir else None
    if cached is not None and cached.is_file():
        return cached
    soffice = find_soffice(options.soffice)
    if soffice is None:
        raise DocumentError(
            file, "LibreOffice is not installed (no soffice): install libreoffice-core and -writer/-impress/-calc"
        )
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a cache that cannot be written: convert without it
            log.warning("conversion cache %s not writable (%s): converting without it", cached.parent, exc.strerror)
            cached = None
    work = Path(tempfile.mkdtemp(prefix="docrag-convert-", dir=cached.parent if cached else None))
    try:
        src = work / f"document.{fmt}"  # a plain name: LibreOffice never sees the user's file name
        shutil.copyfile(path, src)
        cmd = [
            soffice,
            f"-env:UserInstallation={_profile(options.profile_root).as_uri()}",
            "--headless",
            "--invisible",
            "--norestore",
            "--nolockcheck",
            "--nodefault",
            "--nologo",
            "--convert-to",
            "pdf",
            "--outdir",
            str(work / "out"),
            str(src),
        ]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed whole on timeout
            preexec_fn=_cap_memory(options.memory_bytes),
            cwd=work,
        )
        if context is not None and context.on_process is not None:
            context.on_process(proc.pid)
        try:
            out, _ = proc.communicate(timeout=options.timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise DocumentError(
                file, f"conversion by LibreOffice timed out after {options.timeout_s:g} s (convert_timeout_s)"
            ) from None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # nothing of it outlives the conversion
        pdf = work / "out" / "document.pdf"
        if proc.returncode != 0 or not pdf.is_file() or pdf.stat().st_size == 0:
            raise _failure(file, fmt, proc.returncode, out.decode(errors="replace"))
        if cached is None:
            return pdf
        os.replace(pdf, cached)  # atomic: a reader never sees half a PDF
        shutil.rmtree(work, ignore_errors=True)
        return cached
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


class OfficeReader(DocumentReader):
    """An Office or OpenDocument file, read as the PDF LibreOffice makes of it; pages name the original file."""

    def __init__(self, path: str | Path, limits: Limits | None, fmt: str, context: OpenContext | None = None) -> None:
        from .pdf import PdfReader

        self._pdf: PdfReader | None = None
        self._temp: Path | None = None
        super().__init__(path, limits)
        self.format = fmt
        self.unit = "slides" if fmt in PRESENTATIONS else "pages"
        check_office_file(self.path, fmt, self.limits)
        context = context or OpenContext()
        options = context.convert if context.convert is not None else ConvertOptions()
        pdf = convert_to_pdf(self.path, fmt, options, context)
        if not options.cache_dir or not pdf.is_relative_to(options.cache_dir):  # not kept: ours to remove
            self._temp = pdf.parent.parent
        try:
            self._pdf = PdfReader(pdf, self.limits)
        except DocumentError as exc:
            self.close()
            raise DocumentError(self.file, f"the converted PDF cannot be read: {exc.reason}") from None
        self._pdf.file = self.file  # its pages and errors name the original
        self.parse_path = pdf
        self.n_pages = self._pdf.n_pages
        self.warnings = [w.replace(" pages;", f" {self.unit};") for w in self._pdf.warnings]

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
            self._pdf = None
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None

    def page(self, number: int) -> Page:
        if self._pdf is None:
            raise DocumentError(self.file, "the document is closed")
        return self._pdf.page(number)
