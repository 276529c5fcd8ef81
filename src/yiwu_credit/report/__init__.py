"""The HTML report: the page (``html``), its sections (``model_sections``,
``supervision_sections``) and the rendering helpers (``render``).
"""

__all__: list[str] = []  # import the stage modules themselves
