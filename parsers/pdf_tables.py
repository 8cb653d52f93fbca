"""Tables on a PDF page: groups of ruling lines around table text, and runs of aligned cells without rules.

Pure functions over boxes in PDF space (``(left, bottom, right, top)``), text runs and occupancy grids:
``rule_groups`` (horizontal rules sharing an x-extent) -> ``ruled_tables`` (the groups whose text reads as
cells) and ``unruled_tables`` (line geometry's aligned runs outside ruled tables and drawings).
"""

from __future__ import annotations

import math
import re

import numpy as np

from .pdf_grid import Mask, PdfBox, PdfRegion, Run, Runs, running_text

__all__ = ["MAX_TABLE_CANDIDATES", "TableText", "rule_groups", "ruled_tables", "unruled_tables"]

MAX_TABLE_CANDIDATES = 256  # groups of ruling lines checked for table text (a hostile page can draw thousands)
RULE_GROUP_SLACK = 4.0  # pt: rules whose ends lie this close to a group's first rule's join the group
DOUBLE_RULE_MAX = 12.0  # pt: rules closer than this from first to last are a double rule, not a table
FAR_PAIR_SHARE = 0.45  # share of the page height: two rules further apart are a header and a footer line
MANY_RULES = 4  # a group of this many rules is a table unless its text runs in long lines
INSIDE_SHARE = 0.5  # share of a candidate's grid cells: this much under drawings (or ruled tables) and it is theirs
TABLE_MIN_TOKENS = 4  # fewer tokens than this between rules is nothing readable (gridlines, a frame)
PROSE_WORDS = 0.45  # text with this share of plain words or more...
PROSE_NUMBERS = 0.15  # ...and under this share of numbers is prose, not a table

_NUMBER = re.compile(r"^[-+−–(<>=±$€£]*\d[\d.,:%]*[)*%]*$")
_WORD = re.compile(r"^[A-Za-z][a-z]{3,}[,.;:]?$")


class TableText:
    """Judges whether the text between ruled lines reads like a table, not prose (a ruled abstract) or nothing
    (chart gridlines).

    Tables are made of short cells: numbers, codes, labels. Prose is made of words. The share of
    tokens that are plain words (4+ letters) against those that are numbers tells them apart.

    The spans are tokenised once, so judging many regions costs one vectorised pass over the spans each, not
    a re-tokenisation of the page per region.
    """

    def __init__(self, spans: list[Run]) -> None:
        self._spans = spans
        self._arrays: tuple[np.ndarray, ...] | None = None

    def _build(self) -> tuple[np.ndarray, ...]:
        if self._arrays is None:
            counts = []
            for s in self._spans:
                tokens = s[4].split()
                counts.append(
                    (
                        len(tokens),
                        sum(bool(_WORD.match(t)) for t in tokens),
                        sum(bool(_NUMBER.match(t)) for t in tokens),
                    )
                )
            arr = np.asarray([s[:4] for s in self._spans], dtype=float).reshape(-1, 4)
            c = np.asarray(counts, dtype=np.int64).reshape(-1, 3)
            # (n,) each: left, right, vertical centre, tokens, plain words, numbers
            self._arrays = (arr[:, 0], arr[:, 2], (arr[:, 1] + arr[:, 3]) / 2, c[:, 0], c[:, 1], c[:, 2])
        return self._arrays

    def looks_like_table(self, region: PdfBox) -> bool:
        left, bottom, right, top = region
        x0, x1, cy, n_tokens, n_words, n_numbers = self._build()
        sel = (bottom - 1 <= cy) & (cy <= top + 1) & (x1 >= left - 2) & (x0 <= right + 2)
        n = int(n_tokens[sel].sum())
        if n < TABLE_MIN_TOKENS:
            return False  # rules around (almost) nothing readable: gridlines, a drawn frame
        words = int(n_words[sel].sum()) / n
        numbers = int(n_numbers[sel].sum()) / n
        return not (words >= PROSE_WORDS and numbers < PROSE_NUMBERS)


def rule_groups(rules: list[PdfBox], page_h: float) -> list[tuple[PdfBox, int]]:
    """Groups of horizontal rules sharing an x-extent, like booktabs or grid tables, as (l, b, r, t)."""
    # A rule joins the first group (in order of creation) whose first rule starts and ends within
    # RULE_GROUP_SLACK (4 pt) of its own. The first rules are indexed by (x0 // 4, x1 // 4): two of them never
    # share a cell (the later one would have joined the earlier one's group), and a match lies in the 3 x 3
    # cells around the rule, so grouping is linear in the rules instead of rules x groups.
    groups: list[list[PdfBox]] = []
    firsts: dict[tuple[int, int], int] = {}
    finite = [b for b in rules if all(math.isfinite(v) for v in b)]
    for rule in sorted(finite, key=lambda b: (round(b[0]), round(b[2]))):
        cx, cw = math.floor(rule[0] / RULE_GROUP_SLACK), math.floor(rule[2] / RULE_GROUP_SLACK)
        best = -1
        for dx in (-1, 0, 1):
            for dw in (-1, 0, 1):
                gi = firsts.get((cx + dx, cw + dw), -1)
                if gi >= 0 and (best < 0 or gi < best):
                    first = groups[gi][0]
                    if abs(first[0] - rule[0]) <= RULE_GROUP_SLACK and abs(first[2] - rule[2]) <= RULE_GROUP_SLACK:
                        best = gi
        if best >= 0:
            groups[best].append(rule)
        else:
            firsts[(cx, cw)] = len(groups)
            groups.append([rule])
    regions: list[tuple[PdfBox, int]] = []
    for g in groups:
        if len(g) < 2:
            continue
        ys = sorted((b[1] + b[3]) / 2 for b in g)
        span = ys[-1] - ys[0]
        if span < DOUBLE_RULE_MAX:
            continue
        # Two rules far apart (a page header and footer line) are not a table; three or more can be.
        if len(g) == 2 and span > FAR_PAIR_SHARE * page_h:
            continue
        regions.append(((min(b[0] for b in g), ys[0], max(b[2] for b in g), ys[-1]), len(g)))
    return regions


def ruled_tables(
    groups: list[tuple[PdfBox, int]], vlines: list[PdfBox], spans: list[Run], runs: Runs, drawn: Mask
) -> list[PdfRegion]:
    """The groups of rules (``rule_groups``: box and rule count) that hold a table.

    A group inside a drawing (``drawn``: the grid of graphics regions) is a chart's axes and gridlines. A
    group with a vertical stroke inside it (``vlines``) is a grid, a table whatever its words. Otherwise rules
    around running text (``runs``: a theorem box, a framed listing, a ruled abstract) are no table; rows of
    text between ``MANY_RULES`` rules or more are, and so is text that reads as cells (``TableText``, over
    ``spans``)."""
    table_text = TableText(spans)
    out = []
    for t, n in groups:
        if drawn.cells_in(t) >= INSIDE_SHARE * drawn.count_box(t):
            continue
        inner_rule = any(
            t[0] + 5 < (v[0] + v[2]) / 2 < t[2] - 5 and v[3] > t[1] + 2 and v[1] < t[3] - 2 for v in vlines
        )
        if inner_rule or (not running_text(runs, t, "ruled") and (n >= MANY_RULES or table_text.looks_like_table(t))):
            out.append(PdfRegion("table", t, n))
    return out


def unruled_tables(table_boxes: list[PdfBox], ruled: Mask, drawn: Mask) -> list[PdfRegion]:
    """Tables without rules: the runs of aligned lines (``table_boxes``, from ``line_geometry``) that lie mostly
    outside the ruled tables (``ruled``) and the drawings (``drawn``)."""
    return [
        PdfRegion("table", b, 0)
        for b in table_boxes
        if ruled.cells_in(b) < INSIDE_SHARE * ruled.count_box(b)
        and drawn.cells_in(b) < INSIDE_SHARE * drawn.count_box(b)
    ]
