"""Stage 5, supervision: the policy (``policy``), plans, draws, audits and verification
(``sampling``), inspectors (``inspectors``), published estimates (``estimates``) and the policy
frontier (``frontier``). Nothing here imports a machine-learning library.
"""
