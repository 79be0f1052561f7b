"""``make up`` / ``down`` / ``status`` / ``logs`` / ``credentials`` (``cinesense stack …``)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cinesense.config import Settings
from cinesense.stack import health, layout, supervisor
from cinesense.stack.layout import (
    AIRFLOW_INIT,
    AIRFLOW_SCHEDULER,
    AIRFLOW_SERVICES,
    API,
    DEMO_SITE,
    MLFLOW,
    MODEL_INIT,
    NGINX,
    OBJECTSTORE,
    START_ORDER,
    UI,
)
from cinesense.stack.secrets import ensure_secrets, read_env_file, with_secrets
from cinesense.stack.services import (
    AIRFLOW_PREFIX,
    StackError,
    create_buckets,
)

AIRFLOW_WITHOUT_SCHEDULER = tuple(s for s in AIRFLOW_SERVICES if s != AIRFLOW_SCHEDULER)

Say = Callable[[str], None]
# supervisor's states of a live program; STARTING means spawned less than its startsecs
# ago, and the health check decides whether it serves.
ALIVE = frozenset({"RUNNING", "STARTING"})
DEMO_MARKER = "demo-crawl-triggered"


@dataclass
class UpReport:
    started: list[str] = field(default_factory=list)
    already_running: bool = False
    secrets_created: bool = False
    champion: str = ""
    demo: str = ""
    seconds: float = 0.0


# --- checks ---------------------------------------------------------------------------------


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(settings: Settings, services: set[str]) -> None:
    """Refuse to start when a port of ``services`` is taken, naming the setting to change."""
    busy = [
        port
        for port in layout.ports(settings)
        if port.service in services and port_in_use(settings.stack.bind_host, port.number)
    ]
    if busy:
        lines = [
            f"port {p.number} ({p.service}) is in use by another program: stop it or set "
            f"{p.setting} to a free port"
            for p in busy
        ]
        raise StackError("Cannot start the platform:\n  " + "\n  ".join(lines))


def check_prerequisites(settings: Settings) -> None:
    import shutil

    problems = []
    if shutil.which("nginx") is None:
        problems.append("nginx is not installed (Debian: apt-get install nginx-light)")
    stack = settings.stack
    if stack.airflow_bin is None or not (stack.airflow_bin / "airflow").exists():
        problems.append(
            f"the Airflow virtualenv is missing ({stack.airflow_bin}): run `make setup-airflow` "
            "or set CINESENSE_STACK__AIRFLOW_BIN"
        )
    if stack.ui_app is None or not stack.ui_app.exists():
        problems.append(
            f"the Streamlit app is missing ({stack.ui_app}): set CINESENSE_STACK__UI_APP"
        )
    if problems:
        raise StackError("Cannot start the platform: " + "; ".join(problems) + ".")


# --- starting -------------------------------------------------------------------------------


def wait_healthy(settings: Settings, service: str, say: Say) -> None:
    deadline = time.monotonic() + settings.stack.startup_timeout_s
    problem = health.check(settings, service)
    while problem is not None:
        state, detail = supervisor.states(settings).get(service, ("UNKNOWN", ""))
        if state in ("FATAL", "BACKOFF", "EXITED") or time.monotonic() > deadline:
            log = layout.log_file(settings, service)
            raise StackError(
                f"{service} did not become healthy ({problem}; supervisor: {state} {detail}). "
                f"Its log: {log}\n" + tail(log, 15)
            )
        time.sleep(0.5)
        problem = health.check(settings, service)
    say(f"  {service}: healthy")


def run_one_shot(settings: Settings, service: str) -> str:
    """A set-up step (``airflow-init``, ``model-init``) in the foreground, its output in
    its own log; returns the step's last line (what it did)."""
    program = supervisor.cinesense_program(settings, service)
    log = layout.log_file(settings, service)
    with open(log, "ab") as output:
        start = output.tell()
        result = subprocess.run(
            [str(program), "stack", "run", service],
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=settings.stack.startup_timeout_s,
        )
    if result.returncode != 0:
        raise StackError(
            f"{service} failed (exit {result.returncode}); see {log}\n" + tail(log, 15)
        )
    with open(log, "rb") as written:
        written.seek(start)
        lines = written.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else ""


def groups(settings: Settings) -> list[tuple[str, ...]]:
    order = list(START_ORDER)
    if settings.stack.demo:
        order.append((DEMO_SITE,))
    return order


def airflow_version(settings: Settings) -> str:
    """The installed Airflow (its package metadata folder in the Airflow virtualenv)."""
    folder = settings.stack.airflow_bin
    found = (
        sorted(folder.parent.glob("lib/python*/site-packages/apache_airflow-*")) if folder else []
    )
    return found[0].name if found else "unknown"


def migrate_airflow(settings: Settings, say: Say) -> None:
    """``airflow db migrate`` once per database and Airflow version."""
    marker = layout.data_dir(settings, "airflow") / ".migrated"
    version = airflow_version(settings)
    if not (marker.exists() and marker.read_text() == version):
        say("preparing Airflow's database (airflow db migrate)")
        run_one_shot(settings, AIRFLOW_INIT)
        marker.write_text(version)


def up(say: Say) -> UpReport:
    started_at = time.monotonic()
    report = UpReport()
    base = Settings()
    _, report.secrets_created = ensure_secrets(base)
    settings = with_secrets(base)
    running = supervisor.supervisord_pid(settings) is not None
    states = supervisor.states(settings) if running else {}
    wanted = [s for group in groups(settings) for s in group]
    stopped = {s for s in wanted if states.get(s, ("",))[0] not in ALIVE}
    if running and not stopped and all(health.check(settings, s) is None for s in wanted):
        report.already_running = True
        report.seconds = time.monotonic() - started_at
        return report
    check_prerequisites(settings)
    check_ports(settings, stopped)
    layout.stack_home(settings).mkdir(parents=True, exist_ok=True)
    supervisor.write_config(settings)
    if running:  # settings may have changed (DEMO=1): supervisord learns the new programs
        supervisor.ctl(settings, "update", check=False)
    else:
        supervisor.start_supervisord(settings)
        _wait_for_supervisord(settings)

    def start(*services: str) -> list[str]:
        todo = [s for s in services if s in stopped]
        if todo:
            say(f"starting {', '.join(todo)}")
            supervisor.start(settings, *todo)
            report.started.extend(todo)
        return list(services)

    def healthy(*services: str) -> None:
        for service in services:
            wait_healthy(settings, service, say)

    # What does not depend on another service starts at once; Airflow's database is
    # prepared, and the first champion registered, while the rest starts.
    with ThreadPoolExecutor(max_workers=2) as background:
        start(OBJECTSTORE, MLFLOW, UI)
        migration = (
            background.submit(migrate_airflow, settings, say)
            if stopped & set(AIRFLOW_SERVICES)
            else None
        )
        healthy(OBJECTSTORE)
        create_buckets(settings)
        healthy(MLFLOW)
        champion = background.submit(run_one_shot, settings, MODEL_INIT)  # API polls
        start(API)
        if migration is not None:
            migration.result()
        start(*AIRFLOW_WITHOUT_SCHEDULER)
        # The scheduler runs the crawl's latest interval at once, and scoring follows: it
        # must find the first champion, or the crawled reviews wait for the next crawl.
        report.champion = _champion_result(champion)
        start(AIRFLOW_SCHEDULER)
        healthy(*AIRFLOW_SERVICES, API, UI)
        healthy(*start(NGINX, *([DEMO_SITE] if settings.stack.demo else [])))
    _reload_api(settings)
    if settings.stack.demo:
        report.demo = trigger_demo_crawl(settings)
    report.seconds = time.monotonic() - started_at
    return report


def _wait_for_supervisord(settings: Settings) -> None:
    deadline = time.monotonic() + 20
    while not supervisor.socket_file(settings).exists():
        if time.monotonic() > deadline:
            raise StackError(
                f"supervisord did not start; see {layout.logs_dir(settings) / 'supervisord.log'}"
            )
        time.sleep(0.2)


def _champion_result(future: Future[str]) -> str:
    try:
        return future.result()
    except Exception as error:  # the platform still runs; say why there is no champion
        return f"the shipped bundle could not be registered: {error}"


def _reload_api(settings: Settings) -> None:
    """Ask an API that has no model yet to check the registry now rather than at its next
    poll (one that has a model finds a newer champion at its next poll)."""
    import httpx

    key = settings.serve.admin_api_key
    if key is None:
        return
    with contextlib.suppress(httpx.HTTPError):  # it polls anyway
        if httpx.get(f"{layout.api_url(settings)}/ready", timeout=10).status_code == 200:
            return
        httpx.post(
            f"{layout.api_url(settings)}/v1/model/reload",
            headers={"X-API-Key": key.get_secret_value()},
            timeout=60,
        )


def trigger_demo_crawl(settings: Settings) -> str:
    """Demo data: one crawl_reviews run against the local fake site (once per stack home)."""
    from cinesense.airflow_api import AirflowClient
    from cinesense.config import AirflowApiSettings

    marker = layout.stack_home(settings) / DEMO_MARKER
    if marker.exists():
        return f"demo crawl already triggered ({marker.read_text().strip()})"
    options = AirflowApiSettings(
        base_url=layout.airflow_url(settings) + AIRFLOW_PREFIX,
        username=settings.stack.airflow_admin_username,
        password=settings.stack.airflow_admin_password,
        timeout_s=30,
    )
    with AirflowClient(options) as client:
        run = client.trigger(
            "crawl_reviews",
            {"sources": ["megabox"], "max_movies": 5, "max_reviews": 200},
            note="demo data: the local fake site",
        )
    marker.write_text(str(run.get("dag_run_id")))
    return f"demo crawl of the local fake site triggered (run {run.get('dag_run_id')})"


# --- stopping, status, logs, credentials ---------------------------------------------------


def down(say: Say) -> bool:
    """Stop every service and supervisord; data stays. False when nothing was running."""
    settings = with_secrets()
    pid = supervisor.supervisord_pid(settings)
    if pid is None:
        return False
    say("stopping the platform")
    supervisor.ctl(settings, "shutdown", check=False)
    deadline = time.monotonic() + 90
    while supervisor.supervisord_pid(settings) is not None:
        if time.monotonic() > deadline:
            raise StackError(f"supervisord (pid {pid}) did not stop within 90 s.")
        time.sleep(0.3)
    return True


@dataclass
class ServiceStatus:
    name: str
    state: str
    detail: str
    problem: str | None
    unexpected_exits: int


def status() -> list[ServiceStatus]:
    settings = with_secrets()
    if supervisor.supervisord_pid(settings) is None:
        return []
    states = supervisor.states(settings)
    exits = supervisor.unexpected_exits(settings)
    rows = []
    for name in supervisor.programs(settings):
        state, detail = states.get(name, ("UNKNOWN", ""))
        alive = state in ALIVE
        problem = health.check(settings, name) if alive else f"not running ({state})"
        rows.append(ServiceStatus(name, state, detail, problem, len(exits.get(name, []))))
    return rows


def tail(path: Path, lines: int) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 200 * lines))
        text = handle.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def log_files(settings: Settings, service: str | None) -> list[Path]:
    known = [*supervisor.programs(settings), AIRFLOW_INIT, MODEL_INIT]
    names = [service] if service else known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise StackError(f"No service {unknown[0]!r}; one of: {', '.join(known)}.")
    return [layout.log_file(settings, name) for name in names]


def urls(settings: Settings) -> dict[str, str]:
    door = layout.frontdoor_url(settings)
    return {
        "front door (UI)": f"{door}/",
        "API docs": f"{door}/api/docs",
        "MLflow": f"{door}/mlflow/",
        "Airflow": f"{door}/airflow/",
    }


def credentials() -> dict[str, str]:
    """What a person logs in with; read from the secrets file (and the environment)."""
    settings = with_secrets()
    path = layout.secrets_file(settings)
    if not path.exists():
        raise StackError("No credentials yet: `make up` generates them on first start.")
    values = read_env_file(path)
    stack = settings.stack

    def value(key: str) -> str:
        return os.environ.get(key) or values.get(key, "(not set)")

    return {
        "file": str(path),
        "Airflow login": f"{stack.airflow_admin_username} / "
        + value("CINESENSE_STACK__AIRFLOW_ADMIN_PASSWORD"),
        "MLflow login": f"{stack.mlflow_admin_username} / "
        + value("CINESENSE_STACK__MLFLOW_ADMIN_PASSWORD"),
        "API admin key (X-API-Key)": value("CINESENSE_SERVE__ADMIN_API_KEY"),
        "object store access key": value("CINESENSE_STORAGE__ACCESS_KEY_ID"),
        "object store secret key": value("CINESENSE_STORAGE__SECRET_ACCESS_KEY"),
    }


__all__ = ["API", "NGINX", "UI", "credentials", "down", "status", "up", "urls"]
