"""A WebSocket server that sends live SENSE events to every connected client.

    producer thread ──publish(event)──> event loop ──put_nowait──> one bounded queue per client
                                                                      └─ sender task ─> ws.send

The producer never waits on a client: `publish` hands the event to the event loop and returns,
and each client has its own queue of `queue_size` messages, so a client that reads slowly (or
not at all) fills only its own queue. When a queue is full the event is dropped for that client
and counted; its count is reported when it disconnects or the server stops. The kernel's send
buffer per client is kept small too (`send_buffer`), so what a lagging client does get is recent. Messages are JSON
text, one event each.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from dataclasses import dataclass

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed


@dataclass(eq=False)
class Client:
    """One connection and what it was sent."""

    name: str  # host:port of the peer
    queue: asyncio.Queue
    ws: ServerConnection
    sent: int = 0
    dropped: int = 0


class EventServer:
    """Broadcast of events to WebSocket clients on `host`:`port` (port 0: any free port).

    Use inside a running event loop: `await start()`, then `publish` from that loop or
    `publish_threadsafe` from another thread, and `await stop()` at the end.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", queue_size: int = 256, send_buffer: int = 65536,
                 log=sys.stderr):
        if queue_size < 1:
            raise ValueError(f"queue size must be at least 1, got {queue_size}")
        self.host, self.port, self.queue_size, self.send_buffer, self.log = host, port, queue_size, send_buffer, log
        self.clients: set[Client] = set()
        self.finished: list[Client] = []  # disconnected clients, for the report
        self.server: Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Listen on host:port; a port that cannot be bound (in use, privileged) is a ValueError."""
        self.loop = asyncio.get_running_loop()
        try:
            # close_timeout: a client that stopped reading cannot take the closing handshake; don't wait long
            self.server = await serve(self._serve, self.host, self.port, close_timeout=1.0)
        except OSError as err:
            raise ValueError(f"--serve {self.port}: cannot listen on {self.host}:{self.port} "
                             f"({err.strerror or err}); choose another port") from None
        self.port = self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def publish(self, event: dict) -> None:
        """Queue `event` for every client; a client whose queue is full misses it (counted)."""
        message = json.dumps(event)
        for client in self.clients:
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                client.dropped += 1

    def publish_threadsafe(self, event: dict) -> None:
        """`publish` from a thread other than the event loop's; returns at once."""
        assert self.loop is not None, "start() the server first"
        self.loop.call_soon_threadsafe(self.publish, event)

    async def stop(self, linger: float = 1.0) -> None:
        """Give clients up to `linger` s to receive what is queued, then close every connection."""
        deadline = asyncio.get_running_loop().time() + linger
        while any(not c.queue.empty() for c in self.clients) and asyncio.get_running_loop().time() < deadline:
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
        return [f"{c.name}: {_line(c)}" for c in self.finished]

    async def _serve(self, ws: ServerConnection) -> None:
        host, port = ws.remote_address[:2]
        client = Client(f"{host}:{port}", asyncio.Queue(self.queue_size), ws)
        sock = ws.transport.get_extra_info("socket")
        if sock is not None:  # a small kernel buffer: a lagging client's backlog stays short, not seconds stale
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        self.clients.add(client)
        print(f"sense: client {client.name} connected", file=self.log, flush=True)
        sender = asyncio.create_task(self._send(ws, client))
        try:
            await ws.wait_closed()  # a client that left is noticed even while nothing is sent
        finally:
            sender.cancel()
            self.clients.discard(client)
            self.finished.append(client)
            print(f"sense: client {client.name} disconnected: {_line(client)}", file=self.log, flush=True)

    @staticmethod
    async def _send(ws: ServerConnection, client: Client) -> None:
        try:
            while True:
                message = await client.queue.get()
                await ws.send(message)  # waits while this client's socket is full; no one else does
                client.sent += 1
        except ConnectionClosed:
            pass


def _line(client: Client) -> str:
    return f"{client.sent} events sent, {client.dropped} dropped (queue full)"
