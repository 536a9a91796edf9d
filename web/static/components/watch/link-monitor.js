// Is the link good enough for the picture? The watch page's own receive statistics
// (RTCPeerConnection.getStats, inbound-rtp and the candidate pair), once a second.
//
// With the picture: "weak" when, over the last few seconds, the video loses packets
// (15 % or more) or the sound does (12 % or more), or the picture stays (nearly)
// frozen while packets arrive and some get lost, on two checks in a row. Measured on links shaped by
// the kernel (tc tbf + nftables, /work/notes/C-watch.md): at 300 kbit/s with 5 % loss
// the 720p video loses ~50 % of its packets and the sound ~25 % within two seconds;
// on 4G (2 Mbit/s, 1 % loss) both stay near 1 %.
// With the sound only: "clean" seconds in a row (sound losing under 3 %, jitter under
// 30 ms): the page offers the picture again after a while.
//
//   const monitor = watchLink({ pc: () => viewer?.pc, mode: () => "video", … });

const SAMPLE_MS = 1000;
/** seconds compared: the window's first sample and its last */
const WINDOW = 3;

export const WEAK = {
  videoLoss: 0.15, // share of video packets lost in the window
  audioLoss: 0.12, // share of sound packets lost in the window
  minFps: 5, // frames decoded a second while video packets arrive and some get lost…
  frozenLoss: 0.05, // …at least this share (a picture frozen on a clean link is the sender's)…
  frozenAfter: 6, // …once the connection is this many seconds old
  minPackets: 20, // fewer packets in the window say nothing
  checks: 2, // weak checks in a row before switching
};
export const CLEAN = { audioLoss: 0.03, jitter: 0.03 };

function emptyKind() {
  return { packets: 0, lost: 0, bytes: 0, frames: 0, freezes: 0, jitter: 0, top: -1, concealed: 0, samples: 0 };
}

/** One snapshot of what has arrived on `pc`: totals per kind, and the link's estimate. */
export async function snapshot(pc) {
  const stats = await pc.getStats();
  const out = { at: performance.now(), audio: emptyKind(), video: emptyKind(), availableIn: null };
  stats.forEach((report) => {
    if (report.type === "inbound-rtp" && (report.kind === "audio" || report.kind === "video")) {
      const kind = out[report.kind];
      kind.packets += report.packetsReceived || 0;
      kind.lost += Math.max(0, report.packetsLost || 0);
      kind.bytes += report.bytesReceived || 0;
      kind.frames += report.framesDecoded || 0;
      kind.freezes += report.freezeCount || 0;
      kind.concealed += report.concealedSamples || 0;
      kind.samples += report.totalSamplesReceived || 0;
      // the busiest stream's jitter (the floor's m-line is silent most of the time)
      if ((report.packetsReceived || 0) > kind.top) {
        kind.top = report.packetsReceived || 0;
        kind.jitter = report.jitter || 0;
      }
    } else if (report.type === "candidate-pair" && report.nominated && report.state === "succeeded") {
      if (typeof report.availableIncomingBitrate === "number") {
        out.availableIn = report.availableIncomingBitrate;
      }
    }
  });
  return out;
}

function lossShare(first, last) {
  const lost = last.lost - first.lost;
  const got = last.packets - first.packets;
  const total = lost + got;
  return total >= WEAK.minPackets ? lost / total : null;
}

/** What the window from `first` to `last` says: the figures, and why it is weak (or ""). */
export function judge(first, last, { video, connectedFor }) {
  const seconds = Math.max(0.001, (last.at - first.at) / 1000);
  const figures = {
    videoLoss: lossShare(first.video, last.video),
    audioLoss: lossShare(first.audio, last.audio),
    fps: (last.video.frames - first.video.frames) / seconds,
    videoPackets: last.video.packets - first.video.packets,
    jitter: last.audio.jitter,
    kbps: Math.round(
      ((last.audio.bytes + last.video.bytes - first.audio.bytes - first.video.bytes) * 8) /
        seconds /
        1000,
    ),
    availableIn: last.availableIn,
  };
  let weak = "";
  if (video && figures.videoLoss !== null && figures.videoLoss >= WEAK.videoLoss) weak = "video-loss";
  else if (figures.audioLoss !== null && figures.audioLoss >= WEAK.audioLoss) weak = "audio-loss";
  else if (
    video &&
    connectedFor >= WEAK.frozenAfter &&
    figures.videoPackets > 0 &&
    figures.videoLoss !== null &&
    figures.videoLoss >= WEAK.frozenLoss &&
    figures.fps < WEAK.minFps
  ) {
    weak = "frozen";
  }
  const clean =
    !weak &&
    figures.audioLoss !== null &&
    figures.audioLoss < CLEAN.audioLoss &&
    figures.jitter < CLEAN.jitter;
  return { figures, weak, clean };
}

/**
 * Watch the viewer's statistics once a second.
 * @param {object} options pc() the viewer's peer connection (or null);
 *   mode() "video" | "audio" (anything else: not watched); expectVideo() the host sends video;
 *   onWeak(why, figures) the picture cannot keep up; onClean(seconds, figures) the sound has
 *   been clean for `seconds`; onSample(figures) every check
 * @returns {{reset(): void, get last(): object|null}}
 */
export function watchLink(options) {
  let samples = [];
  let weakChecks = 0;
  let cleanSince = null;
  let connectedAt = null;
  let lastPc = null;
  let last = null;

  function reset() {
    samples = [];
    weakChecks = 0;
    cleanSince = null;
    connectedAt = null;
  }

  async function check() {
    const pc = options.pc();
    const mode = options.mode();
    if (pc !== lastPc) {
      lastPc = pc;
      reset();
    }
    if (!pc || pc.connectionState !== "connected" || (mode !== "video" && mode !== "audio")) {
      if (!pc || pc.connectionState !== "connected") connectedAt = null;
      samples = [];
      weakChecks = 0;
      cleanSince = null;
      return;
    }
    if (connectedAt === null) connectedAt = performance.now();
    let sample;
    try {
      sample = await snapshot(pc);
    } catch {
      return;
    }
    if (pc !== options.pc()) return; // switched meanwhile
    samples.push(sample);
    if (samples.length > WINDOW + 1) samples.shift();
    if (samples.length < 2) return;
    const video = mode === "video" && options.expectVideo();
    const verdict = judge(samples[0], sample, {
      video,
      connectedFor: (sample.at - connectedAt) / 1000,
    });
    last = { ...verdict.figures, weak: verdict.weak, clean: verdict.clean, mode };
    options.onSample?.(last);
    if (mode === "video") {
      weakChecks = verdict.weak ? weakChecks + 1 : 0;
      if (weakChecks >= WEAK.checks) {
        weakChecks = 0;
        options.onWeak?.(verdict.weak, last);
      }
    } else {
      if (!verdict.clean) cleanSince = null;
      else if (cleanSince === null) cleanSince = sample.at;
      const seconds = cleanSince === null ? 0 : (sample.at - cleanSince) / 1000;
      options.onClean?.(seconds, last);
    }
  }

  let busy = false;
  setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      await check();
    } finally {
      busy = false;
    }
  }, SAMPLE_MS);

  return {
    reset,
    get last() {
      return last;
    },
  };
}
