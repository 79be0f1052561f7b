"""모델: 챔피언, 버전 기록과 승격 판정, MLflow·Airflow 링크, 재학습(관리자)."""

import pandas as pd
import streamlit as st

from cinesense import webui
from cinesense.client import ApiError

DECISIONS = {"promoted": "승격", "rejected": "탈락", None: "—"}

st.title("모델")
webui.banner(needs_model=False)
settings = webui.options()

try:
    models = webui.cached(settings.api_url, "models")
except ApiError as error:
    webui.show_api_error(error, "모델 정보 읽기")
    st.stop()

versions = models["versions"]
champion = next((v for v in versions if v["version"] == models["champion"]), None)
links = f"[MLflow 모델 레지스트리]({settings.mlflow_link}#/models/{models['model_name']}) · "
links += f"[Airflow DAG]({settings.airflow_link}dags)"

if models["champion"] is None:
    st.warning(
        "**아직 챔피언 모델이 없습니다.** `train_model` DAG를 실행하거나 "
        "`cinesense promote VERSION`으로 버전을 승격하면 여기에 나타납니다. "
        f"사유: {models.get('problem') or '—'}",
        icon=":material/hourglass_empty:",
    )
else:
    st.subheader(f"챔피언: 버전 {models['champion']}")
    cols = st.columns(5)
    accuracy = champion["test_accuracy"] if champion else None
    baseline = champion["baseline_accuracy"] if champion else None
    cols[0].metric("테스트 정확도", webui.percent(accuracy))
    cols[1].metric(
        "TF-IDF 기준선",
        webui.percent(baseline),
        delta=None
        if accuracy is None or baseline is None
        else f"{(accuracy - baseline) * 100:+.1f}%p",
        help="같은 테스트 리뷰에서 TF-IDF + 로지스틱 회귀의 정확도 (델타: 챔피언이 앞선 정도)",
    )
    quantization = (champion or {}).get("quantization")
    cols[2].metric("형식", (quantization or "—").upper())
    size = (champion or {}).get("size_mb")
    cols[3].metric("크기", "—" if size is None else f"{size:.1f} MB")
    since = models.get("champion_since")
    cols[4].metric(  # the day fits the column; the time is in the help
        "챔피언이 된 때",
        since[:10] if since else "—",
        help=since[:19].replace("T", " ") + " UTC" if since else None,
    )
    if not models["registry"]:
        st.caption("레지스트리 없이 번들 디렉터리로 서비스 중입니다 (승격 기록 없음).")
st.markdown(links)

if models["registry"]:
    st.subheader("버전 기록")
    if versions:
        table = pd.DataFrame(
            {
                "버전": [v["version"] for v in versions],
                "별칭": [", ".join(v["aliases"]) for v in versions],
                "정확도": [v["test_accuracy"] for v in versions],
                "기준선": [v["baseline_accuracy"] for v in versions],
                "형식": [(v["quantization"] or "").upper() for v in versions],
                "판정": [
                    DECISIONS.get(v["gate"]["decision"], v["gate"]["decision"]) for v in versions
                ],
                "사유": [v["gate"]["reason"] or "" for v in versions],
                "판정 시각": [v["gate"]["decided_at"] or "" for v in versions],
                "MLflow": [
                    f"{settings.mlflow_link}#/models/{models['model_name']}/versions/{v['version']}"
                    for v in versions
                ],
            }
        )
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                "정확도": st.column_config.NumberColumn(format="percent"),
                "기준선": st.column_config.NumberColumn(format="percent"),
                "MLflow": st.column_config.LinkColumn(display_text="열기"),
            },
        )
    else:
        st.caption("등록된 버전이 없습니다.")
    if models["history"]:
        st.subheader("챔피언 변경 기록")
        st.dataframe(
            pd.DataFrame(models["history"]).rename(
                columns={"kind": "종류", "version": "버전", "reason": "사유", "at": "시각"}
            ),
            hide_index=True,
        )


@st.fragment(run_every=5)
def train_status() -> None:
    run = st.session_state.get("train_run")
    if not run:
        return
    try:
        with webui.client() as api:
            state = api.job("train", run)
    except ApiError as error:
        webui.show_api_error(error, "학습 상태 확인")
        return
    if state["done"]:
        st.session_state.pop("train_run")
        webui.cached.clear()
    st.info(f"Airflow 학습 실행 `{run}`: **{state['state']}**")


with st.expander("재학습 (관리자)", icon=":material/autorenew:"):
    with st.form("train"):
        key = st.text_input("관리자 키 (X-API-Key)", type="password")
        left, right = st.columns(2)
        base = left.text_input(
            "기반 모델", placeholder="self-built / klue/bert-base (비우면 기본값)"
        )
        epochs = right.number_input(
            "에폭", min_value=0.0, max_value=100.0, value=0.0, help="0: 기본값"
        )
        minutes = left.number_input(
            "시간 예산(분)", min_value=0, max_value=1440, value=0, help="0: 제한 없음"
        )
        samples = right.number_input("최대 학습 리뷰 수", min_value=0, value=0, help="0: 전부")
        crawled = st.checkbox("수집한 리뷰 포함", value=True)
        if st.form_submit_button("재학습 시작"):
            params = {"include_crawled": crawled}
            if base.strip():
                params["base_model"] = base.strip()
            if epochs:
                params["epochs"] = epochs
            if minutes:
                params["max_minutes"] = minutes
            if samples:
                params["max_train_samples"] = int(samples)
            try:
                with webui.client() as api:
                    started = api.train(params, key)
            except ApiError as error:
                if error.status in (401, 403):
                    st.error(f"**허용되지 않은 작업입니다.** {error.message}")
                elif error.status in (0, 502, 503):
                    st.error(f"**Airflow에 요청할 수 없습니다.** {error.message}")
                else:
                    webui.show_api_error(error, "재학습 요청")
            else:
                st.session_state["train_run"] = started["run_id"]
                st.success(f"재학습을 요청했습니다: `{started['run_id']}`")
    train_status()
