from __future__ import annotations

import base64
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from yiwu_credit.features.build import build_features
from yiwu_credit.model.evaluation import metrics, tier_table
from yiwu_credit.model.labels import build_labels
from yiwu_credit.model.monitoring import psi
from yiwu_credit.pipeline.scoring import score_entities
from yiwu_credit.policy import TIERS
from yiwu_credit.report.html import SECTIONS, build_report, write_report

pytestmark = pytest.mark.slow   # the report fixtures score and render whole populations

AS_OF = "2025-01-01"  # outcomes observed in 2025 (the synthetic data runs to 2025-12-31)
PNG = b"\x89PNG\r\n\x1a\n"
CHROMIUM = "/usr/bin/chromium"


class _Cells(HTMLParser):
    """Collects numeric table cells: (table id, row key, column) → (data-value, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], tuple[float | None, str]] = {}
        self._table = self._row = self._col = None
        self._value: float | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id", "")
        elif tag == "tr":
            self._row = a.get("data-key")
        elif tag == "td":
            self._col = a.get("data-col")
            self._value = float(a["data-value"]) if "data-value" in a else None
            self._text = []

    def handle_data(self, data):
        if self._col is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._col is not None:
            self.cells[(self._table, self._row, self._col)] = (self._value, "".join(self._text))
            self._col = None


def _cells(page: str) -> dict[tuple[str, str, str], tuple[float | None, str]]:
    p = _Cells()
    p.feed(page)
    return p.cells


def _section(page: str, anchor: str) -> str:
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', page, re.S)
    assert m, anchor
    return m.group(1)


@pytest.fixture(scope="module")
def scoring(world, bundle):
    return score_entities(world.dataset, AS_OF, bundle)


@pytest.fixture(scope="module")
def outcomes(world):
    return build_labels(world.dataset, AS_OF)


@pytest.fixture(scope="module")
def plan(scoring):
    """A plan frame shaped like sampling.supervision_plan's (tier, town, expected_per_year, pi)."""
    s = scoring.scored
    rate = s["tier"].map({"A": 0.01, "B": 0.04, "C": 0.2, "D": 0.6}).astype(float)
    return pd.DataFrame({"tier": s["tier"], "town": s["town"], "expected_per_year": rate,
                         "pi": rate * 60 / rate.sum()}, index=s.index)


@pytest.fixture(scope="module")
def full_page(world, bundle, scoring, outcomes, plan):
    from yiwu_credit.model.monitoring import monitor
    from yiwu_credit.pipeline.closed_loop import simulate_loop
    from yiwu_credit.supervision.frontier import candidate_grid, policy_frontier

    ref = build_features(world.dataset, "2024-01-01", bundle.catalogue, bundle.policy)
    mon = monitor(bundle, scoring.scored, scoring.features, outcomes=outcomes["y"] if hasattr(outcomes, "columns")
                  else outcomes)
    loop = simulate_loop(n_entities=3000, cycles=2, seed=1)
    front = policy_frontier(scoring.scored, 0.04 * len(scoring.scored), candidate_grid(alphas=(0.0, 1.0)))
    return build_report(scoring.scored, bundle, features=scoring.features, outcomes=outcomes, plan=plan,
                        reference_features=ref, as_of=AS_OF, monitoring=mon, loop=loop, frontier=front)


@pytest.fixture(scope="module")
def bare_page(bundle, scoring):
    return build_report(scoring.scored, bundle, title="自定义标题 Custom title")


def test_every_section_heading_and_header(full_page, bundle, scoring):
    assert full_page.startswith("<!DOCTYPE html>")
    assert '<meta charset="utf-8">' in full_page
    for anchor, zh, en in SECTIONS:
        assert f'<section id="{anchor}">' in full_page
        assert zh in full_page and en in full_page
    header = full_page.split('<section id="scores">')[0]
    for text in (AS_OF, bundle.version, bundle.catalogue.name, bundle.catalogue.version, bundle.policy.name,
                 bundle.policy.version, f"{len(scoring.scored):,}"):
        assert text in header
    assert "Skipped" not in full_page  # every input was given


def test_frontier_section(full_page):
    sec = full_page.split('<section id="frontier">')[1].split("</section>")[0]
    assert "Policy in force" in sec and 'id="frontier-candidates"' in sec and "<img" in sec
    assert sec.count('<tr data-key="') == 1 + 4 * 2 * 3 - 1          # in force + grid minus its duplicate
    assert 'data-key="in_force"' in sec


def test_images_are_embedded_pngs(full_page):
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', full_page)
    assert len(srcs) == full_page.count("<img") >= 9  # scores, 4 evaluation, importance, PSI, CSI, plan
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data[:8] == PNG
        assert len(data) > 5000  # a real chart, not an empty canvas


def test_self_contained(full_page):
    for attr, url in re.findall(r'\b(src|href)\s*=\s*["\']([^"\']*)', full_page, re.I):
        assert not url.lower().startswith(("http:", "https:", "//")), (attr, url[:60])
    assert "http://" not in full_page and "https://" not in full_page
    assert "<script" not in full_page.lower() and "<link" not in full_page.lower()
    assert "url(" not in full_page  # no CSS imports or fonts
    assert len(full_page.encode("utf-8")) < 2_000_000


def test_tier_labels_and_shares_match_scored(full_page, bundle, scoring):
    for t in TIERS:
        assert bundle.policy.tier_label(t, "zh") in full_page
    cells = _cells(full_page)
    want = scoring.scored["tier"].value_counts(normalize=True)
    for t in TIERS:
        value, text = cells[("tier-shares", t, "share")]
        assert value == pytest.approx(want.get(t, 0.0), abs=1e-12)
        assert text == f"{100 * want.get(t, 0.0):.2f}%"
        assert cells[("tier-shares", t, "n")][0] == (scoring.scored["tier"] == t).sum()


def test_evaluation_matches_evaluation_module(full_page, scoring, outcomes):
    s = scoring.scored.loc[outcomes.index]
    y, p = outcomes["y"].to_numpy(), s["probability"].to_numpy()
    m = metrics(y, p)
    cells = _cells(full_page)
    assert cells[("eval-metrics", "AUC", "value")][1] == f"{m['auc']:.3f}"
    assert cells[("eval-metrics", "KS", "value")][1] == f"{m['ks']:.3f}"
    tt = tier_table(y, s["tier"].to_numpy(), p).set_index("tier")
    for t in TIERS:
        for col in ("bad_rate", "ci_low", "ci_high"):
            assert cells[("tier-bad-rates", t, col)][0] == pytest.approx(tt.loc[t, col], abs=1e-12)
    assert cells[("calibration", "10", "n")][0] > 0


def test_stability_and_plan_numbers(full_page, bundle, scoring, plan):
    want = psi(bundle.model.reference_scores_, scoring.scored["credit_score"].to_numpy())
    got = float(re.search(r'<b id="psi-value">([0-9.]+)</b>', full_page).group(1))
    assert got == pytest.approx(want, abs=5e-5)
    cells = _cells(full_page)
    assert ("csi", "age_days", "csi") in cells
    for t in TIERS:
        e = plan.loc[plan["tier"] == t, "expected_per_year"].sum()
        assert cells[("plan-tiers", t, "expected")][0] == pytest.approx(e)
    town = plan.groupby("town", observed=True)["expected_per_year"].sum()
    for name, e in town.items():
        assert cells[("plan-towns", str(name), "expected")][0] == pytest.approx(e)
    assert float(re.search(r'<b id="pi-sum">([0-9.,]+)</b>', full_page).group(1)) == pytest.approx(60.0)


def test_overrides_and_reasons(full_page, bundle, scoring):
    cells = _cells(full_page)
    ov = scoring.scored["overrides"]
    n_none = int((ov == "").sum())
    assert cells[("overrides", "(none)", "n")][0] == n_none
    for rule, n in ov[ov != ""].str.split(";").explode().value_counts().items():
        assert cells[("overrides", rule, "n")][0] == n
    cd = scoring.scored[scoring.scored["tier"].isin(["C", "D"])]
    top = cd["reason_1"].value_counts()
    assert cells[("reasons", top.index[0], "first")][0] == top.iloc[0]
    assert cells[("reasons", top.index[0], "desc_zh")][1] == bundle.catalogue.feature(top.index[0]).spec.zh
    example = cells[("reasons", top.index[0], "example_zh")][1]
    assert example in set(cd["reason_1_zh"]) | set(cd["reason_2_zh"]) | set(cd["reason_3_zh"])


def test_missing_inputs_are_skipped_with_a_note(bare_page):
    assert "自定义标题 Custom title" in bare_page
    for _anchor, zh, en in SECTIONS:
        assert zh in bare_page and en in bare_page
    for anchor in ("evaluation", "plan"):
        sec = _section(bare_page, anchor)
        assert 'class="skipped"' in sec and "Skipped" in sec
        assert "<img" not in sec and "<table" not in sec
    assert "no reference_features given" in _section(bare_page, "stability")
    assert "<img" in _section(bare_page, "scores")
    assert "<img" in _section(bare_page, "importance")


def test_deterministic(bundle, scoring, bare_page):
    assert build_report(scoring.scored, bundle, title="自定义标题 Custom title") == bare_page
    assert not re.search(r"20\d\d-\d\d-\d\d[T ]\d\d:\d\d", bare_page)  # no timestamps


def test_write_report_is_atomic(tmp_path, bundle, scoring, bare_page, plan):
    out = tmp_path / "reports" / "report.html"
    out.parent.mkdir()
    out.write_text("old", encoding="utf-8")
    p = write_report(out, scoring.scored, bundle, title="自定义标题 Custom title")
    assert p == out and out.read_text(encoding="utf-8") == bare_page
    assert [f.name for f in out.parent.iterdir()] == ["report.html"]
    with pytest.raises(ValueError, match="expected_per_year"):
        write_report(out, scoring.scored, bundle, plan=plan.drop(columns="expected_per_year"))
    assert out.read_text(encoding="utf-8") == bare_page  # a failed build leaves the old file alone
    assert [f.name for f in out.parent.iterdir()] == ["report.html"]


def test_bad_inputs(bundle, scoring, outcomes):
    with pytest.raises(ValueError, match="'y' column"):
        build_report(scoring.scored, bundle, outcomes=outcomes.rename(columns={"y": "bad"}))
    with pytest.raises(ValueError, match="missing column"):
        build_report(scoring.scored.drop(columns="credit_score"), bundle)
    with pytest.raises(ValueError, match="no entities"):
        build_report(scoring.scored.iloc[:0], bundle)


def test_clear_error_without_matplotlib(monkeypatch, bundle, scoring):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'yiwu-credit\[report\]'"):
        build_report(scoring.scored, bundle)


def test_with_the_real_supervision_plan(bundle, scoring):
    sampling = pytest.importorskip("yiwu_credit.supervision")
    if not hasattr(sampling, "supervision_plan"):
        pytest.skip("sampling.supervision_plan not available")
    plan = sampling.supervision_plan(scoring.scored)
    page = build_report(scoring.scored, bundle, plan=plan)
    assert "Skipped" not in _section(page, "plan")
    assert f"{plan['expected_per_year'].sum():,.1f}" in _section(page, "plan")


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed (apt-get install chromium)")
def test_renders_in_headless_chromium(tmp_path, full_page):
    from matplotlib.image import imread

    page = tmp_path / "report.html"
    page.write_text(full_page, encoding="utf-8")
    shot = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    img = imread(shot)[..., :3]
    assert img.shape[:2] == (4000, 1280)
    assert img.std() > 0.05  # not a blank page
    ink = (np.abs(img - img[-1, -1]).sum(axis=2) > 0.3).mean()
    assert ink > 0.02  # text, tables and charts drawn
