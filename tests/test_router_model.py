"""The learned decision: fitting, plain-number model files, explanations, the ambiguity band, user models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from docrag.cli import app
from docrag.config import RouterConfig, VisualPages
from docrag.parsers.types import PageSignals
from docrag.pipeline.router import route_signals
from docrag.pipeline.router_features import FEATURES, feature_vector
from docrag.pipeline.router_model import DEFAULT_MODEL, LearnedDecision, fit_trees, load_model
from docrag.pipeline.routing import route_files

NAMES = [f.name for f in FEATURES]


def _signals(**kw) -> PageSignals:
    base = {"width_pt": 595, "height_pt": 842, "n_chars": 2500, "n_lines": 45, "content_coverage": 0.7}
    return PageSignals(**{**base, **kw})


def _toy(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pages where a table over 30% of the content, or 3+ aligned columns, means layout."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, len(NAMES)))
    share, aligned = rng.uniform(0, 0.8, n), rng.uniform(0, 1, n)
    x[:, NAMES.index("table_share")] = share
    x[:, NAMES.index("aligned_line_share")] = aligned
    x[:, NAMES.index("visible_chars")] = rng.uniform(5, 9, n)  # noise
    return x, (share > 0.3) | (aligned > 0.6)


def test_fitted_trees_learn_thresholds_and_generalise():
    x, y = _toy()
    model = fit_trees(x, y, names=NAMES, rounds=60, depth=1, min_leaf=5)
    xt, yt = _toy(seed=1)
    s = [PageSignals() for _ in range(len(yt))]
    for sig, row in zip(s, xt, strict=True):
        sig.table_share = row[NAMES.index("table_share")]
        sig.aligned_line_share = row[NAMES.index("aligned_line_share")]
    pred = np.array([model.probability(sig)[0] >= 0.5 for sig in s])
    assert (pred == yt).mean() >= 0.95
    used = {model.names[t.feature[0]] for t in model.trees if t.feature[0] >= 0}
    assert used <= {"table_share", "aligned_line_share", "visible_chars"} and "table_share" in used


def test_contributions_add_up_to_the_decision():
    x, y = _toy()
    model = fit_trees(x, y, names=NAMES, rounds=30, depth=2, min_leaf=5)
    sig = _signals(table_share=0.5, aligned_line_share=0.1)
    z, c = model.contributions(sig)
    roots = sum(t.value[0] for t in model.trees)
    assert z == pytest.approx(model.base + roots + c.sum(), abs=1e-9)
    p, _ = model.probability(sig)
    assert p > 0.5
    words = model.reasons(sig, c, layout=True)
    assert words and not any(name in w for w in words for name in ("table_share", "aligned_line_share"))  # words
    assert any("of the content" in w for w in words)


def test_model_file_is_plain_json_and_round_trips(tmp_path):
    x, y = _toy()
    model = fit_trees(x, y, names=NAMES, rounds=20, depth=2)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(model.to_dict()))
    again = load_model(path)
    for seed in range(5):
        xs, _ = _toy(20, seed)
        for row in xs:
            sig = _signals(table_share=row[NAMES.index("table_share")], aligned_line_share=row[1])
            assert again.probability(sig)[0] == pytest.approx(model.probability(sig)[0], abs=1e-5)


def test_shipped_model_loads_and_uses_known_features():
    model = load_model()
    assert model.trees and set(model.names) <= set(NAMES)
    data = json.loads(DEFAULT_MODEL.read_text())
    assert data["leave_one_document_out_accuracy"] > 0.5 and "trained_on" in data
    assert len(feature_vector(_signals(), model.names)) == len(model.names)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not readable JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"base": 0, "trees": []}', "no 'features' list"),
        ('{"base": 0, "features": ["colour_of_the_sky"], "trees": []}', "unknown feature(s) colour_of_the_sky"),
        (
            '{"base": 0, "features": ["visual_share"], "trees": '
            '[{"feature": [0], "threshold": [0.1], "left": [5], "right": [6], "value": [0]}]}',
            "does not exist",
        ),
        ('{"base": 0, "features": ["visual_share"], "trees": [{"feature": [0]}]}', "malformed"),
        (
            '{"base": 0, "features": ["visual_share"], "trees": [{"feature": "ab", "threshold": [0], "left": [0], '
            '"right": [0], "value": [0]}]}',
            "malformed",
        ),
        (
            '{"base": 0, "features": ["visual_share"], "trees": [{"feature": [-1], "threshold": [0], "left": [-1], '
            '"right": [-1], "value": ["x"]}]}',
            "malformed",
        ),
        ('{"base": 0, "features": ["visual_share"], "trees": [], "medians": ["x"]}', "malformed"),
    ],
)
def test_broken_model_files_fail_with_one_line_naming_the_file(tmp_path, content, message):
    path = tmp_path / "model.json"
    path.write_text(content)
    with pytest.raises(ValueError) as err:
        load_model(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_user_model_replaces_the_shipped_one(tmp_path):
    always = LearnedDecision(["visual_share"], 5.0, [])  # log-odds 5 for every page: layout
    path = tmp_path / "always.json"
    path.write_text(json.dumps(always.to_dict()))
    r = route_signals("f.pdf", 1, _signals(), RouterConfig(model=str(path)))
    assert r.label == "layout" and r.confidence > 0.99
    with pytest.raises(ValueError, match="no such file"):
        RouterConfig(model=str(tmp_path / "missing.json"))


def test_ambiguity_band_sends_unsure_text_pages_to_both_legs():
    unsure = LearnedDecision(["visual_share"], -0.2, [])  # P(layout) = 0.45: text, confidence 0.55
    sig = _signals()
    auto = route_signals("f.pdf", 1, sig, RouterConfig(), model=unsure)
    assert (auto.route, auto.label, auto.ambiguous) == ("text", "text", True)
    both = route_signals("f.pdf", 1, sig, RouterConfig(visual_pages=VisualPages.ambiguous_both), model=unsure)
    assert (both.route, both.label, both.ambiguous) == ("visual", "text", True)
    assert any("ambiguous-both" in x for x in both.reasons)
    sure = LearnedDecision(["visual_share"], -4.0, [])
    confident = route_signals("f.pdf", 1, sig, RouterConfig(visual_pages=VisualPages.ambiguous_both), model=sure)
    assert (confident.route, confident.ambiguous) == ("text", False)
    narrow = RouterConfig(visual_pages=VisualPages.ambiguous_both, ambiguous_below=0.5)
    assert route_signals("f.pdf", 1, sig, narrow, model=unsure).route == "text"


def test_routing_report_counts_what_the_band_costs(docs, tmp_path):
    cfg = RouterConfig(visual_pages=VisualPages.ambiguous_both, ambiguous_below=1.0)  # every page is unsure
    report = route_files([docs["prose"], docs["table"]], cfg)
    s = report.summary()
    assert s["pages"] == 2 and s["ambiguous"] == 2
    assert s["visual"] == 2 and s["visual_from_ambiguity"] == 1 and s["visual_without_ambiguity"] == 1
    auto = route_files([docs["prose"], docs["table"]], RouterConfig(ambiguous_below=1.0)).summary()
    assert auto["visual"] == 1 and auto["visual_from_ambiguity"] == 1


def test_cli_route_reports_the_band_and_bad_model_paths(docs, tmp_path):
    runner = CliRunner()
    cfg = tmp_path / "docrag.toml"
    cfg.write_text("[router]\nambiguous_below = 1.0\n")
    res = runner.invoke(app, ["route", str(docs["prose"]), str(docs["table"]), "--config", str(cfg)])
    assert res.exit_code == 0, res.output
    assert "2 pages ambiguous (confidence < 1.00)" in res.output
    assert '[router] visual_pages = "ambiguous-both" would add 1 visual page' in res.output  # the setting index reads
    both = runner.invoke(
        app, ["route", str(docs["prose"]), "--config", str(cfg), "--visual-pages", "ambiguous-both", "--json"]
    )
    data = json.loads(both.output)
    assert data["summary"]["visual_from_ambiguity"] == 1 and data["pages"][0]["route"] == "visual"
    bad = tmp_path / "bad.toml"
    bad.write_text('[router]\nmodel = "/no/such/model.json"\n')
    res = runner.invoke(app, ["route", str(docs["prose"]), "--config", str(bad)])
    flat = " ".join(res.output.replace("│", " ").split())
    assert res.exit_code == 2 and "router model /no/such/model.json: no such file" in flat, flat
    assert "Traceback" not in res.output


def test_cli_route_of_no_existing_path_is_one_line(tmp_path):
    from clirun import invoke

    res = invoke("route", str(tmp_path / "nope"))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.strip().splitlines() == [f"error no such file or folder: {tmp_path / 'nope'}"]
