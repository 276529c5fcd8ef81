"""Stages composed: scoring (``scoring``: features → model → tiers → reasons), the closed loop
(``closed_loop``) and the demo run (``demo``).
"""
