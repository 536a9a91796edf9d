"""Cunhui's server: HTTP API, socket.io, domain services and storage."""
