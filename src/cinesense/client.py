"""An httpx client for the cinesense service: the one place the UI calls.

Answers are plain JSON (dicts), so callers can cache them. Every failure is an
:class:`ApiError` carrying the HTTP status (0 when the service cannot be reached) and the
service's own sentence saying what went wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from cinesense.config import UiSettings
from cinesense.model.quantify import estimated_share_of


class ApiError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    @property
    def unreachable(self) -> bool:
        return self.status == 0


class CinesenseClient:
    def __init__(
        self,
        base_url: str,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    @classmethod
    def from_settings(cls, options: UiSettings) -> CinesenseClient:
        return cls(options.api_url, options.timeout_s)

    def __enter__(self) -> CinesenseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- calls -------------------------------------------------------------------------

    def ready(self) -> dict[str, Any]:
        """``/ready``'s answer; ``ready`` False (with ``problem``) when not ready.

        Raises ApiError only when the service cannot be reached at all."""
        response = self._send("GET", "/ready")
        if response.status_code not in (200, 503):
            raise _error(response)
        body: dict[str, Any] = response.json()
        return body

    def predict(self, texts: Sequence[str]) -> dict[str, Any]:
        return self._json("POST", "/v1/predict", json={"texts": list(texts)})

    def analyze(self, reviews: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return self._json("POST", "/v1/analyze", json={"reviews": list(reviews)})

    def analyze_many(
        self,
        reviews: Sequence[dict[str, Any]],
        chunk_size: int,
        progress: Callable[[int, int], None] | None = None,
        keyword_sample: int = 300,
    ) -> dict[str, Any]:
        """An ``/v1/analyze``-shaped answer for any number of reviews.

        Labels and ratings come from ``/v1/predict`` in chunks of ``chunk_size`` (at most
        the API's ``MAX_TEXTS``); keywords from one ``/v1/analyze`` call on an even sample
        of ``keyword_sample`` reviews, made meanwhile (the morphology analyser is the slow
        part of ``/v1/analyze``, the model is not). Aggregates are computed here."""
        sample = list(reviews[:: max(1, len(reviews) // keyword_sample)][:keyword_sample])
        with ThreadPoolExecutor(1) as pool:
            keywords = pool.submit(self.analyze, sample)
            predictions: list[dict[str, Any]] = []
            version = ""
            for start in range(0, len(reviews), chunk_size):
                chunk = reviews[start : start + chunk_size]
                answer = self.predict([review["text"] for review in chunk])
                version = answer["model_version"]
                for review, item in zip(chunk, answer["predictions"], strict=True):
                    predictions.append({**item, "real_rating": review.get("rating")})
                if progress:
                    progress(len(predictions), len(reviews))
            sampled = keywords.result()
        merged = merge_analyses([{**sampled, "items": predictions, "model_version": version}])
        merged["keywords_sample"] = len(sample)
        return merged

    def model(self) -> dict[str, Any]:
        return self._json("GET", "/v1/model")

    def models(self) -> dict[str, Any]:
        return self._json("GET", "/v1/models")

    def movies(self, source: str | None = None) -> list[dict[str, Any]]:
        params = {"source": source} if source else None
        movies: list[dict[str, Any]] = self._json("GET", "/v1/movies", params=params)["movies"]
        return movies

    def now_showing(self, query: str = "", source: str | None = None) -> dict[str, Any]:
        params = {"q": query, **({"source": source} if source else {})}
        return self._json("GET", "/v1/now-showing", params=params)

    def movie(
        self, source: str, movie_id: str, page: int = 1, page_size: int = 50, order: str = "newest"
    ) -> dict[str, Any]:
        params = {"page": page, "page_size": page_size, "order": order}
        return self._json("GET", f"/v1/movies/{source}/{movie_id}", params=params)

    def crawl(self, source: str, movie_id: str, title: str = "") -> dict[str, Any]:
        body = {"source": source, "movie_id": movie_id, "title": title}
        return self._json("POST", "/v1/jobs/crawl", json=body)

    def train(self, params: dict[str, Any], admin_key: str) -> dict[str, Any]:
        return self._json("POST", "/v1/jobs/train", json=params, headers={"X-API-Key": admin_key})

    def job(self, job: str, run_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/jobs/{job}/{run_id}")

    def limits(self) -> dict[str, int]:
        """The request limits the service states in its OpenAPI document."""
        schemas = self._json("GET", "/openapi.json")["components"]["schemas"]
        analyze = schemas["AnalyzeRequest"]["properties"]["reviews"]
        text = schemas["PredictRequest"]["properties"]["texts"]
        return {
            "max_texts": int(text.get("maxItems", 256)),
            "max_analyze_texts": int(analyze.get("maxItems", 1000)),
            "max_text_chars": int(text["items"].get("maxLength", 2000)),
        }

    # --- plumbing ----------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise ApiError(f"The API at {self.base_url} did not answer in time.", 0) from error
        except httpx.HTTPError as error:
            raise ApiError(f"The API at {self.base_url} cannot be reached.", 0) from error

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        if response.status_code >= 400:
            raise _error(response)
        return response.json()


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
    except ValueError:
        body = {}
    message = body.get("error") if isinstance(body, dict) else None
    if not message:
        message = f"The API answered {response.status_code}."
    problems = body.get("problems") if isinstance(body, dict) else None
    if problems:
        message += " " + " ".join(str(p) for p in problems[:3])
    return ApiError(str(message), response.status_code)


def merge_analyses(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """One /v1/analyze answer from several (items in order, aggregates recomputed from the
    items, keyword counts summed)."""
    items = [item for answer in answers for item in answer["items"]]
    count = len(items)
    labels = Counter(item["label"] for item in items)
    real = [item["real_rating"] for item in items if item.get("real_rating") is not None]
    merged: dict[str, Any] = {
        "model_version": answers[-1]["model_version"],
        "count": count,
        "share_positive": round(labels["positive"] / count, 4),
        "share_negative": round(labels["negative"] / count, 4),
        "share_uncertain": round(labels["uncertain"] / count, 4),
        "estimated_share_positive": _estimate(items, answers[-1].get("model_recall")),
        "model_recall": answers[-1].get("model_recall"),
        "mean_predicted_rating": round(sum(item["rating"] for item in items) / count, 2),
        "mean_real_rating": round(sum(real) / len(real), 2) if real else None,
        "rating_histogram": _histogram([round(item["rating"]) for item in items]),
        "real_rating_histogram": _histogram(real) if real else None,
        "keyword_method": answers[-1]["keyword_method"],
        "keywords": {},
        "items": items,
    }
    for label in ("positive", "negative"):
        counts: Counter[str] = Counter()
        for answer in answers:
            for keyword in answer["keywords"].get(label, []):
                counts[keyword["word"]] += int(keyword["reviews"])
        top = len(answers[0]["keywords"].get(label, [])) or 10
        merged["keywords"][label] = [
            {"word": word, "reviews": n} for word, n in counts.most_common(top)
        ]
    return merged


def _estimate(items: list[dict[str, Any]], recall: dict[str, float] | None) -> float | None:
    pair = (recall["negative"], recall["positive"]) if recall else None
    estimate = estimated_share_of([item["probability_positive"] for item in items], pair)
    return None if estimate is None else round(estimate, 4)


def _histogram(ratings: list[int]) -> dict[str, int]:
    counts = Counter(max(1, min(10, int(r))) for r in ratings)
    return {str(r): counts[r] for r in range(1, 11)}
