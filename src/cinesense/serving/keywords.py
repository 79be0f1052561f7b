"""Keywords that set positive reviews apart from negative ones (Korean morphology).

Words are the nouns, adjectives and verbs that KoNLPy's Okt analyser finds (stemmed, so
"좋았어요" counts as "좋다"). A word's score for a class is its document frequency there
times the log-ratio of how often it appears in that class versus the other (add-one
smoothed), so words every review uses ("영화") fall away and distinctive ones rise.

Okt runs on a JVM; where no Java runtime exists the analyser falls back to whitespace
words with common particles stripped, and the response names the method used.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

KEEP_TAGS = {"Noun", "Adjective", "Verb"}
STOPWORDS = {
    "영화", "보다", "하다", "되다", "있다", "없다", "이다", "같다", "그냥", "진짜", "정말",
    "너무", "완전", "이런", "그런", "저런", "이렇다", "그렇다", "것", "거", "수", "점",
    "때", "중", "좀", "더", "또", "잘", "나", "내", "우리", "이", "그", "저",
}  # fmt: skip
PARTICLES = re.compile(r"(은|는|이|가|을|를|에|의|도|로|으로|와|과|에서|까지|부터|만|요)$")
HANGUL_OR_WORD = re.compile(r"[가-힣A-Za-z]{2,}")


class KeywordExtractor:
    def __init__(self) -> None:
        self._okt = None
        self._lock = threading.Lock()  # Okt keeps state in the JVM; one caller at a time
        self.method = "okt"
        try:
            from konlpy.tag import Okt

            _start_jvm()
            self._okt = Okt()
        except Exception as error:  # no JVM, or JPype cannot start it
            log.warning("KoNLPy's Okt is unavailable (%s); keywords use whitespace words", error)
            self.method = "whitespace"

    def words(self, text: str) -> set[str]:
        if self._okt is None:
            return {PARTICLES.sub("", w) for w in HANGUL_OR_WORD.findall(text)} - STOPWORDS
        with self._lock:
            tagged = self._okt.pos(text, stem=True, norm=True)
        return {w for w, tag in tagged if tag in KEEP_TAGS and len(w) > 1} - STOPWORDS

    def top_keywords(
        self, positive: Iterable[str], negative: Iterable[str], k: int
    ) -> dict[str, list[dict[str, object]]]:
        pos_docs = [self.words(text) for text in positive]
        neg_docs = [self.words(text) for text in negative]
        pos_counts = Counter(w for doc in pos_docs for w in doc)
        neg_counts = Counter(w for doc in neg_docs for w in doc)
        return {
            "positive": _distinctive(pos_counts, len(pos_docs), neg_counts, len(neg_docs), k),
            "negative": _distinctive(neg_counts, len(neg_docs), pos_counts, len(pos_docs), k),
        }


def _start_jvm() -> None:
    """Start the JVM as KoNLPy would, but with ``-Xrs`` so that SIGTERM still reaches the
    Python server (graceful shutdown) instead of the JVM's own handler."""
    import jpype
    from konlpy import utils

    if jpype.isJVMStarted():
        return
    jars = Path(utils.installpath) / "java"
    jpype.startJVM(
        jpype.getDefaultJVMPath(),
        "-Dfile.encoding=UTF8",
        "-Xrs",
        "-Xmx512m",
        classpath=[str(jars), str(jars / "bin"), *sorted(str(j) for j in jars.glob("*.jar"))],
        convertStrings=True,
    )
    # The thread that creates a JVM is its one non-daemon thread: at exit the JVM would wait
    # for it (a server's worker thread) forever. Detached, it comes back as a daemon like
    # every other caller, and the JVM shuts down before Python finalizes (left running, its
    # threads called into a finalizing interpreter: "Fatal Python error", exit 134).
    jpype.java.lang.Thread.detach()


def _distinctive(
    mine: Counter[str], n_mine: int, other: Counter[str], n_other: int, k: int
) -> list[dict[str, object]]:
    scored = []
    for word, count in mine.items():
        ratio = ((count + 1) / (n_mine + 2)) / ((other[word] + 1) / (n_other + 2))
        if ratio > 1:
            scored.append((count * math.log(ratio), count, word))
    scored.sort(key=lambda item: (-item[0], -item[1], item[2]))
    return [{"word": word, "reviews": count} for _, count, word in scored[:k]]
