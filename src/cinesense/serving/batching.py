"""Server-side micro-batching: concurrent requests share one ONNX Runtime call.

Requests queue their texts; one worker takes everything queued (up to ``max_size`` texts),
waits at most ``max_wait_s`` for more once it has started a batch, runs the batch in a
single inference thread and hands each request its slice. At low load a request runs at
once; under load the queue fills while the model is busy, so batches grow by themselves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cinesense.errors import CinesenseError
from cinesense.model.onnx_predict import ServedPrediction
from cinesense.serving.models import LoadedModel, ModelManager


class NotReadyError(CinesenseError):
    """No model is loaded yet."""


@dataclass
class _Job:
    texts: list[str]
    future: asyncio.Future[tuple[list[ServedPrediction], LoadedModel]]


class MicroBatcher:
    def __init__(
        self,
        manager: ModelManager,
        max_size: int,
        max_wait_s: float,
        inference_batch_size: int = 4,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self.manager = manager
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.inference_batch_size = inference_batch_size
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="inference")
        self._worker: asyncio.Task[None] | None = None
        self._carried: _Job | None = None  # did not fit the last batch; starts the next

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run(), name="micro-batcher")

    async def predict(self, texts: list[str]) -> tuple[list[ServedPrediction], LoadedModel]:
        if self.manager.current is None:
            raise NotReadyError(self.manager.problem or "no model loaded")
        job = _Job(texts, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        return await job.future

    async def close(self, timeout_s: float = 10.0) -> None:
        """Finish what is queued, then stop the worker and the inference thread."""
        deadline = time.monotonic() + timeout_s
        while (self._carried or not self._queue.empty()) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._worker:
            self._worker.cancel()
        self._executor.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect()
            model = self.manager.current  # read once: the whole batch uses one model
            texts = [text for job in jobs for text in job.texts]
            self.on_batch(len(texts))
            try:
                if model is None:
                    raise NotReadyError(self.manager.problem or "no model loaded")
                predictions = await loop.run_in_executor(
                    self._executor, model.predictor.predict, texts, self.inference_batch_size
                )
            except Exception as error:
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            start = 0
            for job in jobs:
                part = predictions[start : start + len(job.texts)]
                start += len(job.texts)
                if not job.future.done():  # the client may have gone away
                    job.future.set_result((part, model))

    async def _collect(self) -> list[_Job]:
        first, self._carried = self._carried, None
        jobs = [first or await self._queue.get()]
        size = len(jobs[0].texts)
        deadline = time.perf_counter() + self.max_wait_s
        while size < self.max_size:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if size + len(job.texts) > self.max_size:
                self._carried = job
                break
            jobs.append(job)
            size += len(job.texts)
        return jobs
