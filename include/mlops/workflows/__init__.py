"""Stage orchestration that spans several domain packages: a layer above the primitives.

``workflows.training`` runs ``train_model``'s steps over quality, features, tuning,
training, evaluation, registry and tracking. Nothing below imports this package, so the
domain packages form no import cycle; the Airflow glue (``include.mlops.airflow``) is the
only layer above it. A stage that lives inside one domain keeps its orchestration there
(``etl.pipeline``, ``batch.transform``, ``monitoring.monitor``, ``deployment.rollout``).
"""
