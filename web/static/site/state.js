// The site page's state, apart from its views: the API client (the institution's token, kept on the phone across
// restarts), the offline outbox of captures, the device id, today's classes (kept for an offline start), the
// liveness the server asks for, the GPS fix and the capture waiting to be submitted. Nothing here touches the page.
import * as M from "../lib/monitor.js";

const CLASSES = "monitor.site.classes";
const LIVENESS = "monitor.site.liveness";
const DEVICE = "monitor.device";
export const BURST_SPACING_MS = 200;  // the burst: max_frames frames this far apart (about 1.5 s of movement)

// A capture with its burst is several hundred KB over a rural uplink: an attempt may take longer than a page's
// usual 30 s before it is given up (and retried under the same key). Reads of the class list have their own deadline.
export const client = M.createClient({ tokenKey: "monitor.site.token", keep: "local", timeoutMs: 120000 });
const READ_DEADLINE_MS = 15000;
// The same IndexedDB database and store as before the shared outbox, so a phone's queued captures are kept.
export const outbox = M.createOutbox({ client, dbName: "monitor-site",
  routes: { checkin: "/api/v1/check-ins", snapshot: "/api/v1/snapshots" } });

const readJson = (key, fallback) => { try { return JSON.parse(localStorage.getItem(key) || "null") ?? fallback; } catch { return fallback; } };
const writeJson = (key, value) => { try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* full or private */ } };

export const device = (() => {
  let id = null;
  try { id = localStorage.getItem(DEVICE); } catch { /* none kept */ }
  if (!id) { id = "web-" + M.newKey(); try { localStorage.setItem(DEVICE, id); } catch { /* this visit only */ } }
  return id;
})();

/** What the page holds: today's classes, the latest GPS fix, the capture (selfie, burst, challenge, time, fix). */
export const S = {
  classes: [],
  fix: null,        // { lat, lon, acc, at }
  capture: null,    // { photo, frames, challenge, captured_at, fix, url }
  lastKey: null,    // the key of the last check-in submitted here (its first failure is said in the result box)
  cameraReady: false,
};
const learned = readJson(LIVENESS, {});  // class id → true, as the server said (LIVENESS_REQUIRED)
const livenessRequired = {};             // class id → true, as the class list says

export const classById = id => S.classes.find(c => String(c.id) === String(id));
export const needsLiveness = cls => Boolean(cls && (livenessRequired[cls.id] || learned[cls.id]));

/** The server refused a check-in for want of the liveness burst: remember it for that class. */
export function learnLiveness(classId) {
  learned[classId] = true;
  writeJson(LIVENESS, learned);
}

/**
 * Today's classes from the server, kept on the phone for the day; without the network, the kept ones of today.
 * Resolves to "live" or "kept"; rejects with the ApiError (a 401/403, or no network and nothing kept for today).
 */
export async function loadClasses() {
  const abort = new AbortController();  // a network that hangs falls back to the kept list, as one that fails
  const timer = setTimeout(() => abort.abort(), READ_DEADLINE_MS);
  try {
    const [site, all] = await Promise.all([client.get("/api/v1/site/classes", { retries: 0, signal: abort.signal }),
      client.get("/api/v1/classes", { retries: 0, signal: abort.signal }).catch(() => [])]);
    S.classes = site;
    for (const c of all) if (c.liveness_required) livenessRequired[c.id] = true;
    writeJson(CLASSES, { date: M.today(), classes: S.classes, liveness: livenessRequired });
    return "live";
  } catch (e) {
    if (e.status === 401 || e.status === 403) throw e;
    const kept = readJson(CLASSES, null);
    if (!kept || kept.date !== M.today()) throw e;
    S.classes = kept.classes;
    Object.assign(livenessRequired, kept.liveness || {});
    return "kept";
  } finally {
    clearTimeout(timer);
  }
}

/** Follows the GPS: `onFix(fix)` on each position, `onError(code)` (1 refused, 3 timed out, else unavailable). */
export function watchFix(onFix, onError) {
  if (!navigator.geolocation) return false;
  navigator.geolocation.watchPosition(p => {
    S.fix = { lat: p.coords.latitude, lon: p.coords.longitude, acc: p.coords.accuracy, at: Date.now() };
    onFix(S.fix);
  }, e => onError(e.code), { enableHighAccuracy: true, maximumAge: 10000, timeout: 30000 });
  return true;
}

/** The liveness action the server draws for this trainee (needs the network; valid 90 s, single use). */
export function askChallenge(classId, traineeId) {
  return client.post("/api/v1/liveness/challenges", { class_id: classId, trainee_id: traineeId, device_id: device },
    { retries: 0 });
}

/** The check-in queued for upload: its fields as the route takes them, its files, a label for the list. */
export function checkinItem(cls, trainee, kind, capture, at) {
  const fields = { trainee_id: trainee.id, class_id: cls.id, kind, captured_at: capture.captured_at,
    latitude: at.lat, longitude: at.lon, accuracy_m: Math.round(at.acc * 10) / 10, device_id: device,
    mock_location: "false" };
  if (capture.challenge) fields.challenge_id = capture.challenge.challenge_id;
  return { key: M.newKey(), kind: "checkin", fields, photo: capture.photo, frames: capture.frames,
    captured_at: capture.captured_at, fix: at,
    label: `${trainee.name} · ${kind === "sign_out" ? "签退" : "签到"}（${cls.name}）` };
}

const pause = ms => new Promise(r => setTimeout(r, ms));

/** A verdict still pending: asked again every 1.5 s for up to a minute, until the worker has judged it. */
export async function finalVerdict(body) {
  const until = Date.now() + 60000;
  while (body.status === "pending" && Date.now() < until) {
    await pause(1500);
    try { body = await client.get(body.status_url, { retries: 0 }); } catch { /* keep asking */ }
  }
  return body;
}
