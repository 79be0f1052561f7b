"""The FastAPI inference service (see :mod:`cinesense.serving.app`)."""
