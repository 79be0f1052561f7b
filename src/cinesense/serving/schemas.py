"""Request and response bodies. Request limits come from settings, so the OpenAPI document
states the real limits (and the fuzz test explores exactly them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from cinesense.config import ServeSettings
from cinesense.text import normalize_review


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("is empty or only whitespace; send the review's text")
    if not normalize_review(text):
        raise ValueError(
            "holds no readable text (only control characters, zero-width characters or "
            "HTML markup); send the review's text"
        )
    return text


class Prediction(BaseModel):
    label: Literal["positive", "negative", "uncertain"]
    probability_positive: float = Field(description="Probability that the review is positive.")
    confidence: float = Field(description="Probability of the more likely label.")
    rating: float = Field(description="Estimated 1-10 rating.")
    truncated: bool = Field(
        description="The text was longer than the model reads; only its beginning was scored."
    )


class PredictResponse(BaseModel):
    model_version: str
    quantization: str
    predictions: list[Prediction]


class AnalyzedReview(Prediction):
    real_rating: int | None = None


class Keyword(BaseModel):
    word: str
    reviews: int = Field(description="Reviews of this class that use the word.")


class ClassRecall(BaseModel):
    negative: float
    positive: float


class AnalyzeResponse(BaseModel):
    model_version: str
    count: int
    share_positive: float
    share_negative: float
    share_uncertain: float
    estimated_share_positive: float | None = Field(
        description="Share of positive reviews estimated from the labels and the model's "
        "recall (adjusted classify-and-count); null for a model that kept no recall."
    )
    model_recall: ClassRecall | None = Field(
        description="The model's recall of each class on validation reviews."
    )
    mean_predicted_rating: float
    mean_real_rating: float | None
    rating_histogram: dict[str, int] = Field(description="Predicted ratings rounded to 1-10.")
    real_rating_histogram: dict[str, int] | None
    keyword_method: str
    keywords: dict[str, list[Keyword]]
    items: list[AnalyzedReview]


class ModelResponse(BaseModel):
    name: str
    version: str
    reference: str
    aliases: list[str]
    quantization: str
    loaded_at: str
    champion_since: str | None
    tags: dict[str, str]
    metrics: dict[str, Any]


class Problem(BaseModel):
    error: str
    problems: list[str] = []
    request_id: str


def request_models(limits: ServeSettings) -> tuple[type[BaseModel], type[BaseModel]]:
    text = Annotated[
        str,
        StringConstraints(min_length=1, max_length=limits.max_text_chars),
        AfterValidator(_not_blank),
    ]

    class PredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", title="PredictRequest")
        texts: list[text] = Field(
            min_length=1,
            max_length=limits.max_texts,
            description=f"1 to {limits.max_texts} review texts of at most "
            f"{limits.max_text_chars} characters.",
        )

    class Review(BaseModel):
        model_config = ConfigDict(extra="forbid")
        text: text
        rating: int | None = Field(None, ge=1, le=10, description="The real 1-10 rating.")

    class AnalyzeRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", title="AnalyzeRequest")
        reviews: list[Review] = Field(min_length=1, max_length=limits.max_analyze_texts)

    return PredictRequest, AnalyzeRequest
