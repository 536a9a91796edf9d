"""A loopback TCP proxy a test puts between the server and a database, then breaks.

    proxy = TcpProxy(5432)
    port = await proxy.start()        # 127.0.0.1:port forwards to 127.0.0.1:5432
    await proxy.refuse()              # the port is closed: connects get ECONNREFUSED,
                                      # open connections are reset (as a crashed server)
    proxy.stall()                     # connects are accepted, no byte gets through
                                      # either way (a black hole, a hung server)
    await proxy.restore()             # forwarding again, on the same port
    await proxy.close()

Loopback only: it listens on 127.0.0.1 and connects to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib

HOST = "127.0.0.1"
CHUNK = 64 * 1024


class TcpProxy:
    def __init__(self, target_port: int, target_host: str = HOST) -> None:
        assert target_host in (HOST, "localhost"), "loopback only"
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        #: set while bytes flow; cleared by ``stall``
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()
        #: connections accepted in all (a test can see the server came back)
        self.accepted = 0

    async def start(self) -> int:
        """Listen (again, on the same port after ``refuse``); returns the port."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, HOST, self.port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    @property
    def url_host(self) -> str:
        return f"{HOST}:{self.port}"

    async def refuse(self) -> None:
        """Close the listening port (new connects: refused) and reset every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for link in list(self._links):
            link.abort()
        self._flowing.set()

    def stall(self) -> None:
        """Keep accepting, forward nothing (open connections included) until ``restore``."""
        self._flowing.clear()

    async def restore(self) -> None:
        """Forward again: listening if it was refusing, held bytes delivered if it stalled."""
        await self.start()
        self._flowing.set()

    async def close(self) -> None:
        await self.refuse()
        for link in list(self._links):
            await link.finished()

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        try:
            await link.run(reader, up_reader, self._flowing)
        finally:
            self._links.discard(link)


class _Link:
    """One client's connection and its upstream one; two pumps that wait while stalled."""

    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.writers = (client, upstream)
        self._tasks: list[asyncio.Task[None]] = []

    async def run(
        self,
        client: asyncio.StreamReader,
        upstream: asyncio.StreamReader,
        flowing: asyncio.Event,
    ) -> None:
        down, up = self.writers
        self._tasks = [
            asyncio.ensure_future(_pump(client, up, flowing)),
            asyncio.ensure_future(_pump(upstream, down, flowing)),
        ]
        # either side closing ends both (as a real connection's end)
        await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        self.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def abort(self) -> None:
        for writer in self.writers:
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()

    async def finished(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event
) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while True:
            await flowing.wait()  # stalled: read no more (the sender's window fills)
            data = await reader.read(CHUNK)
            if not data:
                return
            await flowing.wait()  # stalled mid-way: hold what was read
            writer.write(data)
            await writer.drain()
