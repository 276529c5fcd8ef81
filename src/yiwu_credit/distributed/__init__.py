"""The same pure functions on Dask partitions (``engine``); ``pip install 'yiwu-credit[dask]'``.
"""
