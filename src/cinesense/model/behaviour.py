"""A behavioural test set: hand-written reviews that probe what accuracy hides.

Each case names a capability (negation, intensity, spacing and typo noise, laughter and
emoji, very short reviews) and the label a Korean reader would give. Written for this
project; no text is taken from a review site.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import numpy as np

POSITIVE, NEGATIVE = 1, 0

CASES: list[tuple[str, str, int]] = [
    # negation: the sentiment word is turned around by 않다 / 안 / 없다 / 못하다
    ("negation", "재미없지 않았다", POSITIVE),
    ("negation", "생각보다 나쁘지 않았어요", POSITIVE),
    ("negation", "지루할 틈이 없었다", POSITIVE),
    ("negation", "후회하지 않는 선택이었다", POSITIVE),
    ("negation", "재미있지 않았다", NEGATIVE),
    ("negation", "별로 좋지 않았다", NEGATIVE),
    ("negation", "기대만큼 재밌지는 않네요", NEGATIVE),
    ("negation", "다시 보고 싶지 않다", NEGATIVE),
    # intensity: strong words and intensifiers
    ("intensity", "인생 최고의 영화입니다 정말 강추", POSITIVE),
    ("intensity", "진짜 너무너무 재밌었어요", POSITIVE),
    ("intensity", "역대급 명작 소름 돋았다", POSITIVE),
    ("intensity", "최악 중의 최악 돈이 아깝다", NEGATIVE),
    ("intensity", "정말 시간 낭비였다 절대 보지 마세요", NEGATIVE),
    ("intensity", "쓰레기 같은 영화 1점도 아깝다", NEGATIVE),
    # spacing noise: words run together or split apart
    ("spacing", "정말재미있게봤습니다강추", POSITIVE),
    ("spacing", "연기도좋고스토리도좋고최고", POSITIVE),
    ("spacing", "돈 아 까 운 영 화", NEGATIVE),
    ("spacing", "완전노잼시간아까움", NEGATIVE),
    # typo noise: common misspellings
    ("typo", "재밋엇어요 또 보고싶당", POSITIVE),
    ("typo", "감동적이엿다 배우들 연기 짱", POSITIVE),
    ("typo", "별로엿다 지루햇음", NEGATIVE),
    ("typo", "노잼 돈아까웟다", NEGATIVE),
    # laughter, crying and emoji
    ("laughter_emoji", "ㅋㅋㅋㅋ 개꿀잼 ㅋㅋㅋ", POSITIVE),
    ("laughter_emoji", "ㅠㅠ 너무 감동적이었어요 ㅠㅠ", POSITIVE),
    ("laughter_emoji", "👍👍 강추합니다", POSITIVE),
    ("laughter_emoji", "ㅋㅋ 이걸 돈 주고 봤네 ㅋㅋ 최악", NEGATIVE),
    ("laughter_emoji", "😡 시간 낭비", NEGATIVE),
    ("laughter_emoji", "ㅡㅡ 졸면서 봤음", NEGATIVE),
    # very short reviews
    ("short", "최고", POSITIVE),
    ("short", "굿", POSITIVE),
    ("short", "명작", POSITIVE),
    ("short", "강추", POSITIVE),
    ("short", "노잼", NEGATIVE),
    ("short", "별로", NEGATIVE),
    ("short", "최악", NEGATIVE),
    ("short", "비추", NEGATIVE),
]


def run_behaviour_tests(
    probability_positive: Callable[[list[str]], np.ndarray],
) -> dict[str, object]:
    """Pass rate overall and per capability, plus the failed cases."""
    texts = [text for _, text, _ in CASES]
    predicted = (np.asarray(probability_positive(texts)) >= 0.5).astype(int)
    by_kind: dict[str, list[bool]] = defaultdict(list)
    failures = []
    for (kind, text, expected), got in zip(CASES, predicted, strict=True):
        by_kind[kind].append(bool(got == expected))
        if got != expected:
            failures.append({"kind": kind, "text": text, "expected": expected})
    passed = sum(sum(v) for v in by_kind.values())
    return {
        "pass_rate": passed / len(CASES),
        "by_kind": {kind: sum(v) / len(v) for kind, v in by_kind.items()},
        "cases": len(CASES),
        "failures": failures,
    }
