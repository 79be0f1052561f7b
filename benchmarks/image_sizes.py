"""Sizes of the images docker-compose.yml runs, as built here by scripts/podman/build.sh.

    scripts/podman/build.sh && python benchmarks/image_sizes.py

The sandbox cannot pull the official python:…-slim-bookworm image, so the build stands it
in by a debootstrapped bookworm with Debian's python3 under the same tag; its size is
reported as ``standin_python_base_mb``. Every project image holds that base once, so an
image built on the official base differs from the figure here by the two bases' difference.
Writes the ``images`` entry of benchmarks/results.json and benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from results import update_markdown, write_entry

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ("base", "api", "ui", "mlflow", "objectstore", "nginx", "airflow")


def image_mb(reference: str) -> float:
    result = subprocess.run(
        ["podman", "image", "inspect", reference, "--format", "{{.Size}}"],
        capture_output=True,
        text=True,
        env={**os.environ, "CONTAINERS_CONF": str(ROOT / "scripts/podman/containers.conf")},
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"{reference} is not built: run scripts/podman/build.sh ({result.stderr.strip()})")
    return round(int(result.stdout.strip()) / 1e6)


def main() -> None:
    tag = os.environ.get("CINESENSE_IMAGE_TAG", "0.1.0")
    metrics = {f"{name}_mb": image_mb(f"localhost/cinesense/{name}:{tag}") for name in IMAGES}
    base = image_mb("docker.io/library/python:3.11.14-slim-bookworm")
    metrics["standin_python_base_mb"] = base
    # What the project's Dockerfiles add, the same on the official base as on the stand-in.
    metrics |= {f"{name}_over_python_base_mb": metrics[f"{name}_mb"] - base for name in IMAGES}
    print(metrics)
    write_entry("images", metrics)
    rows = [
        f"| cinesense/{name} | {metrics[f'{name}_mb']} | {metrics[f'{name}_over_python_base_mb']} |"
        for name in IMAGES
    ]
    update_markdown(
        "images",
        [
            f"## images — {time.strftime('%Y-%m-%d')}",
            "",
            "Uncompressed sizes (MB) of the images docker-compose.yml runs, built with podman "
            "by scripts/podman/build.sh on the stand-in python base "
            f"({metrics['standin_python_base_mb']} MB, a debootstrapped bookworm; the API "
            "and UI images carry no torch):",
            "",
            "| image | MB | MB over the Python base |",
            "|---|---|---|",
            *rows,
        ],
    )


if __name__ == "__main__":
    main()
