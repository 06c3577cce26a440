"""The Ray side of ``base.engine: ray``: the runtime (start or join a cluster), sharded
sampling and evaluation, distributed training. Imports Ray, which is an optional extra
(``pip install -e ".[cluster]"``); nothing outside this package imports Ray."""
