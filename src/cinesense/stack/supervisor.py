"""supervisord runs the platform's processes: its configuration, rendered from the settings,
and the few calls made to it (``supervisorctl``, and its XML-RPC interface to start
programs without waiting).

Each program is ``cinesense stack run SERVICE`` (Airflow's from the Airflow virtualenv),
restarted when it exits, stopped with its whole process group, logging to its own file.
Programs are not started automatically: ``up`` starts them group by group, each group
healthy before the next.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cinesense.config import Settings
from cinesense.stack import layout
from cinesense.stack.layout import (
    AIRFLOW_INIT,
    AIRFLOW_SERVICES,
    API,
    DEMO_SITE,
    MLFLOW,
    NGINX,
    OBJECTSTORE,
    SERVICES,
    UI,
)
from cinesense.stack.services import StackError


def config_file(settings: Settings) -> Path:
    return layout.config_dir(settings) / "supervisord.conf"


def socket_file(settings: Settings) -> Path:
    return layout.stack_home(settings) / "supervisor.sock"


def pid_file(settings: Settings) -> Path:
    return layout.stack_home(settings) / "supervisord.pid"


# supervisord groups: started in this order, stopped in reverse; the programs of one group
# stop together (supervisord stops one group at a time).
GROUPS: dict[str, tuple[str, ...]] = {
    "storage": (OBJECTSTORE,),
    "tracking": (MLFLOW,),
    "airflow": AIRFLOW_SERVICES,
    "apps": (API, UI, DEMO_SITE),
    "frontdoor": (NGINX,),
}


def programs(settings: Settings) -> list[str]:
    return [*SERVICES, DEMO_SITE] if settings.stack.demo else list(SERVICES)


def qualified(service: str) -> str:
    """supervisord's name of a program: ``group:program``."""
    return next(f"{group}:{service}" for group, names in GROUPS.items() if service in names)


def cinesense_program(settings: Settings, service: str) -> Path:
    """The ``cinesense`` that runs ``service``: Airflow's from its own virtualenv."""
    if service in (*AIRFLOW_SERVICES, AIRFLOW_INIT):
        folder = settings.stack.airflow_bin
        if folder is None or not (folder / "cinesense").exists():
            raise StackError(
                f"The Airflow virtualenv was not found ({folder}): run `make setup-airflow` "
                "or set CINESENSE_STACK__AIRFLOW_BIN to its bin folder."
            )
        return folder / "cinesense"
    return Path(sys.executable).parent / "cinesense"


def render(settings: Settings) -> str:
    logs = layout.logs_dir(settings)
    sections = [
        "; Rendered by `cinesense stack up` from the settings; edits are overwritten.",
        "[unix_http_server]",
        f"file={socket_file(settings)}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={logs / 'supervisord.log'}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        f"pidfile={pid_file(settings)}",
        f"childlogdir={logs}",
        f"directory={Path.cwd()}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{socket_file(settings)}",
    ]
    wanted = programs(settings)
    for priority, (group, names) in enumerate(GROUPS.items(), start=1):
        members = [name for name in names if name in wanted]
        if not members:
            continue
        sections += [
            "",
            f"[group:{group}]",
            f"programs={','.join(members)}",
            f"priority={priority}00",
        ]
        for service in members:
            sections += [
                "",
                f"[program:{service}]",
                f"command={cinesense_program(settings, service)} stack run {service}",
                f"priority={priority}00",
                "autostart=false",
                "autorestart=true",
                "startsecs=3",
                "startretries=5",
                "stopsignal=TERM",
                "stopwaitsecs=15",
                "stopasgroup=true",
                "killasgroup=true",
                "redirect_stderr=true",
                f"stdout_logfile={layout.log_file(settings, service)}",
                "stdout_logfile_maxbytes=20MB",
                "stdout_logfile_backups=2",
            ]
    return "\n".join(sections) + "\n"


def write_config(settings: Settings) -> Path:
    path = config_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    layout.logs_dir(settings).mkdir(parents=True, exist_ok=True)
    path.write_text(render(settings))
    return path


def supervisord_pid(settings: Settings) -> int | None:
    """The pid of this stack's supervisord when it is running."""
    path = pid_file(settings)
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start_supervisord(settings: Settings) -> None:
    binary = Path(sys.executable).parent / "supervisord"
    # Programs inherit this environment: the settings the services read.
    result = subprocess.run(
        [str(binary), "-c", str(config_file(settings))],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise StackError(f"supervisord did not start: {(result.stderr or result.stdout).strip()}")


def ctl(settings: Settings, *args: str, check: bool = True) -> str:
    """Run ``supervisorctl`` against this stack's supervisord; its output."""
    binary = Path(sys.executable).parent / "supervisorctl"
    result = subprocess.run(
        [str(binary), "-c", str(config_file(settings)), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    # supervisorctl exits non-zero when a program is not running; callers read the text.
    if check and result.returncode != 0 and "ERROR" in output:
        raise StackError(f"supervisorctl {' '.join(args)}: {output}")
    return output


def start(settings: Settings, *services: str) -> None:
    """Start ``services`` without waiting for each to stay up ``startsecs`` (as
    ``supervisorctl start`` does, one after the other); callers wait on health checks."""
    from xmlrpc.client import Fault, ServerProxy

    from supervisor.xmlrpc import Faults, SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{socket_file(settings)}")
    proxy = ServerProxy("http://localhost", transport=transport)
    for service in services:
        try:
            proxy.supervisor.startProcess(qualified(service), False)
        except Fault as fault:
            if fault.faultCode != Faults.ALREADY_STARTED:
                message = f"supervisord could not start {service}: {fault.faultString}"
                raise StackError(message) from fault


def states(settings: Settings) -> dict[str, tuple[str, str]]:
    """Program → (state, description), e.g. ``("RUNNING", "pid 12, uptime 0:01:02")``."""
    found: dict[str, tuple[str, str]] = {}
    for line in ctl(settings, "status", check=False).splitlines():
        parts = line.split(None, 2)
        name = parts[0].split(":")[-1] if parts else ""
        if len(parts) >= 2 and name in programs(settings):
            found[name] = (parts[1], parts[2] if len(parts) > 2 else "")
    return found


def unexpected_exits(settings: Settings) -> dict[str, list[str]]:
    """Per program, the times supervisord saw it exit unexpectedly (and restarted it)."""
    log = layout.logs_dir(settings) / "supervisord.log"
    exits: dict[str, list[str]] = {}
    if not log.exists():
        return exits
    for line in log.read_text(errors="replace").splitlines():
        if "exited:" in line and "not expected" in line:
            name = line.split("exited:", 1)[1].split()[0].split(":")[-1]
            exits.setdefault(name, []).append(line.split(",", 1)[0])
    return exits
