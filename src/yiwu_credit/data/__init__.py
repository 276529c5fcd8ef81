"""Stage 1, records in: the data contract (``contract``), loading and validation (``dataset``),
sources (``sources``: files, profiles, databases), USCC checks (``uscc``), dates (``dates``),
atomic output files (``io``) and the synthetic world (``synth``).
"""
