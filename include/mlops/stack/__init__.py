"""The embedded stack: SeaweedFS S3, MLflow and Airflow on loopback (``make up``)."""
