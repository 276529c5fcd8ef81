"""Stage 5, supervision: one module per concern, nothing here imports a machine-learning library.

``policy`` (the validated policy) · ``prn`` (seeds, the PRN hash, the draw order) · ``fixedpoint``
(π in fixed point, the shortfall rule, systematic selection) · ``allocation`` (capped allocation)
· ``plan`` (``group_counts → solve_groups → apply``, ``supervision_plan``) · ``systematic`` (the
entity draw: ``prepare → offsets → select_range``, ``draw``) · ``joint`` (joint and rotating
campaigns) · ``audit`` (the audit hasher and record, the ``SamplingDesign`` protocol) ·
``verification`` (``verify``, ``verify_files``) · ``inspectors`` and ``assignments`` (the second
random) · ``estimates`` (published estimates) · ``frontier`` (the policy frontier) · ``sampling``
(compatibility names). See docs/policy.md §9.
"""

__all__: list[str] = []
