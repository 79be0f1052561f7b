"""리뷰 분석: 붙여 넣은 리뷰나 올린 파일의 감성, AI 평점, 요약, 키워드, CSV 내려받기."""

import pandas as pd
import streamlit as st

from cinesense import webui
from cinesense.client import ApiError
from cinesense.reviews_io import (
    UploadError,
    read_upload,
    results_csv,
    results_frame,
    reviews_from_lines,
    reviews_from_table,
)

SHOWN_ROWS = 500
TEXT_HINTS = ("review", "text", "리뷰", "내용", "comment", "document", "평")
RATING_HINTS = ("rating", "score", "평점", "별점", "점수")

st.title("리뷰 분석")
st.caption(
    "리뷰를 한 줄에 하나씩 붙여 넣거나 CSV·Excel 파일을 올리면 "
    "감성(긍정/부정/애매)과 1–10 AI 평점을 알려 드립니다."
)
webui.banner(needs_model=True)
settings = webui.options()
limits = webui.cached(settings.api_url, "limits")
chunk = min(settings.chunk_size, limits["max_texts"])


def guess(columns: list[str], hints: tuple[str, ...]) -> int | None:
    for index, column in enumerate(columns):
        if any(hint in str(column).lower() for hint in hints):
            return index
    return None


def run(reviews: list[dict], notes: list[str]) -> None:
    if not reviews:
        st.warning("분석할 리뷰가 없습니다. 리뷰를 입력하거나 텍스트 열을 확인해 주세요.")
        return
    bar = st.progress(0.0, text=f"리뷰 {len(reviews):,}개 분석 중…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"리뷰 {done:,} / {total:,}개 분석")

    try:
        with webui.client() as api:
            analysis = api.analyze_many(reviews, chunk, progress)
    except ApiError as error:
        bar.empty()
        webui.show_api_error(error, "분석")
        return
    bar.empty()
    st.session_state["analysis"] = {"reviews": reviews, "result": analysis, "notes": notes}


typed, uploaded = st.tabs([":material/edit: 직접 입력", ":material/upload_file: 파일 업로드"])
with typed, st.form("typed"):
    text = st.text_area(
        "리뷰 (한 줄에 하나)",
        height=160,
        placeholder="배우들 연기가 정말 좋았어요\n시간이 아까운 영화",
    )
    if st.form_submit_button("분석하기", type="primary"):
        run(reviews_from_lines(text, limits["max_text_chars"]), [])

with uploaded:
    file = st.file_uploader(
        "CSV, TSV 또는 Excel(.xlsx) 파일", type=["csv", "tsv", "txt", "xlsx", "xls"]
    )
    if file is not None:
        try:
            upload = read_upload(file.name, file.getvalue())
        except UploadError as error:
            st.error(f"**파일을 읽을 수 없습니다.** {error}")
        else:
            frame = upload.frame
            columns = [str(c) for c in frame.columns]
            encoding = f", 인코딩 {upload.encoding.upper()}" if upload.encoding else ""
            st.caption(f"{len(frame):,}행 · {len(columns)}열{encoding}")
            left, right = st.columns(2)
            text_column = left.selectbox(
                "리뷰 텍스트 열", columns, index=guess(columns, TEXT_HINTS) or 0
            )
            rating_choice = right.selectbox(
                "실제 평점 열 (선택)",
                ["(없음)", *columns],
                index=(guess(columns, RATING_HINTS) or -1) + 1,
            )
            st.dataframe(frame.head(5), hide_index=True)
            if st.button("파일 분석하기", type="primary"):
                rating_column = None if rating_choice == "(없음)" else rating_choice
                reviews, notes = reviews_from_table(
                    frame, text_column, rating_column, limits["max_text_chars"]
                )
                run(reviews, notes)

state = st.session_state.get("analysis")
if state:
    result, reviews = state["result"], state["reviews"]
    for note in state["notes"]:
        st.info(note)
    st.divider()
    if result["count"] == 1:
        item = result["items"][0]
        label = webui.LABELS_KO[item["label"]]
        color = webui.LABEL_COLORS[label]
        st.markdown(
            f"<div style='font-size:1.6rem'><b style='color:{color}'>{label}</b> · "
            f"<span style='color:#f5a623'>{webui.stars(item['rating'])}</span> "
            f"<b>{item['rating']:.1f}</b> / 10 · 신뢰도 {item['confidence'] * 100:.0f}%</div>",
            unsafe_allow_html=True,
        )
        if item["label"] == "uncertain":
            st.warning("모델이 확신하지 못한 리뷰입니다(애매).")
        if item["truncated"]:
            st.caption("리뷰가 길어 앞부분만 분석했습니다.")
    table = results_frame(reviews, result)
    cols = st.columns(5)
    cols[0].metric("리뷰 수", f"{result['count']:,}")
    cols[1].metric("긍정", webui.percent(result["share_positive"]))
    cols[2].metric("부정", webui.percent(result["share_negative"]))
    cols[3].metric("애매", webui.percent(result["share_uncertain"]))
    cols[4].metric("평균 AI 평점", f"{result['mean_predicted_rating']:.2f}")
    real = table.dropna(subset=["실제 평점"])
    estimate = result.get("estimated_share_positive")
    cols = st.columns(2)
    if result["count"] > 1 and estimate is not None:
        cols[0].metric(
            "추정 긍정 비율", webui.percent(estimate), help=webui.estimated_share_help(result)
        )
    if len(real):
        mae = (real["AI 평점"] - real["실제 평점"].astype(float)).abs().mean()
        cols[1].metric("실제 평점과의 평균 절대 오차 (MAE)", f"{mae:.2f}점")

    if result["count"] > 1:
        left, right = st.columns(2)
        with left:
            st.subheader("AI 평점 분포")
            histogram = pd.DataFrame(
                {"AI 평점": [int(result["rating_histogram"][str(r)]) for r in range(1, 11)]},
                index=range(1, 11),
            )
            if result.get("real_rating_histogram"):
                histogram["실제 평점"] = [
                    int(result["real_rating_histogram"][str(r)]) for r in range(1, 11)
                ]
            st.bar_chart(histogram, stack=False, x_label="평점", y_label="리뷰 수")
        with right:
            st.subheader("감성 비율")
            webui.share_chart(result)
        if len(real) > 1:
            st.subheader("실제 평점 vs AI 평점")
            st.scatter_chart(real, x="실제 평점", y="AI 평점")
        st.subheader("감성별 키워드")
        method = result.get("keyword_method")
        left, right = st.columns(2)
        for column, label, name in ((left, "positive", "긍정"), (right, "negative", "부정")):
            with column:
                st.markdown(f"**{name} 리뷰의 키워드**")
                webui.keyword_chart(result["keywords"].get(label, []), label)
        if result.get("keywords_sample", result["count"]) < result["count"]:
            st.caption(f"키워드는 리뷰 {result['keywords_sample']:,}개 표본에서 뽑았습니다.")
        if method == "whitespace":
            st.caption("형태소 분석기(KoNLPy)를 쓸 수 없어 띄어쓰기 단위로 키워드를 뽑았습니다.")

    st.subheader("리뷰별 결과")
    shown = table.head(SHOWN_ROWS).assign(별점=lambda f: f["AI 평점"].map(webui.stars))
    if shown["실제 평점"].isna().all():
        shown = shown.drop(columns="실제 평점")
    styled = shown.style.apply(
        lambda row: ["background-color: #fff3cd" if row["감성"] == "애매" else ""] * len(row),
        axis=1,
    ).format({"AI 평점": "{:.1f}", "신뢰도": "{:.2f}", "긍정 확률": "{:.2f}"})
    st.dataframe(styled, hide_index=True, width="stretch")
    if len(table) > SHOWN_ROWS:
        st.caption(
            f"앞 {SHOWN_ROWS:,}개만 보여 줍니다. 전체 {len(table):,}개는 CSV로 내려받으세요."
        )
    if table["잘림"].any():
        st.caption(f"너무 긴 리뷰 {int(table['잘림'].sum())}개는 앞부분만 분석했습니다(잘림).")
    st.download_button(
        "결과 CSV 내려받기",
        results_csv(table),
        file_name="cinesense_results.csv",
        mime="text/csv",
        type="primary",
    )
