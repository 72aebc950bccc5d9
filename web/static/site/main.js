// The training site's phone page: its entry. Wires the check-in view, the snapshot mode and the outbox's list to
// the state; signs in with the institution's token; shows the network; keeps the offline shell; starts.
import * as M from "../lib/monitor.js";
import { S, client, loadClasses, outbox, watchFix } from "./state.js";
import { SiteCamera } from "./camera.js";
import { fillClasses, initCheckin, openCamera, say, showFix, showFixError, showLogin, showNoGps } from "./checkin.js";
import { initQueueView } from "./queue-view.js";
import { SiteSnapshot } from "./snapshot.js";

const { $ } = M;

// --- network indicator -------------------------------------------------------------------------------------------
function showNet() {
  const online = navigator.onLine !== false;
  $("net").textContent = online ? "网络正常" : "离线：记录先存在手机上";
  $("net").className = `net ${online ? "on" : "off"}`;
}
window.addEventListener("online", showNet);
window.addEventListener("offline", showNet);

// --- today's classes ---------------------------------------------------------------------------------------------
async function load() {
  if (!client.token) { showLogin(); return; }
  try {
    const source = await loadClasses();
    if (source === "kept") say("wait", "离线：显示的是本机保存的今天班次名单，拍的照片会先存在手机上");
  } catch (e) {
    if (e.status === 401 || e.status === 403) { showLogin(e.message); return; }
    say("bad", "网络异常：无法取得今天的班次，请联网后刷新");
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

// --- tabs: check-in and classroom snapshots ----------------------------------------------------------------------
function tab(which) {
  const snap = which === "snapshot";
  $("tab-checkin").setAttribute("aria-selected", String(!snap));
  $("tab-snapshot").setAttribute("aria-selected", String(snap));
  $("checkin-view").classList.toggle("hidden", snap);
  $("snapshot-view").classList.toggle("hidden", !snap);
  document.body.dataset.mode = which;
  if (snap) { SiteCamera.stop(); SiteSnapshot.enter(); } else { SiteSnapshot.leave(); openCamera(); }
}
$("tab-checkin").addEventListener("click", () => tab("checkin"));
$("tab-snapshot").addEventListener("click", () => tab("snapshot"));

M.registerShell("site");  // a reload without network shows this page and its queue

initCheckin();
initQueueView();
SiteSnapshot.init();
outbox.start();
showNet();
if (!watchFix(showFix, showFixError)) showNoGps();
load().then(() => (SiteSnapshot.resumes() ? tab("snapshot") : openCamera()));
