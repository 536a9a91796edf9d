"""Sessions negotiated but not yet connected, counted per client and in all.

Each such session holds UDP sockets, a DTLS context and ICE timers, and an
offer costs its sender nothing: anonymous WHEP offers that never connected
used up 1,024 descriptors in 9 s. A session holds its place from before the
offer is parsed until it connects or is closed (at the latest after
``MediaConfig.connect_timeout``), so the limits bound what a flood can hold.
"""

from __future__ import annotations

import math
import time

from .errors import TooManyPending


class PendingLimits:
    """At most ``per_client`` sessions connecting per client, ``total`` in all."""

    def __init__(self, per_client: int, total: int, timeout: float) -> None:
        self.per_client = per_client
        self.total = total
        self.timeout = timeout
        self._all: set[Reservation] = set()
        #: (publisher?, client) -> its reservations
        self._by_client: dict[tuple[bool, str], set[Reservation]] = {}

    def __len__(self) -> int:
        return len(self._all)

    def count(self, client: str, *, publisher: bool = False) -> int:
        return len(self._by_client.get((publisher, client), ()))

    def check(self, client: str | None, *, publisher: bool = False) -> None:
        """Raise :class:`TooManyPending` if :meth:`reserve` would (and reserve nothing).

        ``client`` is opaque (the caller's address); None counts in the total only.
        The client's own limit is checked first: a flood from one address hears
        429, not the 503 that everyone else would then hear. Publishers are
        counted apart from viewers, and count in the total but are never
        refused by it: viewers joining from the hall's Wi-Fi, or a flood from
        anywhere, must not keep the hall's camera (or the floor speaker) off the air.
        """
        mine = self._by_client.get((publisher, client)) if client is not None else None
        if mine is not None and len(mine) >= self.per_client:
            raise TooManyPending(
                f"{len(mine)} media sessions from your address are still connecting; "
                "connect or close one first",
                per_client=True,
                retry_after=_retry_after(mine),
            )
        if not publisher and len(self._all) >= self.total:
            raise TooManyPending(
                "too many media sessions are connecting; try again shortly",
                per_client=False,
                retry_after=_retry_after(self._all),
            )

    def reserve(self, client: str | None, *, publisher: bool = False) -> Reservation:
        """Hold a place for a new session of ``client`` (see :meth:`check`)."""
        self.check(client, publisher=publisher)
        key = (publisher, client) if client is not None else None
        reservation = Reservation(self, key, time.monotonic() + self.timeout)
        self._all.add(reservation)
        if key is not None:
            self._by_client.setdefault(key, set()).add(reservation)
        return reservation

    def _release(self, reservation: Reservation) -> None:
        self._all.discard(reservation)
        key = reservation.key
        mine = self._by_client.get(key) if key is not None else None
        if key is not None and mine is not None:
            mine.discard(reservation)
            if not mine:
                del self._by_client[key]


class Reservation:
    """A pending session's place; :meth:`release` it when it connects or closes (idempotent)."""

    __slots__ = ("_limits", "key", "expires")

    def __init__(self, limits: PendingLimits, key: tuple[bool, str] | None, expires: float) -> None:
        self._limits: PendingLimits | None = limits
        self.key = key
        self.expires = expires

    def release(self) -> None:
        limits, self._limits = self._limits, None
        if limits is not None:
            limits._release(self)


def _retry_after(reservations) -> float:
    """Whole seconds until the first of ``reservations`` ends at the latest (at least 1)."""
    soonest = min(r.expires for r in reservations)
    return max(1, math.ceil(soonest - time.monotonic()))
