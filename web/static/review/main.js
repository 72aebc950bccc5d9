// The operator's review queue: oldest first, side by side, decided from the keyboard, one item or a selection.
import * as M from "../lib/monitor.js";

const { $ } = M;
const client = M.createClient({ tokenKey: "monitor.review.token" });
const login = M.tokenPrompt(client, () => start());
let items = [];
let current = 0;
const selected = new Set();
const KIND = { checkin: "签到签退", heartbeat: "在线学习", identity: "人脸查重" };
const key = item => `${item.kind}:${item.id}`;
let me = null;  // GET /api/v1/me: what the token may do, so a reader is not offered buttons that would be refused
const canDecide = () => me == null || me.may.includes("decide_reviews");  // auditors and inspectors read the queue

function age(minutes) {
  return minutes < 60 ? `${minutes} 分钟` : `${Math.floor(minutes / 60)} 小时 ${minutes % 60} 分`;
}

async function load() {
  items = await client.get(`/api/v1/reviews?state=open&kind=${$("kind").value}&limit=200`);
  for (const k of [...selected]) if (!items.some(i => key(i) === k)) selected.delete(k);
  current = Math.min(current, Math.max(items.length - 1, 0));
  const overdue = items.filter(i => i.overdue).length;
  $("counts").textContent = `待复核 ${items.length} 项${overdue ? `，其中超时 ${overdue} 项` : ""}`;
  renderQueue();
  await show();
}

function renderQueue() {
  $("queue").replaceChildren(...items.map((item, n) => {
    const li = M.el("li", [n === current ? "current" : "", item.overdue ? "overdue" : "", selected.has(key(item)) ? "selected" : ""].join(" ").trim());
    li.append(M.el("span", "kind", KIND[item.kind] || item.kind), M.el("span", "", `${item.trainee_name || "—"} ${item.class_name || ""}`),
      M.el("span", "age", item.overdue ? `超时 ${age(item.age_minutes)}` : age(item.age_minutes)));
    li.addEventListener("click", () => { current = n; renderQueue(); show(); });
    return li;
  }));
  $("queue").children[current]?.scrollIntoView({ block: "nearest" });
  showSelection();
}

// With items selected (X), a decision applies to all of them: the count says so, and so do the buttons.
function showSelection() {
  const n = selected.size;
  $("selection").textContent = n ? `已选 ${n} 项：下方按钮将对这 ${n} 项一并处理（X 取消选中）` : "";
  for (const b of $("actions").querySelectorAll("button")) {
    b.textContent = n ? `${b.dataset.label.replace(/ \([YN]\)$/, "")}：已选 ${n} 项 ${b.dataset.label.slice(-3)}` : b.dataset.label;
  }
}

async function show() {
  const item = items[current];
  $("result").textContent = "";
  for (const part of document.querySelectorAll("#item .photos, #item .note, #item .keys")) {
    part.classList.toggle("hidden", !item);  // an empty queue shows no empty photo frames or note
  }
  if (!item) {
    $("item-title").textContent = "队列已清空"; $("item-message").textContent = "当前类别没有待复核的事项";
    $("facts").replaceChildren(); $("actions").replaceChildren();
    $("photo").removeAttribute("src"); $("reference").removeAttribute("src");
    return;
  }
  $("item-title").textContent = `${KIND[item.kind]}复核 · ${item.trainee_name || ""}`;
  $("item-message").textContent = item.message;
  $("photo-caption").textContent = item.kind === "identity" ? "新登记照片" : "现场照片";
  $("reference-caption").textContent = item.kind === "identity" ? "已登记的相似人员" : "登记照片";
  const m = item.measured, t = item.thresholds;
  const rows = [["班次", item.class_name || "—"], ["拍摄时间", M.dateTime(item.captured_at)],
    ["进入队列", `${M.dateTime(item.created_at)}（时限至 ${M.dateTime(item.due_at)}${item.overdue ? "，已超时" : ""}）`]];
  const distance = m.face_distance ?? m.distance;
  if (distance != null) {  // the limits the item carries (an identity match has a review distance, no mismatch limit)
    const pass = t.face_match_threshold ?? t.face_match, fail = t.face_mismatch_threshold ?? t.face_mismatch;
    const limits = [pass != null ? `通过 ≤ ${pass}` : t.review_distance != null ? `相似判定 ≤ ${t.review_distance}` : "",
      fail != null ? `不符 > ${fail}` : ""].filter(Boolean).join("，");
    rows.push(["人脸距离", `${Number(distance).toFixed(3)}${limits ? `（${limits}）` : ""}`]);
  }
  if (m.nearest_other_distance != null) rows.push(["最接近的同班学员", `编号 ${m.nearest_other_trainee_id}，距离 ${m.nearest_other_distance.toFixed(3)}`]);
  if (t.face_engine) rows.push(["比对模型", `${t.face_engine}（${(t.face_model_sha256 || "").slice(0, 16)}…）`]);
  $("facts").replaceChildren(...rows.flatMap(([k, v]) => [M.el("dt", "", k), M.el("dd", "", v)]));
  $("item").querySelector(".note").classList.toggle("hidden", !canDecide());
  if (canDecide()) {
    const [yes, no] = item.kind === "identity" ? [["distinct", "不同人员 (Y)"], ["same_person", "同一人：冒名/多领 (N)"]]
      : [["confirmed", "确认本人 (Y)"], ["rejected", "认定不符 (N)"]];
    const b1 = M.el("button", "", yes[1]), b2 = M.el("button", "reject", no[1]);
    b1.dataset.label = yes[1]; b2.dataset.label = no[1];
    b1.addEventListener("click", () => decide(true)); b2.addEventListener("click", () => decide(false));
    $("actions").replaceChildren(b1, b2);
    showSelection();
  } else {
    $("actions").replaceChildren(M.el("p", "hint", `当前身份（${me.role_name}）只可查看复核队列，复核决定由监控调度员或管理员作出`));
  }
  const [a, b] = await Promise.all([client.photoUrl(item.photo_sha256), client.photoUrl(item.reference_photo_sha256)]);
  if (items[current] === item) { $("photo").src = a; $("reference").src = b; }
}

async function decide(accept) {
  if (!canDecide()) return;
  const note = $("note").value.trim();
  if (note.length < 2) { $("result").textContent = "请填写复核说明（至少 2 个字）"; $("note").focus(); return; }
  const targets = selected.size ? items.filter(i => selected.has(key(i))) : [items[current]].filter(Boolean);
  if (!targets.length) return;
  try {
    const uploads = targets.filter(i => i.kind !== "identity");
    let done = 0, skipped = [];
    if (uploads.length) {
      const r = await client.post("/api/v1/reviews/decisions",
        { review_ids: uploads.map(i => i.id), decision: accept ? "confirmed" : "rejected", note });
      done += r.decided.length; skipped = r.skipped;
    }
    for (const i of targets.filter(i => i.kind === "identity")) {
      await client.post(`/api/v1/identity-matches/${i.id}/review`, { decision: accept ? "distinct" : "same_person", note });
      done += 1;
    }
    selected.clear();
    $("note").value = "";  // each item's reason is written for it, never carried over to the next
    await load();
    $("result").textContent = `已处理 ${done} 项` + (skipped.length ? `，${skipped.length} 项未处理：${skipped.map(s => s.message).join("；")}` : "");
  } catch (e) { $("result").textContent = `处理失败：${e.message}`; }
}

function move(step) {
  if (!items.length) return;
  current = Math.max(0, Math.min(items.length - 1, current + step));
  renderQueue(); show();
}

document.addEventListener("keydown", ev => {
  if (ev.target === $("note") || ev.target === $("token")) { if (ev.key === "Escape") ev.target.blur(); return; }
  const k = ev.key.toLowerCase();
  if (k === "arrowdown" || k === "j") { move(1); ev.preventDefault(); }
  else if (k === "arrowup" || k === "k") { move(-1); ev.preventDefault(); }
  else if (k === "x" && items[current]) {
    const id = key(items[current]);
    selected.has(id) ? selected.delete(id) : selected.add(id);
    renderQueue();
  } else if (k === "y") decide(true);
  else if (k === "n") decide(false);
  else if (k === "/") { $("note").focus(); ev.preventDefault(); }
});

async function start() {
  if (login.missing()) return;
  try {
    await M.catalogue;
    me = await client.get("/api/v1/me");
    await load();
    login.hide(); $("main").classList.remove("hidden"); $("error").textContent = "";
  } catch (e) { login.failed(e); }
}
$("kind").addEventListener("change", () => { current = 0; selected.clear(); load().catch(e => { $("error").textContent = e.message; }); });
setInterval(() => { if (client.token && document.activeElement !== $("note")) load().catch(() => {}); }, 30000);
start();
