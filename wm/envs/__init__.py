"""Environment adapters: frame preprocessing and env construction, one module per environment."""
