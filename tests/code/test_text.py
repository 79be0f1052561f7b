import pytest

from cinesense.text import normalize_review


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  정말   재밌다 \n\t최고 ", "정말 재밌다 최고"),
        ("ㅋㅋㅋㅋㅋㅋㅋㅋ", "ㅋㅋㅋ"),
        ("최고!!!!!!", "최고!!!"),
        ("음.........", "음..."),
        ("ㅋㅋ 좋아", "ㅋㅋ 좋아"),
        ("Tom &amp; Jerry &#39;굿&#39;", "Tom & Jerry '굿'"),
        ("첫줄<br>둘째줄<br/>끝", "첫줄 둘째줄 끝"),
        ("제로\u200b폭\ufeff", "제로폭"),
        ("\u1112\u1161\u11ab", "한"),  # conjoining jamo → one syllable (NFC)
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalize_review(raw: str, expected: str) -> None:
    assert normalize_review(raw) == expected


def test_compatibility_jamo_are_kept() -> None:
    # NFKC would map ㅋ (U+314B) to a conjoining jamo; NFC keeps it.
    assert normalize_review("ㅋ") == "\u314b"


def test_normalize_is_idempotent() -> None:
    text = "  와!!!!! ㅠㅠㅠㅠㅠ   &lt;명작&gt;  "
    once = normalize_review(text)
    assert normalize_review(once) == once


def test_max_repeat_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_repeat"):
        normalize_review("ㅋㅋ", max_repeat=0)
