"""Run docker-compose.yml with Debian's podman-compose on a machine without systemd.

podman-compose 1.0 creates the containers exactly as the compose file says, but it does not
wait on ``depends_on`` conditions, and without systemd podman never runs healthchecks by
itself. This module fills both gaps and nothing else: it lets podman-compose create the
containers, then starts them in dependency order, running each container's own compose
healthcheck (``podman healthcheck run``) until it passes before starting what waits on it
(``service_healthy``), and waiting for one-shots to exit 0 (``service_completed_successfully``).

    python scripts/podman/compose.py up   --project NAME --dir DIR
    python scripts/podman/compose.py down --project NAME --dir DIR

DIR holds docker-compose.yml (and postgres/); secrets come from the environment.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


class ComposeError(RuntimeError):
    pass


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(HERE / "containers.conf")}


def run(*argv: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        argv, capture_output=True, text=True, env=podman_env(), timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise ComposeError(f"{' '.join(argv[:4])}… failed:\n{result.stdout}\n{result.stderr}")
    return result


def services(directory: Path) -> dict[str, dict[str, Any]]:
    return yaml.safe_load((directory / "docker-compose.yml").read_text())["services"]


def start_order(spec: dict[str, dict[str, Any]]) -> list[str]:
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...] = ()) -> None:
        if name in order:
            return
        if name in path:
            raise ComposeError(f"depends_on cycle through {name}")
        for dependency in spec[name].get("depends_on", {}):
            visit(dependency, (*path, name))
        order.append(name)

    for name in spec:
        visit(name)
    return order


def container(project: str, service: str) -> str:
    return f"{project}_{service}_1"


def logs(project: str, service: str, lines: int = 40) -> str:
    result = run("podman", "logs", "--tail", str(lines), container(project, service), check=False)
    return result.stdout + result.stderr


def wait_healthy(project: str, service: str, timeout_s: float) -> None:
    name = container(project, service)
    deadline = time.monotonic() + timeout_s
    while True:
        state = run("podman", "inspect", name, "--format", "{{.State.Status}}").stdout.strip()
        if (
            state == "running"
            and run("podman", "healthcheck", "run", name, check=False).returncode == 0
        ):
            return
        if time.monotonic() > deadline:
            raise ComposeError(
                f"{service} not healthy after {timeout_s:.0f} s ({state}):\n"
                + logs(project, service)
            )
        time.sleep(3)


def wait_completed(project: str, service: str, timeout_s: float) -> None:
    name = container(project, service)
    code = run("podman", "wait", name, timeout=timeout_s).stdout.strip()
    if code != "0":
        raise ComposeError(f"{service} exited with {code}:\n" + logs(project, service))


def conditions(spec: dict[str, dict[str, Any]]) -> dict[str, str]:
    """What the others wait for, per service: service_healthy or service_completed_successfully."""
    wanted: dict[str, str] = {}
    for service in spec.values():
        for dependency, how in service.get("depends_on", {}).items():
            wanted[dependency] = how.get("condition", "service_started")
    return wanted


def up(project: str, directory: Path, timeout_s: float = 600) -> list[str]:
    """Create the containers with podman-compose, start them in order; the services started."""
    spec = services(directory)
    compose = ("podman-compose", "-p", project, "-f", str(directory / "docker-compose.yml"))
    run(*compose, "up", "--no-build", "--no-start", timeout=timeout_s)
    wanted = conditions(spec)
    started = []
    for service in start_order(spec):
        run("podman", "start", container(project, service))
        started.append(service)
        if wanted.get(service) == "service_completed_successfully":
            wait_completed(project, service, timeout_s)
        elif "healthcheck" in spec[service]:
            wait_healthy(project, service, timeout_s)
    return started


def down(project: str, directory: Path, *volumes: str) -> None:
    """Stop and remove the containers and the network, as `docker compose down` does; named
    volumes stay (pass "-v" to remove them too)."""
    compose = ("podman-compose", "-p", project, "-f", str(directory / "docker-compose.yml"))
    run(*compose, "down", *volumes, timeout=300)
    # podman-compose 1.0 keeps the network. Removing it, and letting aardvark-dns (the
    # network's DNS server, which exits with the last container) finish exiting, keeps the
    # next `up` from starting containers that cannot resolve each other's names (seen:
    # airflow-init "could not translate host name postgres" right after a down and up).
    run("podman", "network", "rm", "--force", f"{project}_default", check=False)
    deadline = time.monotonic() + 15
    while _dns_server_running() and time.monotonic() < deadline:
        time.sleep(0.5)


def _dns_server_running() -> bool:
    found = subprocess.run(["pgrep", "-x", "aardvark-dns"], capture_output=True, check=False)
    return found.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--project", default="cinesense")
    parser.add_argument("--dir", type=Path, default=HERE.parents[1])
    args = parser.parse_args()
    try:
        if args.action == "up":
            for service in up(args.project, args.dir):
                print(f"{service}: started")
        else:
            down(args.project, args.dir)
    except ComposeError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
