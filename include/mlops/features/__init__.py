"""Training data: problem type, train/validation/test splits, the feature pipeline."""
