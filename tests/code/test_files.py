from pathlib import Path

import pytest

from cinesense.files import atomic_directory


def test_new_directory_appears_complete(tmp_path: Path) -> None:
    with atomic_directory(tmp_path / "out") as staging:
        (staging / "a.txt").write_text("1")
        assert not (tmp_path / "out").exists()
    assert (tmp_path / "out" / "a.txt").read_text() == "1"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failure_keeps_the_old_content(tmp_path: Path) -> None:
    with atomic_directory(tmp_path / "out") as staging:
        (staging / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "out") as staging:
        (staging / "a.txt").write_text("half")
        raise RuntimeError("crash while writing")
    assert (tmp_path / "out" / "a.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_replacement(tmp_path: Path) -> None:
    for content in ("first", "second"):
        with atomic_directory(tmp_path / "out") as staging:
            (staging / content).write_text(content)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["second"]
