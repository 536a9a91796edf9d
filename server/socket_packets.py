"""socket.io packets checked as they are decoded: hostile ones become a refusal, not a crash.

python-socketio decodes every client packet with ``json.loads`` and indexes the
result before any handler runs: a deeply nested array (``RecursionError``), an
integer of thousands of digits (``ValueError``), an event that is not a list
(``KeyError``) or an over-long packet id each raised inside the library, lost the
client's ack and logged a traceback. :class:`CheckedPacket` (``AsyncServer(
serializer=CheckedPacket, json=CheckedJSON)``) decodes with the same checks as
HTTP bodies (services/payload.py) and turns any such packet into the event
:data:`REFUSED_EVENT`, whose ack is ``{"ok": false, "error": {"code": "bad_request"}}``
(:func:`check_event`, called by the namespace's ``trigger_event``).
"""

from __future__ import annotations

import json

from socketio import packet as sio_packet

from .errors import BadRequest
from .services import payload

#: the event a refused packet becomes (no client can name it: a NUL is refused)
REFUSED_EVENT = "\x00refused"
#: events the server raises itself; a client sending one is refused
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error"})


class RefusedJSON(ValueError):
    """A packet's JSON that ``payload.loads`` refused (a ValueError: engine.io expects one)."""


class CheckedJSON:
    """The ``json`` module engine.io and socket.io decode with: ``payload.loads``'s checks."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(text, *args, **kwargs):
        try:
            return payload.loads(text, "the event's payload")
        except BadRequest as exc:
            raise RefusedJSON(exc.message) from None


class CheckedPacket(sio_packet.Packet):
    """A socket.io packet whose hostile content is refused, never raised inside the library."""

    json = CheckedJSON
    #: set by the library's decoding (it has no type information)
    packet_type: int

    def decode(self, encoded_packet):
        try:
            count = super().decode(encoded_packet)
        except RefusedJSON as exc:
            return self._refuse(str(exc))
        except (ValueError, TypeError, IndexError, RecursionError):
            # a broken header (packet type, attachments, namespace, id): nothing to answer
            self.id = None
            return self._refuse("the packet is not a socket.io packet")
        if self.packet_type in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
            data = self.data
            if not (isinstance(data, list) and data and isinstance(data[0], str)):
                return self._refuse("an event is a list: [name, payload]")
            if data[0] in RESERVED_EVENTS:
                return self._refuse(f"{data[0]!r} is not an event a client sends")
        return count

    def _refuse(self, reason: str) -> int:
        if self.packet_type not in (sio_packet.EVENT, sio_packet.BINARY_EVENT, sio_packet.CONNECT):
            self.packet_type = sio_packet.EVENT
        if self.packet_type == sio_packet.CONNECT:
            self.data = None  # hostile auth: the connection is anonymous
        else:
            self.packet_type = sio_packet.EVENT  # no attachments are waited for
            self.data = [REFUSED_EVENT, reason]
        return 0


def check_event(event: str, args: tuple) -> BadRequest | None:
    """Why a client event must be refused (None: pass it on). ``args`` is (sid, payload...)."""
    if event in RESERVED_EVENTS:
        return None  # raised by the server itself (client ones became REFUSED_EVENT)
    if event == REFUSED_EVENT:
        # the decoder's reason (CheckedPacket._refuse) is technical: it follows a translated lead
        reason = str(args[1])[:200] if len(args) > 1 else "-"
        return BadRequest("the packet was refused: {reason}", params={"reason": reason})
    if len(args) > 2:
        return BadRequest("an event carries one payload (a JSON object)")
    try:
        payload.check(args[1] if len(args) > 1 else None, "the event's payload")
    except BadRequest as exc:
        return exc
    return None
