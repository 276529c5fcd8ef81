"""Stage 3, the risk model: labels (``labels``), supervised binning (``binning``), the estimator
(``estimator``), training (``training``), evaluation (``evaluation``), bundles (``bundle``) and
monitoring (``monitoring``).
"""
