"""The serving bundle a fresh install starts with: a slim copy of a verified bundle.

Only what the service loads travels (the served ONNX file, tokenizer, label map, rating
calibration); the FP32 fallback stays behind, so the copy fits in git. Its manifest keeps
the original's checks and adds where the model came from: the data fingerprint, the
figures the benchmark measured and the command that rebuilds it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cinesense.errors import ModelError
from cinesense.files import atomic_directory, sha256_file
from cinesense.model.onnx_predict import BUNDLE_MANIFEST, verify_bundle
from cinesense.model.rating import CALIBRATION_FILE, RatingCalibration

MAX_SHIPPED_MB = 15.0


def write_shipped_bundle(bundle_dir: Path, target: Path, provenance: dict[str, object]) -> dict:
    """Copy the served files of ``bundle_dir`` to ``target`` with ``provenance`` recorded."""
    manifest = verify_bundle(bundle_dir)
    keep = [name for name in manifest["files"] if not name.endswith(".onnx")]
    keep.append(manifest["served_file"])
    with atomic_directory(target) as staging:
        for name in keep:
            shutil.copy(Path(bundle_dir) / name, staging / name)
        files = {
            name: {"sha256": sha256_file(staging / name), "bytes": (staging / name).stat().st_size}
            for name in sorted(keep)
        }
        total_mb = sum(meta["bytes"] for meta in files.values()) / 2**20
        if total_mb > MAX_SHIPPED_MB:
            raise ModelError(
                f"The bundle's served files take {total_mb:.1f} MB; a shipped bundle must stay "
                f"under {MAX_SHIPPED_MB:.0f} MB (serve INT8, or use a smaller preset)."
            )
        slim = {
            **manifest,
            "files": files,
            "sizes_mb": {n: round(m["bytes"] / 2**20, 2) for n, m in files.items()},
            "shipped": {**provenance, "omitted": "FP32 fallback (rebuild to get it)"},
        }
        (staging / BUNDLE_MANIFEST).write_text(json.dumps(slim, ensure_ascii=False, indent=2))
    verify_bundle(target)
    return slim


def replace_rating_calibration(
    bundle_dir: Path,
    calibration: RatingCalibration,
    record: dict[str, object],
    test_mae: float | None = None,
) -> dict:
    """Give a verified bundle a new rating calibration (its model untouched), keeping its
    manifest's checksums true and ``record`` (how the calibration was fitted) in it. A
    shipped bundle's figures take ``test_mae`` and its rebuild command the record's."""
    manifest = verify_bundle(bundle_dir)
    with atomic_directory(bundle_dir) as staging:
        for name in manifest["files"]:
            shutil.copy(Path(bundle_dir) / name, staging / name)
        calibration.save(staging)
        path = staging / CALIBRATION_FILE
        manifest["files"][CALIBRATION_FILE] = {
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
        }
        manifest["rating_calibration"] = {**calibration.__dict__, **record}
        shipped = manifest.get("shipped")
        if shipped and test_mae is not None:
            shipped["benchmark"]["rating_mae"] = round(test_mae, 3)
            command = str(record.get("command", ""))
            if command and command not in shipped["command"]:
                shipped["command"] += f" && {command}"
        (staging / BUNDLE_MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    return verify_bundle(bundle_dir)
