"""Hyperparameter tuning: one shared Optuna study searched by parallel workers."""
