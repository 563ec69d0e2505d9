"""Platform code beside the stage flows: MLflow tracking, the model registry, the agent pyfunc, scheduled rebuilds."""
