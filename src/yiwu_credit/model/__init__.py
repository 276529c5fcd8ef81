"""Stage 3, the risk model: labels (``labels``), supervised binning (``binning``), the learners
(``learners``), input handling (``inputs``), the points scale (``points``), the estimator
(``estimator``), training (``training``), evaluation (``evaluation``), bundles (``bundle``) and
monitoring (``monitoring``). Tiers are a step of their own: :mod:`yiwu_credit.tiering`.
"""

__all__: list[str] = []  # import the stage modules themselves
