// One task: what, where and whom, navigation, arrival with the phone's fix.
import { $, el } from "../lib/dom.js";
import { SEVERITY, ruleName } from "../lib/catalogue.js";
import { dateTime, time } from "../lib/format.js";
import { ACTIONS, CHECK_OF, DRAFT, OUTCOMES, S, WORKING, client, store } from "./state.js";
import { call, currentFix, post, say, why } from "./ui.js";
import { accept, kindOf, myOpenPage, scheduleReload, upsert } from "./alerts.js";
import { loadCheck } from "./phone.js";
import { again, renderFiled, restoreInspection, sizePad } from "./form.js";
import { restoreClose } from "./close.js";
import { Gcj02 } from "./gcj02.js";

// -- one task ------------------------------------------------------------------------------------------------------
export function openTask(id) {
  const hash = `#alert=${id}`;
  if (location.hash !== hash) location.hash = hash; else route();
}
// A task is an alert (#alert=<id>) or a class a 双随机 draw gave this inspector (#draw=<class id>, held as the
// negative class id so that drafts and state never mix with alerts').
export function route() {
  const m = location.hash.match(/^#(alert|draw)=(\d+)$/);
  const id = m ? (m[1] === "draw" ? -Number(m[2]) : Number(m[2])) : null;
  if (id !== S.current) {
    S.current = id; S.check = null; S.checkAsked = null;
    $("check").classList.add("hidden"); $("check-list").replaceChildren();
    for (const msg of ["t-msg", "check-msg", "close-msg", "insp-msg", "insp-done-msg"]) say(msg, "");
    if (id != null) {
      restoreClose(); restoreInspection();
      const checkId = store.get(localStorage, CHECK_OF + id);
      if (checkId != null) { S.checkAsked = checkId; loadCheck(checkId); }
    }
    window.scrollTo(0, 0);
  }
  $("list-view").classList.toggle("hidden", id != null);
  $("task-view").classList.toggle("hidden", id == null);
  if (id != null) renderTask();
}
window.addEventListener("hashchange", route);
$("back").addEventListener("click", () => { location.hash = ""; });

export const unfolded = new Set();  // alerts whose form the inspector unfolded by hand
$("insp-unfold").addEventListener("click", () => {
  unfolded.add(S.current);
  $("insp-form").classList.remove("folded");
  sizePad();
});

export function contactPhone(phone) {
  const dd = el("dd");
  if (!phone) { dd.textContent = "未登记"; return dd; }
  const link = el("a", "inline-tel", phone);
  link.href = `tel:${phone}`;
  dd.append(link);
  return dd;
}

// Whom the alert is about: each anomaly's trainee with the photo it was raised on next to an enrolled one.
export let subjectsShown = "";
export function renderSubjects(a) {
  const subjects = a.subjects || [];
  $("t-people").classList.toggle("hidden", !subjects.length);
  const key = `${a.id}:${subjects.map(x => x.anomaly_id).join(",")}`;
  if (key === subjectsShown) return;  // photos are not fetched again on every refresh
  subjectsShown = key;
  $("t-subjects").replaceChildren(...subjects.map(x => {
    const li = el("li", "subject");
    li.dataset.anomalyId = x.anomaly_id;
    const who = x.trainee_name ? `${x.trainee_name}（${x.id_number_masked}）` : "未指明学员";
    li.append(el("b", "", who), el("span", "sub", ` ${ruleName(x.rule)} · ${time(x.at)}`),
      el("p", "hint", x.message));
    const photos = el("div", "photos");
    for (const [sha, label] of [[x.photo_sha256, "现场照片"], [x.enrolled_sha256, "登记照片"]]) {
      if (!sha) continue;
      const fig = el("figure");
      const img = el("img"); img.alt = label; img.dataset.sha = sha;
      img.addEventListener("error", () => { if (img.getAttribute("src")) photoFailed(fig, img, label); });
      fig.append(img, el("figcaption", "", label));
      photos.append(fig);
      loadPhoto(fig, img, label);
    }
    if (photos.children.length) li.append(photos);
    return li;
  }));
}

// An evidence photo fetched with the token; one that cannot be fetched (an outage, a dropped connection) says so in
// its place, with a retry, rather than leaving an empty frame.
function loadPhoto(fig, img, label) {
  client.photoUrl(img.dataset.sha).then(url => {
    if (!url) { photoFailed(fig, img, label); return; }
    fig.querySelector(".photo-failed")?.remove();
    img.classList.remove("hidden");
    img.src = url;
  });
}
function photoFailed(fig, img, label) {
  img.classList.add("hidden");
  img.removeAttribute("src");
  let retry = fig.querySelector(".photo-failed");
  if (!retry) {
    retry = el("button", "photo-failed secondary");
    retry.type = "button";
    retry.addEventListener("click", () => {
      retry.disabled = true;
      retry.textContent = "正在重新加载…";
      loadPhoto(fig, img, label);
    });
    fig.prepend(retry);
  }
  retry.disabled = false;
  retry.textContent = "照片加载失败，点击重试";
  retry.setAttribute("aria-label", `${label}加载失败，点击重试`);
}

export function navLinks(a) {
  const { lat, lon } = a.venue || {};
  const ok = Number.isFinite(lat) && Number.isFinite(lon);
  $("t-nav").classList.toggle("hidden", !ok);
  if (!ok) { $("t-coords").textContent = "该场地未登记坐标"; return; }
  const [glat, glon] = Gcj02.fromWgs84(lat, lon);
  const name = encodeURIComponent(`${a.institution_name} ${a.class_name}`);
  $("nav-amap").href = `https://uri.amap.com/marker?position=${glon.toFixed(6)},${glat.toFixed(6)}`
    + `&name=${name}&src=yunnan-monitor&coordinate=gaode&callnative=1`;
  // geo: URIs (RFC 5870) are WGS-84 by definition: the phone's map app converts them itself.
  $("nav-geo").href = `geo:${lat.toFixed(6)},${lon.toFixed(6)}?q=${lat.toFixed(6)},${lon.toFixed(6)}(${name})`;
  $("t-coords").textContent = `场地坐标（高德/腾讯地图坐标系）${glat.toFixed(6)}, ${glon.toFixed(6)}；围栏半径 ${Math.round(a.venue.radius_m || 0)} 米`;
}

// The draw assignment (web/static/inspector/draws.js keeps the list in S.draws) as a task: the form is
// what it asks for; there is no alert to accept, phone or close.
function drawTask(id) {
  const d = S.draws.find(x => x.class_id === -id);
  if (!d) return null;
  return { id, draw: d, class_id: d.class_id, class_name: `${d.class_name}（${d.class_code}）`,
    institution_name: d.institution_name, rule: "DRAW", state: "on_site", state_name: d.done ? "已提交检查表" : "双随机抽查",
    assignee_staff_id: S.me && S.me.id, transitions: [], pages: [], subjects: [], inspection_ids: d.inspection_ids || [],
    venue: { lat: d.latitude, lon: d.longitude, name: d.venue_name, address: d.venue_address, county_name: d.county_name } };
}
export function taskOf(id) { return id != null && id < 0 ? drawTask(id) : S.alerts.find(x => x.id === id); }
document.addEventListener("monitor:draws", () => { if (S.current != null && S.current < 0) renderTask(); });

// Records of the alert that cannot both be true, as the API states them (none for a draw).
function renderContradictions(a) {
  const said = (a && a.contradictions) || [];
  $("t-contradictions").classList.toggle("hidden", !said.length);
  $("t-contradiction-list").replaceChildren(...said.map(text => el("li", "", text)));
}

export function renderTask() {
  const a = taskOf(S.current);
  renderContradictions(a);
  const kind = a && kindOf(a);
  const mine = kind === "working";
  $("t-actions").classList.toggle("hidden", !mine && kind !== "paged");
  $("close-form").classList.toggle("hidden", !mine);
  const filed = Boolean(a && a.inspection_ids && a.inspection_ids.length);
  $("insp-form").classList.toggle("hidden", !mine || (filed && !again.has(S.current)));
  // Folded until needed: on site, a finished phone check, a draft on this phone, or the inspector's own tap.
  const needed = unfolded.has(a && a.id) || (a && a.state === "on_site") || (S.check && S.check.alert_id === (a && a.id)
    && S.check.state === "done") || Boolean(a && store.get(localStorage, `${DRAFT}inspect.${a.id}`));
  $("insp-form").classList.toggle("folded", !needed);
  $("insp-done").classList.toggle("hidden", !filed);
  $("insp-again").classList.toggle("hidden", !mine || !$("insp-form").classList.contains("hidden"));
  if (!a) {
    $("t-rule").textContent = "任务";
    $("t-state").textContent = "";
    $("t-facts").replaceChildren();
    $("t-history").replaceChildren();
    $("t-nav").classList.add("hidden");
    $("t-coords").textContent = "";
    say("t-msg", "该任务不在您的任务列表中（可能已转派他人或被撤回）", "bad");
    return;
  }
  if (a.draw) { renderDraw(a); return; }
  $("t-rule").textContent = ruleName(a.rule);
  $("t-state").textContent = a.state_name;
  $("t-state").className = `badge ${a.state}`;
  const rows = [["班次", a.class_name], ["培训机构", a.institution_name], ["异常规则", ruleName(a.rule)],
    ["严重程度", SEVERITY[a.severity] || a.severity], ["告警次数", `${a.count} 次（未消除 ${a.open_count}）`],
    ["首次发生", dateTime(a.first_at)], ["最近发生", dateTime(a.last_at)], ["当前状态", a.state_name]];
  if (a.outcome) rows.push(["处置结果", OUTCOMES[a.outcome] || a.outcome]);
  if (kind === "paged") rows.push(["接单时限", dateTime(myOpenPage(a).deadline)]);
  const v = a.venue || {};
  rows.splice(2, 0, ["培训场地", `${v.name || ""}${v.county_name ? "（" + v.county_name + "）" : ""}`],
    ["场地地址", v.address || "未登记地址"]);
  $("t-facts").replaceChildren(...rows.flatMap(([k, val]) => [el("dt", "", k), el("dd", "", val)]));
  $("t-facts").append(el("dt", "", "机构电话"), contactPhone(a.institution_phone));
  navLinks(a);
  renderSubjects(a);
  if (filed) renderFiled(a);
  if (mine && !$("insp-form").dataset.kindPicked) {  // until the inspector picks, the kind follows the alert's state
    for (const r of $("insp-form").elements.kind) r.checked = r.value === (a.state === "phoning" ? "phone" : "on_site");
  }
  if (mine) sizePad();
  const acceptBtn = $("t-accept");
  if (kind === "paged") {
    if (!acceptBtn) {
      const b = el("button", "accept", "接单"); b.id = "t-accept"; b.type = "button";
      b.addEventListener("click", () => accept(S.current, b, $("t-msg")));
      $("t-actions").prepend(b);
    }
  } else if (acceptBtn) acceptBtn.remove();
  // A phone check of the alert that this phone does not know of (started on another phone, or before this one's
  // storage was cleared): the latest the server lists is shown, to be finished, instead of offering a new one.
  const checks = a.phone_check_ids || [];
  if (mine && !S.check && checks.length && S.checkAsked !== checks.at(-1)) {
    S.checkAsked = checks.at(-1);
    loadCheck(S.checkAsked, true);
  }
  $("arrive").classList.toggle("hidden", !mine);
  $("phone").classList.toggle("hidden", !mine || Boolean(S.check && S.check.alert_id === a.id));
  // While the running check is being fetched (or cannot be, offline), the button picks it up: the server answers
  // the alert's open check, never a new draw.
  $("phone").textContent = a.state === "phoning" ? "继续电话抽查" : "开始电话抽查";
  $("arrive").disabled = !["accepted", "phoning"].includes(a.state);
  $("arrive").textContent = a.state === "on_site" ? "已到达现场" : "到达现场";
  $("phone").disabled = !WORKING.includes(a.state);
  $("t-history").replaceChildren(...a.transitions.map(t => {
    const li = el("li");
    li.append(el("span", "at", dateTime(t.at)),
      el("span", "", ` ${ACTIONS[t.action] || t.action} · ${t.actor}`
        + `${t.outcome ? "（" + (OUTCOMES[t.outcome] || t.outcome) + "）" : ""}${t.note ? "：" + t.note : ""}`));
    return li;
  }));
}

export async function refreshAlert(id) {
  try { upsert(await call(`/api/v1/alerts/${id}`)); } catch { scheduleReload(); }
}

export async function step(action, button, done, body) {
  const id = S.current;
  button.disabled = true;
  say("t-msg", "正在提交…", "wait");
  try {
    upsert(await post(`/api/v1/alerts/${id}/${action}`, body));
    say("t-msg", done, "ok");
  } catch (e) { say("t-msg", why(e), "bad"); button.disabled = false; }
}

// Arrival carries the phone's fix (WGS-84 from the browser): the center judges it against the venue's fence.
export const FENCE = { inside: "定位在培训场地围栏内", outside: "定位在培训场地围栏外（已标记，可继续核查）",
                uncertain: "定位在围栏边缘，无法确认", unproven: "未取得定位，到场未经定位证明" };
$("arrive").addEventListener("click", async () => {
  say("t-msg", "正在获取定位…", "wait");
  const fix = await currentFix();
  const where = fix ? `（精度 ${fix.accuracy_m} 米）` : "";
  await step("arrive", $("arrive"), `已记录：到达现场。${fix ? "" : FENCE.unproven}${where}`, fix ? { fix } : {});
  const a = S.alerts.find(x => x.id === S.current);
  if (a && a.arrival) say("t-msg", `已记录：到达现场。${FENCE[a.arrival] || ""}${where}`, a.arrival === "inside" ? "ok" : "bad");
});

function renderDraw(a) {
  const d = a.draw;
  $("t-rule").textContent = "双随机抽查";
  $("t-state").textContent = a.state_name;
  $("t-state").className = `badge ${d.done ? "closed" : "accepted"}`;
  const rows = [["班次", a.class_name], ["培训机构", d.institution_name],
    ["培训场地", `${d.venue_name}${d.county_name ? "（" + d.county_name + "）" : ""}`], ["场地地址", d.venue_address || "未登记地址"],
    ["上课时间", d.sessions.join("；") || "—"], ["抽取", `${d.day} ${d.kind_name}`], ["抽查人员来源", d.tier_name || "—"],
    ["完成时限", `${dateTime(d.window_ends_at)} 前`], ["要做什么", d.todo]];
  $("t-facts").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", "", k), el("dd", "", v)]));
  navLinks(a);
  $("t-people").classList.add("hidden");
  $("t-actions").classList.add("hidden");
  $("close-form").classList.add("hidden");
  $("insp-form").classList.remove("folded");
  for (const r of $("insp-form").elements.kind) r.checked = r.value === "on_site";
  if (a.inspection_ids.length) renderFiled(a);
  $("t-history").replaceChildren();
  sizePad();
}
