"""The platform's jobs, one module per stage: the front door the CLI, the Airflow DAGs, the
API and the UI all call.

- :mod:`~cinesense.pipelines.dataset` — review files (+ crawled reviews) → a dataset
- :mod:`~cinesense.pipelines.train` — pretrain, train, evaluate, track, quantize,
  register (one path, watermark included), gate; whether to retrain
- :mod:`~cinesense.pipelines.crawl` — crawl targets, one movie, the summary
- :mod:`~cinesense.pipelines.score` — batch scoring with the champion, per-movie aggregates
- :mod:`~cinesense.pipelines.common` — per-run settings overrides, run directories
"""
