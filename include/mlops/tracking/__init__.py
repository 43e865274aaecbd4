"""Experiment tracking: thin helpers over the MLflow client (tuning runs, trial child runs)."""
