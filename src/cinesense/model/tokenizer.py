"""A WordPiece tokenizer trained on review text, saved in Hugging Face format."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import BertWordPieceTokenizer
from transformers import BertTokenizer, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def train_wordpiece(
    texts: Iterable[str], vocab_size: int, max_length: int
) -> PreTrainedTokenizerFast:
    """Train a cased WordPiece vocabulary on ``texts``.

    Accents are *not* stripped: stripping decomposes Hangul syllables into jamo (NFD) and
    would triple every Korean token. Text is expected to be normalized already
    (:func:`cinesense.text.normalize_review`).
    """
    wordpiece = BertWordPieceTokenizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    wordpiece.train_from_iterator(
        texts,
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        limit_alphabet=3000,
        wordpieces_prefix="##",
        show_progress=False,
    )
    # The trainer numbers tokens of equal frequency in hash order, which changes between
    # runs; WordPiece only needs the set, so number it canonically for reproducible models.
    trained = set(wordpiece.get_vocab())
    ordered = SPECIAL_TOKENS + sorted(trained - set(SPECIAL_TOKENS))
    canonical = BertWordPieceTokenizer(
        {token: i for i, token in enumerate(ordered)},
        clean_text=True,
        handle_chinese_chars=True,
        strip_accents=False,
        lowercase=False,
    )
    tokenizer = BertTokenizer(
        tokenizer_object=canonical._tokenizer,
        do_lower_case=False,
        strip_accents=False,
        tokenize_chinese_chars=True,
        model_max_length=max_length,
    )
    return tokenizer
