// HLS playback: hls.js (from npm, /vendor/hls.js/, its light build: no subtitles,
// alternate audio or DRM, which we never use) where the browser has Media Source
// Extensions, the browser's own HLS (iOS Safari) otherwise. It is imported only
// when HLS actually plays. The watch page plays the live playlist with it (WebRTC
// cannot connect, or the viewer saves data); the replay page a recording's
// playlist until its MP4 is ready.
//
//   const hls = await playHls(videoElement, "/recordings/7/1/index.m3u8", {onFatal});
//   hls.stop();
//
// A master playlist with several renditions starts at its lowest one and climbs
// as the link allows (hls.js ABR); { pinLowest: true } stays on the lowest picture.

let HlsClass = null;
const MAX_RETRIES = 30; // network errors in a row before giving up (about a minute)
const RETRY_MS = 2000;

async function loadHls() {
  if (HlsClass === null) {
    try {
      HlsClass = (await import("/vendor/hls.js/hls.light.min.mjs")).default;
    } catch {
      HlsClass = undefined; // not installed or not loadable: native HLS only
    }
  }
  return HlsClass;
}

/** True when this browser can play HLS natively (Safari on iOS and macOS). */
export function nativeHls(video) {
  return Boolean(video.canPlayType("application/vnd.apple.mpegurl"));
}

/**
 * Play the HLS playlist `url` in `video`: near the live edge (`live`), else from
 * `startPosition` seconds (hls.js only: with native HLS the caller seeks once
 * "loadedmetadata" fires). Requests carry the page's cookies (same origin), which
 * is how members sign in.
 * @returns {Promise<{stop(): void, kind: "hls.js" | "native"}>} rejects when HLS cannot play here
 */
export async function playHls(
  video,
  url,
  { onFatal, live = true, startPosition = -1, pinLowest = false } = {},
) {
  const Hls = await loadHls();
  if (Hls && Hls.isSupported()) {
    // (no worker: the ES module build would fetch another 118 KB for it; these
    // streams are small enough to remux on the page)
    const hls = new Hls(live
      ? { liveSyncDurationCount: 2, lowLatencyMode: false, enableWorker: false, startLevel: 0 }
      : { startPosition, maxBufferLength: 30, enableWorker: false, startLevel: 0 });
    if (pinLowest) {
      hls.on(Hls.Events.MANIFEST_PARSED, () => {
        // the lowest rendition with a picture (hls.js keeps video variants only
        // when a master has both); -1 when the playlist has one rendition anyway
        if (hls.levels.length > 1) {
          hls.autoLevelCapping = 0;
          hls.currentLevel = 0;
        }
      });
    }
    let retries = 0;
    let retryTimer = null;
    let destroyed = false;
    hls.on(Hls.Events.ERROR, (event, data) => {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.NETWORK_ERROR && retries < MAX_RETRIES) {
        // a dropped request, or a playlist not written yet: ask again, a little later
        retries += 1;
        clearTimeout(retryTimer);
        retryTimer = setTimeout(() => {
          if (destroyed) return;
          if (data.details === Hls.ErrorDetails.MANIFEST_LOAD_ERROR) hls.loadSource(url);
          else hls.startLoad();
        }, RETRY_MS);
      } else if (data.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else onFatal?.(data);
    });
    hls.on(Hls.Events.FRAG_LOADED, () => {
      retries = 0;
    });
    hls.loadSource(url);
    hls.attachMedia(video);
    return {
      kind: "hls.js",
      /** the rendition playing now: {height, bitrate} (hls.js only), or null */
      get level() {
        const level = hls.levels && hls.levels[hls.currentLevel];
        return level ? { height: level.height || 0, bitrate: level.bitrate || 0 } : null;
      },
      stop() {
        destroyed = true;
        clearTimeout(retryTimer); // a retry must not touch a destroyed player
        hls.destroy();
        video.removeAttribute("src");
      },
    };
  }
  if (nativeHls(video)) {
    video.srcObject = null;
    video.src = url;
    return {
      kind: "native",
      stop() {
        video.pause();
        video.removeAttribute("src");
        video.load();
      },
    };
  }
  throw new Error("HLS is not supported in this browser");
}
