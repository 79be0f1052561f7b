"""DAG integrity: the DAG files parse without errors, without network and without heavy
imports, and declare the schedules, tasks, dependencies and Params the platform relies on.
Also: bad Params are refused before a run starts."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.dag_support import airflow_environment, drive, run_dag

EXPECTED_DAGS = {"crawl_reviews", "train_model", "score_reviews", "build_base_model"}


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    env = airflow_environment(tmp_path_factory.mktemp("airflow-parse"))
    return drive(env, "inspect")[0]


def edges(dag: dict[str, Any]) -> set[tuple[str, str]]:
    return {(up, task) for task, info in dag["tasks"].items() for up in info["upstream"]}


def test_every_dag_file_parses_quickly_without_network_or_heavy_imports(
    parsed: dict[str, Any],
) -> None:
    assert parsed["import_errors"] == {}
    assert set(parsed["dags"]) == EXPECTED_DAGS
    assert parsed["network_attempts"] == []
    # torch, pandas, MLflow, cinesense itself… load inside tasks, never at parse time
    assert parsed["heavy_modules"] == []
    assert parsed["parse_s"] < 5


def test_crawl_reviews_maps_one_task_per_movie_and_announces_the_review_asset(
    parsed: dict[str, Any],
) -> None:
    dag = parsed["dags"]["crawl_reviews"]
    assert dag["timetable"] == "CronTriggerTimetable" and dag["cron"] == "0 4 * * *"
    assert "Seoul" in dag["timezone"] and dag["catchup"] is False
    assert edges(dag) == {
        ("list_movies", "crawl_movie"),
        ("list_movies", "summarize"),
        ("crawl_movie", "summarize"),
        ("summarize", "publish"),
    }
    crawl = dag["tasks"]["crawl_movie"]
    assert crawl["mapped"] and crawl["retries"] == 3 and crawl["retry_exponential_backoff"] > 1
    assert crawl["max_active_tis_per_dag"] == 1  # the per-host rate limit holds across tasks
    assert dag["tasks"]["summarize"]["trigger_rule"].endswith("ALL_DONE")
    assert dag["tasks"]["publish"]["outlets"] == ["cinesense_reviews"]
    params = dag["params"]
    assert set(params) == {"sources", "max_movies", "movies", "max_reviews"}
    assert all(p["description"] for p in params.values())
    assert params["sources"]["default"] == ["megabox", "cgv"]
    assert params["sources"]["schema"]["items"]["enum"] == ["megabox", "cgv"]


def test_train_model_runs_weekly_on_new_reviews_and_by_hand(parsed: dict[str, Any]) -> None:
    dag = parsed["dags"]["train_model"]
    assert dag["timetable"] == "AssetOrTimeSchedule"
    assert dag["cron"] == "0 3 * * 1" and dag["assets"] == ["cinesense_reviews"]
    chain = [
        "check_new_reviews",
        "build_dataset",
        "train",
        "evaluate",
        "register_run",
        "quantize",
        "register",
        "promote",
        "announce",
    ]
    assert set(dag["tasks"]) == set(chain)
    for before, after in itertools.pairwise(chain):
        assert (before, after) in edges(dag), (before, after)
    assert dag["tasks"]["check_new_reviews"]["operator"] == "_ShortCircuitDecoratedOperator"
    assert all(task["has_failure_callback"] for task in dag["tasks"].values())
    params = dag["params"]
    assert set(params) == {
        "base_model",
        "epochs",
        "learning_rate",
        "max_train_samples",
        "max_minutes",
        "include_crawled",
        "promotion_margin",
        "min_new_reviews",
    }
    assert all(p["description"] for p in params.values())
    assert params["include_crawled"]["default"] is True
    assert params["epochs"]["schema"]["exclusiveMinimum"] == 0


def test_score_reviews_follows_the_review_asset_and_build_base_model_is_manual(
    parsed: dict[str, Any],
) -> None:
    score = parsed["dags"]["score_reviews"]
    assert score["timetable"] == "AssetTriggeredTimetable"
    assert score["assets"] == ["cinesense_reviews"]
    assert edges(score) == {("score", "aggregate")}
    assert score["tasks"]["aggregate"]["outlets"] == ["cinesense_scores"]
    base = parsed["dags"]["build_base_model"]
    assert base["timetable"] == "NullTimetable"
    assert edges(base) == {("build_dataset", "pretrain")}
    assert base["params"]["preset"]["schema"]["enum"] == ["tiny", "small"]


def test_invalid_params_are_refused_before_anything_runs(tmp_path: Path) -> None:
    env = airflow_environment(tmp_path / "airflow", CINESENSE_HOME=str(tmp_path / "home"))
    result, _ = run_dag(env, "train_model", {"epochs": -1, "promotion_margin": 0.9})
    assert result["error"] == "params"
    assert "epochs" in result["message"] or "-1" in result["message"]
    assert not (tmp_path / "home" / "runs").exists()


def test_training_params_are_the_settings_fields(parsed: dict[str, Any]) -> None:
    """Names, types, bounds and help of the DAG Params come from the settings fields."""
    from cinesense.options import OPTIONS, param_specs

    for dag_id, group in (("train_model", "train"), ("build_base_model", "pretrain")):
        params = parsed["dags"][dag_id]["params"]
        for name, spec in param_specs(group).items():
            expected = dict(spec)
            assert params[name]["default"] == expected.pop("default")
            assert params[name]["description"] == expected.pop("description")
            assert params[name]["schema"] == expected, (dag_id, name)
        assert set(OPTIONS[group]) <= set(params)
