"""Streamlit glue shared by the analysis app's pages (``streamlit/``): the API client,
cached API answers, the API-state banner and small display helpers.

The pages import only this module, :mod:`cinesense.client` and :mod:`cinesense.reviews_io`:
no model, torch, crawler or storage code runs in the UI process.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from cinesense.client import ApiError, CinesenseClient
from cinesense.config import Settings, UiSettings

LABELS_KO = {"positive": "긍정", "negative": "부정", "uncertain": "애매"}
LABEL_COLORS = {"긍정": "#2e7d32", "부정": "#c62828", "애매": "#9e9e9e"}


def options() -> UiSettings:
    return Settings().ui


def client() -> CinesenseClient:
    return CinesenseClient.from_settings(options())


_TTL = options().cache_ttl_s


@st.cache_data(ttl=5, show_spinner=False)
def api_state(api_url: str) -> dict[str, Any]:
    """``/ready``, or ``{"reachable": False, ...}`` when the API cannot be reached."""
    try:
        with CinesenseClient(api_url, timeout_s=5) as api:
            return {"reachable": True, **api.ready()}
    except ApiError as error:
        return {"reachable": False, "ready": False, "problem": error.message}


@st.cache_data(ttl=_TTL, show_spinner=False)
def cached(api_url: str, call: str, *args: Any) -> Any:
    """A read call of the client (``movies``, ``movie``, ``now_showing``, ``models``,
    ``limits``), cached."""
    with CinesenseClient(api_url, timeout_s=options().timeout_s) as api:
        return getattr(api, call)(*args)


def banner(needs_model: bool) -> dict[str, Any]:
    """Show the API's state when it is not fine; stop the page when it cannot work."""
    settings = options()
    state = api_state(settings.api_url)
    if not state["reachable"]:
        st.error(
            f"**API 서버에 연결할 수 없습니다.** 잠시 후 다시 시도해 주세요. "
            f"(주소: `{settings.api_url}`)",
            icon=":material/cloud_off:",
        )
        st.stop()
    if not state.get("ready") and needs_model:
        st.warning(
            "**모델이 아직 준비되지 않았습니다.** 분석은 챔피언 모델이 올라온 뒤에 할 수 있습니다. "
            f"사유: {state.get('problem') or '알 수 없음'}",
            icon=":material/hourglass_top:",
        )
        st.stop()
    if not state.get("ready"):
        st.info(
            f"모델이 아직 준비되지 않았습니다: {state.get('problem')}",
            icon=":material/hourglass_top:",
        )
    return state


def show_api_error(error: ApiError, what: str) -> None:
    if error.unreachable:
        st.error(
            f"**API 서버에 연결할 수 없습니다.** {what}을(를) 할 수 없습니다. ({error.message})"
        )
    elif error.status == 503:
        st.warning(f"**지금은 {what}을(를) 할 수 없습니다.** {error.message}")
    else:
        st.error(f"**{what} 실패 ({error.status})** {error.message}")


def keyword_chart(words: list[dict[str, Any]], label: str) -> None:
    """Horizontal bars of a sentiment's keywords, most frequent on top, every word named."""
    import altair as alt
    import pandas as pd

    if not words:
        st.caption("키워드가 없습니다.")
        return
    frame = pd.DataFrame(words)
    chart = (
        alt.Chart(frame)
        .mark_bar(color=LABEL_COLORS[LABELS_KO[label]])
        .encode(
            x=alt.X("reviews:Q", title="리뷰 수", axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("word:N", sort="-x", title=None),
            tooltip=[
                alt.Tooltip("word:N", title="키워드"),
                alt.Tooltip("reviews:Q", title="리뷰 수"),
            ],
        )
    )
    st.altair_chart(chart, width="stretch", height=max(140, 26 * len(frame) + 50))


def share_chart(analysis: dict[str, Any]) -> None:
    """One stacked bar: the shares of 긍정, 부정 and 애매."""
    import altair as alt
    import pandas as pd

    frame = pd.DataFrame(
        {
            "감성": ["긍정", "부정", "애매"],
            "비율": [analysis[f"share_{k}"] for k in ("positive", "negative", "uncertain")],
        }
    )
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("비율:Q", axis=alt.Axis(format="%"), title=None),
            y=alt.Y("감성:N", sort=["긍정", "부정", "애매"], title=None),
            color=alt.Color(
                "감성:N",
                scale=alt.Scale(domain=list(LABEL_COLORS), range=list(LABEL_COLORS.values())),
                legend=None,
            ),
            tooltip=["감성", alt.Tooltip("비율:Q", format=".1%")],
        )
        .properties(height=130)
    )
    st.altair_chart(chart, width="stretch")


def stars(rating: float | None) -> str:
    """A 1-10 rating as five stars (each star two points)."""
    if rating is None:
        return ""
    full = max(0, min(5, round(rating / 2)))
    return "★" * full + "☆" * (5 - full)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def positive_share(movie: dict) -> float | None:
    """The movie's share of positive reviews: estimated from its labels and the model's
    recall where the model kept it (model/quantify.py), else the share of labels."""
    estimate = movie.get("estimated_share_positive")
    return movie["share_positive"] if estimate is None else estimate


RECALL_CORRECTION = (
    "검증 리뷰에서 잰 모델의 재현율(부정·긍정 리뷰를 맞히는 비율)로 분류 오차를 보정했습니다."
)


def positive_share_help(movie: dict) -> str:
    labelled = percent(movie["share_positive"])
    if movie.get("estimated_share_positive") is None:
        return f"긍정으로 분류된 리뷰의 비율 ({labelled})"
    return f"긍정 리뷰의 추정 비율. 긍정으로 분류된 리뷰는 {labelled}이며, {RECALL_CORRECTION}"


def estimated_share_help(analysis: dict) -> str:
    """What the review page's estimated share is, beside its share of labels."""
    return (
        "이 리뷰들 가운데 긍정 리뷰의 추정 비율. 애매한 리뷰도 긍정·부정 어느 쪽에 더 "
        f"가까운지로 세었고, {RECALL_CORRECTION}"
    )
