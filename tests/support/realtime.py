"""Real socket.io clients: one that records what it hears, and a room of them."""

from __future__ import annotations

import asyncio

import socketio


class Recorder:
    """A socket.io client that keeps every event it receives, in order."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, dict]] = []

        @self.sio.on("*")
        async def catch_all(event, data):
            self.events.append((event, data))

    async def connect(self, client, token: str | None = None) -> None:
        await self.sio.connect(
            str(client.make_url("/")),
            auth={"token": token} if token else None,
            transports=["websocket"],
            wait_timeout=5,
        )

    async def call(self, event: str, data: dict) -> dict:
        return await self.sio.call(event, data, timeout=5)

    async def wait_for(self, event: str, predicate=lambda d: True, timeout: float = 5.0) -> dict:
        for _ in range(int(timeout / 0.02)):
            for name, data in self.events:
                if name == event and predicate(data):
                    return data
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {event} event; got {self.events}")

    async def close(self) -> None:
        await self.sio.disconnect()


class Room:
    """Connected, joined clients; closed together."""

    def __init__(self, client, meeting) -> None:
        self.client, self.meeting, self.people = client, meeting, []

    async def join(self, token=None, since_seq=None) -> tuple[Recorder, dict]:
        person = Recorder()
        await person.connect(self.client, token)
        payload = {"meeting_id": self.meeting["id"]}
        if since_seq is not None:
            payload["since_seq"] = since_seq
        ack = await person.call("join", payload)
        assert ack["ok"], ack
        self.people.append(person)
        return person, ack

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.people), return_exceptions=True)


def named(events, name):
    return [data for event, data in events if event == name]
