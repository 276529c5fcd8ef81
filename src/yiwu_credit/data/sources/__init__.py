"""Where records come from: a directory of files (CSV in UTF-8 or GB18030, Excel, Parquet) or a
database, mapped onto the data contract by a source profile.

``files`` reads directories, ``profile`` loads profiles (``zh`` ships), ``database`` reads and
writes databases. :func:`yiwu_credit.load_dataset` calls them; validation is the same for every
source.
"""
