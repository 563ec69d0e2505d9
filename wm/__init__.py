"""wm: a reproducible World Models (Ha & Schmidhuber, 2018) library for CarRacing-v3."""

__version__ = "0.1.0"
