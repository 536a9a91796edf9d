// A connection can look fine while nothing arrives (the server restarted, the
// network changed under us): if the host is sending but no media came for about
// 10 s, start over.

const STALL_CHECK_MS = 2500;
const STALL_CHECKS = 4;

async function inboundBytes(pc) {
  let bytes = 0;
  const stats = await pc.getStats();
  stats.forEach((report) => {
    if (report.type === "inbound-rtp") bytes += report.bytesReceived || 0;
  });
  return bytes;
}

/**
 * @param {() => object|null} viewer the WHEP player (whep.js), while there is one
 * @param {() => boolean} expecting media should be arriving (playing, and the host sends)
 */
export function watchForStalls(viewer, expecting) {
  let lastBytes = -1;
  let stalledChecks = 0;
  setInterval(async () => {
    const pc = viewer() && viewer().pc;
    if (!pc || !expecting() || pc.connectionState !== "connected") {
      stalledChecks = 0;
      lastBytes = -1;
      return;
    }
    let bytes;
    try {
      bytes = await inboundBytes(pc);
    } catch {
      return;
    }
    stalledChecks = bytes === lastBytes ? stalledChecks + 1 : 0;
    lastBytes = bytes;
    if (stalledChecks >= STALL_CHECKS && viewer()) {
      stalledChecks = 0;
      lastBytes = -1;
      viewer().restart();
    }
  }, STALL_CHECK_MS);
}
