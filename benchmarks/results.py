"""Write one entry of benchmarks/results.json (shape: ../shared/docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"


def machine(threads: int | None = None) -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    used = f", {threads} threads used" if threads else ""
    return f"{model}, {os.cpu_count()} cores{used}, {memory_gib:.0f} GiB memory, no GPU"


def recipe_command(argv: list[str]) -> str:
    """The command that reproduces an entry, without ``--work-dir``: where this machine
    keeps its intermediate models is not part of the recipe (nor fit to publish)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--work-dir":
            skip = True
        elif not arg.startswith("--work-dir="):
            kept.append(arg)
    return "python " + " ".join(kept)


def write_entry(name: str, metrics: dict[str, float | int], threads: int | None = None) -> None:
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"benchmarks": {}}
    data["benchmarks"][name] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(threads),
        "command": recipe_command(sys.argv),
        "metrics": metrics,
    }
    RESULTS.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def update_markdown(name: str, lines: list[str]) -> None:
    """Replace (or add) the ``## <name> —`` section of benchmarks/RESULTS.md."""
    markdown = RESULTS.with_name("RESULTS.md")
    text = markdown.read_text() if markdown.exists() else "# Benchmark results\n"
    start = text.find(f"## {name} —")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + (text[end + 1 :] if end >= 0 else "")
    markdown.write_text(text.rstrip("\n") + "\n\n" + "\n".join(lines).rstrip("\n") + "\n")
