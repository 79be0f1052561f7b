"""How fast the local platform starts, and what it holds in memory when idle.

    python benchmarks/stack_benchmark.py [--fresh-clone] [--dry-run]

On a fresh stack home (the virtualenvs already installed): ``make up`` until it returns
with every service healthy (``up_seconds``), the first prediction through nginx counted
from the same start (``first_prediction_s``), and the resident memory of every process
of the stack after a minute idle (``idle_rss_mb``). With ``--fresh-clone``, also a fresh
``git clone`` of this checkout to all-healthy including ``make setup``/``setup-airflow``
(``fresh_up_seconds``; needs the package index). Ports come from a free block, so a
running platform is not disturbed. Writes the ``stack`` entry of benchmarks/results.json
and benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from results import update_markdown, write_entry

ROOT = Path(__file__).resolve().parents[1]
PORTS = {
    "FRONTDOOR_PORT": 0,
    "API_PORT": 1,
    "UI_PORT": 2,
    "MLFLOW_PORT": 3,
    "AIRFLOW_PORT": 4,
    "AIRFLOW_LOG_PORT": 5,
    "AIRFLOW_TRIGGER_LOG_PORT": 6,
    "OBJECTSTORE_PORT": 7,
    "OBJECTSTORE_INTERNAL_PORT": 20,  # and +1, +2, +10000…
}


def free_base() -> int:
    for base in range(33000, 40000, 50):
        offsets = [0, 1, 2, 3, 4, 5, 6, 7, 20, 21, 22, 10007, 10020, 10021, 10022]
        if all(_free(base + offset) for offset in offsets):
            return base
    raise SystemExit("no free block of ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def environment(home: Path) -> dict[str, str]:
    base = free_base()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CINESENSE_")}
    env.update({f"CINESENSE_STACK__{name}": str(base + o) for name, o in PORTS.items()})
    env["CINESENSE_HOME"] = str(home)
    env["CINESENSE_STACK__STARTUP_TIMEOUT_S"] = "900"
    return env


def watch_up(door: str, started: float, up: subprocess.Popen[bytes]) -> tuple[float, float | None]:
    """Seconds until ``make up`` returned (all healthy), and until the first 200 from
    /v1/predict through nginx (``None`` when none came two minutes after ``make up``
    returned: no champion, as when no shipped bundle exists or passed the gate)."""
    returned: float | None = None
    predicted: float | None = None
    while predicted is None and (returned is None or time.monotonic() - started < returned + 120):
        if returned is None and up.poll() is not None:
            if up.returncode != 0:
                raise SystemExit("make up failed")
            returned = time.monotonic() - started
        try:
            answer = httpx.post(
                f"{door}/api/v1/predict", json={"texts": ["정말 재밌어요"]}, timeout=10
            )
            if answer.status_code == 200:
                predicted = time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    if returned is None:
        if up.wait(timeout=1800) != 0:
            raise SystemExit("make up failed")
        returned = time.monotonic() - started
    return returned, predicted


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            status = (proc / "status").read_text()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(proc.name))
        line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), "VmRSS: 0 kB")
        rss[int(proc.name)] = int(line.split()[1])
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo.extend(children.get(current, []))
    return total / 1024


def measure(checkout: Path, home: Path) -> dict[str, float | None]:
    env = environment(home)
    door = f"http://127.0.0.1:{env['CINESENSE_STACK__FRONTDOOR_PORT']}"
    started = time.monotonic()
    up = subprocess.Popen(["make", "--no-print-directory", "up"], cwd=checkout, env=env)
    try:
        up_seconds, prediction = watch_up(door, started, up)
        time.sleep(60)
        pid = int((home / "stack" / "supervisord.pid").read_text())
        rss = tree_rss_mb(pid)
    finally:
        subprocess.run(["make", "--no-print-directory", "down"], cwd=checkout, env=env)
    return {
        "up_seconds": round(up_seconds, 1),
        "first_prediction_s": None if prediction is None else round(prediction, 1),
        "idle_rss_mb": round(rss),
    }


def fresh_clone_seconds(scratch: Path) -> float:
    clone = scratch / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    env = environment(scratch / "fresh-home")
    started = time.monotonic()
    try:
        result = subprocess.run(["make", "--no-print-directory", "up"], cwd=clone, env=env)
        if result.returncode != 0:
            raise SystemExit("make up in the fresh clone failed")
        return round(time.monotonic() - started, 1)
    finally:
        subprocess.run(["make", "--no-print-directory", "down"], cwd=clone, env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh-clone", action="store_true", help="Also time a fresh clone.")
    parser.add_argument("--dry-run", action="store_true", help="Measure, write no results.")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="cinesense-stack-bench-"))
    try:
        metrics = measure(ROOT, scratch / "home")
        if args.fresh_clone:
            metrics["fresh_up_seconds"] = fresh_clone_seconds(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(metrics)
    if args.dry_run:
        return
    write_entry("stack", metrics)
    lines = [
        f"## stack — {time.strftime('%Y-%m-%d')}",
        "",
        "`make up` on a fresh stack home (virtualenvs installed), 2 CPU cores:",
        "",
        "| metric | value | target |",
        "|---|---|---|",
        f"| make up → all healthy | {metrics['up_seconds']} s | ≤ 90 s |",
        f"| first prediction through nginx | {metrics['first_prediction_s']} s | ≤ 100 s |",
        f"| idle resident memory, whole stack | {metrics['idle_rss_mb']} MB | ≤ 4096 MB |",
    ]
    if "fresh_up_seconds" in metrics:
        lines.append(f"| fresh clone → all healthy | {metrics['fresh_up_seconds']} s | reported |")
    if metrics["first_prediction_s"] is None:
        lines += ["", "No first prediction: the registry had no champion (no shipped bundle)."]
    update_markdown("stack", lines)


if __name__ == "__main__":
    main()
