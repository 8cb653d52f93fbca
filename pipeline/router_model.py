"""The learned layout-vs-text decision: small boosted trees over the page signals, shipped as plain numbers.

``router_model.json`` (next to this file) holds the feature names, the base log-odds and every tree as flat
arrays (feature, threshold, children, node values), plus the training set and its leave-one-document-out
accuracy. It is fitted by
``benchmarks/router.py --fit`` on the labelled pages of ``benchmarks/router_set`` (no pickle: a JSON file a
person can read and diff). A user can fit their own and point ``[router] model`` at it.

The reasons of a decision are the features (``router_features``) that pushed it furthest, in their words.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from docrag.parsers.types import PageSignals

from .router_features import BY_NAME, FEATURES, REGION_FEATURES, feature_vector

__all__ = [
    "LearnedDecision",
    "Tree",
    "fit_on_rule",
    "fit_trees",
    "load_model",
]

DEFAULT_MODEL = Path(__file__).with_name("router_model.json")


@dataclass(slots=True)
class Tree:
    """One regression tree over feature indices. Node ``i`` splits on ``feature[i]`` at ``threshold[i]``
    (x < threshold goes left) or is a leaf (``feature[i] == -1``); ``value[i]`` is the node's log-odds step,
    kept for inner nodes too, so a decision can be split into per-feature contributions."""

    feature: list[int]
    threshold: list[float]
    left: list[int]
    right: list[int]
    value: list[float]

    def path(self, x: np.ndarray) -> list[int]:
        i, out = 0, [0]
        while self.feature[i] >= 0:
            i = self.left[i] if x[self.feature[i]] < self.threshold[i] else self.right[i]
            out.append(i)
        return out


@dataclass(slots=True)
class LearnedDecision:
    """Log-odds of layout = base + the sum of small boosted trees over the named features.

    A decision splits exactly into per-feature contributions: along each tree's path, the change of the node
    value at a split is credited to the feature split on (Saabas' attribution), so the reasons are the
    features that moved the log-odds furthest, each with the words of its value on this page.
    """

    names: list[str]
    base: float
    trees: list[Tree]
    source: str = ""
    medians: list[float] | None = None  # of the training pages: which side of typical a value is, for hints
    prior_scale: float = 0.0  # > 0: the trees correct the region rule, whose log-odds (times this) start the sum

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> LearnedDecision:
        where = source or "router model"
        names = data.get("features")
        if not isinstance(names, list) or not names:
            raise ValueError(f"{where}: no 'features' list")
        unknown = [n for n in names if not isinstance(n, str) or n not in BY_NAME]
        if unknown:
            raise ValueError(f"{where}: unknown feature(s) {', '.join(map(str, unknown))}")

        def ints(v: object) -> list[int]:
            if not isinstance(v, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in v):
                raise TypeError("node indices and features must be lists of whole numbers")
            return v

        def floats(v: object) -> list[float]:
            if not isinstance(v, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                raise TypeError("thresholds, values and medians must be lists of numbers")
            return [float(x) for x in v]

        try:
            if not isinstance(data.get("trees"), list):
                raise TypeError("'trees' must be a list")
            trees = [
                Tree(ints(t["feature"]), floats(t["threshold"]), ints(t["left"]), ints(t["right"]), floats(t["value"]))
                for t in data["trees"]
            ]
            base = float(data["base"])
            medians = data.get("medians")
            medians = floats(medians) if medians is not None else None
            prior_scale = float(data.get("prior_scale", 0.0))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{where}: malformed ({exc})") from None
        for t in trees:
            n = len(t.feature)
            if not n or any(len(v) != n for v in (t.threshold, t.left, t.right, t.value)):
                raise ValueError(f"{where}: a tree's arrays differ in length")
            for i, f in enumerate(t.feature):
                if f >= len(names) or (f >= 0 and not (i < t.left[i] < n and i < t.right[i] < n)):
                    raise ValueError(f"{where}: a tree refers to a feature or node that does not exist")
        if medians is not None and len(medians) != len(names):
            raise ValueError(f"{where}: 'medians' must list one number per feature")
        return cls(
            names=list(names),
            base=base,
            trees=trees,
            source=source,
            medians=medians or None,
            prior_scale=prior_scale,
        )

    def to_dict(self) -> dict:
        return {
            "base": round(self.base, 6),
            "features": list(self.names),
            **({"medians": [round(m, 6) for m in self.medians]} if self.medians else {}),
            **({"prior_scale": self.prior_scale} if self.prior_scale else {}),
            "trees": [
                {
                    "feature": t.feature,
                    "threshold": [round(v, 6) for v in t.threshold],
                    "left": t.left,
                    "right": t.right,
                    "value": [round(v, 6) for v in t.value],
                }
                for t in self.trees
            ],
        }

    def contributions(self, s: PageSignals, prior: float = 0.0) -> tuple[float, np.ndarray]:
        """(log-odds of layout, per-feature contributions); the contributions sum to log-odds minus the
        trees' root values, the base and ``prior`` (the region rule's scaled log-odds, when the model uses it)."""
        x = feature_vector(s, self.names)
        c = np.zeros(len(self.names))
        z = self.base + prior
        for t in self.trees:
            path = t.path(x)
            z += t.value[path[-1]]
            for parent, child in itertools.pairwise(path):
                c[t.feature[parent]] += t.value[child] - t.value[parent]
        return z, c

    def probability(self, s: PageSignals, prior: float = 0.0) -> tuple[float, np.ndarray]:
        z, c = self.contributions(s, prior)
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0))), c

    def reasons(
        self,
        s: PageSignals,
        contributions: np.ndarray,
        layout: bool,
        n: int = 3,
        prior: tuple[float, list[str]] = (0.0, []),
    ) -> list[str]:
        """The features that pushed hardest towards the decision, in words (strongest first); the region rule
        (``prior``: its scaled log-odds and its reasons) competes as one more."""
        sign = 1.0 if layout else -1.0
        weights = np.append(contributions, prior[0])
        order = [i for i in np.argsort(-sign * weights, kind="stable").tolist() if sign * weights[i] > 0.05]
        rule = len(self.names)
        if rule in order[:n]:  # the rule's words already name the regions: their share features would repeat them
            order = [i for i in order if i == rule or self.names[i] not in REGION_FEATURES]
        x = feature_vector(s, self.names)
        out = []
        for i in order[:n]:
            if i == rule:
                out.append("region rule: " + "; ".join(prior[1]))
                continue
            f = BY_NAME[self.names[i]]
            hint = f.layout_hint if layout else f.text_hint
            # A hint says what the value suggests; it is given only when the value lies on that side of the
            # training pages' median (a tree may also use a feature against its usual direction).
            side = f.direction * (x[i] - self.medians[i]) if self.medians else None
            if hint and side is not None and (side > 0 if layout else side <= 0):
                out.append(f"{f.words(s)}: {hint}")
            else:
                out.append(f.words(s))
        return out


def load_model(path: str | Path | None = None) -> LearnedDecision:
    """The packaged model, or one fitted by the user (a JSON file in the same format)."""
    return _load(str(path or DEFAULT_MODEL))


@lru_cache(maxsize=8)
def _load(path: str) -> LearnedDecision:
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"router model {p}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"router model {p}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"router model {p}: not a JSON object")
    return LearnedDecision.from_dict(data, source=str(p))


def fit_trees(
    x: np.ndarray,
    y: np.ndarray,
    names: list[str] | None = None,
    rounds: int = 150,
    depth: int = 2,
    learning_rate: float = 0.1,
    l2: float = 1.0,
    min_leaf: int = 5,
    bins: int = 32,
    sample_weight: np.ndarray | None = None,
    offset: np.ndarray | None = None,
) -> LearnedDecision:
    """Gradient-boosted trees for the logistic loss (Newton steps, as XGBoost does), small and plain.

    Split candidates are the midpoints between up to ``bins`` quantiles of each feature; a leaf needs
    ``min_leaf`` pages; ``l2`` shrinks every node value towards 0.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n, d = x.shape
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=float)
    cuts = []
    for j in range(d):
        q = np.unique(np.quantile(x[:, j], np.linspace(0, 1, bins + 1)))
        cuts.append((q[:-1] + q[1:]) / 2 if q.size > 1 else np.empty(0))
    binned = np.stack([np.searchsorted(cuts[j], x[:, j], side="right") for j in range(d)], axis=1)
    p0 = float(np.clip((w * y).sum() / w.sum(), 1e-3, 1 - 1e-3))
    base = math.log(p0 / (1 - p0))
    z = np.full(n, base) if offset is None else base + np.asarray(offset, dtype=float)
    trees: list[Tree] = []
    for _ in range(rounds):
        p = 1.0 / (1.0 + np.exp(-z))
        g, h = w * (p - y), w * p * (1 - p)
        t = Tree([], [], [], [], [])
        leaf_of = np.zeros(n, dtype=np.int64)

        def grow(
            idx: np.ndarray,
            level: int,
            t: Tree = t,
            g: np.ndarray = g,
            h: np.ndarray = h,
            leaf_of: np.ndarray = leaf_of,
        ) -> int:
            node = len(t.feature)
            gs, hs = float(g[idx].sum()), float(h[idx].sum())
            t.feature.append(-1)
            t.threshold.append(0.0)
            t.left.append(-1)
            t.right.append(-1)
            t.value.append(-learning_rate * gs / (hs + l2))
            leaf_of[idx] = node
            if level >= depth or idx.size < 2 * min_leaf:
                return node
            best = (1e-6, -1, 0)
            parent = gs * gs / (hs + l2)
            for j in range(d):
                k = cuts[j].size
                if not k:
                    continue
                b = binned[idx, j]
                gl = np.cumsum(np.bincount(b, g[idx], minlength=k + 1))[:-1]
                hl = np.cumsum(np.bincount(b, h[idx], minlength=k + 1))[:-1]
                nl = np.cumsum(np.bincount(b, minlength=k + 1))[:-1]
                ok = (nl >= min_leaf) & (idx.size - nl >= min_leaf)
                if not ok.any():
                    continue
                gain = gl**2 / (hl + l2) + (gs - gl) ** 2 / (hs - hl + l2) - parent
                gain[~ok] = -np.inf
                c = int(np.argmax(gain))
                if gain[c] > best[0]:
                    best = (float(gain[c]), j, c)
            if best[1] < 0:
                return node
            j, c = best[1], best[2]
            go_left = binned[idx, j] <= c
            t.feature[node], t.threshold[node] = j, float(cuts[j][c])
            t.left[node] = grow(idx[go_left], level + 1)
            t.right[node] = grow(idx[~go_left], level + 1)
            return node

        grow(np.arange(n), 0)
        z += np.asarray(t.value)[leaf_of]
        trees.append(t)
    return LearnedDecision(
        names=list(names or [f.name for f in FEATURES]),
        base=base,
        trees=trees,
        medians=[float(v) for v in np.median(x, axis=0)],
    )


def fit_on_rule(x: np.ndarray, y: np.ndarray, rule: np.ndarray, scale: float, **kw) -> LearnedDecision:
    """Trees that correct the region rule: boosting starts from ``scale`` x the rule's log-odds per page."""
    model = fit_trees(x, y, offset=scale * np.asarray(rule, dtype=float), **kw)
    model.prior_scale = scale
    return model
