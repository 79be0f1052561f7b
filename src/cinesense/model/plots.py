"""Evaluation figures for the tracking server: confusion matrix and reliability diagram.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend
state), so they work in servers, threads and headless containers alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

LABELS = ("negative", "positive")


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def confusion_matrix_figure(matrix: Sequence[Sequence[int]], title: str) -> Figure:
    """``matrix[true][predicted]`` (0 negative, 1 positive) with counts and row shares."""
    figure = _figure(4.2, 3.6)
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0)
    figure.colorbar(image, ax=axes, shrink=0.8)
    peak = max(max(row) for row in matrix) or 1
    for true, row in enumerate(matrix):
        total = sum(row) or 1
        for predicted, count in enumerate(row):
            axes.text(
                predicted,
                true,
                f"{count}\n{count / total:.0%}",
                ha="center",
                va="center",
                color="white" if count > peak / 2 else "black",
            )
    axes.set_xticks(range(len(LABELS)), LABELS)
    axes.set_yticks(range(len(LABELS)), LABELS)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=10)
    return figure


def reliability_figure(rows: Sequence[dict[str, float]], title: str) -> Figure:
    """Reliability diagram: mean P(positive) per bin against the observed share of
    positives (the diagonal is perfect calibration), with the bin sizes below."""
    figure = _figure(4.6, 5.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    top.plot(
        [row["mean_probability"] for row in rows],
        [row["fraction_positive"] for row in rows],
        marker="o",
        label="model",
    )
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("share of positive reviews")
    top.set_title(title, fontsize=10)
    top.legend(loc="upper left")
    width = [row["high"] - row["low"] for row in rows]
    bottom.bar([row["low"] for row in rows], [row["count"] for row in rows], width, align="edge")
    bottom.set_xlabel("predicted P(positive)")
    bottom.set_ylabel("reviews")
    return figure
