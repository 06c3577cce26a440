"""Everything negsamp does with MLflow; no module outside this package imports ``mlflow``.

- :mod:`~negsamp.mlops.uri`: where the tracking store is (no MLflow import: instant).
- :mod:`~negsamp.mlops.errors`: the errors a user sees, and which MLflow failures are transient.
- :mod:`~negsamp.mlops.lineage`: git state, input md5s and the reproduce command, as run tags.
- :mod:`~negsamp.mlops.tracking`: runs (a configuration's, a sweep's parent, a drift check's).
- :mod:`~negsamp.mlops.pyfunc`: :class:`TopKRecommender`, the model the registry holds.
- :mod:`~negsamp.mlops.idmaps`: the id maps it carries (dense -> original ids; no MLflow).
- :mod:`~negsamp.mlops.champion`: the champion, read once (version, run, model, id maps).
- :mod:`~negsamp.mlops.artifacts`: files of a logged run (per-user metrics, pool manifest).
- :mod:`~negsamp.mlops.registry`: model versions and the champion/challenger aliases.
- :mod:`~negsamp.mlops.listing`: the versions ``negsamp registry show`` prints (a sqlite
  store is read without MLflow: the command takes under a second, not 11 s).
- :mod:`~negsamp.mlops.fingerprint`: data, code and configuration of a model as one hash,
  so a challenger identical to the champion is not registered again.
- :mod:`~negsamp.mlops.inputs`: the register stage's inputs, checked before MLflow is touched.
- :mod:`~negsamp.mlops.gate`: :func:`~negsamp.mlops.gate.register`, the one champion gate.
- :mod:`~negsamp.mlops.store`: the sqlite store, created atomically (a temporary database
  renamed into place) and refused, with its repair, when a migration left it half-done.
- :mod:`~negsamp.mlops.recovery`: what a registration killed with SIGKILL left (RUNNING
  runs, an undecided version), cleaned up by the next one.

The modules import MLflow themselves (about 1.3 s), so importing this package costs nothing;
``uri``, ``errors``, ``lineage``, ``idmaps``, ``inputs``, ``fingerprint``, ``recovery``,
``store`` (except to build a new store) and ``listing`` (except for a store other than
sqlite) never import it.
"""
