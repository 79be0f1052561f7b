"""A local stand-in for Megabox and CGV, for tests and demos: ``python -m
cinesense.crawl.fakesite --port 8765``.

One HTTP server on loopback answers both sites' shapes (field names as in the shared
research note; every movie, review and nickname here is made up for cinesense):

* Megabox JSON: ``POST /on/oh/oha/Movie/selectMovieList.do`` and ``selectOneLnList.do``
  (newest first, paged), and the comment tab ``/movie-detail/comment?rpstMovieNo=…``
  whose list a script fills from the JSON call, as on the real site.
* CGV: a movie page ``/cnm/cgvChart/movieChart/{movNo}`` whose reviews load through
  ``/api/v1/content/searchRviewRviewPageList`` while the page is scrolled, the booking
  chart ``/api/v1/booking/searchAtktTopPostrList``, and ``/``.
* ``/robots.txt``.

Failure injection (:class:`Faults`, changeable while the server runs): queued 429/5xx
answers, slow answers, a block page (from the start or after N API calls), a changed
JSON schema, changed comment-tab markup, and a robots.txt that disallows or fails.
Every request is logged (:attr:`FakeSite.hits`) so tests and the benchmark can see
exactly what the crawler sent and when.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cinesense.crawl.records import KST

MEGABOX_MOVIE_LIST = "/on/oh/oha/Movie/selectMovieList.do"
MEGABOX_REVIEWS = "/on/oh/oha/Movie/selectOneLnList.do"
CGV_CHART = "/api/v1/booking/searchAtktTopPostrList"
CGV_REVIEWS = "/api/v1/content/searchRviewRviewPageList"
CGV_PAGE = "/cnm/cgvChart/movieChart/"
BLOCK_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>접속 제한</title></head><body>"
    "<h1>비정상적으로 CGV에 접속한 것이 확인되어 이용이 제한되었어요</h1>"
    "<p>RAY_ID: 0000fake0000</p></body></html>"
)
FIRST_REVIEW_AT = datetime(2026, 7, 1, 9, 0, tzinfo=KST)

# Review text parts written for this fake site.
OPENINGS = [
    "연출이",
    "배우들 연기가",
    "음악이",
    "이야기 전개가",
    "영상미가",
    "마지막 장면이",
    "중반부가",
    "주인공 캐릭터가",
    "액션 장면이",
    "대사 하나하나가",
]
GOOD = [
    "정말 좋았어요",
    "기대 이상이었어요",
    "오래 기억에 남아요",
    "훌륭했습니다",
    "감동적이었어요",
]
MIXED = ["무난했어요", "나쁘지 않았어요", "조금 평범했어요", "호불호가 갈릴 것 같아요"]
BAD = ["많이 아쉬웠어요", "지루했어요", "기대보다 별로였어요", "납득이 안 됐어요"]
TAILS = ["", " 다시 보고 싶네요", " 추천합니다", " ㅋㅋㅋ", " 시간이 아깝진 않았어요", "!!"]


@dataclass
class FakeMovie:
    source: str  # "megabox" or "cgv"
    movie_id: str
    title: str
    reviews: int
    showing: bool = True
    first_review_no: int = 9_000_000


def default_movies() -> list[FakeMovie]:
    return [
        FakeMovie("megabox", "26000100", "푸른 항구의 여름", 37, first_review_no=9_100_000),
        FakeMovie("megabox", "26000200", "마지막 기차 &amp; 별빛", 12, first_review_no=9_200_000),
        FakeMovie("megabox", "26000300", "조용한 도서관", 0, first_review_no=9_300_000),
        FakeMovie("megabox", "25009900", "지난 겨울의 노래", 8, False, first_review_no=9_400_000),
        FakeMovie("cgv", "30000100", "하늘을 나는 고양이", 23),
        FakeMovie("cgv", "30000200", "서울의 밤 산책", 8),
    ]


@dataclass
class Faults:
    """What goes wrong, per test. Statuses and blocks apply to API paths (/on/, /api/)."""

    statuses: list[int] = field(default_factory=list)  # next API answers, one each
    retry_after: str | None = None  # sent with queued 429/503 answers
    slow_s: float = 0.0  # delay before every API answer
    block: bool = False  # every page and API call answers with the block page
    block_after: int | None = None  # …or once this many API calls were answered
    block_status: int = 403
    schema_change: bool = False  # JSON keys renamed
    html_change: bool = False  # comment-tab markup renamed
    robots_disallow: bool = False
    robots_status: int = 200
    robots_extra: str = ""  # more robots.txt lines (Content-Signal, Crawl-delay…)


@dataclass(frozen=True)
class Hit:
    at: float  # time.monotonic()
    method: str
    path: str
    status: int
    user_agent: str = ""


class FakeSite:
    """The fake site on ``host:port`` (port 0 picks a free one); a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        movies: list[FakeMovie] | None = None,
    ) -> None:
        self.movies = {(m.source, m.movie_id): m for m in movies or default_movies()}
        self.faults = Faults()
        self.hits: list[Hit] = []
        self._api_calls = 0
        self._lock = threading.Lock()
        site = self

        class Handler(_Handler):
            fake = site

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeSite:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_reviews(self, source: str, movie_id: str, count: int) -> None:
        """New reviews arrive (they become the newest)."""
        self.movies[(source, movie_id)].reviews += count

    def api_hits(self, part: str = "") -> list[Hit]:
        return [h for h in self.hits if h.path.startswith(("/on/", "/api/")) and part in h.path]

    # -- called by the handler -------------------------------------------------------

    def record(self, method: str, path: str, status: int, user_agent: str) -> None:
        with self._lock:
            self.hits.append(Hit(time.monotonic(), method, path, status, user_agent))

    def next_fault(self) -> tuple[int | None, bool]:
        """(queued status or None, blocked?) for the next API call."""
        with self._lock:
            self._api_calls += 1
            faults = self.faults
            blocked = faults.block or (
                faults.block_after is not None and self._api_calls > faults.block_after
            )
            status = faults.statuses.pop(0) if faults.statuses else None
            return status, blocked


class _Handler(BaseHTTPRequestHandler):
    fake: FakeSite
    protocol_version = "HTTP/1.1"
    server_version = "cinesense-fakesite/1"
    disable_nagle_algorithm = True  # headers and body go out at once (no 40 ms ACK waits)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        fake = self.fake
        faults = fake.faults
        if parts.path == "/robots.txt":
            return self._robots(method)
        is_api = parts.path.startswith(("/on/", "/api/"))
        status_fault, blocked = fake.next_fault() if is_api else (None, faults.block)
        if is_api and faults.slow_s:
            time.sleep(faults.slow_s)
        if blocked:
            return self._send(method, faults.block_status, BLOCK_PAGE, "text/html; charset=utf-8")
        if status_fault is not None:
            headers = {"Retry-After": faults.retry_after} if faults.retry_after else {}
            return self._send(
                method,
                status_fault,
                json.dumps({"error": f"fake {status_fault}"}),
                "application/json",
                headers,
            )
        routes = {
            MEGABOX_MOVIE_LIST: lambda: self._json(method, megabox_movie_list(fake, _body(body))),
            MEGABOX_REVIEWS: lambda: self._json(method, megabox_reviews(fake, _body(body))),
            CGV_CHART: lambda: self._json(method, cgv_chart(fake)),
            CGV_REVIEWS: lambda: self._json(method, cgv_reviews(fake, query)),
            "/movie-detail/comment": lambda: self._html(
                method, megabox_comment_page(fake, query.get("rpstMovieNo", ""))
            ),
            "/": lambda: self._html(method, HOME_PAGE),
        }
        if parts.path in routes:
            return routes[parts.path]()
        if parts.path.startswith(CGV_PAGE):
            movie = fake.movies.get(("cgv", parts.path[len(CGV_PAGE) :].strip("/")))
            if movie:
                return self._html(method, cgv_movie_page(movie))
        self._send(method, 404, "<html><body>not found</body></html>", "text/html; charset=utf-8")

    def _robots(self, method: str) -> None:
        faults = self.fake.faults
        if faults.robots_status != 200:
            return self._send(method, faults.robots_status, "unavailable", "text/plain")
        rule = "Disallow: /" if faults.robots_disallow else "Allow: /"
        text = f"User-agent: *\n{rule}\n{faults.robots_extra}\n"
        self._send(method, 200, text, "text/plain; charset=utf-8")

    def _json(self, method: str, data: Any) -> None:
        self._send(
            method, 200, json.dumps(data, ensure_ascii=False), "application/json;charset=UTF-8"
        )

    def _html(self, method: str, page: str) -> None:
        self._send(method, 200, page, "text/html; charset=utf-8")

    def _send(
        self,
        method: str,
        status: int,
        text: str,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = text.encode()
        self.fake.record(method, self.path, status, self.headers.get("User-Agent", ""))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:  # the client gave up (a timeout test); nothing to answer
            self.close_connection = True


def _body(raw: bytes) -> dict[str, str]:
    """Megabox's own pages send JSON; crawlers have also sent form bodies."""
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text) if text.strip().startswith("{") else None
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        return {k: str(v) for k, v in data.items()}
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _int(value: str | None, default: int) -> int:
    return int(value) if value and value.strip().isdigit() else default


# -- content -------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeReview:
    index: int
    text: str
    score: int
    kind: str  # PREV / EXPE
    at: datetime
    likes: int
    masked: bool


def fake_review(movie: FakeMovie, index: int) -> FakeReview:
    """Review ``index`` (0 = oldest) of ``movie``: the same every time it is asked for."""
    rng = random.Random(f"{movie.source}:{movie.movie_id}:{index}")
    score = rng.choices(range(1, 11), weights=[3, 1, 2, 2, 4, 5, 8, 12, 10, 14])[0]
    verdicts = GOOD if score >= 8 else MIXED if score >= 5 else BAD
    text = f"{rng.choice(OPENINGS)} {rng.choice(verdicts)}{rng.choice(TAILS)}"
    return FakeReview(
        index=index,
        text=text,
        score=score,
        kind="EXPE" if index % 9 == 0 else "PREV",
        at=FIRST_REVIEW_AT + timedelta(minutes=37 * index),
        likes=rng.randint(0, 30),
        masked=index % 13 == 5,
    )


def _newest_first(movie: FakeMovie, start: int, count: int) -> list[FakeReview]:
    top = movie.reviews - 1 - start
    return [fake_review(movie, i) for i in range(top, max(top - count, -1), -1)]


def megabox_movie_list(fake: FakeSite, body: dict[str, str]) -> dict[str, Any]:
    search = body.get("ibxMovieNmSearch", "")
    movies = [
        m
        for (source, _), m in fake.movies.items()
        if source == "megabox" and (body.get("onairYn") != "Y" or m.showing) and search in m.title
    ]
    size = _int(body.get("recordCountPerPage"), 20)
    page = _int(body.get("currentPage"), 1)
    chosen = movies[(page - 1) * size : page * size]
    key = "movies" if fake.faults.schema_change else "movieList"
    return {
        "totCnt": len(movies),
        "imgSvrUrl": "https://img.example.invalid",
        key: [
            {
                "movieNo": m.movie_id,
                "rpstMovieNo": m.movie_id,
                "movieNm": m.title,
                "rfilmDe": "2026.07.15",
                "boxoRank": rank if m.showing else 999,
                "boxoBokdRt": round(30.0 / rank, 1),
                "bokdAbleAt": "Y" if m.showing else "N",
                "admisClassNm": "12세이상관람가",
                "playTime": "118",
            }
            for rank, m in enumerate(chosen, start=(page - 1) * size + 1)
        ],
    }


def megabox_reviews(fake: FakeSite, body: dict[str, str]) -> dict[str, Any]:
    movie = fake.movies.get(("megabox", body.get("movieNo", "")))
    if movie is None:
        return {"imgSvrUrl": "", "oneLineCnt": {"expeCnt": "0", "prevCnt": "0"}, "list": []}
    size = _int(body.get("recordCountPerPage"), 10)
    page = _int(body.get("currentPage"), 1)
    kind = body.get("onelnEvalDivCd", "")
    if kind:
        everything = _newest_first(movie, 0, movie.reviews)
        matching = [r for r in everything if r.kind == kind]
        chosen = matching[(page - 1) * size : page * size]
    else:
        chosen = _newest_first(movie, (page - 1) * size, size)
    expected = (movie.reviews + 8) // 9
    renamed = fake.faults.schema_change
    return {
        "imgSvrUrl": "https://img.example.invalid",
        "oneLineCnt": {"expeCnt": str(expected), "prevCnt": str(movie.reviews - expected)},
        "list": [
            {
                "evalNo" if renamed else "onelnEvalNo": movie.first_review_no + r.index,
                "movieNo": movie.movie_id,
                "movieNm": movie.title,
                "onelnEvalDivCd": r.kind,
                "onelnEvalDivNm": "관람평" if r.kind == "PREV" else "기대평",
                "evalCn" if renamed else "onelnEvalCn": r.text,
                "spointScore": r.score,
                "topScorePoint": "<span>연출</span>",
                "rcmmCnt": r.likes,
                "rcmmAt": "N",
                "loginId": f"fan{r.index:04d}**",
                "mbNo": "",
                "profileImgPath": "",
                "fstRegDt": r.at.strftime("%Y.%m.%d"),
                "lstUptDt": "",
                "fullLstUptDt": r.at.strftime("%Y.%m.%d %H:%M"),
                "viewType": "TYPE01",
                "maskAt": "Y" if r.masked else "N",
                "maskResnCd": "SPOL" if r.masked else "",
                "totCnt": movie.reviews,
                "currentPage": str(page),
                "recordCountPerPage": str(size),
            }
            for r in chosen
        ],
    }


def cgv_chart(fake: FakeSite) -> dict[str, Any]:
    movies = [m for (source, _), m in fake.movies.items() if source == "cgv" and m.showing]
    return {
        "statusCode": 0,
        "statusMessage": "조회 되었습니다.",
        "data": [
            {
                "coCd": "A420",
                "movNo": m.movie_id,
                "movNm": m.title,
                "movEnm": "Fake movie",
                "atktRate": f"{30.0 / rank:.2f}",
                "cratgClsCd": "02",
                "scnBssTm": "121",
            }
            for rank, m in enumerate(movies, start=1)
        ],
    }


def cgv_reviews(fake: FakeSite, query: dict[str, str]) -> dict[str, Any]:
    movie = fake.movies.get(("cgv", query.get("movNo", "")))
    if movie is None:
        return {"statusCode": 404, "statusMessage": "영화 정보가 없습니다.", "data": None}
    start, count = _int(query.get("startRow"), 0), _int(query.get("listCount"), 5)
    items = [
        {
            "rviewNo": f"R{movie.movie_id}{r.index:06d}",
            "rviewCont": r.text,
            "snsNcnm": f"관객{r.index % 100:02d}**",
            "egScore": "2" if r.score >= 6 else "1",
            "creDt": r.at.strftime("%Y-%m-%d %H:%M:%S"),
        }
        for r in _newest_first(movie, start, count)
    ]
    key = "rviewList" if fake.faults.schema_change else "list"
    return {"statusCode": 0, "statusMessage": "조회 되었습니다.", "data": {key: items}}


HOME_PAGE = """<!doctype html><html lang="ko"><head><meta charset="utf-8">
<title>cinesense fake site</title></head><body>
<h1>cinesense fake site</h1><p>A local stand-in for review crawling tests and demos.</p>
</body></html>"""


def cgv_movie_page(movie: FakeMovie) -> str:
    return (
        (
            """<!doctype html><html lang="ko"><head><meta charset="utf-8">
<title>TITLE | fake CGV</title>
<style>body{margin:0} .hero{height:1400px;background:#eee} .card{min-height:160px}</style>
</head><body><div id="__next">
<h1 class="movieDetail_title__Fk01">TITLE</h1><div class="hero">영화 정보 (가짜 페이지)</div>
<section><h2>실관람평</h2><ul id="reviews"></ul><div id="sentinel" style="height:4px"></div>
</section></div>
<script>
const movNo = "MOVIE_ID"; let startRow = 0, busy = false, done = false;
async function load() {
  if (busy || done) return;
  busy = true;
  try {
    const r = await fetch(`/api/v1/content/searchRviewRviewPageList?coCd=A420&movNo=${movNo}`
      + `&startRow=${startRow}&listCount=5&sortBy=01`, {headers: {Accept: "application/json"}});
    if (!r.ok) { done = true; return; }
    const j = await r.json();
    const items = (j.data && j.data.list) || [];
    if (!items.length) { done = true; return; }
    for (const it of items) {
      const li = document.createElement("li"); li.className = "card";
      const p = document.createElement("p"); p.className = "reveiwCard_txt__RrTgu";
      p.textContent = it.rviewCont; li.appendChild(p);
      document.getElementById("reviews").appendChild(li);
    }
    startRow += items.length;
  } catch (e) { done = true; } finally { busy = false; }
}
new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) load(); })
  .observe(document.getElementById("sentinel"));
</script></body></html>"""
        )
        .replace("TITLE", movie.title)
        .replace("MOVIE_ID", movie.movie_id)
    )


def megabox_comment_page(fake: FakeSite, movie_id: str) -> str:
    item_class, text_class = (
        ("oneContent", "story-text") if fake.faults.html_change else ("oneContentTag", "story-txt")
    )
    return (
        (
            """<!doctype html><html lang="ko"><head><meta charset="utf-8">
<title>한줄평 | fake Megabox</title></head><body>
<div id="contentData"><div class="movie-idv-story"><ul></ul></div></div>
<script>
const el = (tag, cls, text) => { const e = document.createElement(tag);
  if (cls) e.className = cls; if (text !== undefined) e.textContent = text; return e; };
fetch("/on/oh/oha/Movie/selectOneLnList.do", {method: "POST",
  headers: {"Content-Type": "application/json; charset=UTF-8",
            "X-Requested-With": "XMLHttpRequest"},
  body: JSON.stringify({movieNo: "MOVIE_ID", currentPage: "1", recordCountPerPage: "10",
                        onelnEvalDivCd: "", orderCd: ""})})
 .then((r) => r.json()).then((j) => {
  const ul = document.querySelector("#contentData .movie-idv-story ul");
  for (const it of j.list || []) {
    const li = el("li", "type01 ITEM_CLASS");
    const prof = el("div", "user-prof"); prof.appendChild(el("p", "user-id", it.loginId));
    li.appendChild(prof);
    const wrap = el("div", "story-wrap " + (it.onelnEvalDivCd === "PREV" ? "review" : "preview"));
    wrap.appendChild(el("div", "tit", it.onelnEvalDivNm));
    const cont = el("div", "story-cont");
    const point = el("div", "story-point");
    point.appendChild(el("span", "", String(it.spointScore)));
    cont.appendChild(point);
    if (it.maskAt === "Y") cont.appendChild(el("div", "warning", "가려진 관람평입니다"));
    else cont.appendChild(el("div", "TEXT_CLASS", it.onelnEvalCn));
    const like = el("div", "story-like"); const btn = el("button", "oneLikeBtn");
    btn.dataset.no = String(it.onelnEvalNo); btn.dataset.cd = it.onelnEvalDivCd;
    btn.appendChild(el("span", "", String(it.rcmmCnt))); like.appendChild(btn);
    cont.appendChild(like); wrap.appendChild(cont); li.appendChild(wrap); ul.appendChild(li);
  }
 });
</script></body></html>"""
        )
        .replace("MOVIE_ID", movie_id)
        .replace("ITEM_CLASS", item_class)
        .replace("TEXT_CLASS", text_class)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake Megabox/CGV site (demos).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--reviews", type=int, default=None, help="Reviews per movie (default: 8 to 37)."
    )
    args = parser.parse_args(argv)
    movies = default_movies()
    if args.reviews is not None:
        for movie in movies:
            movie.reviews = args.reviews
    try:
        site = FakeSite(args.host, args.port, movies).start()
    except OSError as error:
        sys.exit(f"error: cannot listen on {args.host}:{args.port} ({error}); try another --port.")
    sys.stdout.write(
        f"fake site at {site.url} (Ctrl-C stops it). Point the crawlers at it:\n"
        f"  export CINESENSE_CRAWL__MEGABOX__BASE_URL={site.url}\n"
        f"  export CINESENSE_CRAWL__CGV__BASE_URL={site.url}\n"
    )
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        site.stop()


if __name__ == "__main__":
    main()
