"""How a hit list and an ``Index`` show themselves: short plain reprs, and HTML tables in a notebook.

Jupyter calls ``_repr_html_`` on the last value of a cell; ``docrag.api`` forwards it here. A hit list's table
has a small thumbnail of each page (the one stored when the page was indexed, or a low-dpi render), its file,
page, fused score, each leg's rank and raw score, and the snippet. An index's table says where it is, its
profile and models, and what it holds.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from docrag.api import Index
    from docrag.pipeline.search import Hit

__all__ = ["THUMB_PX", "hits_html", "hits_text", "image_uri", "index_html", "index_text", "legs_text"]

THUMB_PX = 96  # the longest edge of a thumbnail in a hit table
SNIPPET_CHARS = 200  # of the snippet, in a hit table (60 in the plain repr)


def _name(path: str) -> str:
    return PurePath(path).name or path


def _clip(text: str, n: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= n else flat[: n - 1].rstrip() + "…"


def legs_text(legs: Mapping[str, Mapping[str, Any]], scores: bool = False) -> str:
    """``text #1, bm25 #3`` (with ``scores``: ``text #1 (0.612)``), best leg first."""
    items = sorted(legs.items(), key=lambda kv: kv[1].get("rank") or 1 << 30)
    return ", ".join(
        f"{leg} #{v.get('rank', '?')}" + (f" ({v['score']:.3g})" if scores and "score" in v else "") for leg, v in items
    )


def image_uri(image: Image.Image, px: int = THUMB_PX) -> str:
    """A small JPEG of ``image`` (longest edge ``px``) as a data URI, for an ``<img>`` in a notebook."""
    thumb = image.copy()
    thumb.thumbnail((px, px))
    buf = io.BytesIO()
    thumb.convert("RGB").save(buf, format="JPEG", quality=70)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def hits_text(hits: Sequence[Hit], hidden: int = 0) -> str:
    """The plain repr of a hit list: one short line a hit (file name, page, score, legs, the snippet's start)."""
    head = f"Results: {len(hits)} hit{'' if len(hits) == 1 else 's'}" if hits else "Results: no hits"
    lines = [head + (f" ({hidden} document(s) not searchable yet)" if hidden else "")]
    for rank, h in enumerate(hits, start=1):
        snippet = f"  {_clip(h.snippet, 60)!r}" if h.snippet else ""
        conf = f"  confidence {h.confidence:.2f}" if h.confidence is not None else ""
        lines.append(f"  {rank}. {_name(h.file)} p.{h.page}  score {h.score:.4f}{conf}  [{legs_text(h.legs)}]{snippet}")
    return "\n".join(lines)


_STYLE = (
    "<style>.docrag-table td,.docrag-table th{vertical-align:top;text-align:left;padding:2px 8px}"
    ".docrag-table img{border:1px solid #ccc;max-width:none}</style>"
)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    head = f"<thead><tr>{head}</tr></thead>" if any(header) else ""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'{_STYLE}<table class="docrag-table"><caption style="text-align:left">{html.escape(caption)}</caption>'
        f"{head}<tbody>{body}</tbody></table>"
    )


def hits_html(
    hits: Sequence[Hit], thumbnail: Callable[[Hit], Image.Image | None] | None = None, hidden: int = 0
) -> str:
    """A hit list as an HTML table: thumbnail, file, page, score, legs, snippet. ``thumbnail(hit)``: the page's
    picture (None, or an error: an empty cell)."""
    rows = []
    for rank, h in enumerate(hits, start=1):
        picture = ""
        if thumbnail is not None:
            try:
                image = thumbnail(h)
            except Exception:  # a page gone from the database, a thumbnail that does not decode: no picture
                image = None
            if image is not None:
                picture = f'<img src="{image_uri(image)}" alt="page {h.page}">'
        rows.append(
            [
                str(rank),
                picture,
                f'<span title="{html.escape(h.file)}">{html.escape(_name(h.file))}</span>',
                str(h.page),
                f"{h.score:.4f}",
                "" if h.confidence is None else f"{h.confidence:.2f}",
                "<br>".join(html.escape(x) for x in legs_text(h.legs, scores=True).split(", ")),
                html.escape(_clip(h.snippet, SNIPPET_CHARS)),
            ]
        )
    caption = hits_text(hits, hidden).splitlines()[0]
    return _table(
        ["#", "page image", "file", "page", "score", "confidence", "legs (rank, raw score)", "snippet"], rows, caption
    )


def _models(index: Index) -> dict[str, str | None]:
    """The model of each leg (the database's own once it is open)."""
    store = index._store
    if store is not None:
        specs = {"visual": store.visual_spec, "text": store.text_spec, "image": store.image_spec}
    else:
        specs = {leg: getattr(index.settings, leg) for leg in ("visual", "text", "image")}
    return {leg: spec.model if spec is not None else None for leg, spec in specs.items()}


def index_text(index: Index) -> str:
    """The plain repr of an ``Index``: where, which profile, the model of each leg (no database read)."""
    legs = ", ".join(f"{leg}={m!r}" for leg, m in _models(index).items() if m)
    return f"Index({index.db!r}, profile={index.settings.profile!r}" + (f", {legs}" if legs else "") + ")"


def index_html(index: Index) -> str:
    """An ``Index`` as an HTML table: the database, profile, models by leg, and what it holds (its ``stats()``;
    "none yet" before the first ``add`` makes it)."""
    from docrag.indexes.store import Store

    made = index._store is not None or Store.exists(index.db, index.settings.storage_options or None)
    stats = index.stats() if made else None
    rows = [["database", html.escape(index.db)], ["profile", html.escape(str(index.settings.profile))]]
    rows += [[f"{leg} model", html.escape(m or "— (off)")] for leg, m in _models(index).items()]
    if stats is None:
        rows.append(["documents", "none yet: <code>index.add(PATHS)</code> makes the database"])
    else:
        incomplete = stats.get("incomplete_documents") or 0
        rows.append(["documents", f"{stats['documents']}" + (f" ({incomplete} incomplete)" if incomplete else "")])
        routes = ", ".join(f"{k} {v}" for k, v in stats.get("routes", {}).items())
        rows.append(["pages", f"{stats['pages']}" + (f" ({routes})" if routes else "")])
        rows.append(["text chunks", str(stats.get("chunks", 0))])
        rows.append(["figures and images", str(stats.get("images", 0))])
        rows.append(["visual pages", str(stats.get("visual_pages", 0))])
    return _table(["", ""], rows, index_text(index))
