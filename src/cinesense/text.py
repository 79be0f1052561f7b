"""Text normalization shared by training, evaluation and serving.

``normalize_review`` is applied to every review before deduplication, tokenization and
prediction, so the model always sees text in one canonical form:

1. HTML entities are decoded (``&amp;`` → ``&``, ``&#39;`` → ``'``), and leftover tags
   such as ``<br>`` become spaces — crawled pages and old corpora carry both.
2. Unicode is put in NFC form, so Hangul typed as separate jamo and as syllables compare
   equal. NFKC is deliberately *not* used: it would turn compatibility jamo such as
   ``ㅋ`` into conjoining jamo that merge with neighbouring letters.
3. Zero-width and control characters are removed.
4. Runs of one repeated character are cut to ``max_repeat`` (default 3):
   ``ㅋㅋㅋㅋㅋㅋ`` → ``ㅋㅋㅋ``, ``!!!!!`` → ``!!!``, ``.......`` → ``...``. The repetition
   still shows (it carries sentiment), but the tokenizer is not flooded with it.
5. Whitespace runs (spaces, tabs, newlines, non-breaking spaces) become one space, and
   the ends are stripped.
"""

from __future__ import annotations

import html
import re
import unicodedata

_TAG = re.compile(r"<[^>]{1,40}>")
_INVISIBLE = re.compile(r"[\u200b-\u200f\u2060\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WHITESPACE = re.compile(r"\s+")


def normalize_review(text: str, max_repeat: int = 3) -> str:
    """Return ``text`` in canonical form (see the module docstring for the steps)."""
    if max_repeat < 1:
        raise ValueError("max_repeat must be at least 1")
    text = html.unescape(text)
    text = _TAG.sub(" ", text)
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = re.sub(rf"(.)\1{{{max_repeat},}}", r"\1" * max_repeat, text)
    return _WHITESPACE.sub(" ", text).strip()
