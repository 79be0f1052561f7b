"""The service's endpoints, one router per concern; :func:`cinesense.serving.app.create_app`
includes them. Handlers reach the live model, batcher and settings through the
dependencies in :mod:`cinesense.serving.routers.deps` (``app.state``), never closures."""
