"""Serving benchmark: the cinesense service vs a naive transformers pipeline, on loopback.

    python benchmarks/serve_benchmark.py

Starts the service (uvicorn, ONNX Runtime, micro-batching) on the shipped default
champion (``--bundle`` for another serving bundle) and, separately, the naive server
(``naive_server.py``: a transformers ``pipeline`` in PyTorch FP32 answering one request
at a time) on the fine-tuned BERT in ``--work-dir``. wrk sends real reviews from the
bundled sample: single-review requests at concurrency 1, 8 and 32, and 64-review
requests. Client and server share the machine's cores. Writes the ``serve`` entry of
benchmarks/results.json and a section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from cinesense.data.corpus import read_corpus, sample_corpus_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import RESULTS, update_markdown, write_entry

HERE = Path(__file__).resolve().parent
LUA = HERE / "wrk_predict.lua"
SHIPPED_BUNDLE = HERE.parent / "src/cinesense/default_model"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache/cinesense-bench")
    parser.add_argument("--seconds", type=float, default=20.0, help="Measured time per scenario.")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2, help="Inference threads per server.")
    parser.add_argument(
        "--bundle",
        type=Path,
        default=SHIPPED_BUNDLE,
        help="Serving bundle to run (default: the shipped default champion, as served).",
    )
    return parser.parse_args()


def start(command: list[str], port: int, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server failed to start: {' '.join(command)}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit(f"server did not become ready: {' '.join(command)}")


def load(
    url: str, bodies: Path, per_request: int, concurrency: int, seconds: float, warmup: float
) -> dict[str, float]:
    """Closed-loop load with wrk: ``concurrency`` connections, each sending its next request
    when the answer arrives. wrk costs a small fraction of a Python client's CPU per request,
    which matters when client and server share two cores."""
    base = ["wrk", "-t1", f"-c{concurrency}", "--timeout", "60s", "-s", str(LUA)]
    if warmup > 0:
        subprocess.run([*base, f"-d{warmup:g}s", url, "--", str(bodies)], capture_output=True)
    result = subprocess.run(
        [*base, f"-d{seconds:g}s", url, "--", str(bodies)],
        capture_output=True,
        text=True,
        check=True,
    )
    row = json.loads(result.stdout.strip().splitlines()[-1])
    duration = row["duration_us"] / 1e6
    return {
        "reviews_per_s": (row["requests"] - row["non2xx"]) * per_request / duration,
        "p50_ms": row["p50_us"] / 1000,
        "p95_ms": row["p95_us"] / 1000,
        "p99_ms": row["p99_us"] / 1000,
        "requests": row["requests"],
        "failures": row["non2xx"] + row["socket_errors"],
    }


def write_bodies(texts: list[str], per_request: int, path: Path) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for start in range(0, len(texts) - per_request + 1, per_request):
            out.write(json.dumps({"texts": texts[start : start + per_request]}) + "\n")
    return path


def main() -> None:
    args = parse_args()
    bundle = args.bundle
    model = args.work_dir / "sentiment-small"
    for needed in (bundle, model):
        if not needed.exists():
            raise SystemExit(f"{needed} missing: run train_benchmark.py and quantize_benchmark.py")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed as the load generator: apt-get install wrk")
    texts = list(read_corpus(sample_corpus_path())["text"].sample(6000, random_state=1))
    scratch = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    single = write_bodies(texts, 1, scratch / "single.jsonl")
    batch64 = write_bodies(texts, 64, scratch / "batch64.jsonl")
    ours_env = {
        "CINESENSE_SERVE__BUNDLE_DIR": str(bundle),
        "CINESENSE_SERVE__ONNX_THREADS": str(args.threads),
        "CINESENSE_LOG_LEVEL": "WARNING",
    }
    scenarios = [("c1", 1, 1), ("c8", 1, 8), ("c32", 1, 32), ("batch64", 64, 2)]
    results: dict[str, dict[str, float]] = {}
    ours = start(
        [str(Path(sys.executable).parent / "cinesense"), "serve", "--port", "8101"],
        8101,
        ours_env,
    )
    try:
        for name, per_request, concurrency in scenarios:
            bodies = batch64 if per_request == 64 else single
            url = "http://127.0.0.1:8101"
            results[name] = load(url, bodies, per_request, concurrency, args.seconds, args.warmup)
            print(name, results[name], flush=True)
    finally:
        ours.terminate()
        ours.wait(30)
    naive = start(
        [
            sys.executable,
            str(HERE / "naive_server.py"),
            str(model),
            "--port",
            "8102",
            "--threads",
            str(args.threads),
        ],
        8102,
        {},
    )
    try:
        for name, per_request, concurrency in [("naive_c1", 1, 1), ("naive_c32", 1, 32)]:
            url = "http://127.0.0.1:8102"
            results[name] = load(url, single, per_request, concurrency, args.seconds, args.warmup)
            print(name, results[name], flush=True)
    finally:
        naive.terminate()
        naive.wait(30)
    report(results, args)


def bundle_name(bundle: Path) -> str:
    try:
        return str(bundle.resolve().relative_to(HERE.parent))
    except ValueError:
        return bundle.name


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    metrics = {
        "throughput_rps_c32": round(results["c32"]["reviews_per_s"], 1),
        "naive_throughput_rps_c32": round(results["naive_c32"]["reviews_per_s"], 1),
        "throughput_ratio_c32": round(
            results["c32"]["reviews_per_s"] / results["naive_c32"]["reviews_per_s"], 2
        ),
        "p50_ms_c1": round(results["c1"]["p50_ms"], 2),
        "p95_ms_c32": round(results["c32"]["p95_ms"], 2),
        "p99_ms_c32": round(results["c32"]["p99_ms"], 2),
        "batch64_reviews_per_s": round(results["batch64"]["reviews_per_s"], 1),
        "failed_requests": int(sum(r["failures"] for r in results.values())),
    }
    for name, row in results.items():
        for key in ("reviews_per_s", "p50_ms", "p95_ms", "p99_ms"):
            metrics.setdefault(f"{key}_{name}", round(row[key], 2))
    write_entry("serve", metrics, threads=args.threads)
    lines = [
        f"## serve — {time.strftime('%Y-%m-%d')}",
        "",
        f"`python benchmarks/serve_benchmark.py --seconds {args.seconds:g}` on loopback; "
        f"each server uses {args.threads} inference threads and shares the cores with the "
        "load client (wrk, one thread). Reviews from the bundled sample; single-review requests "
        "unless noted; closed loop (each connection sends its next request when the answer "
        "arrives). The cinesense server runs "
        f"`{bundle_name(args.bundle)}` (INT8 ONNX, micro-batching); the naive server runs the "
        "fine-tuned BERT it was exported from in PyTorch FP32.",
        "",
        "| scenario | reviews/s | p50 ms | p95 ms | p99 ms | failed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    labels = {
        "c1": "cinesense, concurrency 1",
        "c8": "cinesense, concurrency 8",
        "c32": "cinesense, concurrency 32",
        "batch64": "cinesense, 64-review requests, concurrency 2",
        "naive_c1": "naive pipeline (PyTorch FP32), concurrency 1",
        "naive_c32": "naive pipeline (PyTorch FP32), concurrency 32",
    }
    for name, row in results.items():
        lines.append(
            f"| {labels[name]} | {row['reviews_per_s']:.1f} | {row['p50_ms']:.1f} | "
            f"{row['p95_ms']:.1f} | {row['p99_ms']:.1f} | {int(row['failures'])} |"
        )
    lines += [
        "",
        f"Throughput at concurrency 32: **{metrics['throughput_ratio_c32']}×** the naive "
        f"server (target ≥ 5×); single-review p50 at concurrency 1: "
        f"**{metrics['p50_ms_c1']} ms** (target ≤ 15 ms). Machine: see `{RESULTS.name}`.",
    ]
    update_markdown("serve", lines)


if __name__ == "__main__":
    main()
