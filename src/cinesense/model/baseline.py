"""The TF-IDF baseline every model is reported beside.

Character n-grams (1–4, within word boundaries) suit Korean, where a word glues a stem to
particles and endings; logistic regression gives the binary sentiment (balanced class
weights, like the model's loss) and ridge regression the 1–10 rating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge

from cinesense.data.dataset import NEUTRAL
from cinesense.model.evaluate import ReviewScorer
from cinesense.text import normalize_review


@dataclass
class TfidfBaseline:
    vectorizer: TfidfVectorizer
    classifier: LogisticRegression
    regressor: Ridge

    @classmethod
    def fit(cls, train: pd.DataFrame, max_features: int = 300_000, seed: int = 13) -> TfidfBaseline:
        vectorizer = TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(1, 4),
            min_df=2,
            max_features=max_features,
            sublinear_tf=True,
        )
        features = vectorizer.fit_transform(train["text"])
        labelled = (train["label"] != NEUTRAL).to_numpy()
        classifier = LogisticRegression(
            C=2.0, max_iter=1000, class_weight="balanced", random_state=seed
        )
        classifier.fit(features[labelled], train["label"].to_numpy()[labelled])
        rated = train["rating"].notna().to_numpy()
        regressor = Ridge(alpha=1.0, random_state=seed)
        regressor.fit(features[rated], train["rating"].to_numpy(float)[rated])
        return cls(vectorizer, classifier, regressor)

    def _features(self, texts: list[str]):
        return self.vectorizer.transform([normalize_review(t) for t in texts])

    def probability_positive(self, texts: list[str]) -> np.ndarray:
        return self.classifier.predict_proba(self._features(texts))[:, 1]

    def rating(self, texts: list[str]) -> np.ndarray:
        return np.clip(self.regressor.predict(self._features(texts)), 1.0, 10.0)

    def scorer(self) -> ReviewScorer:
        return ReviewScorer("tfidf-logreg", self.probability_positive, self.rating)
