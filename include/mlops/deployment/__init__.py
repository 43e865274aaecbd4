"""Deploying registered versions to the endpoint: checks, infra-validation, rollout, rollback."""
