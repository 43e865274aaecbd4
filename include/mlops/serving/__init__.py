"""The model endpoint: scoring, the FastAPI app, data capture."""
