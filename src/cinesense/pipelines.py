"""The platform's jobs as plain functions: what the CLI commands and the Airflow tasks call.

Each function does one step and returns what the next step needs — a directory, an MLflow
run id, a model version, a few counts — so an orchestrator can hand the next task a path
or an id, never a DataFrame or model bytes.

Training: :func:`build_training_dataset` → :func:`train_sentiment` →
:func:`evaluate_sentiment` → :func:`track_training_run` → :func:`quantize_sentiment` →
:func:`register_version` → :func:`gate_version` → :func:`training_message`.
Crawling: :func:`list_crawl_targets` → :func:`crawl_target` (one per movie) →
:func:`summarize_crawl`. Retraining on new data: :func:`should_train`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cinesense.config import Settings
from cinesense.errors import CinesenseError, CrawlerError
from cinesense.storage import ObjectStore, open_store

if TYPE_CHECKING:
    import pandas as pd

    from cinesense.data.dataset import Dataset
    from cinesense.registry import GateDecision

log = logging.getLogger(__name__)

CORPUS_INFO = "corpus.json"  # beside a dataset built here: its files and crawled reviews
TRAINING_WATERMARK = "pipelines/training_watermark.json"
CRAWL_STOPS = "pipelines/crawl_stops"


# --- settings and places -----------------------------------------------------------------


def with_overrides(settings: Settings, group: str, **overrides: Any) -> Settings:
    """``settings`` with the options of one group (``train``, ``pretrain``…) that are given
    (not ``None``) replaced, validated like the environment's values."""
    current = getattr(settings, group)
    unknown = set(overrides) - set(type(current).model_fields)
    if unknown:
        raise ValueError(f"not a {group} setting: {', '.join(sorted(unknown))}")
    chosen = {key: value for key, value in overrides.items() if value is not None}
    if not chosen:
        return settings
    replaced = type(current).model_validate({**current.model_dump(), **chosen})
    return settings.model_copy(update={group: replaced})


def with_storage_credentials(
    settings: Settings,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    endpoint_url: str | None = None,
    bucket: str | None = None,
) -> Settings:
    """``settings`` with object-storage credentials from elsewhere (an Airflow connection);
    selects the S3 backend."""
    from pydantic import SecretStr

    update: dict[str, Any] = {"backend": "s3"}
    if access_key_id:
        update["access_key_id"] = SecretStr(access_key_id)
    if secret_access_key:
        update["secret_access_key"] = SecretStr(secret_access_key)
    if endpoint_url:
        update["endpoint_url"] = endpoint_url
    if bucket:
        update["bucket"] = bucket
    return settings.model_copy(update={"storage": settings.storage.model_copy(update=update)})


def run_directory(settings: Settings, pipeline: str, run_id: str) -> Path:
    """Where one orchestrated run keeps its dataset, model and bundle (under the home)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id).strip("._") or "run"
    return settings.home / "runs" / pipeline / safe


def default_corpus_files(settings: Settings) -> list[Path]:
    """``data.corpus_files``, else the downloaded Naver corpus, else the bundled sample."""
    from cinesense.data.corpus import sample_corpus_path

    if settings.data.corpus_files:
        return list(settings.data.corpus_files)
    downloaded = settings.corpus_cache_dir / "naver_movie_reviews.tsv.gz"
    if downloaded.exists():
        return [downloaded]
    log.warning(
        "no corpus configured or downloaded: using the small sample bundled with the package "
        "(run `cinesense download` or set CINESENSE_DATA__CORPUS_FILES for real training)"
    )
    return [sample_corpus_path()]


# --- datasets ----------------------------------------------------------------------------


def training_corpus(
    settings: Settings,
    corpus_files: list[Path] | None = None,
    include_crawled: bool = False,
    store: ObjectStore | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Review files plus, when asked, crawled reviews that may train models (CGV's do not,
    unless an operator allowed it); with a description of what went in."""
    import pandas as pd

    from cinesense.crawl.jobs import as_corpus, read_reviews
    from cinesense.data.corpus import read_corpus

    files = list(corpus_files) if corpus_files else default_corpus_files(settings)
    frames = [read_corpus(path) for path in files]
    info: dict[str, Any] = {
        "files": [str(path) for path in files],
        "crawled_reviews": 0,
        "crawled_until": None,
    }
    if include_crawled:
        crawled = read_reviews(settings, training_only=True, store=store)
        if not crawled.empty:
            frames.append(as_corpus(crawled))
            info["crawled_reviews"] = len(crawled)
            info["crawled_until"] = crawled["crawled_at"].max().isoformat()
    return pd.concat(frames, ignore_index=True), info


def build_training_dataset(
    settings: Settings,
    directory: Path,
    corpus_files: list[Path] | None = None,
    include_crawled: bool = False,
    store: ObjectStore | None = None,
) -> Dataset:
    """Build, check and save a dataset (with ``corpus.json`` saying what went in)."""
    from cinesense.data.dataset import build_dataset, save_dataset

    corpus, info = training_corpus(settings, corpus_files, include_crawled, store)
    dataset = build_dataset(corpus, settings.data)
    save_dataset(dataset, directory)
    _write_json(Path(directory) / CORPUS_INFO, info)
    log.info(
        "dataset %s: %s reviews (%d crawled), fingerprint %s",
        directory,
        dataset.manifest.sizes,
        info["crawled_reviews"],
        dataset.manifest.fingerprint[:12],
    )
    return dataset


def _write_json(path: Path, data: object) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        json.dump(data, tmp, ensure_ascii=False, indent=2)
    os.replace(tmp.name, path)


def corpus_info(dataset_dir: Path) -> dict[str, Any]:
    path = Path(dataset_dir) / CORPUS_INFO
    return json.loads(path.read_text()) if path.exists() else {}


# --- models ------------------------------------------------------------------------------


def pretrain_base(
    settings: Settings,
    dataset_dir: Path,
    target: Path,
    text_files: list[Path] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The self-built base model from the dataset's train and validation text (never its
    test movies) plus any extra review files; saved at ``target``."""
    from cinesense.data.corpus import read_corpus
    from cinesense.data.dataset import load_dataset
    from cinesense.model.pretrain import pretrain
    from cinesense.text import normalize_review

    data = load_dataset(dataset_dir)
    texts = [*data["train"]["text"], *data["validation"]["text"]]
    for path in text_files or []:
        texts.extend(normalize_review(t) for t in read_corpus(path)["text"])
    result = pretrain(
        texts,
        target,
        settings.pretrain,
        {"dataset": data.manifest.fingerprint, "extra_files": [str(p) for p in text_files or []]},
        progress=progress,
    )
    return {
        "directory": str(target),
        "steps": result.steps,
        "mlm_loss": round(result.final_loss, 4),
        "minutes": round(result.minutes, 2),
    }


def train_sentiment(
    settings: Settings, dataset_dir: Path, target: Path, progress: bool = True
) -> dict[str, Any]:
    """Fine-tune the sentiment + rating model (``settings.train``) on a saved dataset."""
    from cinesense.data.dataset import load_dataset
    from cinesense.model.finetune import finetune

    result = finetune(load_dataset(dataset_dir), target, settings, progress=progress)
    return {
        "directory": str(target),
        "steps": result.steps,
        "best_step": result.best_step,
        "validation_accuracy": round(result.best_validation_accuracy, 4),
        "minutes": round(result.minutes, 2),
    }


def evaluate_sentiment(
    settings: Settings,
    model_dir: Path,
    dataset_dir: Path,
    report_path: Path | None = None,
    with_baseline: bool = True,
    test_file: Path | None = None,
) -> dict[str, object]:
    """The evaluation report (model beside the TF-IDF baseline), also written to
    ``report_path`` when given."""
    from cinesense.data.corpus import read_corpus
    from cinesense.data.dataset import load_dataset, prepare_reviews
    from cinesense.model.report import evaluation_report

    loaded = load_dataset(dataset_dir)
    test = prepare_reviews(read_corpus(test_file), settings.data)[0] if test_file else None
    report = evaluation_report(model_dir, loaded, settings, with_baseline=with_baseline, test=test)
    if report_path is not None:
        Path(report_path).write_text(json.dumps(report, ensure_ascii=False, indent=2))
    return report


def quantize_sentiment(
    settings: Settings,
    model_dir: Path,
    dataset_dir: Path,
    target: Path,
    max_accuracy_loss: float = 0.005,
) -> dict:
    """Export, optimize, INT8-quantize and check the model; the serving bundle's manifest."""
    from cinesense.data.dataset import load_dataset
    from cinesense.model.export import build_serving_bundle

    data = load_dataset(dataset_dir)
    return build_serving_bundle(
        model_dir,
        target,
        data["test"],
        max_accuracy_loss=max_accuracy_loss,
        seed=settings.data.seed,
    )


# --- registry ----------------------------------------------------------------------------


def track_training_run(
    settings: Settings, model_dir: Path, report_path: Path, dataset_dir: Path
) -> str:
    """Log the training run in MLflow (before quantization); its run id."""
    from cinesense.data.dataset import load_dataset
    from cinesense.tracking import record_training_run

    directory = Path(dataset_dir)
    return record_training_run(
        settings, model_dir, report_path, load_dataset(directory), directory.resolve().as_uri()
    )


def register_version(
    settings: Settings,
    run_id: str,
    model_dir: Path,
    bundle_dir: Path,
    report_path: Path,
    dataset_dir: Path,
) -> dict:
    """Register the serving bundle as a new version of run ``run_id`` (alias challenger)
    and move the training watermark to the crawled reviews this version has seen."""
    from cinesense.data.dataset import load_dataset
    from cinesense.tracking import register_trained_bundle

    result = register_trained_bundle(
        settings, run_id, model_dir, bundle_dir, report_path, load_dataset(dataset_dir)
    )
    crawled_until = corpus_info(dataset_dir).get("crawled_until")
    if crawled_until:
        open_store(settings).put_bytes(
            TRAINING_WATERMARK,
            json.dumps(
                {
                    "crawled_until": crawled_until,
                    "version": result["version"],
                    "at": datetime.now(UTC).isoformat(),
                }
            ).encode(),
        )
    return result


def gate_version(
    settings: Settings, version: str, dataset_dir: Path, margin: float | None = None
) -> GateDecision:
    """Gate ``version`` against the champion on the dataset's test movies; promote if it
    wins. The decision is recorded on the version either way."""
    from cinesense.data.dataset import load_dataset
    from cinesense.registry import baseline_accuracy_of, gate_set, promote

    evaluation = gate_set(load_dataset(dataset_dir)["test"], settings.data.seed)
    return promote(settings, version, evaluation, baseline_accuracy_of(settings, version), margin)


def training_message(decision: dict[str, Any], registered: dict[str, Any], run: str) -> str:
    """One short paragraph for people: did the new version become champion, and why."""
    version = decision["version"]
    if decision["promoted"]:
        headline = f"cinesense: version {version} is the new champion"
    else:
        champion = decision.get("champion_version")
        holder = f"champion stays v{champion}" if champion else "there is no champion yet"
        headline = f"cinesense: version {version} was not promoted ({holder})"
    details = [
        f"why: {decision['reason']}",
        f"test accuracy {registered.get('test_accuracy', '?')}, "
        f"TF-IDF baseline {registered.get('baseline_accuracy', '?')}, "
        f"served as {registered.get('served_format', '?')}",
        f"base model: {registered.get('base_model', '?')}; MLflow run {registered.get('run_id')}",
        f"Airflow run: {run}",
    ]
    return headline + "\n" + "\n".join(f"• {line}" for line in details)


# --- retraining on new data --------------------------------------------------------------


def new_labelled_reviews(settings: Settings, store: ObjectStore | None = None) -> dict[str, Any]:
    """Crawled reviews that may train models, carry a label (a rating outside the neutral
    band, or a mapped verdict) and arrived after the data of the last registered version."""
    from cinesense.crawl.jobs import read_reviews

    objects = store or open_store(settings)
    watermark = None
    if objects.exists(TRAINING_WATERMARK):
        watermark = json.loads(objects.get_bytes(TRAINING_WATERMARK))["crawled_until"]
    frame = read_reviews(settings, training_only=True, store=objects)
    data = settings.data
    rating = frame["rating"]
    labelled = ((rating <= data.negative_max_rating) | (rating >= data.positive_min_rating)).fillna(
        False
    ) | frame["label"].notna()
    if watermark is not None:
        import pandas as pd

        labelled &= frame["crawled_at"] > pd.Timestamp(watermark)
    return {"new_labelled": int(labelled.sum()), "since": watermark}


def should_train(
    settings: Settings,
    trigger: str,
    threshold: int,
    store: ObjectStore | None = None,
) -> tuple[bool, str]:
    """Whether a training run should go on. Runs started by new reviews (``trigger``
    ``asset_triggered``) need ``threshold`` new labelled reviews; scheduled and manual
    runs always train."""
    if trigger != "asset_triggered":
        return True, f"{trigger} run: training"
    found = new_labelled_reviews(settings, store)
    count, since = found["new_labelled"], found["since"] or "the start"
    if count >= threshold:
        return True, f"{count} new labelled reviews since {since} (threshold {threshold})"
    return False, f"only {count} new labelled reviews since {since}; waiting for {threshold}"


# --- crawling ----------------------------------------------------------------------------


def list_crawl_targets(
    settings: Settings, sources: list[str], max_movies: int | None = None
) -> dict[str, Any]:
    """Movies now showing per source (``max_movies`` each) as crawl targets; a source
    whose list cannot be read is reported in ``failures`` while the others go on."""
    from cinesense.crawl.jobs import now_showing

    movies: list[dict[str, str]] = []
    failures: dict[str, str] = {}
    for source in sources:
        try:
            listed = now_showing(settings, source)[:max_movies]
        except CrawlerError as error:
            log.error("%s", error)
            failures[source] = str(error)
            continue
        log.info("%s: %d movies now showing to crawl", source, len(listed))
        movies.extend({"source": source, "movie_id": m.movie_id, "title": m.title} for m in listed)
    return {"movies": movies, "failures": failures}


def crawl_target(
    settings: Settings,
    source: str,
    movie_id: str,
    title: str = "",
    max_reviews: int | None = None,
    stop_scope: str | None = None,
) -> dict[str, Any]:
    """Crawl one movie into the review store; its counts.

    With ``stop_scope`` (a crawl run's id) a source that blocked us, opened its circuit
    breaker or rate-limited us is not asked again in that run: the first such error
    leaves a marker, and later movies of the source stop before sending a request.
    """
    from cinesense.crawl.jobs import STOPS_SOURCE, crawl_movie

    objects = open_store(settings)
    marker = f"{CRAWL_STOPS}/{_safe(stop_scope)}/{source}.json" if stop_scope else None
    if marker and objects.exists(marker):
        reason = json.loads(objects.get_bytes(marker))["reason"]
        problem = f"not tried: the source stopped this run earlier ({reason})"
        raise CrawlerError(source, "-", problem, kind="stopped")
    try:
        result = crawl_movie(
            settings, source, movie_id, max_reviews=max_reviews, title=title, store=objects
        )
    except CrawlerError as error:
        if marker and error.kind in STOPS_SOURCE:
            objects.put_bytes(marker, json.dumps({"reason": str(error)}).encode())
        raise
    summary = asdict(result)
    summary.pop("dropped", None)
    return summary


def _safe(value: str | None) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", value or "").strip("._") or "run"


def summarize_crawl(
    targets: list[dict[str, Any]],
    results: list[dict[str, Any]],
    listing_failures: dict[str, str],
) -> dict[str, Any]:
    """Counts per source — movies, new and duplicate reviews, failed movies — from the
    targets and the results of the movies that finished. Raises when every attempt
    failed; an empty crawl (nothing to do) is not a failure."""
    done = {(r["source"], r["movie_id"]) for r in results}
    sources = sorted(
        {t["source"] for t in targets} | {r["source"] for r in results} | set(listing_failures)
    )
    per_source: dict[str, dict[str, Any]] = {}
    for source in sources:
        mine = [r for r in results if r["source"] == source]
        failed = sorted(
            t["movie_id"]
            for t in targets
            if t["source"] == source and (source, t["movie_id"]) not in done
        )
        per_source[source] = {
            "movies": len(mine),
            "new": sum(int(r["new"]) for r in mine),
            "duplicate": sum(int(r["duplicate"]) for r in mine),
            "failed": len(failed),
            "failed_movies": failed,
            "listing_failed": listing_failures.get(source),
        }
    attempts = len(targets) + len(listing_failures)
    failures = sum(s["failed"] for s in per_source.values()) + len(listing_failures)
    summary = {
        "sources": per_source,
        "new": sum(s["new"] for s in per_source.values()),
        "duplicate": sum(s["duplicate"] for s in per_source.values()),
        "failed": failures,
        "movies": len(results),
    }
    if attempts and failures == attempts:
        raise CinesenseError(
            f"every crawl failed ({failures} of {attempts}): "
            + "; ".join(
                f"{source}: {info['listing_failed'] or str(info['failed']) + ' movie(s)'}"
                for source, info in per_source.items()
            )
            + ". See the failed tasks' logs."
        )
    if not attempts:
        log.warning("empty crawl: no movie is showing at the chosen sources")
    return summary
