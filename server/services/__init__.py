"""Domain logic: plain async functions over a database session.

Nothing here imports aiohttp, socket.io or aiortc, so it is tested without a server.
"""
