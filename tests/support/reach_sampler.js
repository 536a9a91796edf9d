// Added to every page the member's phone opens (tests/support/reach.py, SAMPLER): the
// receive figures of all the page's peer connections, every 250 ms, in window.__reach.
// Counters are summed over connections and never go back when the page replaces one;
// t is ms since the navigation's start.
(() => {
  const Native = window.RTCPeerConnection;
  const reach = (window.__reach = { pcs: 0, series: [], modes: [] });
  if (!Native) return;
  const pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) { super(...args); pcs.push(this); reach.pcs = pcs.length; }
  };
  const COUNTERS = {
    audio: ["totalSamplesReceived", "concealedSamples", "silentConcealedSamples",
            "concealmentEvents", "packetsReceived", "packetsLost", "bytesReceived",
            "fecPacketsReceived", "fecPacketsDiscarded"],
    video: ["framesDecoded", "framesReceived", "framesDropped", "packetsReceived",
            "packetsLost", "bytesReceived", "freezeCount", "totalFreezesDuration"],
    transport: ["bytesReceived", "bytesSent"],
    element: ["secondsPlayed"],  // media elements without a srcObject (HLS), as played
  };
  const positions = new WeakMap();
  let hlsSound = false, hlsPicture = false;
  const elements = () => {
    for (const el of document.querySelectorAll("video, audio")) {
      if (el.srcObject) continue;
      const before = positions.get(el), now = el.currentTime;
      if (before != null && !el.paused && now > before && now - before < 5)
        totals["element.secondsPlayed"] += now - before;
      positions.set(el, now);
      if (!el.paused && now > 0 && el.webkitAudioDecodedByteCount > 0) hlsSound = true;
      if (now > 0 && (el.getVideoPlaybackQuality?.().totalVideoFrames ?? 0) > 0)
        hlsPicture = true;
    }
  };
  const totals = {};
  for (const [kind, names] of Object.entries(COUNTERS))
    for (const name of names) totals[kind + "." + name] = 0;
  const last = new Map();
  const add = (key, kind, stat) => {
    for (const name of COUNTERS[kind]) {
      const value = stat[name];
      if (typeof value !== "number") continue;
      const before = last.get(key + name) ?? 0;
      totals[kind + "." + name] += value >= before ? value - before : value;
      last.set(key + name, value);
    }
  };
  const body = () => document.body ? document.body.dataset : {};
  let busy = false;
  async function sample() {
    if (busy) return;
    busy = true;
    let fps = null, jitter = null, width = null;
    try {
      for (const [i, pc] of pcs.entries()) {
        if (pc.connectionState === "closed") continue;
        let report;
        try { report = await pc.getStats(); } catch { continue; }
        report.forEach((s) => {
          if (s.type === "inbound-rtp" && (s.kind === "audio" || s.kind === "video")) {
            if (!s.packetsReceived) return;  // an m-line that carries nothing (the floor)
            add(`${i}/${s.id}/`, s.kind, s);
            if (s.kind === "video" && typeof s.framesPerSecond === "number")
              fps = Math.max(fps ?? 0, s.framesPerSecond);
            if (s.kind === "video" && s.frameWidth) width = s.frameWidth;
            if (s.kind === "audio" && typeof s.jitter === "number") jitter = s.jitter;
          } else if (s.type === "transport") {
            add(`${i}/${s.id}/`, "transport", s);
          }
        });
      }
      elements();
    } finally { busy = false; }
    const d = body();
    const t = performance.now();
    reach.series.push({ t, fps, jitter, width, mode: d.mode ?? null,
                        reason: d.modeReason ?? null, state: d.state ?? null, ...totals });
    const mode = d.mode ?? null, reason = d.modeReason ?? null;
    const previous = reach.modes[reach.modes.length - 1];
    if (!previous || previous.mode !== mode || previous.reason !== reason)
      reach.modes.push({ t, mode, reason });
    const webrtcSound = totals["audio.totalSamplesReceived"] > 0;
    if (reach.firstSoundAt == null && (webrtcSound || hlsSound)) {
      reach.firstSoundAt = t;
      reach.firstSoundVia = webrtcSound ? "webrtc" : "hls";
    }
    if (reach.firstPictureAt == null && (totals["video.framesDecoded"] > 0 || hlsPicture))
      reach.firstPictureAt = t;
    if (reach.series.length > 4 * 60 * 20) reach.series.splice(0, 4 * 60);  // at most 20 min
  }
  setInterval(sample, 250);
})();
