"""Make the small Naver sample bundled in the package (reproducible, committed output).

    python scripts/make_sample.py ../shared/data/naver_movie_reviews.tsv.gz

Picks a fixed set of movies — those whose id hashes first under a fixed salt among movies
with 60–400 reviews — and keeps up to 120 reviews of each (the earliest ids), until
about 6,000 reviews. Every review keeps its real rating, so all 1–10 ratings appear.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pandas as pd

TARGET_REVIEWS = 6000
PER_MOVIE = 120
SALT = "cinesense-sample-v1"
OUT = Path(__file__).resolve().parents[1] / "src/cinesense/data/sample/naver_sample.tsv.gz"


def main(source: str) -> None:
    corpus = pd.read_csv(source, sep="\t", quoting=3, keep_default_na=False, dtype=str)
    sizes = corpus["movie_id"].value_counts()
    eligible = sizes[(sizes >= 60) & (sizes <= 400)].index
    order = sorted(eligible, key=lambda m: hashlib.sha256(f"{SALT}:{m}".encode()).hexdigest())
    picked, total = [], 0
    for movie in order:
        reviews = corpus[corpus["movie_id"] == movie]
        reviews = reviews.sort_values("review_id", key=lambda s: s.astype(int)).head(PER_MOVIE)
        picked.append(reviews)
        total += len(reviews)
        if total >= TARGET_REVIEWS:
            break
    sample = pd.concat(picked).sort_values("review_id", key=lambda s: s.astype(int))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    sample.to_csv(OUT, sep="\t", index=False, quoting=3, compression={"method": "gzip", "mtime": 0})
    counts = sample["rating"].astype(int).value_counts().sort_index().to_dict()
    sys.stderr.write(f"wrote {len(sample)} reviews of {len(picked)} movies to {OUT}\n{counts}\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/naver_movie_reviews.tsv.gz")
