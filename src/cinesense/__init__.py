"""cinesense: a self-hosted MLOps platform for Korean movie-review sentiment."""

__version__ = "0.1.0"
