"""A WebSocket server that sends live SENSE events to every connected client.

    producer thread ──publish(event)──> event loop ──put──> one LagQueue per client
                                                              └─ sender task ─> ws.send, ping, wait for the pong

The producer never waits on a client: `publish` hands the event to the event loop and returns,
and each client has its own queue, so a client that reads slowly (or not at all) holds up only
itself. What a slow client misses is dropped and counted in its queue (`live.LagQueue`: events
that waited more than `max_lag`, continuous ones first), reported at most once a
second while it happens and when the client leaves.

Buffers must not hide a slow client: the client's own kernel buffer alone holds tens of seconds
of events, and a send into it returns at once, so a queue that is judged only when it is full
never drops. Each client therefore gets at most `window` messages per round trip: after them the
sender pings and waits for the pong, which comes back once the client has taken in what came
before (a client that stops reading stops answering, and its library's own small queue is all
that can still hide anything). An event's age is judged when it is taken to be sent, and the server's own buffers are
kept small (`write_limit` of the transport, `send_buffer` of the kernel). Messages are JSON text,
one event each.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from .live_lag import DropReport, LagQueue


@dataclass(eq=False)
class Client:
    """One connection and what it was sent."""

    name: str  # host:port of the peer
    queue: LagQueue[str]
    ws: ServerConnection
    ready: asyncio.Event = field(default_factory=asyncio.Event)  # set while the queue may hold something
    report: DropReport | None = None

    @property
    def sent(self) -> int:
        return self.queue.n_taken

    @property
    def dropped(self) -> int:
        return self.queue.dropped


class EventServer:
    """Broadcast of events to WebSocket clients on `host`:`port` (port 0: any free port).

    Use inside a running event loop: `await start()`, then `publish` from that loop or
    `publish_threadsafe` from another thread, and `await stop()` at the end.

    Args:
        port, host: where to listen.
        queue_size: the most events held per client.
        max_lag: seconds an event may wait for a client before it is dropped (None: only a full
            queue drops).
        clock: seconds, monotonic (a test's own).
        window: messages sent per round trip (None: no pings, only the buffers bound what a
            client hides).
        write_limit: bytes the transport buffers before a send waits.
        send_buffer: the kernel's send buffer per client (SO_SNDBUF).
        log: where connections, drops and the report go.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", queue_size: int = 256, max_lag: float | None = None,
                 clock: Callable[[], float] = time.monotonic, window: int | None = 1, write_limit: int = 4096,
                 send_buffer: int = 16384, log=sys.stderr):
        if queue_size < 1:
            raise ValueError(f"queue size must be at least 1, got {queue_size}")
        if window is not None and window < 1:
            raise ValueError(f"window must be at least 1 message (or None), got {window}")
        self.host, self.port, self.queue_size, self.log = host, port, queue_size, log
        self.max_lag, self.clock, self.window = max_lag, clock, window
        self.write_limit, self.send_buffer = write_limit, send_buffer
        self.clients: set[Client] = set()
        self.finished: list[Client] = []  # disconnected clients, for the report
        self.server: Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Listen on host:port; a port that cannot be bound (in use, privileged) is a ValueError."""
        self.loop = asyncio.get_running_loop()
        try:
            # close_timeout: a client that stopped reading cannot take the closing handshake; don't wait long
            self.server = await serve(self._serve, self.host, self.port, close_timeout=1.0,
                                      write_limit=self.write_limit)
        except OSError as err:
            raise ValueError(f"--serve {self.port}: cannot listen on {self.host}:{self.port} "
                             f"({err.strerror or err}); choose another port") from None
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def publish(self, event: dict) -> None:
        """Queue `event` for every client; what a client's queue drops is counted there."""
        message = json.dumps(event)
        for client in self.clients:
            client.queue.put(message, event.get("type", "continuous"))
            client.ready.set()
            self._report(client)

    def publish_threadsafe(self, event: dict) -> None:
        """`publish` from a thread other than the event loop's; returns at once."""
        assert self.loop is not None, "start() the server first"
        self.loop.call_soon_threadsafe(self.publish, event)

    async def stop(self, linger: float = 1.0) -> None:
        """Give clients up to `linger` s to receive what is queued, then close every connection."""
        deadline = asyncio.get_running_loop().time() + linger
        while any(len(c.queue) for c in self.clients) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        if self.server is None:
            return
        self.server.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.server.wait_closed()), 1.0)
        except asyncio.TimeoutError:  # a client that stopped reading never takes the closing handshake
            for client in list(self.clients):
                client.ws.transport.abort()
            await self.server.wait_closed()

    def report(self) -> list[str]:
        """One line per client served: events sent and dropped."""
        return [f"{c.name}: {c.queue.describe()}" for c in self.finished]

    async def _serve(self, ws: ServerConnection) -> None:
        host, port = ws.remote_address[:2]
        name = f"{host}:{port}"
        client = Client(name, LagQueue(self.clock, self.max_lag, self.queue_size), ws,
                        report=DropReport(f"client {name}"))
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:  # a small kernel buffer: what waits there is not judged by its age
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        self.clients.add(client)
        print(f"sense: client {client.name} connected", file=self.log, flush=True)
        sender = asyncio.create_task(self._send(client))
        try:
            await ws.wait_closed()  # a client that left is noticed even while nothing is sent
        finally:
            sender.cancel()
            self.clients.discard(client)
            self.finished.append(client)
            print(f"sense: client {client.name} disconnected: {client.queue.describe()}", file=self.log, flush=True)

    async def _send(self, client: Client) -> None:
        ws, n = client.ws, self.window or self.queue_size
        try:
            while True:
                await client.ready.wait()
                batch = client.queue.take(n)  # judged now, when it can be sent
                if not len(client.queue):
                    client.ready.clear()
                self._report(client)
                for message in batch:
                    await ws.send(message)  # waits only while this client's buffers are full; no one else does
                if batch and self.window is not None:
                    await (await ws.ping())  # the client has read the batch: what comes next is not hidden behind it
        except ConnectionClosed:
            pass

    def _report(self, client: Client) -> None:
        if client.report is not None and (line := client.report.due(client.queue)):
            print(f"sense: {line}", file=self.log, flush=True)
