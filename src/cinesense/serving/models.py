"""Which model the service answers with, and swapping it without dropping a request.

A :class:`ModelSource` says which version should be live and loads it; the
:class:`ModelManager` polls the source and, when the version moves, loads the new one in
a worker thread and swaps one reference. A request reads that reference once, so it
finishes on the model it started with; a failed load keeps the old model and is reported.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cinesense.config import Settings
from cinesense.errors import CinesenseError
from cinesense.model.onnx_predict import OnnxPredictor

log = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 quota (containers)."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    count = count or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            count = min(count, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return count


@dataclass(frozen=True)
class LoadedModel:
    predictor: OnnxPredictor
    version: str
    details: dict[str, Any]
    loaded_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    @property
    def quantization(self) -> str:
        return self.predictor.quantization


class ModelSource(Protocol):
    reference: str

    def live_version(self) -> str | None:
        """The version that should be served now, or None when there is none yet."""

    def load(self, version: str) -> LoadedModel: ...


class RegistrySource:
    """The registry alias (``champion`` by default) of the configured MLflow server."""

    def __init__(self, settings: Settings, threads: int) -> None:
        self.settings = settings
        self.reference = settings.serve.model_reference
        self.threads = threads

    def live_version(self) -> str | None:
        from cinesense.registry import alias_version

        return alias_version(self.settings, self.reference)

    def load(self, version: str) -> LoadedModel:
        from cinesense.registry import load_predictor, version_details

        predictor, version = load_predictor(self.settings, version, self.threads, spinning=False)
        return LoadedModel(predictor, version, version_details(self.settings, version))


class DirectorySource:
    """A fixed serving bundle on disk: no registry, nothing to poll."""

    def __init__(self, directory: Path, threads: int) -> None:
        self.directory = Path(directory)
        self.reference = str(directory)
        self.threads = threads

    def live_version(self) -> str | None:
        return "local"

    def load(self, version: str) -> LoadedModel:
        predictor = OnnxPredictor.from_bundle(self.directory, self.threads, spinning=False)
        metrics = {
            key: value
            for key, value in predictor.manifest.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        details = {"name": self.directory.name, "aliases": [], "tags": {}, "metrics": metrics}
        return LoadedModel(predictor, version, details)


def source_from_settings(settings: Settings) -> ModelSource:
    threads = settings.serve.onnx_threads or available_cpus()
    if settings.serve.bundle_dir is not None:
        return DirectorySource(settings.serve.bundle_dir, threads)
    return RegistrySource(settings, threads)


class ModelManager:
    """Holds the live model; ``refresh`` moves it to the source's live version."""

    def __init__(self, source: ModelSource, on_change: Any = None) -> None:
        self.source = source
        self.current: LoadedModel | None = None
        self.problem: str | None = "not loaded yet"
        self.last_check: str | None = None
        self.load_failures = 0
        self._on_change = on_change or (lambda manager: None)
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return self.current is not None

    async def refresh(self, force: bool = False) -> bool:
        """Load the live version if it differs from the current one; True when swapped.

        Never raises: a problem is kept in ``problem`` and the old model stays."""
        async with self._lock:
            self.last_check = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            try:
                version = await asyncio.to_thread(self.source.live_version)
            except CinesenseError as error:
                return self._failed(f"cannot reach the registry: {error}", count=False)
            if version is None:
                reason = f"no model has the alias '{self.source.reference}' yet"
                return self._failed(f"{reason}; promote one with `cinesense promote`", False)
            if self.current and self.current.version == version and not force:
                self.problem = None
                return False
            try:
                loaded = await asyncio.to_thread(self.source.load, version)
            except Exception as error:  # any failure must leave the old model serving
                log.exception("loading version %s failed", version)
                return self._failed(f"loading version {version} failed: {error}", count=True)
            previous = self.current.version if self.current else None
            self.current, self.problem = loaded, None
            log.info(
                "model swapped", extra={"from_version": previous, "to_version": loaded.version}
            )
            self._on_change(self)
            return True

    def _failed(self, problem: str, count: bool) -> bool:
        self.problem = problem
        if count:
            self.load_failures += 1
        self._on_change(self)
        log.warning("model refresh: %s", problem)
        return False

    async def poll(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self.refresh()
