"""How many of a movie's reviews are positive: an estimate, not a count of labels.

A classifier's share of positive labels is biased towards the share it would give a
50/50 mix: with the label read at equal class priors (model/balance.py), a movie whose
reviews are 80 % positive gets about 73 % positive labels from the shipped model (recall
0.88 of each class). Adjusted classify-and-count (Forman 2008) corrects it with the
recall of each class on validation reviews, which every bundle keeps in its label map:

    share = (labelled positive − false positive rate) / (true positive rate − false positive rate)

clipped to [0, 1]. It is unbiased when reviews of a movie are read as validation reviews
are; a movie with few reviews still gets a noisy estimate, and reviews from another site
may be read less well than Naver's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# Below this gap between the true and the false positive rate the correction divides by
# almost nothing: no estimate.
MIN_SEPARATION = 0.2


def estimated_share_of(
    probabilities: Sequence[float], recall: tuple[float, float] | None
) -> float | None:
    """:func:`estimated_share` for reviews given by their probability of being positive
    (labelled positive at 0.5 or more, as the label map labels them)."""
    if not probabilities:
        return None
    labelled = sum(p >= 0.5 for p in probabilities) / len(probabilities)
    return estimated_share(labelled, recall)


def estimated_share(labelled_positive: float, recall: tuple[float, float] | None) -> float | None:
    """The estimated share of positive reviews, from the share labelled positive and the
    label map's (negative, positive) validation recall; None without a usable recall."""
    if recall is None or any(math.isnan(r) for r in recall):
        return None
    true_positive_rate = recall[1]
    false_positive_rate = 1.0 - recall[0]
    separation = true_positive_rate - false_positive_rate
    if separation < MIN_SEPARATION:
        return None
    share = (labelled_positive - false_positive_rate) / separation
    return min(1.0, max(0.0, share))
