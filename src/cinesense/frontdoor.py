"""The nginx front door, rendered from settings (no Streamlit or FastAPI import here).

``nginx/templates/cinesense.conf.template`` is an http-context file with
``${CINESENSE_NGINX_...}`` placeholders. :func:`render_nginx_conf` substitutes exactly
those from ``settings.nginx`` (and the upload limit from ``settings.ui``), the way the
official nginx image's envsubst step does for defined variables; :func:`nginx_variables`
gives the same values as environment variables for that image. :func:`standalone_conf`
wraps the rendered file into a complete nginx.conf that runs unprivileged with every
writable path under one directory (local stack, tests).

Settings read: ``CINESENSE_NGINX__LISTEN_PORT``, ``__SERVER_NAME``, ``__UI_UPSTREAM``,
``__API_UPSTREAM``, ``__MLFLOW_UPSTREAM``, ``__AIRFLOW_UPSTREAM`` (host:port each),
``__API_RATE_PER_S``, ``__API_BURST``, ``__ADMIN_BASIC_AUTH``, ``__HTPASSWD_FILE``,
``__ACCESS_LOG``, ``__ERROR_LOG``, and ``CINESENSE_UI__UPLOAD_MAX_MB``.
"""

from __future__ import annotations

import re
from pathlib import Path

from cinesense.config import Settings

TEMPLATE = Path(__file__).resolve().parents[2] / "nginx/templates/cinesense.conf.template"
PLACEHOLDER = re.compile(r"\$\{(CINESENSE_NGINX_[A-Z0-9_]+)\}|\$(CINESENSE_NGINX_[A-Z0-9_]+)")
UPLOAD_OVERHEAD_MB = 2  # multipart framing around an upload of the largest allowed size


def nginx_variables(settings: Settings) -> dict[str, str]:
    """Every template variable with its value from ``settings``."""
    nginx = settings.nginx
    body_mb = settings.ui.upload_max_mb + UPLOAD_OVERHEAD_MB
    return {
        "CINESENSE_NGINX_LISTEN_PORT": str(nginx.listen_port),
        "CINESENSE_NGINX_SERVER_NAME": nginx.server_name,
        "CINESENSE_NGINX_UI_UPSTREAM": nginx.ui_upstream,
        "CINESENSE_NGINX_API_UPSTREAM": nginx.api_upstream,
        "CINESENSE_NGINX_MLFLOW_UPSTREAM": nginx.mlflow_upstream,
        "CINESENSE_NGINX_AIRFLOW_UPSTREAM": nginx.airflow_upstream,
        "CINESENSE_NGINX_API_RATE": str(nginx.api_rate_per_s),
        "CINESENSE_NGINX_API_BURST": str(nginx.api_burst),
        "CINESENSE_NGINX_CLIENT_MAX_BODY_SIZE": f"{body_mb}m",
        "CINESENSE_NGINX_ADMIN_AUTH": '"cinesense admin"' if nginx.admin_basic_auth else "off",
        "CINESENSE_NGINX_HTPASSWD_FILE": nginx.htpasswd_file,
        "CINESENSE_NGINX_ACCESS_LOG": nginx.access_log,
        "CINESENSE_NGINX_ERROR_LOG": nginx.error_log,
    }


NGINX_VARIABLES = tuple(nginx_variables(Settings()).keys())


def render_nginx_conf(settings: Settings, template: Path | None = None) -> str:
    """The template with every ``${CINESENSE_NGINX_...}`` replaced; an unknown one is an error."""
    text = (template or TEMPLATE).read_text(encoding="utf-8")
    values = nginx_variables(settings)
    unknown = sorted({a or b for a, b in PLACEHOLDER.findall(text)} - values.keys())
    if unknown:
        raise ValueError(f"The nginx template uses variables no setting provides: {unknown}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1) or match.group(2)], text)


def standalone_conf(settings: Settings, runtime_dir: Path, mime_types: Path | None = None) -> str:
    """A complete nginx.conf around the rendered server: pid, temp files and error log
    under ``runtime_dir``, so nginx runs as any user (``nginx -c FILE -g 'daemon off;'``)."""
    runtime_dir = Path(runtime_dir).resolve()
    mime = mime_types or Path("/etc/nginx/mime.types")
    temp = {
        name: runtime_dir / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    }
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    paths = "\n".join(f"    {name}_temp_path {path};" for name, path in temp.items())
    server = render_nginx_conf(settings)
    indented = "\n".join(f"    {line}" if line else "" for line in server.splitlines())
    return f"""# Rendered by cinesense.frontdoor.standalone_conf: do not edit.
worker_processes 1;
pid {runtime_dir / "nginx.pid"};
error_log {settings.nginx.error_log} warn;

events {{
    worker_connections 1024;
}}

http {{
    include {mime};
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
{paths}

{indented}
}}
"""
