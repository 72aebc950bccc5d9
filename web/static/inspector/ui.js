// Messages on the inspector page, and its API calls: a network failure told apart from a refusal.
import { $ } from "../lib/dom.js";
import { NET_DOWN, client, hooks } from "./state.js";

// -- messages ------------------------------------------------------------------------------------------------------
export function say(id, text, kind) {
  const node = typeof id === "string" ? $(id) : id;
  node.textContent = text || "";
  node.className = `msg${kind ? " " + kind : ""}`;
}
export function setNet(text) { $("net").classList.toggle("hidden", !text); $("net").textContent = text || ""; }
export function setConn(on, text) { $("conn").className = "conn " + (on ? "on" : "off"); $("conn").textContent = text; }
export let flashTimer = null;
export function flash(text) {
  const f = $("flash"); f.textContent = text; f.classList.remove("hidden");
  clearTimeout(flashTimer); flashTimer = setTimeout(() => f.classList.add("hidden"), 6000);
}
export const why = e => e.network ? NET_DOWN : (e.message || "操作未成功");

// -- the API (the page's client): a network failure is named once at the top of the page; a refused token asks
// the inspector to sign in again (the client tells of every 401, the live feed's and the files' too) -------------
client.on("auth", e => hooks.showLogin?.(e.message));
export async function call(path, options) {
  try {
    const body = await client.request(path, options);
    setNet(null);
    return body;
  } catch (e) {
    if (e.network) setNet(NET_DOWN);
    throw e;
  }
}
/** A POST of `body` as JSON (with its own Idempotency-Key, or `options.idempotencyKey`). */
export const post = (path, body, options) => call(path, Object.assign({ method: "POST", json: body || {} }, options));
window.addEventListener("offline", () => setNet("网络已断开：可以继续填写，内容保存在本机，恢复后再提交。"));
window.addEventListener("online", () => { setNet(null); hooks.scheduleReload(); });

// The phone's position (WGS-84 from the browser), or null when it gives none within the time.
export function currentFix(timeoutMs = 10000) {
  return new Promise(resolve => {
    if (!navigator.geolocation) { resolve(null); return; }
    navigator.geolocation.getCurrentPosition(
      p => resolve({ latitude: p.coords.latitude, longitude: p.coords.longitude,
                     accuracy_m: Math.max(1, Math.round(p.coords.accuracy)), datum: "WGS-84",
                     captured_at: new Date(p.timestamp || Date.now()).toISOString() }),
      () => resolve(null), { enableHighAccuracy: true, timeout: timeoutMs, maximumAge: 30000 });
  });
}
