"""Text normalization shared by training, evaluation and serving.

``normalize_review`` is applied to every review before deduplication, tokenization and
prediction, so the model always sees text in one canonical form:

1. Real HTML markup is removed: tags of HTML elements (``<br>``, ``<p class="x">``,
   ``</b>``) and comments become spaces. Anything else in angle brackets is the user's
   text and stays — ``돈이 아깝다 <최악>``, ``a < b > c``, ``<3``, ``>_<``.
2. HTML entities are decoded (``&amp;`` → ``&``, ``&#39;`` → ``'``) *after* tags are
   removed, so an escaped ``&lt;명작&gt;`` reads ``<명작>`` and is kept (an escaped real
   tag such as ``&lt;br&gt;`` is still markup and goes).
3. Unicode is put in NFC form, so Hangul typed as separate jamo and as syllables compare
   equal. NFKC is deliberately *not* used: it would turn compatibility jamo such as
   ``ㅋ`` into conjoining jamo that merge with neighbouring letters.
4. Zero-width and control characters are removed.
5. Runs of one repeated non-syllable character are cut to ``max_repeat`` (default 3):
   ``ㅋㅋㅋㅋㅋㅋ`` → ``ㅋㅋㅋ``, ``!!!!!`` → ``!!!``, ``.......`` → ``...``. The repetition
   still shows (it carries sentiment), but the tokenizer is not flooded with it. Hangul
   syllables are words and are never cut.
6. Whitespace runs (spaces, tabs, newlines, non-breaking spaces) become one space, and
   the ends are stripped.

``has_letters`` tells whether a normalized text holds anything a model can read (a
letter or digit of any script); symbol-only texts are scored as ``uncertain``.
"""

from __future__ import annotations

import html
import re
import unicodedata

# Elements that occur in crawled pages and old corpora; a name not listed here (or not
# directly after "<") is not markup.
HTML_ELEMENTS = (
    "a",
    "abbr",
    "b",
    "big",
    "blockquote",
    "body",
    "br",
    "center",
    "code",
    "del",
    "div",
    "em",
    "embed",
    "font",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "hr",
    "html",
    "i",
    "iframe",
    "img",
    "ins",
    "li",
    "link",
    "mark",
    "meta",
    "nav",
    "noscript",
    "ol",
    "option",
    "p",
    "pre",
    "q",
    "s",
    "script",
    "section",
    "select",
    "small",
    "source",
    "span",
    "strike",
    "strong",
    "style",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "textarea",
    "th",
    "thead",
    "title",
    "tr",
    "tt",
    "u",
    "ul",
    "video",
    "wbr",
)
_TAG = re.compile(
    r"<!--.*?-->|</?(?:" + "|".join(HTML_ELEMENTS) + r")(?:\s[^<>]*)?/?>",
    re.IGNORECASE | re.DOTALL,
)
_INVISIBLE = re.compile(r"[\u200b-\u200f\u2060\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WHITESPACE = re.compile(r"\s+")
_HANGUL_SYLLABLE = "\uac00-\ud7a3"


def normalize_review(text: str, max_repeat: int = 3) -> str:
    """Return ``text`` in canonical form (see the module docstring for the steps)."""
    if max_repeat < 1:
        raise ValueError("max_repeat must be at least 1")
    text = _strip_markup(text)
    text = unicodedata.normalize("NFC", text)
    text = _INVISIBLE.sub("", text)
    text = re.sub(rf"([^{_HANGUL_SYLLABLE}])\1{{{max_repeat},}}", r"\1" * max_repeat, text)
    return _WHITESPACE.sub(" ", text).strip()


def _strip_markup(text: str, max_rounds: int = 3) -> str:
    """Remove tags, then decode entities; again while decoding reveals more (sites often
    escape twice: ``&amp;lt;br&amp;gt;``), so a normalized text normalizes to itself."""
    for _ in range(max_rounds):
        decoded = html.unescape(_TAG.sub(" ", text))
        if decoded == text:
            break
        text = decoded
    return text


def has_letters(text: str) -> bool:
    """True when ``text`` holds a letter or digit of any script (not only symbols)."""
    return any(character.isalnum() for character in text)
