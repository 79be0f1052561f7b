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
from cinesense.model.heads import LABEL_MAP_FILE, LabelMap
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


def recalibrate_bundle(
    bundle_dir: Path,
    label_map: LabelMap,
    calibration: RatingCalibration,
    record: dict[str, object],
    figures: dict[str, float] | None = None,
) -> dict:
    """Give a verified bundle a new label map (its decision offset) and rating calibration,
    its model untouched. The manifest's checksums stay true and its ``calibration`` section
    keeps ``record`` (how they were fitted); a shipped bundle's figures take ``figures``
    and its rebuild command the record's ``command``."""
    manifest = verify_bundle(bundle_dir)
    with atomic_directory(bundle_dir) as staging:
        for name in manifest["files"]:
            shutil.copy(Path(bundle_dir) / name, staging / name)
        label_map.save(staging)
        calibration.save(staging)
        for name in (LABEL_MAP_FILE, CALIBRATION_FILE):
            path = staging / name
            manifest["files"][name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        manifest["calibration"] = {
            "positive_offset": label_map.positive_offset,
            **calibration.__dict__,
            **record,
        }
        shipped = manifest.get("shipped")
        if shipped and figures:
            shipped["benchmark"].update(figures)
            command = str(record.get("command", ""))
            if command and not shipped["command"].endswith(command):
                shipped["command"] += f" && {command}"
        (staging / BUNDLE_MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2))
    return verify_bundle(bundle_dir)
