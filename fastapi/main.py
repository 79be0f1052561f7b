"""The inference service's ASGI app: ``uvicorn main:app --app-dir fastapi``.

Everything lives in :mod:`cinesense.serving`; settings come from the environment
(``CINESENSE_MLFLOW__TRACKING_URI``, ``CINESENSE_SERVE__*``).
"""

from cinesense.config import get_settings
from cinesense.serving.app import create_app
from cinesense.serving.logs import configure_logging

configure_logging(get_settings().log_level)
app = create_app()
