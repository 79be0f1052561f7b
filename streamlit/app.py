"""cinesense 분석 앱: ``streamlit run streamlit/app.py``. Pages live in ``pages/``; they talk to
the FastAPI service only, through ``cinesense.client`` (settings: ``CINESENSE_UI__*``)."""

import streamlit as st

st.set_page_config(
    page_title="cinesense 영화 리뷰 분석", page_icon=":material/movie:", layout="wide"
)

pages = [
    st.Page(
        "pages/review.py",
        title="리뷰 분석",
        icon=":material/rate_review:",
        url_path="review",
        default=True,
    ),
    st.Page("pages/movie.py", title="영화 분석", icon=":material/movie:", url_path="movie"),
    st.Page("pages/model.py", title="모델", icon=":material/model_training:", url_path="model"),
]
st.navigation(pages).run()
