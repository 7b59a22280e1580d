"""Micro-batching: concurrent requests wait a few milliseconds in a bounded queue and go to the model in one call.

One worker thread runs every model call (models load once and are never entered by two threads), so with
``max_batch=1`` the same service answers strictly one by one -- the baseline ``benchmarks/serve_load.py`` compares
against. A full queue answers at once with :class:`Overloaded` (HTTP 503) instead of growing without bound.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Overloaded(Exception):
    """The request queue is full."""


class MicroBatcher(Generic[T, R]):
    """``await batcher.submit(x)`` -> ``fn([x, ...])[i]``; up to ``max_batch`` requests waiting at most
    ``max_wait_ms`` after the first one are answered by one call of ``fn`` (which returns one result per input --
    an exception instance as a result is raised to that request alone -- or raises: then every request of that
    batch gets the exception)."""

    def __init__(
        self,
        fn: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 16,
        max_wait_ms: float = 5.0,
        max_queue: int = 256,
        executor: concurrent.futures.ThreadPoolExecutor | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait_ms >= 0")
        self.fn, self.max_batch, self.max_wait = fn, max_batch, max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.executor = executor
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._task: asyncio.Task[None] | None = None
        self.batches: list[int] = []  # sizes of the batches run (for tests and the load benchmark)

    async def start(self) -> None:
        self._queue = asyncio.Queue(self.max_queue)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def submit(self, x: T) -> R:
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not awaited")
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait((x, fut))
        except asyncio.QueueFull:
            raise Overloaded(f"more than {self.max_queue} requests are waiting; try again shortly") from None
        return await fut

    async def _loop(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    if self._queue.empty():
                        break
                    batch.append(self._queue.get_nowait())
                    continue
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except TimeoutError:
                    break
            live = [(x, f) for x, f in batch if not f.cancelled()]
            if not live:
                continue
            self.batches.append(len(live))
            try:
                results = await loop.run_in_executor(self.executor, self.fn, [x for x, _ in live])
                if len(results) != len(live):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(live)} inputs")
            except Exception as e:  # every waiting request gets the error; the loop goes on
                for _, f in live:
                    if not f.done():
                        f.set_exception(e)
                continue
            for (_, f), r in zip(live, results, strict=True):
                if f.done():
                    continue
                if isinstance(r, BaseException):
                    f.set_exception(r)
                else:
                    f.set_result(r)
