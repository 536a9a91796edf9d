"""Every use of aiortc/aioice internals lives in this package, so an upgrade breaks in one place.

One module per concern: :mod:`.ice` (host candidates), :mod:`.receive`
(encoded frames from a receiver), :mod:`.keyframes` (PLI/FIR), :mod:`.codecs`
(narrowing the answer) and :mod:`.forward` (sending packetised frames).
Importing patches nothing: :func:`install_aiortc_patches` does, once per
process (the app factory calls it; so must any other program that receives
encoded media without the app). aiortc is pinned exactly in pyproject.toml;
``tests/test_aiortc_hooks.py`` fails loudly if a hook no longer attaches.
"""

from __future__ import annotations

from . import receive
from .codecs import add_red, negotiated_codecs, restrict_codecs
from .forward import Packetizer, RtpForwarder, packetizer
from .gaps import fresh_after_gaps
from .ice import host_addresses_hook_attached, restrict_host_addresses
from .keyframes import media_ssrc, on_keyframe_request, send_pli
from .receive import encoded_hook_attached, receive_encoded


def install_aiortc_patches() -> None:
    """Patch aiortc for media/, process-wide; calling it again changes nothing.

    Today one patch: receivers hand over encoded frames for the tracks given to
    :func:`receive_encoded`. (ICE host addresses are set apart, from
    :class:`~media.MediaConfig`, by :class:`~media.MediaHub`.)
    """
    receive.install()


__all__ = [
    "Packetizer",
    "RtpForwarder",
    "add_red",
    "encoded_hook_attached",
    "fresh_after_gaps",
    "host_addresses_hook_attached",
    "install_aiortc_patches",
    "media_ssrc",
    "negotiated_codecs",
    "on_keyframe_request",
    "packetizer",
    "receive_encoded",
    "restrict_codecs",
    "restrict_host_addresses",
    "send_pli",
]
