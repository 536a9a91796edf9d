"""A weak mobile link, shaped by the kernel: rate with ``tc tbf``, random loss with nftables.

MEDIA-NOTES' recipe ("Weak links"): this kernel has no ``netem``, so the rate is a
token bucket on each end's egress and the loss is ``numgen random`` dropping packets
on each namespace's input hook (a drop on output would make ``sendto`` fail, which no
real network does; only packets that came in over the veth, not those on ``lo``, such
as a publisher's beside the server). By default only UDP is dropped: media suffers,
while signalling over TCP retransmits as it does on a real lossy radio link. RTT is not shaped (no
kernel tool for a fixed delay here); the tbf queue adds its own queueing delay.

    with ShapedLink(PROFILES["weak"]) as link:   # near = server, far = viewer
        ...
        link.shape(PROFILES["4g"])                # the link gets better, in place
        link.unshape()                            # a clean veth again

Every name and address lives only in the two namespaces the link creates and
deletes (also when the test fails).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

import pytest

from .netlink import LinkedNamespaces, ip, require_namespaces

__all__ = ["PROFILES", "Profile", "ShapedLink", "require_shaping"]

LOSS_TABLE = "cunhui_loss"


@dataclass(frozen=True)
class Profile:
    """A link: ``rate_kbit`` each way, ``loss_percent`` random loss each way."""

    name: str
    rate_kbit: int
    loss_percent: int
    #: drop TCP too (HTTP and socket.io then suffer as well), not only UDP
    lose_tcp: bool = False

    @property
    def burst(self) -> str:
        # at least a full-size packet and a tick's worth of tokens (HZ 250), as tbf wants
        return f"{max(16, self.rate_kbit // 60)}kbit"


#: the issue's profiles (issue 15): weak 300 kbit/s 5 %, very weak 100 kbit/s 10 %,
#: ordinary 4G 2 Mbit/s 1 %
PROFILES = {
    "weak": Profile("weak", 300, 5),
    "very_weak": Profile("very_weak", 100, 10),
    "4g": Profile("4g", 2000, 1),
}


def require_shaping() -> None:
    """Skip, loudly, where the link cannot be shaped (not root, no iproute2 or nftables)."""
    require_namespaces()
    if shutil.which("nft") is None or shutil.which("tc") is None:
        message = "SHAPED-LINK TEST NOT RUN: needs tc (iproute2) and nft (nftables)"
        print("\n" + "!" * 20 + " " + message)
        pytest.skip(message)


def _nft(netns: str, script: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", netns, "nft", "-f", "-"],
        input=script.encode(),
        check=True,
        capture_output=True,
        timeout=20,
    )


class ShapedLink(LinkedNamespaces):
    """:class:`LinkedNamespaces` whose veth pair is shaped to a :class:`Profile`."""

    def __init__(self, profile: Profile | None = None) -> None:
        super().__init__()
        self.profile = profile

    def __enter__(self) -> ShapedLink:
        super().__enter__()
        try:
            if self.profile is not None:
                self.shape(self.profile)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _ends(self) -> tuple[tuple[str, str], ...]:
        return ((self.near, "v-near"), (self.far, "v-far"))

    def shape(self, profile: Profile) -> None:
        """Rate and loss of ``profile`` on both directions, replacing any shaping before."""
        self.profile = profile
        for ns, dev in self._ends():
            ip("-n", ns, "link", "set", dev, "txqueuelen", "1000")
            subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns,
                    "tc",
                    "qdisc",
                    "replace",
                    "dev",
                    dev,
                    "root",
                    "tbf",
                    "rate",
                    f"{profile.rate_kbit}kbit",
                    "burst",
                    profile.burst,
                    "latency",
                    "400ms",
                ],  # fmt: skip
                check=True,
                capture_output=True,
                timeout=20,
            )
            # only what comes in over the link: traffic on lo (a publisher beside the
            # server, 127.0.0.1 <-> 10.213.14.1) passes the same input hook
            match = f'iifname "{dev}" ' + ("" if profile.lose_tcp else "meta l4proto udp ")
            _nft(
                ns,
                f"table inet {LOSS_TABLE}\ndelete table inet {LOSS_TABLE}\n"
                f"table inet {LOSS_TABLE} {{\n"
                f"  chain in {{ type filter hook input priority 0; policy accept; "
                f"{match}numgen random mod 100 < {profile.loss_percent} drop; }}\n"
                "}\n",
            )

    def unshape(self) -> None:
        """A clean link again (no rate limit, no loss)."""
        self.profile = None
        for ns, dev in self._ends():
            subprocess.run(
                ["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"],
                capture_output=True,
                timeout=20,
            )
            subprocess.run(
                ["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", LOSS_TABLE],
                capture_output=True,
                timeout=20,
            )

    def counters(self) -> dict[str, dict[str, int]]:
        """Bytes and packets sent and dropped by each end's tbf (what the link carried)."""
        out: dict[str, dict[str, int]] = {}
        for ns, dev in self._ends():
            shown = subprocess.run(
                ["ip", "netns", "exec", ns, "tc", "-s", "qdisc", "show", "dev", dev],
                capture_output=True,
                text=True,
                timeout=20,
            ).stdout
            words = shown.split()
            figures = {"sent_bytes": 0, "sent_packets": 0, "dropped": 0}
            if "Sent" in words:
                at = words.index("Sent")
                figures["sent_bytes"] = int(words[at + 1])
                figures["sent_packets"] = int(words[at + 3])
            if "(dropped" in words:
                figures["dropped"] = int(words[words.index("(dropped") + 1].rstrip(","))
            out[dev] = figures
        return out
