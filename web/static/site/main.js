// The training site's phone page: its entry. Wires the check-in view, the snapshot mode and the outbox's list to
// the state; signs in with the institution's token; shows the network; keeps the offline shell; starts.
import * as M from "../lib/monitor.js";
import { S, client, loadClasses, outbox, watchFix } from "./state.js";
import { SiteCamera } from "./camera.js";
import { fillClasses, initCheckin, openCamera, say, showFix, showFixError, showLogin, showNoGps } from "./checkin.js";
import { initQueueView } from "./queue-view.js";
import { SiteSnapshot } from "./snapshot.js";
import { SiteFindings } from "./findings.js";

const { $ } = M;

// --- network indicator -------------------------------------------------------------------------------------------
// What the phone knows (offline) and how the server answered the page's last request (client.reach): a phone with
// signal whose requests get no answer, or only 5xx, is not "网络正常". While it is not, the server is asked again
// now and then (sooner first), so the badge recovers by itself, today's classes are fetched if they were not, and the
// queue is sent at once.
const NET_WORDS = {
  unreachable: "网络异常：服务器无法连接，记录先存在手机上",
  server: "服务器暂时不可用，记录先存在手机上",
};
let probeTimer = null;
let probes = 0;
function showNet() {
  const offline = navigator.onLine === false;
  const ok = !offline && client.reach === "ok";
  $("net").textContent = offline ? "离线：记录先存在手机上" : ok ? "网络正常" : NET_WORDS[client.reach];
  $("net").className = `net ${ok ? "on" : "off"}`;
  $("net").dataset.state = offline ? "offline" : client.reach;
  clearTimeout(probeTimer);
  if (ok || offline || !client.token) { probes = 0; return; }  // offline: the online event brings it back
  probes += 1;
  probeTimer = setTimeout(() => {
    client.get("/api/v1/health", { retries: 0 }).catch(() => {}).finally(showNet);
  }, M.backoffMs(probes, { baseMs: 3000, capMs: 30000 }));
}
let classesLive = false;  // today's classes came from the server (not the phone's kept list, nor none)
let classesFailed = false;  // the result box says they could not be fetched
client.on("reach", reach => {
  showNet();
  if (reach !== "ok") return;
  outbox.pump(true);
  if (!classesLive && client.token) load();
});
window.addEventListener("online", showNet);
window.addEventListener("offline", showNet);

// --- today's classes ---------------------------------------------------------------------------------------------
async function load() {
  if (!client.token) { showLogin(); return; }
  try {
    const source = await loadClasses();
    classesLive = source === "live";
    if (source === "kept") say("wait", "离线：显示的是本机保存的今天班次名单，拍的照片会先存在手机上");
    else if (classesFailed) say("hidden", "");
    classesFailed = false;
  } catch (e) {
    if (e.status === 401 || e.status === 403) { showLogin(e.message); return; }
    say("bad", "网络异常：无法取得今天的班次，网络恢复后会自动重新获取");
    classesFailed = true;
    return;
  }
  fillClasses();
  SiteSnapshot.classesChanged(S.classes);
  if (!S.classes.length) say("wait", "本机构今天没有在培训期内的班次");
  outbox.pump(true);
}

$("login-btn").addEventListener("click", () => {
  const token = $("token").value.trim();
  if (!token) return;
  client.setToken(token);
  $("login").classList.add("hidden");
  load();
});

// --- tabs: check-in, classroom snapshots, findings and objections -------------------------------------------------
const VIEWS = { checkin: "checkin-view", snapshot: "snapshot-view", findings: "findings-view" };
function tab(which) {
  const was = document.body.dataset.mode || "checkin";
  for (const [name, view] of Object.entries(VIEWS)) {
    $(`tab-${name}`).setAttribute("aria-selected", String(name === which));
    $(view).classList.toggle("hidden", name !== which);
  }
  document.body.dataset.mode = which;
  if (which === "snapshot") { SiteCamera.stop(); SiteSnapshot.enter(); return; }
  if (was === "snapshot") SiteSnapshot.leave();
  if (which === "findings") { SiteCamera.stop(); SiteFindings.enter(); return; }
  openCamera();
}
$("tab-checkin").addEventListener("click", () => tab("checkin"));
$("tab-snapshot").addEventListener("click", () => tab("snapshot"));
$("tab-findings").addEventListener("click", () => tab("findings"));

M.registerShell("site");  // a reload without network shows this page and its queue

initCheckin();
initQueueView();
SiteSnapshot.init();
SiteFindings.init();
outbox.start();
showNet();
if (!watchFix(showFix, showFixError)) showNoGps();
load().then(() => (SiteSnapshot.resumes() ? tab("snapshot") : openCamera()));
