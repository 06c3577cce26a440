"""Comparing sweep configurations: the choice on validation, the table with CIs and paired
tests on test, its renderings, plots.

Pure logic: the ``report`` stage reads each configuration's metrics, per-user metrics,
training history and pool manifest, and hands them to :func:`table.build` with the choice
of :func:`select.choose_for` (the register stage makes the same choice).
"""
