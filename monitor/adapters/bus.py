"""The message bus: one interface, an in-process queue by default and Redis Streams with consumer groups."""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, cast

import redis

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]


class Bus(ABC):
    """Publish JSON messages to topics; subscribed handlers run on consumer threads after `start()`.

    Delivery is at least once: handlers must be idempotent.
    """

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @abstractmethod
    def publish(self, topic: str, message: dict[str, Any]) -> None: ...

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic] = handler

    def start(self, concurrency: int = 1) -> None:
        """Start `concurrency` consumer threads per topic (match the number of face processes)."""
        self._stop.clear()
        for topic, handler in self._handlers.items():
            for n in range(max(1, concurrency)):
                thread = threading.Thread(
                    target=self._consume, args=(topic, handler, n), name=f"bus-{topic}-{n}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    @abstractmethod
    def _consume(self, topic: str, handler: Handler, slot: int) -> None: ...

    def announce_events(self) -> None:
        """Tell the live feeds of other processes that events were committed (nothing to do in one process)."""
        return None

    def on_events(self, callback: Callable[[], None]) -> None:
        """Call `callback` when another process announces committed events (never, in one process)."""
        return None

    def close(self) -> None:
        self.stop()

    def reachable(self) -> bool:
        """Whether the bus answers now (always, in one process)."""
        return True


class InProcessBus(Bus):
    """Queues in this process; what is lost with the process is re-sent by the outbox relay."""

    def __init__(self) -> None:
        super().__init__()
        self._queues: dict[str, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _queue(self, topic: str) -> queue.Queue[dict[str, Any]]:
        with self._lock:
            return self._queues.setdefault(topic, queue.Queue())

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        self._queue(topic).put(json.loads(json.dumps(message)))

    def pending(self, topic: str) -> int:
        return self._queue(topic).qsize()

    def _consume(self, topic: str, handler: Handler, slot: int) -> None:
        q = self._queue(topic)
        while not self._stop.is_set():
            try:
                message = q.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                handler(message)
            except Exception:  # noqa: BLE001 - a failed message is re-sent by the outbox relay
                log.exception("handler for %s failed on %s", topic, message)


class RedisStreamsBus(Bus):
    """Redis Streams, one stream per topic, a consumer group shared by all workers.

    A message is acknowledged only after its handler returns; messages left pending by a dead
    consumer are claimed by a live one after `claim_idle_ms`; after `max_deliveries` failures a
    message is moved to `<prefix>dead` so it cannot block the group.
    """

    def __init__(
        self,
        url: str,
        group: str = "workers",
        consumer: str | None = None,
        prefix: str = "monitor:",
        claim_idle_ms: int = 30_000,
        block_ms: int = 500,
        max_deliveries: int = 5,
    ) -> None:
        super().__init__()
        self.client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)
        self._probe = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)  # health: answer fast
        self.group = group
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{id(self):x}"
        self.prefix = prefix
        self.claim_idle_ms = claim_idle_ms
        self.block_ms = block_ms
        self.max_deliveries = max_deliveries

    def stream(self, topic: str) -> str:
        return f"{self.prefix}{topic}"

    def publish(self, topic: str, message: dict[str, Any]) -> None:
        self.client.xadd(self.stream(topic), {"data": json.dumps(message)}, maxlen=1_000_000, approximate=True)

    def ensure_group(self, topic: str) -> None:
        try:
            self.client.xgroup_create(self.stream(topic), self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def _handle(self, topic: str, handler: Handler, msg_id: str, fields: dict[str, str]) -> None:
        stream = self.stream(topic)
        try:
            handler(json.loads(fields["data"]))
        except Exception:  # noqa: BLE001 - left pending: claimed again later, then dead-lettered
            log.exception("handler for %s failed on %s", topic, msg_id)
            return
        self.client.xack(stream, self.group, msg_id)

    def claim_stale(self, topic: str, handler: Handler, consumer: str | None = None) -> int:
        """Take over messages another consumer left unacknowledged for `claim_idle_ms`; returns how many."""
        stream = self.stream(topic)
        claimed = 0
        start = "0-0"
        while True:
            claimed_batch: Any = self.client.xautoclaim(
                stream, self.group, consumer or self.consumer, min_idle_time=self.claim_idle_ms, start_id=start,
                count=50,
            )
            start, messages, *_ = claimed_batch
            for msg_id, fields in messages:
                if fields is None:
                    continue
                info: Any = self.client.xpending_range(stream, self.group, min=msg_id, max=msg_id, count=1)
                if info and info[0]["times_delivered"] > self.max_deliveries:
                    self.client.xadd(f"{self.prefix}dead", {"topic": topic, "id": msg_id, **fields})
                    self.client.xack(stream, self.group, msg_id)
                    log.error("message %s on %s dead-lettered after %s deliveries", msg_id, topic,
                              info[0]["times_delivered"])
                    continue
                claimed += 1
                self._handle(topic, handler, msg_id, fields)
            if start in ("0-0", b"0-0"):
                return claimed

    def _consume(self, topic: str, handler: Handler, slot: int) -> None:
        stream = self.stream(topic)
        consumer = f"{self.consumer}-{slot}"
        backoff = self._stop.wait
        ticks = 0
        while not self._stop.is_set():
            try:
                if ticks % 20 == 0:
                    self.ensure_group(topic)
                    self.claim_stale(topic, handler, consumer)
                ticks += 1
                batches: Any = self.client.xreadgroup(
                    self.group, consumer, {stream: ">"}, count=1, block=self.block_ms
                )
                for _stream, messages in batches or []:
                    for msg_id, fields in messages:
                        self._handle(topic, handler, msg_id, fields)
            except redis.RedisError as exc:
                if isinstance(exc, redis.ResponseError) and str(exc).startswith("NOGROUP"):
                    ticks = 0  # Redis came back empty (restarted without persistence): make the group again now
                    continue
                log.warning("redis unavailable for %s; retrying", topic, exc_info=True)
                backoff(1.0)

    def reachable(self) -> bool:
        """Whether Redis answers a PING within a second (for /health and the wall)."""
        try:
            return bool(self._probe.ping())
        except (redis.RedisError, OSError):
            return False

    def announce_events(self) -> None:
        self.client.publish(f"{self.prefix}events", "1")

    def on_events(self, callback: Callable[[], None]) -> None:
        thread = threading.Thread(target=self._listen_events, args=(callback,), name="bus-events", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _listen_events(self, callback: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                pubsub = cast(Any, self.client).pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(f"{self.prefix}events")
                while not self._stop.is_set():
                    if pubsub.get_message(timeout=0.5) is not None:
                        callback()
                pubsub.close()
            except redis.RedisError:
                log.warning("redis unavailable for event announcements; the live feed polls meanwhile")
                self._stop.wait(1.0)

    def close(self) -> None:
        super().close()
        self.client.close()


def create_bus(redis_url: str, claim_idle_s: float = 30.0) -> Bus:
    """Redis Streams when a URL is configured (a dead consumer's messages taken over after `claim_idle_s`), else the
    in-process bus."""
    return RedisStreamsBus(redis_url, claim_idle_ms=int(claim_idle_s * 1000)) if redis_url else InProcessBus()
