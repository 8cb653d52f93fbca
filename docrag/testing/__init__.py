"""Helpers that docrag's tests, benchmarks and notebooks share (not part of the library's API).

- ``tiny_models``: tiny random models of the real architectures, built offline and saved with
  ``save_pretrained`` (needs torch, transformers and colpali-engine, as docrag does);
- ``pdfgen``: small generated PDFs and images of every kind of page (needs reportlab: the ``dev`` extra);
- ``officegen``: small Office, OpenDocument, HTML and Markdown files (the ``office`` extra; LibreOffice for
  the legacy binary formats) and ``examples/mixed``;
- ``rows``: a store with rows written through the store's own row classes (``indexes.schema``), for tests of
  the search side that need no embedder.
"""
