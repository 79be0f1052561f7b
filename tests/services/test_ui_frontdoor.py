"""The nginx front door rendered from settings: every placeholder filled, the config
accepted by Debian's nginx, and on loopback: the API prefix stripped, 429 beyond the rate
limit, gzip, security headers, access log without query strings."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from cinesense.config import NginxSettings, Settings, UiSettings
from cinesense.crawl.fakesite import FakeSite
from cinesense.frontdoor import (
    NGINX_VARIABLES,
    TEMPLATE,
    nginx_variables,
    render_nginx_conf,
    standalone_conf,
)
from tests.ui_stack import nginx_server

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
needs_nginx = pytest.mark.skipif(
    not Path(NGINX).exists(), reason="nginx is not installed (apt-get install nginx)"
)


def settings(**nginx: object) -> Settings:
    return Settings(
        nginx=NginxSettings(**nginx),  # type: ignore[arg-type]
        ui=UiSettings(upload_max_mb=20),
    )


def test_render_fills_every_placeholder_from_settings() -> None:
    rendered = render_nginx_conf(settings(listen_port=8088, api_upstream="api.internal:9100"))
    assert "${CINESENSE_NGINX" not in rendered and "$CINESENSE_NGINX" not in rendered
    assert "listen 8088;" in rendered and "server api.internal:9100;" in rendered
    assert "client_max_body_size 22m;" in rendered  # upload limit + form overhead
    assert "auth_basic off;" in rendered
    assert "$http_upgrade" in rendered and "$request_id" in rendered  # nginx's own stay
    with_auth = render_nginx_conf(settings(admin_basic_auth=True, htpasswd_file="/run/pw"))
    assert 'auth_basic "cinesense admin";' in with_auth and "/run/pw;" in with_auth


def test_the_variables_are_exactly_those_of_the_template() -> None:
    template = TEMPLATE.read_text()
    used = {name for name in NGINX_VARIABLES if "${" + name + "}" in template}
    assert used == set(NGINX_VARIABLES) == set(nginx_variables(Settings()))


def test_an_unknown_placeholder_is_refused(tmp_path: Path) -> None:
    template = tmp_path / "bad.template"
    template.write_text("listen ${CINESENSE_NGINX_LISTEN_PORT};\nroot ${CINESENSE_NGINX_ROOT};\n")
    with pytest.raises(ValueError, match="CINESENSE_NGINX_ROOT"):
        render_nginx_conf(Settings(), template)


@needs_nginx
def test_debian_nginx_accepts_the_standalone_config(tmp_path: Path) -> None:
    conf = tmp_path / "nginx.conf"
    upstreams = {
        f"{name}_upstream": "127.0.0.1:9" for name in ("ui", "api", "mlflow", "airflow")
    }  # names such as ui:8501 resolve only inside the compose network
    options = settings(error_log=str(tmp_path / "error.log"), **upstreams)
    conf.write_text(standalone_conf(options, tmp_path))
    checked = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr


@needs_nginx
def test_rate_limit_gzip_headers_and_log(tmp_path: Path) -> None:
    with (
        FakeSite() as site,  # any HTTP server will do as the upstreams
        nginx_server(tmp_path / "nginx", site.url, site.url, api_rate_per_s=1, api_burst=3) as door,
    ):
        statuses = [httpx.get(f"{door}/api/robots.txt?q=secret").status_code for _ in range(12)]
        assert 429 in statuses and statuses[0] != 429
        page = httpx.get(f"{door}/cnm/cgvChart/movieChart/30000100")  # 1.5 kB of HTML
        assert page.status_code == 200 and page.headers["content-encoding"] == "gzip"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["x-frame-options"] == "SAMEORIGIN"
        assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
        assert "nginx/" not in page.headers.get("server", "")
        admin = httpx.get(f"{door}/mlflow/")
        assert admin.status_code in (404, 502)  # routed to the MLflow upstream
    log = (tmp_path / "nginx" / "access.log").read_text()
    assert "/api/robots.txt" in log and "secret" not in log and " 429 " in log
