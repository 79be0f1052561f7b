"""What a report carries for the tracking plots: reliability bins, the worst errors, and
the figures drawn from them (headless, no pyplot)."""

import io

import numpy as np
import pandas as pd

from cinesense.model.evaluate import reliability_table, worst_errors
from cinesense.model.plots import confusion_matrix_figure, reliability_figure


def test_reliability_table_bins_predictions() -> None:
    probability = np.array([0.05, 0.15, 0.12, 0.95, 0.91, 0.55])
    labels = np.array([0, 0, 1, 1, 1, 0])
    rows = reliability_table(probability, labels, bins=10)
    assert [row["count"] for row in rows] == [1, 2, 1, 2]  # empty bins are left out
    second = rows[1]
    assert (second["low"], second["high"]) == (0.1, 0.2)
    assert second["mean_probability"] == (0.15 + 0.12) / 2
    assert second["fraction_positive"] == 0.5
    assert rows[-1]["fraction_positive"] == 1.0


def test_worst_errors_are_the_most_confident_wrong_predictions() -> None:
    reviews = pd.DataFrame(
        {
            "text": ["최고", "별로", "그럭저럭 좋음", "최악", "재밌다"],
            "label": [1, 0, 1, 0, 1],
            "rating": [10, 2, 9, 1, pd.NA],
        },
        index=[10, 11, 12, 13, 14],
    )
    probability = pd.Series([0.9, 0.8, 0.45, 0.97, 0.1], index=reviews.index)
    predicted_rating = pd.Series([9.0, 7.5, 5.0, 9.6], index=[10, 11, 12, 13])
    rows = worst_errors(reviews, probability, predicted_rating, limit=3)
    assert [row["text"] for row in rows] == ["최악", "재밌다", "별로"]
    assert rows[0] == {
        "text": "최악",
        "label": "negative",
        "rating": 1.0,
        "predicted_label": "positive",
        "probability_positive": 0.97,
        "predicted_rating": 9.6,
    }
    assert rows[1]["rating"] is None and rows[1]["predicted_rating"] is None


def test_figures_render_to_png() -> None:
    figures = [
        confusion_matrix_figure([[40, 10], [5, 45]], "confusion"),
        reliability_figure(
            reliability_table(np.linspace(0, 1, 50), np.arange(50) % 2), "reliability"
        ),
    ]
    for figure in figures:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        assert buffer.getvalue().startswith(b"\x89PNG")
