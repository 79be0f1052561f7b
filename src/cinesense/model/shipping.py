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
