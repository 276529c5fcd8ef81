"""The HTML report (``html``).
"""
