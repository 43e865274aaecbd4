"""ETL into the Parquet lake: extract, validate, transform, load, catalog (no Airflow here)."""
