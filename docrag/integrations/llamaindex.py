"""A LlamaIndex retriever over a docrag database (``pip install 'docrag[llamaindex]'``).

>>> from docrag.integrations.llamaindex import DocragRetriever    # doctest: +SKIP
>>> retriever = DocragRetriever(db="papers.db", k=4)
>>> for node in retriever.retrieve("which table reports recall at 5?"):
...     print(node.score, node.metadata["file"], node.metadata["page"], node.metadata["legs"])

Each hit becomes a ``NodeWithScore``: ``score`` is the fused score (the ranking's order; ``metadata["confidence"]``
is the 0-to-1 one), the node a ``TextNode`` whose text is the page's extracted text (``content="chunk"``: the
passage that matched) and whose metadata is ``docrag.integrations.hit_metadata``. With ``with_image=True`` the
node is an ``ImageNode`` (a ``TextNode`` too) carrying the page as a base64 PNG in ``image``, which LlamaIndex's
multi-modal query engines and LLMs read. Only file, page and the document's metadata reach an LLM or an embedder
through ``node.get_content(MetadataMode.LLM)``; scores, legs and the snippet stay out of the prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from docrag.integrations import Content, check_content, hit_content, hit_metadata, open_target, page_png_base64, require

if TYPE_CHECKING:
    from docrag.api import Index

_retrievers = require("llama_index.core.retrievers", "llamaindex", "llama-index-core")
_schema = require("llama_index.core.schema", "llamaindex", "llama-index-core")

__all__ = ["DocragRetriever"]

# Metadata kept out of the text an LLM or an embedder sees (node.get_content(MetadataMode.LLM / EMBED)).
_HIDDEN = ["source", "doc_id", "score", "confidence", "route", "label", "snippet", "legs"]


class DocragRetriever(_retrievers.BaseRetriever):
    """docrag's fused page search as a LlamaIndex retriever: give ``index`` (``docrag.open(db)``) or ``db``.

    ``k``: how many pages; ``where``: a filter on documents (SQL, {key: value}, or a list); ``legs``: only these
    legs; ``min_score``: the least confidence (0 to 1); ``content``: the node's text, "page" or "chunk";
    ``with_image``: ``ImageNode``s with the page as a base64 PNG (``image_dpi``; ``image_regions`` draws the
    answer regions). ``retriever.index``: the Index searched. A missing database raises ``docrag.NoDatabaseError``
    here."""

    def __init__(
        self,
        index: Index | None = None,
        *,
        db: str | Path | None = None,
        profile: str | None = None,
        k: int = 4,
        where: Any = None,
        legs: str | list[str] | None = None,
        min_score: float | None = None,
        content: Content = "page",
        with_image: bool = False,
        image_dpi: float = 100,
        image_regions: bool = False,
        **kwargs: Any,
    ) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        self.content = check_content(content)
        self.index = open_target(index, db, profile)
        self.k, self.where, self.legs, self.min_score = k, where, legs, min_score
        self.with_image, self.image_dpi, self.image_regions = with_image, image_dpi, image_regions
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: Any) -> list[Any]:
        hits = self.index.search(
            query_bundle.query_str, k=self.k, where=self.where, legs=self.legs, min_score=self.min_score
        )
        out = []
        for hit in hits:
            fields: dict[str, Any] = {
                "text": hit_content(hit, self.content),
                "metadata": hit_metadata(hit),
                "excluded_llm_metadata_keys": _HIDDEN,
                "excluded_embed_metadata_keys": _HIDDEN,
            }
            if self.with_image:
                image = page_png_base64(hit, self.image_dpi, self.image_regions)
                node = _schema.ImageNode(image=image, image_mimetype="image/png", **fields)
            else:
                node = _schema.TextNode(**fields)
            out.append(_schema.NodeWithScore(node=node, score=hit.score))
        return out
