"""Pretraining memory benchmark: what holding the tokenized corpus costs.

    python benchmarks/pretrain_memory_benchmark.py

Tokenizes the texts pretraining reads (train and validation reviews of the dataset
train_benchmark.py builds in --work-dir) with the base's WordPiece tokenizer, two ways,
each in a fresh process: as Python lists (how pretraining held them until 2026-12-07) and
as the Arrow-backed ``datasets.Dataset`` of ``pretrain.encode_texts``. Reports the
resident memory after reading the texts, the peak while tokenizing and what stays held
afterwards. Writes the ``pretrain_memory`` entry of benchmarks/results.json and a section
of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import subprocess
import sys
import time
from pathlib import Path

from results import machine, update_markdown, write_entry

log = logging.getLogger("pretrain_memory_benchmark")
WAYS = ("python_lists", "arrow_dataset")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache/cinesense-bench")
    parser.add_argument(
        "--tokenizer",
        type=Path,
        default=None,
        help="A directory with the WordPiece tokenizer (default: --work-dir/base-small).",
    )
    parser.add_argument("--measure", choices=WAYS, help=argparse.SUPPRESS)
    return parser.parse_args()


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (this benchmark needs Linux)")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(way: str, work_dir: Path, tokenizer_dir: Path) -> dict[str, float]:
    """Runs in its own process, so the peak belongs to this way alone."""
    from transformers import AutoTokenizer

    from cinesense.config import PretrainSettings
    from cinesense.data.dataset import load_dataset
    from cinesense.model.pretrain import encode_texts

    dataset = load_dataset(work_dir / "dataset")
    texts = [*dataset["train"]["text"], *dataset["validation"]["text"]]
    del dataset
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    gc.collect()
    before, peak_before = resident_mb(), peak_mb()
    started = time.monotonic()
    table_mb = None
    if way == "python_lists":
        encoded = tokenizer(texts, truncation=True, max_length=128)
        held: object = [{"input_ids": ids} for ids in encoded["input_ids"]]
        del encoded
        tokens = sum(len(e["input_ids"]) for e in held)  # type: ignore[attr-defined]
    else:
        held = encode_texts(tokenizer, texts, PretrainSettings(max_length=128))
        tokens = sum(held.lengths)  # type: ignore[attr-defined]
        table_mb = held.rows.data.nbytes / 2**20  # type: ignore[attr-defined]
    seconds = time.monotonic() - started
    gc.collect()
    return {
        "texts": len(texts),
        "tokens": tokens,
        "resident_before_mb": round(before, 0),
        "peak_mb": round(max(peak_mb(), peak_before), 0),
        "held_after_mb": round(resident_mb() - before, 0),
        "seconds": round(seconds, 1),
        **({"arrow_table_mb": round(table_mb, 0)} if table_mb is not None else {}),
    }


def main() -> None:
    args = parse_args()
    tokenizer_dir = args.tokenizer or args.work_dir / "base-small"
    if args.measure:
        print(json.dumps(measure(args.measure, args.work_dir, tokenizer_dir)))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for needed in (args.work_dir / "dataset", tokenizer_dir / "tokenizer.json"):
        if not needed.exists():
            sys.exit(f"{needed} is missing: run benchmarks/train_benchmark.py first.")
    figures = {}
    for way in WAYS:
        command = [sys.executable, __file__, "--measure", way, "--work-dir", str(args.work_dir)]
        command += ["--tokenizer", str(tokenizer_dir)]
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        figures[way] = json.loads(out.strip().splitlines()[-1])
        log.info("%s: %s", way, figures[way])
    metrics = {f"{way}_{k}": v for way, values in figures.items() for k, v in values.items()}
    write_entry("pretrain_memory", metrics)
    write_markdown(figures)


def write_markdown(figures: dict[str, dict[str, float]]) -> None:
    lists, arrow = figures["python_lists"], figures["arrow_dataset"]
    rows = [
        ("peak while tokenizing (MB)", "peak_mb"),
        ("held after tokenizing (MB)", "held_after_mb"),
        ("seconds", "seconds"),
    ]
    update_markdown(
        "pretrain_memory",
        [
            "## pretrain_memory — holding the tokenized corpus for pretraining",
            "",
            f"Machine: {machine(None)}. Date: {time.strftime('%Y-%m-%d')}. Command: "
            "`python benchmarks/pretrain_memory_benchmark.py`",
            "",
            f"{arrow['texts']:,} reviews ({arrow['tokens']:,} tokens), the train and "
            "validation reviews pretraining reads; each way in a fresh process that holds "
            f"{arrow['resident_before_mb']:.0f} MB with the texts and tokenizer loaded.",
            "",
            "| | Python lists (before) | Arrow `datasets.Dataset` (`encode_texts`) |",
            "|---|---:|---:|",
            *[f"| {label} | {lists[key]:,.0f} | {arrow[key]:,.0f} |" for label, key in rows],
            "",
            f"The Arrow table itself is {arrow['arrow_table_mb']:,.0f} MB; what the process "
            "holds after tokenizing differs from what it held before by that and by what "
            "the allocator gives back (a negative figure is memory freed).",
        ],
    )


if __name__ == "__main__":
    main()
