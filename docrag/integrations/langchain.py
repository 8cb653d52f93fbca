"""A LangChain retriever over a docrag database (``pip install 'docrag[langchain]'``).

>>> from docrag.integrations.langchain import DocragRetriever    # doctest: +SKIP
>>> retriever = DocragRetriever(db="papers.db", k=4)
>>> for doc in retriever.invoke("which table reports recall at 5?"):
...     print(doc.metadata["file"], doc.metadata["page"], doc.metadata["legs"])

Each hit becomes a ``langchain_core.documents.Document``: ``page_content`` is the page's extracted text
(``content="chunk"``: the passage that matched), ``metadata`` is ``docrag.integrations.hit_metadata`` (the
document's metadata, file, page (1-based), doc_id, fused score, confidence, per-leg scores and ranks, snippet),
and with ``with_image=True`` also ``image``: the page as a base64 PNG (``image_mimetype``: image/png).
``ainvoke`` works too (LangChain runs the search in a thread).
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from docrag.integrations import Content, check_content, hit_content, hit_metadata, open_target, page_png_base64, require

_retrievers = require("langchain_core.retrievers", "langchain", "langchain-core")
_documents = require("langchain_core.documents", "langchain", "langchain-core")

__all__ = ["DocragRetriever"]


class DocragRetriever(_retrievers.BaseRetriever):
    """docrag's fused page search as a LangChain ``BaseRetriever``: give ``index`` (``docrag.open(db)``) or ``db``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any = Field(None, description="An open docrag Index (docrag.open(DB)); or give db (then: the one opened).")
    db: str | None = Field(None, description="A database path or s3:// URI, opened with docrag.open(db, profile).")
    profile: str | None = Field(None, description="The profile to open db with (default: the database's own).")
    k: int = Field(4, ge=1, description="How many pages to return.")
    where: Any = Field(None, description="A filter on documents: SQL, a metadata key filter {key: value}, or a list.")
    legs: str | list[str] | None = Field(None, description="Only these legs (visual, text, image, bm25); default all.")
    min_score: float | None = Field(None, description="Keep only hits whose confidence (0 to 1) is at least this.")
    content: Content = Field("page", description="page_content: the page's text ('page') or the matching chunk's.")
    with_image: bool = Field(False, description="Put the page image in metadata['image'] (base64 PNG).")
    image_dpi: float = Field(100, gt=0, description="The page image's resolution.")
    image_regions: bool = Field(False, description="Draw the hit's answer regions on the page image.")

    @field_validator("content", mode="before")
    @classmethod
    def _content(cls, value: str) -> str:
        return check_content(value)

    @model_validator(mode="after")
    def _open(self) -> DocragRetriever:
        self.index = open_target(self.index, self.db, self.profile)
        return self

    def _get_relevant_documents(self, query: str, *, run_manager: Any = None) -> list[Any]:
        hits = self.index.search(query, k=self.k, where=self.where, legs=self.legs, min_score=self.min_score)
        out = []
        for hit in hits:
            metadata = hit_metadata(hit)
            if self.with_image:
                metadata |= {
                    "image": page_png_base64(hit, self.image_dpi, self.image_regions),
                    "image_mimetype": "image/png",
                }
            out.append(_documents.Document(page_content=hit_content(hit, self.content), metadata=metadata))
        return out
