"""Evaluation metrics, pure numpy/polars: what :mod:`negsamp.evaluate`'s ranks mean.

- :mod:`.ranking`    sampled and full-ranking accuracy metrics, per held-out row and per user
- :mod:`.corrected`  full-ranking estimates from sampled ranks (rescaling, Krichene & Rendle)
- :mod:`.bootstrap`  bootstrap confidence intervals and the paired test between two runs
- :mod:`.beyond`     coverage, popularity (ARP), Gini, long-tail share, novelty of top-K lists
- :mod:`.segments`   user-activity and item-popularity bands, the per-segment table
- :mod:`.report`     everything above assembled into what the evaluate stage writes
- :mod:`.artifacts`  where those files live
"""
