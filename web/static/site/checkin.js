// The check-in view: pick class and trainee, take the selfie with the camera in the page (with the liveness burst
// when the class requires it or the server asks), show the GPS fix, and hand the capture to the outbox, which sends
// it. The result box says what happened in words a trainee understands.
import * as M from "../lib/monitor.js";
import { BURST_SPACING_MS, S, askChallenge, checkinItem, classById, needsLiveness, outbox } from "./state.js";
import { SiteCamera } from "./camera.js";
import { SiteVerdict } from "./verdict.js";

const { $ } = M;

const selectedClass = () => classById($("class").value);

/** The result box: `kind` is ok, bad, wait or hidden. */
export function say(kind, text) {
  const r = $("result");
  r.className = `result ${kind}`;
  r.dataset.tone = kind;
  r.textContent = text;
}

export function showLogin(message) {
  $("login").classList.remove("hidden");
  if (message) say("bad", message);
}

// --- GPS ---------------------------------------------------------------------------------------------------------
export function showFix(fix) {
  $("gps").textContent = `已定位 · 精度 ${Math.round(fix.acc)} 米（${SiteVerdict.accuracyWords(fix.acc)}）`;
  $("gps").className = `hint gps ${fix.acc <= 50 ? "good" : "poor"}`;
}
export function showFixError(code) {
  $("gps").className = "hint gps poor";
  $("gps").textContent = code === 1 ? "未获得定位权限：请在浏览器设置中允许本页面使用位置信息"
    : code === 3 ? "定位超时，正在重试…" : "暂时无法定位：请打开手机定位（GPS），到窗边再试";
}
export function showNoGps() { $("gps").textContent = "此设备不支持定位，无法签到"; }

// --- classes and trainees ----------------------------------------------------------------------------------------
function option(value, text) { const o = M.el("option", "", text); o.value = value; return o; }

/** Both class lists (check-in and snapshots) from S.classes, keeping what was chosen. */
export function fillClasses() {
  for (const id of ["class", "snap-class"]) {
    const keep = $(id).value;
    $(id).replaceChildren(...S.classes.map(c => option(c.id, `${c.name}（${c.code}）`)));
    if (keep && S.classes.some(c => String(c.id) === keep)) $(id).value = keep;
  }
  fillTrainees();
}
export function fillTrainees() {
  const cls = selectedClass();
  $("class-name").textContent = cls ? `${cls.name}（${cls.code}）${needsLiveness(cls) ? " · 须活体检测" : ""}` : "";
  const keep = $("trainee").value;
  $("trainee").replaceChildren(...(cls ? cls.trainees : []).map(t => option(t.id, t.name)));
  if (keep && cls?.trainees.some(t => String(t.id) === keep)) $("trainee").value = keep;
}

// --- camera and capture ------------------------------------------------------------------------------------------
export async function openCamera() {
  const ok = await SiteCamera.start($("preview"), "user");
  S.cameraReady = ok === true;
  $("camera").classList.toggle("hidden", !S.cameraReady);
  $("shoot").classList.toggle("hidden", !S.cameraReady);
  $("file-fallback").classList.toggle("hidden", S.cameraReady);
  $("camera-hint").textContent = S.cameraReady ? "请把脸放进框内，正对镜头，光线充足，然后点“拍照”"
    : `${ok}：请点下方按钮用手机相机拍一张本人正脸照片`;
  document.body.dataset.camera = S.cameraReady ? "live" : "file";
}

function showShot(blob) {
  if (S.capture?.url) URL.revokeObjectURL(S.capture.url);
  const url = URL.createObjectURL(blob);
  $("shot").src = url;
  $("shot").classList.remove("hidden");
  $("retake").classList.remove("hidden");
  $("shoot").classList.add("hidden");
  return url;
}
function resetCapture() {
  if (S.capture?.url) URL.revokeObjectURL(S.capture.url);
  S.capture = null;
  $("shot").classList.add("hidden");
  $("shot").removeAttribute("src");
  $("retake").classList.add("hidden");
  $("challenge").classList.add("hidden");
  $("shoot").classList.toggle("hidden", !S.cameraReady);
  $("photo").value = "";
  document.body.dataset.captured = "";
}
function busy(on) { for (const id of ["shoot", "retake", "submit"]) $(id).disabled = on; }

async function shoot() {
  const cls = selectedClass();
  if (!cls || !$("trainee").value) { say("bad", "请先选择班次和学员"); return; }
  if (!S.fix) { say("bad", "还没有取得定位：请打开手机定位，稍等几秒再拍"); return; }
  busy(true);
  try {
    if (needsLiveness(cls)) await shootWithLiveness(cls);
    else {
      const photo = await SiteCamera.capture();
      S.capture = { photo, frames: [], challenge: null, captured_at: M.isoWithZone(new Date()), fix: { ...S.fix } };
      S.capture.url = showShot(photo);
      $("camera-hint").textContent = "照片已拍好：确认是本人正脸后点“提交签到”，不满意可点“重拍”";
    }
    document.body.dataset.captured = S.capture ? "yes" : "";
  } catch (e) {
    say("bad", e.message || "拍照失败，请重试");
  } finally { busy(false); }
}

// The liveness challenge: ask the server for an action (needs the network; valid 90 s, single use), show its
// instruction, take the selfie facing the camera, then the burst while the trainee performs the action.
async function shootWithLiveness(cls) {
  let challenge;
  try {
    challenge = await askChallenge(cls.id, Number($("trainee").value));
  } catch (e) {
    throw new Error(e.body?.message ? `无法开始活体检测：${e.body.message}`
      : "本班次签到须完成活体检测，获取检测动作需要联网：请联网后再拍");
  }
  const box = $("challenge");
  box.classList.remove("hidden");
  box.textContent = `请正对镜头，准备：${challenge.instruction}`;
  await SiteCamera.pause(1500);
  const captured_at = M.isoWithZone(new Date());
  const photo = await SiteCamera.capture();
  const count = Math.max(challenge.min_frames, Math.min(challenge.max_frames, 8));
  box.textContent = `${challenge.instruction}！`;
  const frames = await SiteCamera.burst(count, BURST_SPACING_MS, n => { box.dataset.progress = `${n}/${count}`; });
  box.classList.add("hidden");
  S.capture = { photo, frames, challenge, captured_at, fix: { ...S.fix } };
  S.capture.url = showShot(photo);
  $("camera-hint").textContent = `活体连拍完成（${frames.length} 张）：请在 ${Math.round(
    (new Date(challenge.expires_at) - Date.now()) / 1000)} 秒内点“提交签到”`;
}

function fromFile() {
  const file = $("photo").files[0];
  if (!file) return;
  S.capture = { photo: file, frames: [], challenge: null, captured_at: M.isoWithZone(new Date()),
    fix: S.fix && { ...S.fix } };
  S.capture.url = showShot(file);
  $("shoot").classList.add("hidden");
  document.body.dataset.captured = "yes";
  if (needsLiveness(selectedClass())) say("wait", "本班次须完成活体检测，需要在页面内使用相机：请允许本页面使用相机后刷新");
}

// --- submit: into the outbox first, then sent --------------------------------------------------------------------
async function submit(ev) {
  ev.preventDefault();
  const cls = selectedClass();
  const trainee = cls?.trainees.find(t => String(t.id) === $("trainee").value);
  if (!cls || !trainee) { say("bad", "请先选择班次和学员"); return; }
  const capture = S.capture;
  if (!capture) { say("bad", S.cameraReady ? "请先点“拍照”" : "请先拍一张本人正脸照片"); return; }
  const at = capture.fix || S.fix;
  if (!at) { say("bad", "还没有取得定位：请打开手机定位，稍等几秒再提交"); return; }
  if (capture.challenge && new Date(capture.challenge.expires_at) < Date.now()) {
    resetCapture(); say("bad", "活体检测已超时（须在 90 秒内提交）：请重新拍摄"); return;
  }
  const kind = document.querySelector("input[name=kind]:checked").value;
  const item = checkinItem(cls, trainee, kind, capture, at);
  S.lastKey = item.key;
  busy(true);
  try {
    await outbox.add(item);
    say("wait", navigator.onLine === false ? "已保存在本手机（当前离线），联网后自动上传" : "已保存，正在上传并核验…");
    resetCapture();
    $("camera-hint").textContent = "下一位学员：请把脸放进框内，然后点“拍照”";
  } catch {
    say("bad", "无法保存到本机（存储空间不足或隐私模式）：请释放空间后重试");
  } finally { busy(false); }
}

/** Wires the view's controls (once). */
export function initCheckin() {
  $("class").addEventListener("change", () => { fillTrainees(); resetCapture(); });
  $("trainee").addEventListener("change", resetCapture);
  $("shoot").addEventListener("click", shoot);
  $("retake").addEventListener("click", () => { resetCapture(); say("hidden", ""); });
  $("photo").addEventListener("change", fromFile);
  $("checkin").addEventListener("submit", submit);
}
