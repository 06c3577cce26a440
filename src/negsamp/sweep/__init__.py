"""Comparing sweep configurations: the table with CIs and paired tests, its renderings, plots.

Pure logic: the ``report`` stage reads each configuration's metrics, per-user metrics,
training history and pool manifest, and hands them to :func:`table.build`.
"""
