"""Stage 2, point-in-time features: the declarative catalogue (``catalogue``), the batch and
single-entity builders (``build``) and the training-range record (``ranges``).
"""

__all__: list[str] = []  # import the stage modules themselves
