// WHIP / WHEP plumbing shared by whip.js and whep.js: one HTTP offer/answer
// exchange per peer connection (non-trickle: the offer waits for ICE
// gathering, at most a couple of seconds), and a session that keeps itself
// alive by starting over with a new peer connection when the network drops.
//
// No DOM here, so anything that publishes or plays (the host's camera, the
// floor speaker's microphone, viewers) can reuse it.

import { ApiError, errorFromResponse, networkError } from "./api.js";

/** Resolve when ICE gathering is complete, or after `timeoutMs` (whatever was gathered is used). */
export function waitForIceGathering(pc, timeoutMs = 2000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    let timer = null;
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onState);
      pc.removeEventListener("icecandidate", onCandidate);
      resolve();
    };
    const onState = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const onCandidate = (event) => {
      if (!event.candidate) done();
    };
    timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", onState);
    pc.addEventListener("icecandidate", onCandidate);
  });
}

const LOOPBACK = /^(127\.|::1$|localhost$)/;

/**
 * Whether an offer may connect: one gathered while the network was down has only
 * loopback candidates (which count only when the page itself came over loopback) and
 * would never connect. An offer with no candidates at all is usable while the browser
 * says it is online: on a plain-HTTP page Chromium may offer none and still connect (to
 * the server's candidates, which then see ours as peer-reflexive).
 */
export function hasUsableCandidate(
  sdp,
  pageHost = globalThis.location?.hostname || "",
  online = globalThis.navigator?.onLine === true,
) {
  const loopbackPage = LOOPBACK.test(pageHost.replace(/^\[|\]$/g, ""));
  let candidates = 0;
  for (const line of sdp.split(/\r?\n/)) {
    if (!line.startsWith("a=candidate:")) continue;
    candidates += 1;
    const address = line.split(" ")[4] || "";
    if (loopbackPage || !LOOPBACK.test(address)) return true;
  }
  return candidates === 0 && online;
}

/**
 * ICE servers from the `Link` headers of a WHIP/WHEP answer (RFC 9725 §4.6):
 *   <turn:turn.example.net?transport=udp>; rel="ice-server"; username="u"; credential="p"
 * Several headers arrive joined by ", ".
 */
export function parseIceServerLinks(value) {
  const servers = [];
  if (!value) return servers;
  const linkPattern = /<([^>]*)>((?:\s*;\s*[^;,=\s]+(?:\s*=\s*(?:"(?:[^"\\]|\\.)*"|[^;,\s]*))?)*)/g;
  const paramPattern = /;\s*([^;,=\s]+)(?:\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;,\s]*)))?/g;
  for (const link of value.matchAll(linkPattern)) {
    const params = {};
    for (const param of link[2].matchAll(paramPattern)) {
      const raw = param[2] !== undefined ? param[2].replace(/\\(.)/g, "$1") : param[3] || "";
      params[param[1].toLowerCase()] = raw;
    }
    if ((params.rel || "").toLowerCase().split(/\s+/).includes("ice-server")) {
      const server = { urls: link[1] };
      if (params.username) server.username = params.username;
      if (params.credential) server.credential = params.credential;
      servers.push(server);
    }
  }
  return servers;
}

function withTimeout(timeoutMs) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}

/**
 * POST an SDP offer to a WHIP/WHEP endpoint.
 * Resolves with {answer, location, etag, iceServers}; rejects with ApiError
 * (status 0 when the network failed or the server did not answer in time).
 */
export async function exchangeSdp(url, offerSdp, { headers = {}, timeoutMs = 15000 } = {}) {
  const timeout = withTimeout(timeoutMs);
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", ...headers },
      body: offerSdp,
      credentials: "same-origin",
      signal: timeout.signal,
    });
  } catch (exc) {
    throw networkError();
  } finally {
    timeout.clear();
  }
  if (response.status !== 201 && response.status !== 200) {
    throw await errorFromResponse(response);
  }
  const answer = await response.text();
  const base = response.url || new URL(url, globalThis.location && globalThis.location.href).href;
  const locationHeader = response.headers.get("Location");
  return {
    answer,
    location: locationHeader ? new URL(locationHeader, base).href : null,
    etag: response.headers.get("ETag"),
    iceServers: parseIceServerLinks(response.headers.get("Link")),
  };
}

/**
 * DELETE a WHIP/WHEP session resource; never throws. Resolves with the HTTP status
 * (404: the server had already closed it), or 0 when the network failed or it took
 * longer than `timeoutMs`. `keepalive` lets the request outlive the page.
 */
export async function deleteResource(location, { headers = {}, keepalive = true, timeoutMs = 5000 } = {}) {
  if (!location) return 0;
  const timeout = withTimeout(timeoutMs);
  try {
    const response = await fetch(location, {
      method: "DELETE",
      headers,
      credentials: "same-origin",
      keepalive,
      signal: timeout.signal,
    });
    return response.status;
  } catch {
    return 0; // the server also closes sessions whose peer goes away
  } finally {
    timeout.clear();
  }
}

/**
 * How much the other end has answered: RTT measurements from its RTCP receiver reports
 * (they need our media to reach it, and its reports to reach us), else bytes received
 * on the nominated candidate pairs; 0 if unknown. Only ever compared with itself.
 */
async function heard(pc) {
  try {
    let rtts = 0;
    let bytes = 0;
    let measured = false;
    (await pc.getStats()).forEach((report) => {
      if (report.type === "remote-inbound-rtp" && report.roundTripTimeMeasurements !== undefined) {
        measured = true;
        rtts += report.roundTripTimeMeasurements;
      } else if (report.type === "candidate-pair" && report.nominated) {
        bytes += report.bytesReceived || 0;
      }
    });
    return measured ? rtts : bytes;
  } catch {
    return 0;
  }
}

/** Exponential backoff with jitter: 1 s, 2 s, 4 s … up to `max`. */
export class Backoff {
  constructor({ base = 1000, max = 15000 } = {}) {
    this.base = base;
    this.max = max;
    this.attempt = 0;
  }

  next() {
    const delay = Math.min(this.max, this.base * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(delay * (0.8 + Math.random() * 0.4));
  }

  reset() {
    this.attempt = 0;
  }
}

/** The server's `retry_after` (seconds) as milliseconds, with jitter so a crowd spreads out; 0 if none. */
export function retryAfterMs(error) {
  const seconds = error instanceof ApiError ? Number(error.details?.retry_after) : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) return 0;
  return Math.round(Math.min(seconds, 60) * 1000 * (1 + Math.random() * 0.5));
}

/** Errors worth trying again: the network, time-outs, rate limits and server failures. */
export function isRetryable(error) {
  if (!(error instanceof ApiError)) return true;
  return error.status === 0 || error.status === 408 || error.status === 429 || error.status >= 500;
}

/**
 * One WHIP or WHEP session that survives network trouble.
 *
 * options:
 *   setup(pc)        add transceivers / handlers to a new peer connection (called per attempt)
 *   onState(state, detail)  "connecting" | "connected" | "reconnecting" | "failed" | "closed";
 *                    detail is the Error that caused "reconnecting" or "failed"
 *   onConnected(pc)  after each successful connection (e.g. to cap the bitrate)
 *   headers          extra request headers (e.g. {Authorization: "Bearer …"})
 *   iceServers       initial ICE servers (default none; the server's Link headers are used next time)
 *   gatherTimeout    ms to wait for ICE gathering (default 2000)
 *   disconnectGrace  ms a "disconnected" connection may take to recover before starting over (5000)
 *   connectTimeout   ms from the answer to "connected" before starting over (20000)
 *   backoff          {base, max} in ms
 *   followNetwork    follow the browser's online/offline events: while offline, a lost
 *                    connection is kept (it often comes back by itself when the network
 *                    does); when the network comes back or changes ("online"), start over
 *                    at once unless the connection is heard again within networkCheck ms
 *   networkCheck     ms (default 2500), see followNetwork
 *   shouldRetry({error, gone})  optional, may be async: called before starting over after a
 *                    lost connection; `gone` is true when the server had already closed the
 *                    session (e.g. another publisher replaced it). Return false to stop
 *                    instead: the state becomes "failed" with error.code "not_retried".
 */
export class HttpPeerSession {
  constructor(url, options = {}) {
    this.url = url;
    this.options = options;
    this.state = "new";
    this.pc = null;
    this.location = null;
    this._iceServers = options.iceServers || [];
    this._generation = 0;
    this._stopped = false;
    this._retryTimer = null;
    this._graceTimer = null;
    this._connectTimer = null;
    this._attempt = null; // the generation of the attempt under way (offer → "connected")
    this._answeredAt = null; // when that attempt's offer was answered (Date.now())
    this._backoff = new Backoff(options.backoff);
    this._onOnline = () => {
      if (this._retryTimer !== null) this.restart();
      else if (this.options.followNetwork) this._networkBack();
    };
    globalThis.addEventListener?.("online", this._onOnline);
  }

  /** Start the first connection. */
  start() {
    this._setState("connecting");
    this._connect();
    return this;
  }

  /** Drop the current connection and start a new one now (e.g. after the network came back). */
  restart() {
    if (this._stopped) return;
    this._clearTimers();
    this._setState("reconnecting");
    this._connect();
  }

  /**
   * Start over (as restart()) unless the attempt under way may still connect: its offer
   * is not answered yet (it ends soon either way), or was answered at or after `since`
   * (ms since the epoch, e.g. when the page rejoined a restarted server), or less than
   * `patience` ms ago. For callers that learn of trouble from elsewhere (the server's
   * room state says nobody is publishing) and are told so again and again: they must not
   * keep aborting an attempt that is about to connect. Returns whether it started over.
   */
  restartUnlessUnderway({ since = 0, patience = 2500 } = {}) {
    if (this._stopped) return false;
    const underway =
      this._attempt === this._generation && this.pc && this.pc.connectionState !== "connected";
    if (underway) {
      const answered = this._answeredAt;
      if (answered === null || answered >= since || Date.now() - answered < patience) return false;
    }
    this.restart();
    return true;
  }

  /**
   * Close for good; DELETE the session resource (best effort). `closedByServer`: the
   * server already ended it (the floor was taken back, the meeting ended), so a DELETE
   * would only 404, which browsers log as a console error.
   */
  async stop({ closedByServer = false } = {}) {
    if (this._stopped) return;
    this._stopped = true;
    this._generation += 1;
    this._clearTimers();
    globalThis.removeEventListener?.("online", this._onOnline);
    const location = this.location;
    this.location = null;
    this._setState("closed");
    // DELETE first (the server then knows it was on purpose), then hang up;
    // don't let a dead network keep the connection open for long.
    if (!closedByServer) {
      const deleted = deleteResource(location, { headers: this.options.headers || {} });
      await Promise.race([deleted, new Promise((resolve) => setTimeout(resolve, 1500))]);
    }
    this._closePc();
  }

  /**
   * The network is back, or another (Wi-Fi to 4G: "offline" then "online"). An attempt
   * made meanwhile starts over now. A connection that still says "connected" is kept
   * only if the other end still hears us (a short gap): it answers our RTCP sender
   * reports (or, where a browser does not count those, packets still arrive). After an
   * address change it doesn't, even when the browser's ICE answers from the new address.
   */
  async _networkBack() {
    const pc = this.pc;
    const generation = this._generation;
    if (this._stopped) return;
    if (!pc || !["connected", "disconnected"].includes(pc.connectionState)) {
      this.restart();
      return;
    }
    this._networkCheck = pc; // meanwhile the disconnect grace waits for this check
    try {
      // what arrives in the first moments may have been on its way before the change
      // (and getStats answers from a short cache): count from a little later
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (generation !== this._generation || this._stopped || this.pc !== pc) return;
      const before = await heard(pc);
      const deadline = Date.now() + (this.options.networkCheck ?? 2500);
      while (Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        if (generation !== this._generation || this._stopped || this.pc !== pc) return;
        if (globalThis.navigator?.onLine === false) return; // gone again: wait for "online"
        if (pc.connectionState === "connected" && (await heard(pc)) > before) return; // back
      }
    } finally {
      if (this._networkCheck === pc) this._networkCheck = null;
    }
    if (generation === this._generation && !this._stopped && this.pc === pc) this.restart();
  }

  _setState(state, detail) {
    if (state === this.state && !detail) return;
    this.state = state;
    try {
      this.options.onState?.(state, detail);
    } catch (exc) {
      console.error(exc);
    }
  }

  _clearTimers() {
    clearTimeout(this._retryTimer);
    clearTimeout(this._graceTimer);
    clearTimeout(this._connectTimer);
    this._retryTimer = this._graceTimer = this._connectTimer = null;
  }

  _closePc() {
    if (this.pc) {
      const pc = this.pc;
      this.pc = null;
      try {
        pc.close();
      } catch {
        // already closed
      }
    }
  }

  async _connect() {
    const generation = ++this._generation;
    const stale = () => generation !== this._generation || this._stopped;
    this._attempt = generation;
    this._answeredAt = null;
    this._clearTimers();
    this._closePc();
    // The previous session (if any) is replaced or times out on the server;
    // telling it is polite but must not delay the new one.
    if (this.location) {
      deleteResource(this.location, { headers: this.options.headers || {} });
      this.location = null;
    }
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers: this._iceServers, bundlePolicy: "max-bundle" });
    } catch (exc) {
      this._fail(exc);
      return;
    }
    this.pc = pc;
    pc.addEventListener("connectionstatechange", () => {
      if (!stale()) this._onConnectionState(pc, generation);
    });
    try {
      this.options.setup?.(pc);
      await pc.setLocalDescription(await pc.createOffer());
      await waitForIceGathering(pc, this.options.gatherTimeout ?? 2000);
      if (stale()) return;
      // no network (a phone between Wi-Fi and 4G): try again shortly, not with this offer
      if (!hasUsableCandidate(pc.localDescription.sdp)) {
        throw Object.assign(networkError(), { noCandidates: true });
      }
      const result = await exchangeSdp(this.url, pc.localDescription.sdp, {
        headers: this.options.headers || {},
      });
      if (stale()) {
        deleteResource(result.location, { headers: this.options.headers || {} });
        return;
      }
      this._answeredAt = Date.now();
      this.location = result.location;
      if (result.iceServers.length) {
        this._iceServers = result.iceServers;
        try {
          pc.setConfiguration({ ...pc.getConfiguration(), iceServers: result.iceServers });
        } catch {
          // some browsers refuse changes after the offer; the next attempt uses them
        }
      }
      await pc.setRemoteDescription({ type: "answer", sdp: result.answer });
      if (stale()) return;
      if (pc.connectionState !== "connected") {
        this._connectTimer = setTimeout(() => {
          if (!stale() && pc.connectionState !== "connected") {
            this._retry(new Error("the connection did not come up in time"));
          }
        }, this.options.connectTimeout ?? 20000);
      }
    } catch (exc) {
      if (stale()) return;
      if (isRetryable(exc)) this._retry(exc);
      else this._fail(exc);
    }
  }

  _onConnectionState(pc, generation) {
    const state = pc.connectionState;
    if (state === "connected") {
      this._attempt = null;
      clearTimeout(this._graceTimer);
      clearTimeout(this._connectTimer);
      this._graceTimer = this._connectTimer = null;
      this._backoff.reset();
      this._setState("connected");
      try {
        this.options.onConnected?.(pc);
      } catch (exc) {
        console.error(exc);
      }
    } else if (state === "disconnected") {
      // Often recovers by itself (a short radio gap); start over if it doesn't.
      this._setState("reconnecting");
      clearTimeout(this._graceTimer);
      const expire = () => {
        if (generation !== this._generation || pc.connectionState === "connected") return;
        if (
          this.options.followNetwork &&
          (globalThis.navigator?.onLine === false || this._networkCheck === pc)
        ) {
          // no network at all: nothing to try; "online" decides (see _networkBack)
          this._graceTimer = setTimeout(expire, 1000);
          return;
        }
        this._retry(new Error("the connection was lost"));
      };
      this._graceTimer = setTimeout(expire, this.options.disconnectGrace ?? 5000);
    } else if (state === "failed") {
      this._retry(new Error("the connection failed"));
    }
  }

  async _retry(error) {
    if (this._stopped) return;
    this._clearTimers();
    const generation = ++this._generation; // late events of the old connection are ignored
    this._setState("reconnecting", error);
    // Tell the server before hanging up (hanging up first would close it on the
    // server too, and then we could not learn whether it was still there).
    const location = this.location;
    this.location = null;
    let gone = false;
    if (location) {
      const status = await deleteResource(location, {
        headers: this.options.headers || {},
        keepalive: false,
        timeoutMs: 3000,
      });
      gone = status === 404;
    }
    if (generation !== this._generation || this._stopped) return;
    this._closePc();
    if (this.options.shouldRetry) {
      let again = true;
      try {
        again = await this.options.shouldRetry({ error, gone });
      } catch (exc) {
        console.error(exc);
      }
      if (generation !== this._generation || this._stopped) return;
      if (again === false) {
        const stop = new Error("not retried");
        stop.code = "not_retried";
        stop.cause = error;
        this._fail(stop);
        return;
      }
    }
    // the server says when it can take us (a full queue answers 429/503 with retry_after);
    // online but no address yet (the browser learns of a new network a moment after
    // "online"): look again very soon, that costs no request
    const delay =
      error && error.noCandidates && globalThis.navigator?.onLine !== false
        ? 200
        : Math.max(this._backoff.next(), retryAfterMs(error));
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._connect();
    }, delay);
  }

  _fail(error) {
    this._clearTimers();
    this._generation += 1;
    this._closePc();
    this._setState("failed", error);
  }
}
