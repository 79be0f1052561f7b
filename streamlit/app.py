"""cinesense 분석 앱: ``streamlit run streamlit/app.py``. Pages live in ``views/``, not
``pages/``: Streamlit serves a ``pages/`` folder on its own too, and a page opened by its URL
could then run without this navigation (raw file names in the sidebar, no wide layout).
They talk to the FastAPI service only, through ``cinesense.client`` (``CINESENSE_UI__*``)."""

import streamlit as st

st.set_page_config(
    page_title="cinesense 영화 리뷰 분석", page_icon=":material/movie:", layout="wide"
)

pages = [
    st.Page(
        "views/review.py",
        title="리뷰 분석",
        icon=":material/rate_review:",
        url_path="review",
        default=True,
    ),
    st.Page("views/movie.py", title="영화 분석", icon=":material/movie:", url_path="movie"),
    st.Page("views/model.py", title="모델", icon=":material/model_training:", url_path="model"),
]
st.navigation(pages).run()
