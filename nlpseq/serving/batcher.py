"""Dynamic batching: concurrent requests with the same options are answered by one call of
the model, so a busy server runs full batches instead of one short one per request.

One worker takes the oldest waiting request and every other queued one with the same
options (up to ``max_batch_size`` texts in all; ``max_wait_ms`` > 0 also waits that long
for more), runs the model once in a worker thread, and hands each request its rows (a
batch that fails runs again one request at a time, so only a bad one fails). While the
model runs, the event loop keeps accepting requests, so batches grow with the load without
any waiting: at low load a request is answered alone, at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Pending:
    texts: list[str]
    options: dict
    answer: asyncio.Future
    key: str = field(init=False)

    def __post_init__(self) -> None:
        # requests batch only with their like; a seeded sample only alone (its draws would
        # depend on the requests sampled before it in the batch)
        self.key = (f"alone {id(self)}" if self.options.get("seed") is not None
                    else repr(sorted(self.options.items())))


class Batcher:
    """Queue requests; answer them in batches with ``predict(texts, **options) -> rows``."""

    def __init__(self, predict: Callable[..., list[dict]], max_batch_size: int = 64,
                 max_wait_ms: float = 0.0, enabled: bool = True) -> None:
        self.predict = predict
        self.max_batch_size = max_batch_size if enabled else 1
        self.max_wait = max_wait_ms / 1000 if enabled else 0.0
        self.queue: asyncio.Queue[Pending] | None = None
        self.batches_run = 0  # for tests and /health: how many model calls answered requests
        self.worker: asyncio.Task | None = None

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self.worker = asyncio.create_task(self.work())

    async def stop(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    async def submit(self, texts: list[str], options: dict) -> list[dict]:
        """The rows for ``texts``; raises what the model raised for them alone."""
        pending = Pending(texts, options, asyncio.get_running_loop().create_future())
        await self.queue.put(pending)
        return await pending.answer

    async def work(self) -> None:
        held: list[Pending] = []  # taken from the queue, but with other options
        while True:
            first = held.pop(0) if held else await self.queue.get()
            batch, size = [first], len(first.texts)
            deadline = time.monotonic() + self.max_wait
            while size < self.max_batch_size:
                same = next((p for p in held if p.key == first.key), None)
                if same is not None:
                    held.remove(same)
                elif not self.queue.empty():
                    same = self.queue.get_nowait()
                    if same.key != first.key:
                        held.append(same)
                        continue
                elif time.monotonic() < deadline:
                    await asyncio.sleep(0.0005)  # let waiting requests reach the queue
                    continue
                else:
                    break
                batch.append(same)
                size += len(same.texts)
            await self.run(batch)

    async def run(self, batch: list[Pending]) -> None:
        """Answer ``batch`` with one model call. When that call fails, each request is run
        again on its own, so that one bad request fails alone, not the others batched
        with it."""
        texts = [text for pending in batch for text in pending.texts]
        try:
            rows = await asyncio.to_thread(self.predict, texts, **batch[0].options)
        except Exception as err:
            if len(batch) > 1:
                for pending in batch:
                    if not pending.answer.done():
                        await self.run([pending])
                return
            if not batch[0].answer.done():
                batch[0].answer.set_exception(err)
            return
        self.batches_run += 1
        start = 0
        for pending in batch:
            if not pending.answer.done():  # a client that went away is skipped
                pending.answer.set_result(rows[start:start + len(pending.texts)])
            start += len(pending.texts)
