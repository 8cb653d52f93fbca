"""How well a hit's confidence separates answers from nothing: dev-set questions against off-topic queries.

    python benchmarks/confidence.py --corpus DEVSET/corpus --queries DEVSET/queries.jsonl [--db DIR] [--no-save]

Indexes the corpus with the `lite` profile (or reuses ``--db``), then for each dev-set question reads the
confidence of its labelled page (when in the top 10) and of the top hit, and for each off-topic query (nonsense
strings, and questions no page of a statistics and software corpus answers) the best confidence of its hits.
Prints, per threshold, the share of labelled pages that clear it and the share of off-topic queries with a
hit that does (lower is better), and the spread of each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import append_results

OFF_TOPIC = (
    "zxqv blorft quantum marmalade",
    "qwpl zzrt vexo trambulin",
    "florp gnarble wizzle snoot",
    "How do I make lemon marmalade at home?",
    "Who won the football world cup final in 1998?",
    "What is the boiling point of ethanol at sea level?",
    "best hiking trails in the Swiss Alps in autumn",
    "How long should a boiled egg be cooked for a runny yolk?",
    "When was the Eiffel Tower built and by whom?",
    "symptoms of a cold in cats",
    "Which planets in the solar system have rings?",
    "cheap flights from Lisbon to Oslo in March",
    "How do you tune a six-string guitar by ear?",
    "recipe for vegetable lasagne without cheese",
    "What did the Romans eat for breakfast?",
    "the rules of cricket explained simply",
)
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--queries", type=Path, required=True)
    ap.add_argument("--db", type=Path, help="a lite database of the corpus (default: built in a temp folder)")
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()

    import docrag

    tmp = tempfile.mkdtemp(prefix="docrag-confidence-")
    db = args.db or Path(tmp) / "db"
    idx = docrag.open(db, profile="lite")
    if args.db is None:
        idx.add([args.corpus])
    questions = [json.loads(line) for line in args.queries.read_text().splitlines() if line.strip()]
    right, top_right, top_wrong = [], [], []
    for q in questions:
        hits = idx.search(q["text"], k=10)
        wanted = {(r["file"], r["page"]) for r in q["relevant"]}
        found = [h.confidence for h in hits if (Path(h.file).name, h.page) in wanted]
        right.append(max(found) if found else 0.0)
        if hits:
            (top_right if (Path(hits[0].file).name, hits[0].page) in wanted else top_wrong).append(hits[0].confidence)
    off = [max((h.confidence for h in idx.search(q, k=10)), default=0.0) for q in OFF_TOPIC]

    def share(values: list[float], t: float) -> str:
        return f"{sum(v >= t for v in values) / max(len(values), 1):.2f}"

    def spread(values: list[float]) -> str:
        if not values:
            return "—"
        qs = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
        return f"min {min(values):.2f}, quartiles {qs[0]:.2f} / {qs[1]:.2f} / {qs[2]:.2f}, max {max(values):.2f}"

    rows = ["| threshold | labelled page clears it | off-topic query has a hit that clears it |", "|---|---|---|"]
    rows += [f"| {t} | {share(right, t)} | {share(off, t)} |" for t in THRESHOLDS]
    body = (
        f"{len(questions)} dev-set questions (labelled page's confidence, 0 when not in the top 10), "
        f"{len(OFF_TOPIC)} off-topic queries (best confidence of their 10 hits); lite profile, MiniLM.\n\n"
        + "\n".join(rows)
        + f"\n\n- labelled pages: {spread(right)}\n- off-topic best hits: {spread(off)}\n"
        + f"- top hit right ({len(top_right)}): {spread(top_right)}\n- top hit wrong ({len(top_wrong)}): "
        + f"{spread(top_wrong)}\n"
    )
    append_results("Confidence: dev-set answers against off-topic queries (benchmarks/confidence.py)", body,
                   save=not args.no_save)  # fmt: skip


if __name__ == "__main__":
    main()
