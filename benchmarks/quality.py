"""Retrieval quality of any profile on a labelled set: a docrag dev set, a BEIR text set or a ViDoRe page set.

    python benchmarks/quality.py --profile P --dataset DIR [--config FILE] [--db DIR] [--keep-db] [--k 5,10]
                                 [--limit N] [--corpus-limit N] [--json] [--no-save]

DIR: a docrag set (queries.jsonl in the dev-set format, or BEIR queries + qrels.tsv of ``<file>#<page>``; the
PDFs/images in DIR/corpus/, else DIR; DIR/page_labels.tsv adds routing accuracy), a BEIR text set (corpus.jsonl,
queries.jsonl, qrels/test.tsv or qrels.tsv: each passage becomes a one-page PDF) or a ViDoRe page-image set
(corpus/ of ``<corpus-id>.<ext>`` images or corpus.parquet, queries and qrels as parquet or jsonl/TSV).
Queries without a relevant document in the corpus are dropped. ``--limit N``: the first N queries, their relevant
documents and distractors up to ``--corpus-limit`` documents (default all). Indexes into ``--db`` (kept; generated
files in ``<db>-corpus``) or a temporary database, evaluates each leg alone and fused, prints a markdown table
(``--json``: the whole result) and, unless ``--no-save``, appends it to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import re
import shutil
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results

IMAGES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")


class UsageError(Exception):
    """A mistake in the command or the dataset: one line on stderr, exit 2."""


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rows += [json.loads(line)] if line.strip() else []
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{n}: not JSON ({exc.msg})") from None
    return rows


def _parquet(d: Path, name: str) -> list[Path]:
    """DIR/name.parquet, else the parquet files of DIR/name/ (as the Hugging Face hub shards them)."""
    if (d / f"{name}.parquet").is_file():
        return [d / f"{name}.parquet"]
    return sorted((d / name).glob("*.parquet")) if (d / name).is_dir() else []


def _rows(files: list[Path], columns: list[str] | None = None, batch: int = 256) -> Any:
    import pyarrow.parquet as pq

    for f in files:
        pf = pq.ParquetFile(f)
        cols = None if columns is None else [c for c in columns if c in pf.schema_arrow.names]
        for b in pf.iter_batches(batch_size=batch, columns=cols):
            yield from b.to_pylist()


def _pick(row: dict[str, Any], keys: tuple[str, ...], where: str) -> Any:
    for k in keys:
        if k in row:
            return row[k]
    raise UsageError(f"{where}: a row needs one of the columns {', '.join(keys)} (it has {', '.join(row)})")


def _qrels_tsv(d: Path) -> Path | None:
    return next((p for p in (d / "qrels" / "test.tsv", d / "qrels.tsv") if p.is_file()), None)


def read_qrels(d: Path) -> dict[str, set[str]]:
    """query-id -> the corpus-ids with score > 0, from DIR/qrels(.parquet|/test.tsv|.tsv)."""
    out: dict[str, set[str]] = {}
    if files := _parquet(d, "qrels"):
        rows = (
            (_pick(r, ("query-id",), "qrels"), _pick(r, ("corpus-id",), "qrels"), r.get("score", 1))
            for r in _rows(files)
        )
    elif tsv := _qrels_tsv(d):
        rows = (r[:3] for r in csv.reader(tsv.read_text(encoding="utf-8").splitlines(), delimiter="\t") if len(r) > 2)
    else:
        raise UsageError(f"{d}: no qrels (qrels/test.tsv, qrels.tsv or qrels.parquet)")
    for qid, cid, score in rows:
        with contextlib.suppress(ValueError, TypeError):
            if float(score) > 0:
                out.setdefault(str(qid), set()).add(str(cid))
    return out


def select(
    queries: list[tuple[str, str]],
    qrels: dict[str, set[str]],
    corpus: list[str],
    limit: int | None,
    corpus_limit: int | None,
) -> tuple[list[tuple[str, str, set[str]]], list[str], int]:
    """(kept queries with their relevant ids, the corpus ids to index in corpus order, queries dropped)."""
    have = set(corpus)
    kept = [(q, text, qrels[q] & have) for q, text in queries if qrels.get(q, set()) & have]
    dropped = len(queries) - len(kept)
    kept = kept[:limit] if limit else kept
    need = set().union(*(rel for *_, rel in kept))
    room = len(corpus) if corpus_limit is None else max(0, corpus_limit - len(need))
    chosen = need | set([c for c in corpus if c not in need][:room])
    return kept, [c for c in corpus if c in chosen], dropped


def safe_names(ids: list[str], ext: str) -> dict[str, str]:
    """corpus-id -> a file name that is safe on any file system and unique (case-insensitively)."""
    out, taken = {}, set()
    for cid in ids:
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", cid)[:100].lstrip(".") or "doc"
        name, n = f"{stem}{ext}", 1
        while name.lower() in taken:
            n += 1
            name = f"{stem}-{n}{ext}"
        taken.add(name.lower())
        out[cid] = name
    return out


def _font() -> tuple[str, str]:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for regular, bold in (
        ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
        (str(Path(pdfmetrics.__file__).parents[1] / "fonts" / "Vera.ttf"), "VeraBd.ttf"),
    ):
        with contextlib.suppress(Exception):
            pdfmetrics.registerFont(TTFont("QText", regular))
            pdfmetrics.registerFont(TTFont("QTitle", str(Path(regular).with_name(bold))))
            return "QText", "QTitle"
    return "Helvetica", "Helvetica-Bold"  # Latin-1 only


def passage_pdf(path: Path, doc_id: str, title: str, text: str, fonts: tuple[str, str]) -> bool:
    """A one-page PDF of the passage, as tall as it needs (up to the 200-inch PDF limit: False when cut)."""
    from reportlab.lib.utils import simpleSplit
    from reportlab.pdfgen.canvas import Canvas

    width, margin, lead, max_h = 612, 54, 13, 14400
    heads = simpleSplit(title, fonts[1], 12, width - 2 * margin) if title.strip() else []
    body = [ln for para in text.splitlines() for ln in simpleSplit(para, fonts[0], 10, width - 2 * margin) or [""]]
    lines = [(fonts[1], 12, h) for h in heads] + [(fonts[0], 10, b) for b in body]
    fits = (max_h - 2 * margin) // lead
    c = Canvas(str(path), pagesize=(width, min(max(792, 2 * margin + lead * len(lines)), max_h)), invariant=1)
    c.setTitle(doc_id)  # distinct bytes for identical passages: each stays its own document
    y = c._pagesize[1] - margin - 10
    for font, size, line in lines[:fits]:
        c.setFont(font, size)
        c.drawString(margin, y, line)
        y -= lead
    c.save()
    return len(lines) <= fits


def _png(data: bytes, cid: str) -> bytes:
    """The image as PNG bytes carrying its corpus-id (so identical pages stay distinct documents)."""
    info = b"docrag-corpus-id\0" + cid.encode("latin-1", "replace")
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        from PIL import Image

        buf = io.BytesIO()
        Image.open(io.BytesIO(data)).save(buf, "PNG")
        data = buf.getvalue()
    chunk = struct.pack(">I", len(info)) + b"tEXt" + info + struct.pack(">I", zlib.crc32(b"tEXt" + info))
    return data[:33] + chunk + data[33:]  # after the signature and IHDR


def prepare(fmt: str, d: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The files to index, the Query objects, the labels file and notes, for one dataset format."""
    from docrag.pipeline.eval import Query, load_queries

    notes: list[str] = []
    if fmt == "docrag":
        corpus = d / "corpus" if (d / "corpus").is_dir() else d
        try:
            qs = load_queries(d / "queries.jsonl", _qrels_tsv(d))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if args.limit:
            qs = qs[: args.limit]
        labels = d / "page_labels.tsv"
        return {"paths": [corpus], "queries": qs, "labels": labels if labels.is_file() else None, "notes": notes}

    qrels = read_qrels(d)
    if fmt == "beir":
        work.mkdir(parents=True, exist_ok=True)
        docs = {str(r["_id"]): r for r in _jsonl(d / "corpus.jsonl") if "_id" in r}
        where = "queries.jsonl"
        queries = [(str(_pick(q, ("_id", "id"), where)), _pick(q, ("text",), where)) for q in _jsonl(d / where)]
        kept, ids, dropped = select(queries, qrels, list(docs), args.limit, args.corpus_limit)
        names, fonts, cut = safe_names(ids, ".pdf"), _font(), 0
        for cid in ids:
            if not (work / names[cid]).exists():
                cut += not passage_pdf(
                    work / names[cid], cid, str(docs[cid].get("title") or ""), str(docs[cid].get("text") or ""), fonts
                )
        if cut:
            notes.append(f"{cut} passages were longer than one 200-inch page and were cut")
    else:  # vidore
        where = "queries"
        if files := _parquet(d, "queries"):
            rows = list(_rows(files, ["query-id", "_id", "query", "text"]))
        elif (d / "queries.jsonl").is_file():
            rows = _jsonl(d / "queries.jsonl")
        else:
            raise UsageError(f"{d}: no queries (queries.parquet or queries.jsonl)")
        queries = [(str(_pick(r, ("query-id", "_id"), where)), str(_pick(r, ("query", "text"), where))) for r in rows]
        if files := _parquet(d, "corpus"):
            cids = [str(r["corpus-id"]) for r in _rows(files, ["corpus-id"])]
            kept, ids, dropped = select(queries, qrels, cids, args.limit, args.corpus_limit)
            names, wanted = safe_names(ids, ".png"), set(ids)
            work.mkdir(parents=True, exist_ok=True)
            for r in _rows(files, ["corpus-id", "image"], batch=16):
                cid = str(r["corpus-id"])
                if cid in wanted and not (work / names[cid]).exists():
                    img = r.get("image")
                    if not (data := img.get("bytes") if isinstance(img, dict) else img):
                        raise UsageError(f"{files[0].parent}: corpus-id {cid} has no image bytes (column image)")
                    (work / names[cid]).write_bytes(_png(data, cid))
        elif not (d / "corpus").is_dir():
            raise UsageError(f"{d}: no corpus (corpus/ of page images, or corpus.parquet)")
        else:
            files = {p.stem: p for p in sorted((d / "corpus").iterdir()) if p.suffix.lower() in IMAGES}
            kept, ids, dropped = select(queries, qrels, list(files), args.limit, args.corpus_limit)
            names = {cid: files[cid].name for cid in ids}
            work = d / "corpus"
    if dropped:
        notes.append(f"{dropped} of {len(queries)} queries have no relevant document in the corpus: dropped")
    if not kept:
        raise UsageError(f"{d}: no query has a relevant document in the corpus (check the qrels' ids)")
    qs = [Query(q, text, "all", {(names[c], 1) for c in rel}) for q, text, rel in kept]
    return {"paths": [work / names[c] for c in ids], "queries": qs, "labels": None, "notes": notes}


def detect(d: Path) -> str:
    if not d.is_dir():
        raise UsageError(f"{d}: no such dataset directory")
    if (d / "corpus.jsonl").is_file():
        return "beir"
    if _parquet(d, "corpus") or _parquet(d, "queries"):
        return "vidore"
    if (d / "queries.jsonl").is_file():
        images = {p.stem for p in (d / "corpus").glob("*") if p.suffix.lower() in IMAGES}
        qrels = read_qrels(d) if _qrels_tsv(d) else {}
        return "vidore" if images & set().union(*qrels.values()) else "docrag"
    raise UsageError(
        f"{d}: unknown dataset format: expected queries.jsonl (docrag), corpus.jsonl (BEIR) or "
        "corpus/ + qrels / corpus.parquet (ViDoRe)"
    )


def table(res: dict[str, Any], ks: list[int]) -> list[str]:
    names = [f"nDCG@{k}" for k in ks] + [f"recall@{k}" for k in ks] + ["MRR@10"]
    keys = [f"ndcg@{k}" for k in ks] + [f"recall@{k}" for k in ks] + ["mrr@10"]
    row = lambda name, o: f"| {name} | " + " | ".join(f"{o[k]:.3f}" for k in keys) + " |"  # noqa: E731
    out = ["| ranking | " + " | ".join(names) + " |", "|---" + "|---:" * len(names) + "|"]
    out += [row(f"{leg} alone", r["overall"]) for leg, r in res["legs"].items()]
    out.append(row(f"**fused ({res['fusion']})**", res["fused"]["overall"]))
    kinds = res["fused"]["by_kind"]
    if len(kinds) > 1:
        out += ["", "| fused, by kind of query (n) | " + " | ".join(names) + " |", out[1]]
        out += [row(f"{kind} ({o['n']})", o) for kind, o in kinds.items()]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    import docrag

    try:
        ks = sorted({int(k) for k in args.k.split(",") if k.strip()})
    except ValueError:
        raise UsageError(f"--k {args.k!r}: a comma-separated list of numbers, e.g. 5,10") from None
    if not ks or min(ks) < 1:
        raise UsageError(f"--k {args.k!r}: ranks are 1 or more")
    d = args.dataset
    fmt = detect(d)
    tmp = Path(tempfile.mkdtemp(prefix="docrag-quality-"))
    db = args.db or tmp / "db"
    work = Path(f"{db}-corpus") if args.db else tmp / "corpus"
    try:
        idx = docrag.open(db, profile=args.profile, config=args.config)
        idx.ensure_models(progress=False)  # missing checkpoints are said before the corpus is written
        models = {leg: getattr(getattr(idx.settings, leg), "model", None) for leg in ("visual", "text", "image")}
        data = prepare(fmt, d, work, args)
        print(f"indexing {d} ({fmt}) with the {idx.settings.profile} profile…", file=sys.stderr)
        t0 = time.perf_counter()
        report = idx.add(data["paths"])
        index_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = idx.evaluate(data["queries"], ks, labels=data["labels"])
        eval_s = time.perf_counter() - t0
        if report.duplicates:
            data["notes"].append(f"{report.duplicates} files repeat another's bytes: they rank under its name")
        if report.failed:
            data["notes"].append(f"{len(report.failed)} documents failed to index: {report.failed[0]}")
        if report.warnings:
            data["notes"].append(f"{len(report.warnings)} indexing warnings (first: {report.warnings[0]['warning']})")
        if fmt == "vidore" and not (models["visual"] or models["image"] or shutil.which("tesseract")):
            data["notes"].append("no tesseract and no visual or image model: the page images have no text to search")
        return {
            "dataset": str(d),
            "format": fmt,
            "profile": idx.settings.profile,
            "models": models,
            "notes": data["notes"],
            "corpus": {"files": len(data["paths"]) if fmt != "docrag" else report.indexed + report.skipped}
            | report.to_dict(),
            "seconds": {"index": round(index_s, 2), "evaluate": round(eval_s, 2)},
            "db": str(db) if args.db or args.keep_db else None,
            "metrics": res,
        }
    finally:
        if args.keep_db and not args.db:
            print(f"database kept: {db}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", help="cpu, gpu or lite (default: the config's, DOCRAG_PROFILE, the db's, cpu)")
    ap.add_argument("--dataset", required=True, type=Path)
    ap.add_argument("--config", type=Path, help="a docrag TOML settings file")
    ap.add_argument("--db", type=Path, help="database to reuse and keep (default: a temporary one)")
    ap.add_argument("--keep-db", action="store_true", help="keep the temporary database (its path on stderr)")
    ap.add_argument("--k", default="5,10", help="cut-offs for nDCG and recall (default 5,10; MRR is @10)")
    ap.add_argument("--limit", type=int, help="the first N queries only")
    ap.add_argument("--corpus-limit", type=int, help="index at most N documents (never dropping a relevant one)")
    ap.add_argument("--json", action="store_true", help="print the whole result as JSON")
    ap.add_argument("--no-save", action="store_true", help="do not append to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    from docrag.indexes.database import ModelMismatchError
    from docrag.indexes.models import ModelUnavailableError

    try:
        out = run(args)
    except (UsageError, ValueError, ModelMismatchError, ModelUnavailableError, OSError) as exc:
        print(f"quality.py: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    c, t = out["corpus"], out["seconds"]
    body = [
        f"Dataset `{out['dataset']}` ({out['format']}): {out['metrics']['queries']} queries, {c['files']} documents, "
        f"{c['pages']} pages indexed in this run ({c['skipped']} documents already in the database, "
        f"{len(c['failed'])} failed).",
        "Profile `{}`: visual {}, text {}, image {}; fusion {}.".format(
            out["profile"], *(f"`{m}`" if m else "none" for m in out["models"].values()), out["metrics"]["fusion"]
        ),
        f"Indexing {t['index']:.1f} s"
        + (f" ({c['pages'] / t['index']:.2f} pages/s)" if c["pages"] and t["index"] else "")
        + f", evaluation {t['evaluate']:.1f} s.",
        *(f"Note: {n}." for n in out["notes"]),
        "",
        *table(out["metrics"], out["metrics"]["k"]),
    ]
    if r := out["metrics"].get("routing"):
        body += [
            "",
            f"Routing on {r['pages']} labelled pages: label accuracy {r.get('label_accuracy', 0):.3f}, "
            f"route accuracy {r.get('route_accuracy', 0):.3f}.",
        ]
    title = f"Retrieval quality, {out['profile']} profile on {Path(out['dataset']).name} (benchmarks/quality.py)"
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        append_results(title, "\n".join(body), save=not args.no_save)
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
