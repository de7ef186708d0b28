"""Bounded lag for the consumers of live SENSE events (a pipe, a WebSocket client).

A consumer may read the events more slowly than the stream makes them. Each consumer gets a
`LagQueue`, which drops what waited too long for it, so one that falls behind loses events
instead of receiving them ever later, and the analysis never waits for it. `LineWriter` is the
consumer on standard output: JSON lines written by a thread of its own.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import deque
from typing import Callable, Generic, TypeVar

MAX_LAG = 0.1  # seconds: the default bound on how long an event waits for a consumer


T = TypeVar("T")


class LagQueue(Generic[T]):
    """Events on their way to one consumer that may fall behind the stream.

    An event that waits more than `max_lag` seconds for the consumer is dropped and counted; a
    continuous event already at half of that, and with it every queued continuous event but the
    newest (and that one too when a transient is newer): when the consumer falls behind, the bed
    goes first (each bed event supersedes the last), the consumer is brought up to date at once,
    and the transients queued go out next. What is counted is the consumer's doing, the time since the event was queued
    (not since its date: the look-ahead and the input's block sizes are not the consumer's), on
    the wall clock: a burst of input (a start, a capture that catches up) that the consumer
    drains quickly loses nothing. `max_lag` None: no event is dropped for its age. Beyond
    `capacity` events the oldest continuous one (else the oldest) is dropped. Not thread-safe:
    one lock or one event loop owns a queue.

    Args:
        clock: seconds, monotonic (default `time.monotonic`; a test's own).
        max_lag: seconds an event may wait, or None.
        capacity: the most events held.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_lag: float | None = MAX_LAG,
                 capacity: int = 4096):
        if max_lag is not None and max_lag <= 0:
            raise ValueError(f"max_lag must be positive (or None), got {max_lag}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.clock, self.max_lag, self.capacity = clock, max_lag, capacity
        self.items: deque[tuple[float, bool, T]] = deque()  # (clock when queued, is a transient, item)
        self.n_taken = 0
        self.n_dropped = {"continuous": 0, "transient": 0}

    def __len__(self) -> int:
        return len(self.items)

    @property
    def dropped(self) -> int:
        return sum(self.n_dropped.values())

    def put(self, item: T, kind: str) -> None:
        """Queue `item`, an event of type `kind` ("transient" or "continuous")."""
        self.items.append((self.clock(), kind == "transient", item))
        if len(self.items) > self.capacity:
            index = next((i for i, (_, transient, _) in enumerate(self.items) if not transient), 0)
            self._drop(self.items[index][1])
            del self.items[index]
        self.expire()

    def take(self, n: int) -> list[T]:
        """Up to `n` of the oldest events that have not waited too long, in order; [] if none."""
        self.expire()
        n = min(n, len(self.items))
        self.n_taken += n
        return [self.items.popleft()[2] for _ in range(n)]

    def expire(self) -> None:
        """Drop the events that have waited too long; once a continuous one has, the consumer is
        behind, and every queued continuous event goes too except the newest when nothing newer
        is queued (catching up at once instead of staying at the bound, and no bed event standing
        between the consumer and a transient)."""
        if self.max_lag is None or not self.items:
            return
        now, keep, behind = self.clock(), [], False
        while self.items and now - self.items[0][0] > 0.5 * self.max_lag:  # queued in order: the rest are younger
            queued, transient, item = self.items.popleft()
            if transient and now - queued <= self.max_lag:
                keep.append((queued, transient, item))  # past the bed's bound, not past its own
            else:
                self._drop(transient)
                behind |= not transient
        self.items.extendleft(reversed(keep))
        if behind:
            last = len(self.items) - 1 if self.items and not self.items[-1][1] else -1  # the newest, if last
            for i in reversed(range(len(self.items))):
                if i != last and not self.items[i][1]:
                    self._drop(False)
                    del self.items[i]

    def describe(self) -> str:
        """What was delivered and dropped, for a report line."""
        line = f"{self.n_taken} events sent, {self.dropped} dropped"
        if self.dropped:
            line += f" ({self.why()})"
        return line

    def why(self) -> str:
        """Why the events were dropped, with the counts."""
        n = self.n_dropped
        if self.max_lag is None:
            return "queue full"
        return (f"{n['continuous']} continuous after {500 * self.max_lag:g} ms of waiting, "
                f"{n['transient']} transient after {1000 * self.max_lag:g} ms")

    def _drop(self, transient: bool) -> None:
        self.n_dropped["transient" if transient else "continuous"] += 1


class DropReport:
    """Lines for a log when a consumer's `LagQueue` drops events: at most one per `interval` s of
    wall time, saying how many since the last line."""

    def __init__(self, name: str, interval: float = 1.0):
        self.name, self.interval = name, interval
        self.reported, self.at = 0, -float("inf")

    def due(self, queue: LagQueue) -> str | None:
        """A line if `queue` dropped events since the last line and `interval` has passed, else None."""
        now = time.monotonic()
        if queue.dropped == self.reported or now - self.at < self.interval:
            return None
        since = "" if self.at == -float("inf") else f" in {now - self.at:.1f} s"
        line = (f"{self.name} is behind: {queue.dropped - self.reported} events dropped{since}, "
                f"{queue.dropped} in all ({queue.why()})")
        self.reported, self.at = queue.dropped, now
        return line


class LineWriter:
    """Events as JSON lines on `out`, written by a thread of its own, so that reading and
    analysing the input never wait for the reader of `out`.

    Events wait in `queue`, where they are judged by their age and dropped when the reader falls
    behind. On a pipe (or a socket) a line is written only once the reader has taken the one
    before (the bytes still unread, FIONREAD): otherwise the pipe's 64 kB would hold seconds of
    events that no bound could drop. With `queue.max_lag` None nothing is dropped for its age and
    `put` waits while the queue is full. Drops are reported on `log` at most once a second.
    """

    def __init__(self, out, queue: LagQueue[dict], log=sys.stderr):
        self.out, self.queue, self.log = getattr(out, "buffer", out), queue, log
        self.unread = unread_bytes(out) if queue.max_lag is not None else None
        self.report = DropReport("standard output")
        self.changed = threading.Condition()
        self.closed = False
        self.broken = threading.Event()  # set when the reader went away
        self.thread = threading.Thread(target=self._write, name="sense-writer", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def put(self, event: dict) -> None:
        """Queue `event` for writing; returns at once unless the lag is unbounded and the queue full."""
        with self.changed:
            while self.queue.max_lag is None and len(self.queue) >= self.queue.capacity and not self.broken.is_set():
                self.changed.wait(0.1)
            self.queue.put(event, event["type"])
            self.changed.notify_all()

    def close(self, timeout: float | None = None) -> None:
        """Write what is still queued (for up to `timeout` s), then stop the thread."""
        with self.changed:
            self.closed = True
            self.changed.notify_all()
        self.thread.join(timeout)

    def _write(self) -> None:
        pause = 0.0
        while not self.broken.is_set():
            with self.changed:
                while not len(self.queue) and not self.closed:
                    self.changed.wait()
                if not len(self.queue):
                    return
                if self.unread is not None and self.unread() > 0:  # the reader has not taken the last line
                    self.queue.expire()
                    batch = []
                else:
                    batch = self.queue.take(1 if self.unread is not None else 256)
                line = self.report.due(self.queue)
                self.changed.notify_all()
            if line:
                print(f"sense: {line}", file=self.log, flush=True)
            if not batch:  # poll the pipe: 0.1 ms at first (a fast reader), up to 1 ms (a slow one)
                pause = min(1e-3, max(1e-4, 2 * pause))
                time.sleep(pause)
                continue
            pause = 0.0
            try:
                self.out.write("".join(json.dumps(e) + "\n" for e in batch).encode())
                self.out.flush()
            except BrokenPipeError:
                self.broken.set()


def unread_bytes(out) -> Callable[[], int] | None:
    """A function giving the bytes written to `out` that its reader has not taken yet, where the
    system can tell (a pipe: FIONREAD; a socket: its send queue, TIOCOUTQ), else None."""
    try:
        import array
        import fcntl
        import stat
        import termios

        fd = out.fileno()
        mode = os.fstat(fd).st_mode
        request = termios.FIONREAD if stat.S_ISFIFO(mode) else termios.TIOCOUTQ if stat.S_ISSOCK(mode) else None
        if request is None:
            return None

        def unread() -> int:
            count = array.array("i", [0])
            fcntl.ioctl(fd, request, count, True)
            return count[0]

        unread()
        return unread
    except (ImportError, AttributeError, OSError, ValueError):  # no fileno (captured output), another system
        return None
