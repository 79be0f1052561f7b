"""normalize_review removes only real markup: users' brackets, symbols and words stay."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cinesense.text import has_letters, normalize_review


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("돈이 아깝다 <최악>", "돈이 아깝다 <최악>"),
        ("a < b > c", "a < b > c"),
        ("사랑해요 <3", "사랑해요 <3"),
        ("ㅠㅠ >_< 슬퍼", "ㅠㅠ >_< 슬퍼"),
        ("&lt;명작&gt; 입니다", "<명작> 입니다"),
        ('좋아요<br/>진짜<p class="x">최고</p>', "좋아요 진짜 최고"),
        ("<B>굵게</B> 씀", "굵게 씀"),
        ("숨김<!-- 주석 -->끝", "숨김 끝"),
        ("줄&lt;br&gt;바꿈", "줄 바꿈"),
        ("하하하하하하", "하하하하하하"),
        ("ㅋㅋㅋㅋㅋ", "ㅋㅋㅋ"),
    ],
)
def test_only_real_markup_is_removed(raw: str, expected: str) -> None:
    assert normalize_review(raw) == expected


TAGS = ["<br>", "<br/>", "</p>", '<span class="a">', "<b>", "<!-- x -->"]
# No letters, '#' or '-' among the symbols, so fragments cannot join into a tag, a
# comment or a numeric entity by accident: every real tag comes from TAGS.
FRAGMENTS = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3), max_size=5),
    st.text(alphabet="<>/ =\"'&;!?.ㅋㅠ^_123", max_size=5),
    st.sampled_from(TAGS),
)
_SYLLABLE = re.compile("[\uac00-\ud7a3]")


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS, max_size=12))
def test_normalizing_never_removes_a_hangul_syllable_outside_real_tags(parts: list[str]) -> None:
    text = "".join(parts)
    outside_tags = "".join(p for p in parts if p not in TAGS)
    expected = sorted(_SYLLABLE.findall(outside_tags))
    assert sorted(_SYLLABLE.findall(normalize_review(text))) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS, max_size=12))
def test_normalizing_is_idempotent(parts: list[str]) -> None:
    once = normalize_review("".join(parts))
    assert normalize_review(once) == once


@pytest.mark.parametrize(
    ("text", "expected"),
    [("재밌다", True), ("good", True), ("10점", True), ("ㅋㅋ", True), ("!!! ^^ ...", False)],
)
def test_has_letters(text: str, expected: bool) -> None:
    assert has_letters(text) is expected
