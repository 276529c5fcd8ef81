"""The same pure functions on Dask partitions (``engine``); ``pip install 'yiwu-credit[dask]'``.

``engine`` is orchestration only: plans and draws call the public core of
:mod:`yiwu_credit.supervision` (see docs/distributed.md).
"""

__all__: list[str] = []
