"""Rating benchmark: ways to read a 1–10 rating from a bundle's rating distribution.

    python benchmarks/rating_benchmark.py [--bundle src/cinesense/default_model]

Scores every rated review of the validation and test movies with the bundle (as the
service does), then compares rating estimates by mean absolute error: the calibration
used before 2026-12-06 (expected rating → median real rating, isotonic, fitted on
validation), the distribution's median, one quantile chosen on validation (2026-12-06),
and a quantile moving with the label's confidence, chosen on validation (what
``model.rating.RatingCalibration.fit`` serves since 2026-12-07). Every estimate is kept on
its label's side, as served (benchmarks/calibration_benchmark.py --write gives a bundle
the last one, with its label's decision offset). Needs the dataset of train_benchmark.py
in --work-dir. Writes the ``rating`` entry of benchmarks/results.json and a section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

from cinesense.data.dataset import load_dataset
from cinesense.model.heads import expected_rating, positive_probability
from cinesense.model.loop import set_threads
from cinesense.model.onnx_predict import OnnxPredictor
from cinesense.model.rating import QUANTILES, RatingCalibration, on_label_side

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import update_markdown, write_entry
from train_benchmark import DEFAULT_MODEL

log = logging.getLogger("rating_benchmark")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path.home() / ".cache/cinesense-bench")
    parser.add_argument("--bundle", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def expected_rating_calibration(scores: np.ndarray, ratings: np.ndarray, bins: int = 40):
    """The pre-2026-12-06 method: median real rating per score quantile bin, isotonic."""
    edges = np.unique(np.quantile(scores, np.linspace(0, 1, bins + 1)))
    which = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, len(edges) - 2)
    centres = [np.median(scores[which == b]) for b in range(len(edges) - 1) if (which == b).any()]
    medians = [np.median(ratings[which == b]) for b in range(len(edges) - 1) if (which == b).any()]
    monotone = IsotonicRegression(y_min=1, y_max=10).fit_transform(centres, medians)
    return lambda s: np.clip(np.interp(s, centres, monotone), 1.0, 10.0)


def _shown(path: Path) -> str:
    root = Path(__file__).resolve().parents[1]
    resolved = path.resolve()
    return str(resolved.relative_to(root)) if resolved.is_relative_to(root) else path.name


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args()
    set_threads(args.threads)
    dataset = load_dataset(args.work_dir / "dataset")
    predictor = OnnxPredictor.from_bundle(args.bundle, threads=args.threads)
    scored = {}
    for split in ("validation", "test"):
        rated = dataset[split][dataset[split]["rating"].notna()]
        started = time.monotonic()
        logits = predictor.logits(list(rated["text"])).astype(np.float64)
        log.info(
            "%s: %d rated reviews in %.1f min", split, len(rated), (time.monotonic() - started) / 60
        )
        scored[split] = (
            logits,
            rated["rating"].to_numpy(float),
            positive_probability(logits, predictor.label_map),
        )
    logits, ratings, positive = scored["validation"]
    old = expected_rating_calibration(expected_rating(logits), ratings)
    one_quantile = min(
        (RatingCalibration(float(q)) for q in QUANTILES),
        key=lambda c: np.abs(c.rate(logits, positive) - ratings).mean(),
    )
    chosen = RatingCalibration.fit(logits, ratings, positive)
    estimates = {
        "expected_rating_isotonic": lambda lg, p: on_label_side(old(expected_rating(lg)), p),
        "median": RatingCalibration(0.5).rate,
        "chosen_quantile": one_quantile.rate,
        "confidence_quantile": chosen.rate,
    }
    metrics: dict[str, float | int] = {
        "positive_offset": predictor.label_map.positive_offset,
        "quantile": one_quantile.quantile,
        "confidence_quantile": chosen.quantile,
        "confidence_slope": chosen.confidence_slope,
    }
    for split, (lg, truth, p) in scored.items():
        metrics[f"{split}_rated_reviews"] = len(truth)
        for name, estimate in estimates.items():
            metrics[f"{split}_mae_{name}"] = round(float(np.abs(estimate(lg, p) - truth).mean()), 4)
    write_entry("rating", metrics, threads=args.threads)
    rows = [
        f"| {name.replace('_', ' ')} | {metrics[f'validation_mae_{name}']} | "
        f"{metrics[f'test_mae_{name}']} |"
        for name in estimates
    ]
    update_markdown(
        "rating",
        [
            "## rating — reading the 1–10 rating from the rating distribution",
            "",
            f"Date: {time.strftime('%Y-%m-%d')}. Command: "
            f"`{' '.join(['python benchmarks/rating_benchmark.py', *sys.argv[1:]])}` (bundle "
            f"{_shown(args.bundle)}). Mean absolute error on every rated review of the "
            f"validation ({metrics['validation_rated_reviews']}) and test "
            f"({metrics['test_rated_reviews']}) movies; each estimate kept on the side of its "
            f"label, read at the bundle's positive offset ({metrics['positive_offset']}).",
            "",
            "| estimate | validation MAE | test MAE |",
            "|---|---|---|",
            *rows,
            "",
            f"The chosen quantile ({metrics['quantile']}) is the single quantile with the lowest "
            "validation error; the confidence quantile is "
            f"{metrics['confidence_quantile']} {metrics['confidence_slope']:+} × |P(positive) − "
            "0.5|, both chosen on validation: what `RatingCalibration.fit` serves "
            "(model/rating.py).",
            "",
        ],
    )


if __name__ == "__main__":
    main()
