"""The pure plan step (page → plan), without any model, and the worker pool's budgets and replacement."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from docrag.config import IngestConfig, Limits, RouterConfig
from docrag.pipeline.plan import PlanOptions, plan_document
from docrag.pipeline.workers import Job, PlanPool, run_inline


def options(visual: bool = True, figures: bool = True, **ingest) -> PlanOptions:
    ing = IngestConfig(**{"elements": "text-layer", "ocr": False, **ingest})
    return PlanOptions.build(RouterConfig(), ing, Limits(), visual=visual, figures=figures)


def plans(path: Path, opt: PlanOptions, stages: list | None = None) -> tuple[dict, list]:
    header, out = None, []
    for kind, data in plan_document(path, opt, stages.append if stages is not None else None):
        if kind == "header":
            header = data
        else:
            out.extend(data)
    return header, out


def one_word_pages(path: Path, n: int) -> Path:
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    for i in range(n):
        c.drawString(72, 700, f"p{i}")
        c.showPage()
    c.save()
    return path


def outcomes(budgets: IngestConfig, jobs: list[Job]) -> dict:
    """job id -> ("done", None) or ("failed", reason), through a pool of one worker."""
    results: dict = {}
    with PlanPool(1, budgets) as pool:
        for job, kind, data in pool.run(jobs):
            if kind == "pages":
                pool.more(job)
            if kind in ("failed", "done"):
                results[job.id] = (kind, data)
    return results


def test_plans_carry_route_texts_images_and_thumbnails(docs):
    header, (plan,) = plans(docs["table"], options())
    assert header["n_pages"] == 1
    assert plan.route.route == "visual" and plan.visual_image is not None and plan.thumbnail[:4] == b"RIFF"
    assert plan.texts and "Table" in plan.text
    _, (plan,) = plans(docs["table"], options(visual=False))  # no visual model: nothing rendered for it
    assert plan.visual_image is None
    _, pages = plans(docs["prose"], options())
    assert all(p.route.route == "text" and p.visual_image is None and p.texts for p in pages)


def test_ocr_only_where_there_is_something_to_read(tmp_path, docs):
    """A 40-page file of one-word pages costs no OCR call; a scanned page does (the router decides once)."""
    stages: list = []
    _, pages = plans(one_word_pages(tmp_path / "words.pdf", 40), options(ocr=True), stages)
    assert len(pages) == 40 and not any(p.route.ocr for p in pages)
    assert not any(s["stage"] == "ocr" for s in stages)
    assert "nothing to OCR" in " ".join(pages[0].route.reasons)
    if shutil.which("tesseract"):
        stages.clear()
        _, (scan,) = plans(docs["scan"], options(ocr=True, ocr_dpi=100), stages)
        assert scan.route.ocr and any(s["stage"] == "ocr" for s in stages)
        assert "OCR" in " ".join(scan.route.reasons)


def test_pages_stream_in_batches(tmp_path):
    path = one_word_pages(tmp_path / "many.pdf", 9)
    batches = [data for kind, data in plan_document(path, options(page_batch=4)) if kind == "pages"]
    assert [len(b) for b in batches] == [4, 4, 1]


def test_no_file_handle_left_open(bad_docs, docs):
    from docrag.parsers import DocumentError

    def fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    before = fds()
    for _ in range(5):
        for path in [*bad_docs.values(), docs["prose"], docs["photo_png"]]:
            with contextlib.suppress(DocumentError):
                plans(path, options())
    assert fds() <= before


def test_pool_gives_the_same_plans_as_inline(docs):
    opt = options()
    jobs = [Job(i, str(p), opt) for i, p in enumerate([docs["prose"], docs["table"], docs["scan"]])]

    def collect(events, pool=None) -> dict:
        out: dict = {}
        for job, kind, data in events:
            if kind == "pages":
                out.setdefault(job.id, []).extend((p.number, p.route.label, p.text) for p in data)
                if pool is not None:
                    pool.more(job)
            elif kind == "failed":
                out[job.id] = data
        return out

    inline = collect(run_inline(jobs))
    with PlanPool(2, IngestConfig()) as pool:
        pooled = collect(pool.run([Job(j.id, j.path, opt) for j in jobs]), pool)
    assert pooled == inline and len(inline) == 3


def test_pool_kills_a_worker_past_its_budget_and_goes_on(tmp_path, docs):
    """A page that takes longer than its budget: the worker is killed, the file reported with the stage, and a
    fresh worker plans the next file."""
    slow = tmp_path / "slow.pdf"
    shutil.copy(docs["scan"], slow)
    limits = Limits(max_render_pixels=400_000_000)
    # OCR at 600 dpi and a render at 400 dpi (or, without tesseract, a 400-Mpixel render) take well over 1 s.
    ing = IngestConfig(elements="text-layer", ocr=True, ocr_dpi=600, visual_dpi=400, page_timeout_s=1.0)
    opt = PlanOptions.build(RouterConfig(visual_pages="all"), ing, limits, visual=True, figures=False)
    # The next file is planned from its text layer alone: a fraction of the budget even on a loaded machine.
    plain = IngestConfig(elements="text-layer", ocr=False, page_timeout_s=1.0)
    cheap = PlanOptions.build(RouterConfig(visual_pages="none"), plain, limits, visual=False, figures=False)
    jobs = [Job(0, str(slow), opt), Job(1, str(docs["prose"]), cheap)]
    results = outcomes(ing, jobs)
    assert results[0][0] == "failed", results
    # The stage is named (OCR or rendering, on a loaded machine maybe the parse itself) with the budget.
    assert re.search(r"(ocr of |render of )?page 1 timed out after 1 s \(page_timeout_s\)", results[0][1]), results
    assert results[1] == ("done", None)


@pytest.mark.skipif(not hasattr(os, "setpgrp"), reason="POSIX process groups")
def test_pool_reports_a_worker_over_its_memory_cap(tmp_path):
    """A worker that needs more memory than its cap fails its file with the reason; the next file is fine."""
    import hostile

    from docrag.testing import pdfgen

    big = tmp_path / "bomb.pdf"
    hostile._nested_flate(big)  # 20 KB that PDFium inflates to 1 GiB when it loads the page
    good = pdfgen.prose_pdf(tmp_path / "good.pdf")
    ing = IngestConfig(elements="text-layer", ocr=False, worker_memory_bytes=800 << 20)
    opt = PlanOptions.build(RouterConfig(), ing, Limits(), visual=False, figures=False)
    results = outcomes(ing, [Job(0, str(big), opt), Job(1, str(good), opt)])
    assert results[0][0] == "failed", results
    assert "memory" in results[0][1], results[0][1]
    assert results[1] == ("done", None)
