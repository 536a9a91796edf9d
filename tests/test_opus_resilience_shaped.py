"""Speech survives a weak link: Opus with in-band FEC, measured on a link shaped by the kernel.

The server runs in one network namespace with an aiortc publisher beside it (a clean
link: the hall's camera), Chromium (headless, a real WebRTC stack and NetEq) in the
other, joined by a veth pair shaped as the issue's *weak* profile (300 kbit/s each way,
5 % random UDP loss each way, tests/support/shaped.py). Chromium watches audio only
(two audio m-lines: the meeting and the floor), plays it in an <audio> element, and
reads ``concealedSamples / totalSamplesReceived`` from getStats: the share of what it
played that NetEq had to invent because a packet was missing. With the meeting's
audio re-encoded once with in-band FEC (media/opus_fec.py), a lost packet is mostly
rebuilt from the next one. RTT is not shaped (no kernel tool for it here).

Runs where namespaces can be made and links shaped (root, iproute2, nftables).
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from playwright.async_api import async_playwright

from media.aiortc_hooks import restrict_host_addresses
from scripts.bench.peers import SpeechAudioTrack

from .support.api import PASSWORD, auth, server_env
from .support.browser import require_browser_sandbox
from .support.netlink import NamespacedServer, NamespaceLoop, chromium_in
from .support.peers import Publisher
from .support.processes import Remote, run_cli
from .support.shaped import LOSS_TABLE, PROFILES, Profile, ShapedLink, _nft, require_shaping

pytestmark = [pytest.mark.netns, pytest.mark.shaped]

PHONE = {"width": 360, "height": 740}

#: Chromium: an audio-only WHEP viewer (meeting audio + floor), played in an <audio>
WATCH_AUDIO = """async ([url]) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('audio', {direction: 'recvonly'});
  pc.addTransceiver('audio', {direction: 'recvonly'});
  const stream = new MediaStream();
  pc.ontrack = (e) => {
    stream.addTrack(e.track);
    const el = new Audio();
    el.muted = true;
    el.srcObject = new MediaStream([e.track]);
    el.play().catch(() => {});
    document.body.appendChild(el);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => {
    if (pc.iceGatheringState === 'complete') return ok();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok();
    setTimeout(ok, 3000);
  });
  const response = await fetch(url, {method: 'POST', body: pc.localDescription.sdp,
    headers: {'Content-Type': 'application/sdp'}});
  if (response.status !== 201) {
    throw new Error(`WHEP ${response.status}: ${await response.text()}`);
  }
  await pc.setRemoteDescription({type: 'answer', sdp: await response.text()});
  window.viewerPc = pc;
  return true;
}"""

#: the first (meeting) audio m-line's inbound-rtp figures, or null before it has any
AUDIO_STATS = """async () => {
  const stats = await window.viewerPc.getStats();
  let best = null;
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio' && s.mid === '0') best = s;
  });
  return best && {
    concealed: best.concealedSamples, total: best.totalSamplesReceived,
    silent: best.silentConcealedSamples, events: best.concealmentEvents,
    lost: best.packetsLost, received: best.packetsReceived, bytes: best.bytesReceived,
    jitterBufferDelay: best.jitterBufferDelay, emitted: best.jitterBufferEmittedCount,
  };
}"""


def _near_loss_on_the_link_only(link: ShapedLink, profile: Profile) -> None:
    """Drop only what arrives over the veth in ``near`` (the publisher beside the server
    talks to it over lo, which is the hall's clean link, not the viewer's weak one)."""
    _nft(
        link.near,
        f"table inet {LOSS_TABLE}\ndelete table inet {LOSS_TABLE}\n"
        f"table inet {LOSS_TABLE} {{\n"
        f'  chain in {{ type filter hook input priority 0; policy accept; iifname "v-near" '
        f"meta l4proto udp numgen random mod 100 < {profile.loss_percent} drop; }}\n"
        "}\n",
    )


async def _meeting(base: str) -> tuple[dict, str]:
    async with aiohttp.ClientSession(base_url=base) as http:
        login = await http.post("/api/login", json={"username": "clerk", "password": PASSWORD})
        token = (await login.json())["token"]
        async with http.post(
            "/api/meetings",
            json={"title": "村民大会", "allow_guests": True, "agenda": []},
            headers=auth(token),
        ) as response:
            meeting = await response.json()
        async with http.post(f"/api/meetings/{meeting['id']}/start", headers=auth(token)):
            pass
    return meeting, token


async def _publish(base: str, meeting_id: int, token: str, address: str) -> Publisher:
    restrict_host_addresses([address])
    publisher = Publisher(width=320, height=240, audio=False)
    publisher.pc.addTransceiver(SpeechAudioTrack(), direction="sendonly")  # Opus FEC needs a voice
    async with aiohttp.ClientSession() as http:
        await publisher.publish(Remote(http, base), meeting_id, token)
    return publisher


async def measure(
    tmp_path,
    profile: Profile,
    *,
    audio_fec: bool = True,
    audio_red: bool = True,
    seconds: float = 30.0,
) -> dict:
    """Chromium's audio continuity over ``seconds`` on ``profile``: the figures, as a dict."""
    env = {
        **server_env(tmp_path),
        "RECORD_MEETINGS": "0",
        "AUDIO_FEC": "1" if audio_fec else "0",
        "AUDIO_RED": "1" if audio_red else "0",
        "ICE_HOST_ADDRESSES": ShapedLink.NEAR_ADDRESS,
    }
    created = run_cli("admin", "create-user", "clerk", "--password", PASSWORD, env=env)
    assert created.returncode == 0, created.stderr
    with ShapedLink(profile) as link, NamespaceLoop(link.near) as near:
        _near_loss_on_the_link_only(link, profile)
        server = NamespacedServer(env, link.near, link.NEAR_ADDRESS, tmp_path / "server.log")
        server.launch()
        publisher = None
        try:
            await near.run(server.wait_ready())
            base = server.url
            meeting, token = await near.run(_meeting(base))
            publisher = await near.run(_publish(base, meeting["id"], token, link.NEAR_ADDRESS))
            async with async_playwright() as pw, chromium_in(pw, link.far, PHONE) as phone:
                page = await phone.new_page()
                await page.goto(base + "/healthz")
                await page.evaluate(WATCH_AUDIO, [f"{base}/whep/{meeting['id']}"])
                for _ in range(300):  # until it plays (generous: a busy machine)
                    first = await page.evaluate(AUDIO_STATS)
                    if first and first["total"] > 48000:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"no audio played: {first}")
                await asyncio.sleep(seconds)
                last = await page.evaluate(AUDIO_STATS)
                carried = link.counters()
        finally:
            if publisher is not None:
                await near.run(publisher.close())
            server.stop()
    total = last["total"] - first["total"]
    received = last["received"] - first["received"]
    lost = last["lost"] - first["lost"]
    return {
        "profile": profile.name,
        "rate_kbit": profile.rate_kbit,
        "loss_percent": profile.loss_percent,
        "audio_fec": audio_fec,
        "audio_red": audio_red,
        "seconds": seconds,
        "concealed_ratio": round((last["concealed"] - first["concealed"]) / total, 4),
        "concealment_events": last["events"] - first["events"],
        "packet_loss_ratio": round(lost / (lost + received), 4) if lost + received else None,
        "audio_kbit_s": round((last["bytes"] - first["bytes"]) * 8 / seconds / 1000, 1),
        "jitter_buffer_ms": round(
            1000
            * (last["jitterBufferDelay"] - first["jitterBufferDelay"])
            / max(1, last["emitted"] - first["emitted"]),
            1,
        ),
        "link": carried,
    }


async def test_speech_on_the_weak_profile_is_at_most_5_percent_concealed(tmp_path):
    require_browser_sandbox()
    require_shaping()
    figures = await measure(tmp_path, PROFILES["weak"], seconds=30)
    print(json.dumps(figures))
    assert figures["packet_loss_ratio"] > 0.02, figures  # the link did lose packets
    assert figures["concealed_ratio"] <= 0.05, figures
