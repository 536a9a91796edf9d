// The host's camera and microphone: open them, show the preview, switch between the
// front and back cameras (without renegotiating), reopen a camera taken away.

import { $ } from "../../lib/dom.js";
import { t } from "../../lib/i18n.js";

const AUDIO_CONSTRAINTS = { echoCancellation: true, noiseSuppression: true };

function videoConstraints(mode, exact = false) {
  return {
    facingMode: exact ? { exact: mode } : mode,
    width: { ideal: 1280 },
    height: { ideal: 720 },
    frameRate: { ideal: 30 },
  };
}

/** Why the camera could not open, in the reader's words. */
export function cameraErrorMessage(error) {
  if (!window.isSecureContext) return t("insecure");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return t("no_webrtc");
  switch (error && error.name) {
    case "NotAllowedError":
    case "SecurityError":
    case "PermissionDeniedError":
      return t("camera_denied");
    case "NotFoundError":
    case "DevicesNotFoundError":
    case "OverconstrainedError":
      return t("camera_missing");
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return t("camera_busy");
    default:
      return t("camera_failed");
  }
}

async function openCamera(mode) {
  // Try the exact camera first; a phone with one camera falls back to what it has.
  try {
    return await navigator.mediaDevices.getUserMedia({ video: videoConstraints(mode, true) });
  } catch (error) {
    if (error.name !== "OverconstrainedError" && error.name !== "NotFoundError") throw error;
    return navigator.mediaDevices.getUserMedia({ video: videoConstraints(mode) });
  }
}

/**
 * @param {object} options publisher() the WHIP publisher while sending (or null);
 *                         onError(message) a camera problem to show the clerk
 */
export function createCamera({ publisher, onError }) {
  const preview = $("preview");
  const switchButton = $("switch-camera");
  let facingMode = "environment"; // the hall, not the clerk's face
  let stream = null; // our audio + video tracks

  function updateLabel() {
    // The button says where it switches to.
    $("switch-camera-label").textContent = facingMode === "user" ? t("back") : t("front");
    preview.classList.toggle("mirrored", facingMode === "user");
  }

  function showPreview() {
    const video = stream && stream.getVideoTracks()[0];
    preview.srcObject = video ? new MediaStream([video]) : null;
    $("preview-placeholder").hidden = Boolean(video);
    if (video) preview.play().catch(() => {});
    updateLabel();
  }

  async function useVideoTrack(track) {
    const old = stream.getVideoTracks()[0];
    if (old && old !== track) {
      stream.removeTrack(old);
      old.stop();
    }
    stream.addTrack(track);
    watchVideoTrack(track);
    showPreview();
    if (publisher()) await publisher().replaceVideoTrack(track);
  }

  async function reopen(mode) {
    const camera = await openCamera(mode);
    await useVideoTrack(camera.getVideoTracks()[0]);
  }

  function watchVideoTrack(track) {
    if (!track) return;
    // The camera can be taken away (another app, a phone call): reopen it while live.
    track.addEventListener("ended", async () => {
      if (!stream || !stream.getVideoTracks().includes(track) || !publisher()) return;
      try {
        await reopen(facingMode);
      } catch (error) {
        onError(cameraErrorMessage(error));
      }
    });
  }

  async function refreshCameraCount() {
    try {
      const devices = await navigator.mediaDevices.enumerateDevices();
      const cameras = devices.filter((d) => d.kind === "videoinput").length;
      switchButton.hidden = cameras === 1;
    } catch {
      // keep the button
    }
  }

  function stop() {
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    showPreview();
  }

  /** The camera and microphone, opened if need be; rejects as getUserMedia does. */
  async function acquire() {
    if (stream) {
      if (stream.getTracks().every((track) => track.readyState === "live")) return stream;
      stop(); // a camera or microphone went away: open both again
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw Object.assign(new Error("getUserMedia is not available"), { name: "NotSupportedError" });
    }
    stream = await navigator.mediaDevices.getUserMedia({
      video: videoConstraints(facingMode),
      audio: AUDIO_CONSTRAINTS,
    });
    watchVideoTrack(stream.getVideoTracks()[0]);
    showPreview();
    refreshCameraCount();
    return stream;
  }

  async function switchCamera() {
    const next = facingMode === "user" ? "environment" : "user";
    if (!stream) {
      facingMode = next;
      updateLabel();
      return;
    }
    switchButton.disabled = true;
    // Most phones cannot open two cameras at once: let go of the current one first.
    const old = stream.getVideoTracks()[0];
    if (old) old.stop();
    try {
      const camera = await openCamera(next);
      facingMode = next;
      await useVideoTrack(camera.getVideoTracks()[0]);
    } catch (error) {
      console.warn("switching the camera failed", error);
      try {
        await reopen(facingMode);
      } catch (again) {
        console.warn("reopening the camera failed", again);
      }
      onError(`${t("switch_failed")} ${cameraErrorMessage(error)}`);
    } finally {
      switchButton.disabled = false;
    }
  }

  switchButton.addEventListener("click", switchCamera);

  return {
    acquire,
    stop,
    updateLabel,
    get stream() {
      return stream;
    },
  };
}
