"""Helpers shared by the tests (fixtures built on them are in ``tests/conftest.py``).

- ``api``: the clerk's password, tokens, members and meetings over the HTTP API, error codes.
- ``realtime``: socket.io clients that record what they hear, and rooms of them.
- ``peers``: real aiortc peers: synthetic camera and microphone, WHIP publisher, WHEP viewer.
- ``floor``: the floor speaker's phone and per-m-line listeners.
- ``recording``: ffprobe, frames and sound read back from recordings, waiting for them.
- ``browser``: headless Chromium through Playwright, and the page steps tests share.
- ``databases``: PostgreSQL and Redis on 127.0.0.1.
- ``processes``: the server as a child process, and the ``cunhui`` CLI.
"""
