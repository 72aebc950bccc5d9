// The inspection form (检查表): checklist, findings, photos, both signatures, filing it once, the PDF.
import { $, el } from "../lib/dom.js";
import { newKey } from "../lib/api.js";
import { DISPATCH } from "../lib/catalogue.js";
import { dateTime } from "../lib/format.js";
import { DRAFT, NET_DOWN, S, client, hooks, store } from "./state.js";
import { call, currentFix, say, setNet, why } from "./ui.js";

// -- the inspection form (检查表): checklist, findings, photos from the camera, both signatures -------------------
// The items and their results come with the catalogue (/public/rules.json), in the form's order. The draft keeps
// what was typed (not the photos nor the signature: a reload asks for those again).
export const MAX_PHOTOS = 10;
export const MIN_INK = 60; // CSS pixels of strokes: less is a stray tap, not a signature
const MIN_SPAN = 0.15; // of the pad's width the strokes must reach across (the center refuses less: SIGNATURE_BLANK)
export const inspectKey = id => `${DRAFT}inspect.${id}`;
export const filedForms = new Map(); // inspection id → what the server answered (its digest), fetched once
export const pdfUrls = new Map(); // inspection id → blob: URL of its PDF, fetched with the token
export const again = new Set(); // alerts whose inspector asked for another form after filing one
// One Idempotency-Key per draft being filed, kept with the draft in localStorage (also across a reload), so that
// the inspector's retry after a lost answer never files a second form (fileForm below).
const sent = new Map(); // key → the bodies sent under it whose answer never came (this page only)
function formKey(alertId) {
  const draft = store.get(localStorage, inspectKey(alertId)) || readInspection();
  if (!draft.key) { draft.key = newKey(); store.set(localStorage, inspectKey(alertId), draft); }
  return draft.key;
}
export let photos = []; // {file, url, capturedAt, fix (a promise of the phone's fix when it was taken)}
export const resultNames = () => DISPATCH.results;
export const checklist = () => Object.entries(DISPATCH.checklist);

export function buildItems() {
  const list = $("insp-items");
  if (!checklist().length) {
    list.replaceChildren(el("li", "msg bad", "检查项目未能加载，请检查网络后刷新页面"));
    $("insp-submit").disabled = true;
    return;
  }
  list.replaceChildren(...checklist().map(([key, label], n) => {
    const li = el("li", "item");
    li.dataset.key = key;
    const title = el("div", "label", `${n + 1}. ${label}`);
    title.id = `insp-item-${key}`;
    li.append(title);
    // Each item's choices are a group named by the item, and its note names the item too: eight "情况说明" fields
    // one under the other must be told apart by a screen reader.
    const choices = el("div", "choices");
    choices.setAttribute("role", "radiogroup");
    choices.setAttribute("aria-labelledby", title.id);
    for (const [value, name] of Object.entries(resultNames())) {
      const l = el("label", "choice");
      const input = el("input"); input.type = "radio"; input.name = `result.${key}`; input.value = value;
      l.append(input, ` ${name}`);
      choices.append(l);
    }
    const note = el("textarea"); note.name = `note.${key}`; note.rows = 1; note.maxLength = 1000;
    note.placeholder = `情况说明（${resultNames().problem || "不符合"}时必填）`;
    note.setAttribute("aria-label", `第 ${n + 1} 项「${label}」的情况说明（${resultNames().problem || "不符合"}时必填）`);
    li.append(choices, note);
    return li;
  }));
}

export function readInspection() {
  const els = $("insp-form").elements;
  const items = {};
  for (const [key] of checklist()) {
    items[key] = { result: els[`result.${key}`].value, note: els[`note.${key}`].value };
  }
  return { kind: els.kind.value, kindPicked: Boolean($("insp-form").dataset.kindPicked), items, headcount: $("insp-headcount").value, findings: $("insp-findings").value,
    responsible: $("insp-responsible").value };
}
export function markProblems() {
  for (const li of $("insp-items").children) {
    const key = li.dataset.key;
    if (key) li.classList.toggle("problem", $("insp-form").elements[`result.${key}`].value === "problem");
  }
}
export function fillInspection(draft) {
  const els = $("insp-form").elements;
  for (const r of els.kind) r.checked = Boolean(draft && r.value === draft.kind);
  if (draft && draft.kindPicked) $("insp-form").dataset.kindPicked = "1"; else delete $("insp-form").dataset.kindPicked;
  for (const [key] of checklist()) {
    const item = (draft && draft.items && draft.items[key]) || {};
    for (const r of els[`result.${key}`]) r.checked = r.value === item.result;
    els[`note.${key}`].value = item.note || "";
  }
  $("insp-headcount").value = (draft && draft.headcount) || "";
  $("insp-findings").value = (draft && draft.findings) || "";
  $("insp-responsible").value = (draft && draft.responsible) || "";
  markProblems();
}
export function restoreInspection() {
  if (!checklist().length) return;
  const draft = store.get(localStorage, inspectKey(S.current));
  fillInspection(draft);
  $("insp-draft").textContent = draft ? "已恢复本机保存的草稿（照片和签名须重新拍摄、签署）" : "";
  clearPhotos();
  clearSignature();
  say("insp-msg", "");
}
$("insp-form").addEventListener("input", ev => {
  if (S.current == null || ev.target === $("insp-photos")) return;
  if (ev.target.name === "kind") $("insp-form").dataset.kindPicked = "1";
  markProblems();
  const key = store.get(localStorage, inspectKey(S.current))?.key;  // the draft's Idempotency-Key stays with it
  store.set(localStorage, inspectKey(S.current), Object.assign(readInspection(), key ? { key } : {}));
  $("insp-draft").textContent = "草稿已保存在本机（照片和签名不保存）";
});

export function inspectionProblems(f) {
  const problems = [];
  const problem = resultNames().problem || "不符合";
  if (!f.kind) problems.push("请选择检查方式");
  for (const [key, label] of checklist()) {
    const item = f.items[key];
    if (!item.result) problems.push(`「${label}」未填写检查结果`);
    else if (item.result === "problem" && !item.note.trim()) problems.push(`「${label}」${problem}，须写明具体情况`);
  }
  if (Object.values(f.items).some(i => i.result === "problem") && !f.findings.trim()) {
    problems.push(`有${problem}项时须填写检查发现`);
  }
  const n = Number(f.headcount);
  if (f.headcount !== "" && (!Number.isInteger(n) || n < 0 || n > 10000)) problems.push("实到人数须为 0 到 10000 之间的整数");
  if (!f.responsible.trim()) problems.push("请填写现场负责人姓名");
  return problems;
}

// Photos: each camera shot (or several picked at once) is added, up to ten, with a thumbnail to check or remove.
export function renderThumbs() {
  $("insp-thumbs").replaceChildren(...photos.map((p, n) => {
    const li = el("li");
    const img = el("img"); img.src = p.url; img.alt = `现场照片 ${n + 1}`;
    const drop = el("button", "", "×"); drop.type = "button"; drop.setAttribute("aria-label", `删除照片 ${n + 1}`);
    drop.addEventListener("click", () => { URL.revokeObjectURL(p.url); photos.splice(photos.indexOf(p), 1); renderThumbs(); });
    li.append(img, drop);
    return li;
  }));
  $("insp-photo-count").textContent = photos.length
    ? `已拍 ${photos.length} 张（最多 ${MAX_PHOTOS} 张）` : "尚未拍照（可不拍，最多 10 张）";
  $("insp-photos").disabled = photos.length >= MAX_PHOTOS;
}
export function clearPhotos() {
  for (const p of photos) URL.revokeObjectURL(p.url);
  photos = [];
  renderThumbs();
}
$("insp-photos").addEventListener("change", () => {
  const input = $("insp-photos");
  const chosen = [...input.files].filter(f => !f.type || f.type.startsWith("image/"));
  const room = MAX_PHOTOS - photos.length;
  const capturedAt = new Date().toISOString();
  const fix = chosen.length ? currentFix(8000) : null; // where the photos were taken: one fix for the shot
  for (const file of chosen.slice(0, room)) photos.push({ file, url: URL.createObjectURL(file), capturedAt, fix });
  say("insp-msg", chosen.length > room ? `最多 ${MAX_PHOTOS} 张照片，另外 ${chosen.length - room} 张未添加` : "",
    chosen.length > room ? "bad" : "");
  input.value = "";
  renderThumbs();
});

// The signature pads (the site's responsible person's and the inspector's own): pointer events (finger, pen or
// mouse), drawn in each canvas's own pixels.
export function signaturePad(canvasId, clearId) {
  const pad = $(canvasId);
  const pen = pad.getContext("2d");
  let ink = 0;
  let left = Infinity, right = -Infinity; // how far across the pad the strokes reach (pad pixels)
  let drawing = null; // the pointer drawing, and where it last was
  function size() {
    const rect = pad.getBoundingClientRect();
    if (!rect.width || ink > 0) return; // hidden, or holding a signature that resizing would erase
    const dpr = Math.min(window.devicePixelRatio || 1, 3);
    const w = Math.round(rect.width * dpr), h = Math.round(rect.height * dpr);
    if (pad.width !== w || pad.height !== h) { pad.width = w; pad.height = h; }
  }
  function clear() {
    pen.clearRect(0, 0, pad.width, pad.height);
    ink = 0; left = Infinity; right = -Infinity;
    pad.classList.remove("signed");
    size();
  }
  function padPoint(e) {
    const rect = pad.getBoundingClientRect();
    return { x: (e.clientX - rect.left) * pad.width / rect.width, y: (e.clientY - rect.top) * pad.height / rect.height,
      scale: pad.width / rect.width };
  }
  function stroke(from, to) {
    pen.strokeStyle = "#0b1a33";
    pen.lineWidth = 2.6 * to.scale;
    pen.lineCap = "round"; pen.lineJoin = "round";
    pen.beginPath(); pen.moveTo(from.x, from.y); pen.lineTo(to.x, to.y); pen.stroke();
    ink += Math.hypot(to.x - from.x, to.y - from.y) / to.scale;
    left = Math.min(left, from.x, to.x); right = Math.max(right, from.x, to.x);
  }
  const signed = () => ink >= MIN_INK && right - left >= MIN_SPAN * pad.width;
  pad.addEventListener("pointerdown", e => {
    if (e.button > 0) return;
    e.preventDefault();
    size();
    try { pad.setPointerCapture(e.pointerId); } catch { /* drawing still works inside the box */ }
    drawing = { id: e.pointerId, at: padPoint(e) };
  });
  pad.addEventListener("pointermove", e => {
    if (!drawing || drawing.id !== e.pointerId) return;
    e.preventDefault();
    const points = typeof e.getCoalescedEvents === "function" ? e.getCoalescedEvents() : [];
    for (const p of points.length ? points : [e]) {
      const at = padPoint(p);
      stroke(drawing.at, at);
      drawing.at = at;
    }
  });
  const penUp = e => {
    if (!drawing || drawing.id !== e.pointerId) return;
    drawing = null;
    pad.classList.toggle("signed", signed());
  };
  pad.addEventListener("pointerup", penUp);
  pad.addEventListener("pointercancel", penUp);
  $(clearId).addEventListener("click", clear);
  const png = () => new Promise((resolve, reject) => pad.toBlob(
    b => b ? resolve(b) : reject(new Error("签名图片未能生成，请清除后重新签名")), "image/png"));
  return { size, clear, png, signed };
}
export const pads = { responsible: signaturePad("insp-sign", "insp-sign-clear"),
               inspector: signaturePad("insp-sign-mine", "insp-sign-mine-clear") };
export function sizePad() { pads.responsible.size(); pads.inspector.size(); }
window.addEventListener("resize", sizePad);
export function clearSignature() { pads.responsible.clear(); pads.inspector.clear(); }

$("insp-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const a = hooks.taskOf(S.current);
  if (!a || !checklist().length) return;
  const f = readInspection();
  const problems = inspectionProblems(f);
  if (!pads.responsible.signed()) problems.push("签名为空：请现场负责人在签名框内签名");
  if (!pads.inspector.signed()) problems.push("检查人员签名为空：请您本人在检查人员签名框内签名");
  if (problems.length) { say("insp-msg", problems.join("；"), "bad"); return; }
  const button = $("insp-submit");
  button.disabled = true;
  say("insp-msg", photos.length ? `正在上传检查表和 ${photos.length} 张照片…` : "正在上传检查表…", "wait");
  try {
    const signature = await pads.responsible.png();
    const mine = await pads.inspector.png();
    const body = new FormData();
    body.append("class_id", String(a.class_id));
    if (!a.draw) body.append("alert_id", String(a.id));  // a drawn class's form answers the draw, not an alert
    body.append("kind", f.kind);
    const items = {};
    for (const [key, item] of Object.entries(f.items)) items[key] = { result: item.result, note: item.note.trim() || null };
    body.append("items", JSON.stringify(items));
    body.append("findings", f.findings.trim());
    body.append("responsible_name", f.responsible.trim());
    if (f.headcount !== "") body.append("headcount_present", String(Number(f.headcount)));
    body.append("signature", signature, "signature.png");
    body.append("inspector_signature", mine, "inspector-signature.png");
    photos.forEach((p, n) => body.append("photos", p.file, p.file.name || `photo-${n + 1}.jpg`));
    // Each photo's capture time (when the page took it) and the phone's fix then, in the photos' order.
    const meta = await Promise.all(photos.map(async p => ({ captured_at: p.capturedAt, fix: await p.fix })));
    if (photos.length) body.append("photo_meta", JSON.stringify(meta));
    const fix = await currentFix(8000);  // where the form is signed: judged against the venue's fence
    if (fix) body.append("fix", JSON.stringify(fix));
    const { filed, earlier } = await fileForm(a, body);
    if (filed) filedForms.set(filed.id, filed);
    store.drop(localStorage, inspectKey(a.id));
    again.delete(a.id);
    fillInspection(null);
    clearPhotos();
    clearSignature();
    $("insp-draft").textContent = "";
    say("insp-msg", "");
    if (filed && !a.inspection_ids.includes(filed.id)) a.inspection_ids = [...a.inspection_ids, filed.id];
    if (a.draw) {  // the draw's list shows it done at once, and is reloaded from the server
      if (filed) { a.draw.inspection_ids = a.inspection_ids; a.draw.done = true; }
      document.dispatchEvent(new Event("monitor:filed"));
    }
    hooks.renderTask();
    const what = !filed ? "此前提交的检查表已归档（当时未收到回复），本次未重复归档"
      : `检查表已归档（第 ${filed.id} 号）${earlier ? "：系此前未收到回复的那次提交，之后的修改未包含" : ""}`;
    say("insp-done-msg", `${what}${a.draw ? "，本次双随机抽查任务已完成" : "，请核对后办结"}`, "ok");
    $("insp-done").scrollIntoView({ block: "start" });
    if (!a.draw) hooks.refreshAlert(a.id);
  } catch (e) { say("insp-msg", why(e), "bad"); } finally { button.disabled = false; }
});
// Sends the form under its draft's key: { filed, earlier }. A 422 IDEMPOTENCY_KEY_REUSED means an earlier sending
// of this draft was filed though its answer was lost: that body again (this page keeps every body whose answer
// never came) gets the form filed back (`earlier`). After a reload those bodies are gone: `filed` is null, and the
// task, reloaded, shows the form filed then. Either way there is never a second form.
async function fileForm(a, body) {
  const key = formKey(a.id);
  const send = b => call("/api/v1/inspections", { method: "POST", body: b, idempotencyKey: key });
  const earlier = sent.get(key) || [];
  sent.set(key, [...earlier, body]);
  for (const b of [body, ...earlier]) {
    try {
      const filed = await send(b);
      sent.delete(key);
      return { filed, earlier: b !== body };
    } catch (e) { if (e.code !== "IDEMPOTENCY_KEY_REUSED") throw e; }
  }
  sent.delete(key);
  return { filed: null, earlier: true };
}
$("insp-again").addEventListener("click", () => {
  if (S.current == null) return;
  again.add(S.current);
  say("insp-done-msg", "");
  hooks.renderTask();
  $("insp-form").scrollIntoView({ block: "start" });
});

// Filed forms: the PDF needs the token, so the link fetches it and opens it from a blob: URL.
export const shaLine = f => `SHA-256 ${f.pdf_sha256.slice(0, 16)}…`;
export function renderFiled(a) {
  const ids = a.inspection_ids || [];
  const list = $("insp-filed");
  if (list.dataset.ids === ids.join(",") && ids.every(id => filedForms.has(id))) return;
  list.dataset.ids = ids.join(",");
  list.replaceChildren(...ids.map(id => {
    const li = el("li");
    li.dataset.inspectionId = id;
    const f = filedForms.get(id);
    const link = el("a", "pdf", `检查表第 ${id} 号（PDF）`);
    link.href = `/api/v1/inspections/${id}/form.pdf`;
    link.dataset.pdfUrl = link.href;
    link.addEventListener("click", ev => openPdf(ev, id, link));
    const sha = el("span", "sha", f ? shaLine(f) : "");
    li.append(link, sha);
    if (f) li.append(el("span", "sub", `${f.kind === "phone" ? "电话抽查" : "现场检查"} · ${f.inspector} · 负责人 ${f.responsible_name} · ${dateTime(f.inspected_at)}`));
    else call(`/api/v1/inspections/${id}`).then(got => { filedForms.set(id, got); renderFiled(a); }).catch(() => {});
    return li;
  }));
}
export async function sha256Hex(blob) {
  if (!window.crypto || !crypto.subtle) return null; // only in secure contexts
  const digest = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, "0")).join("");
}
export async function openPdf(ev, id, link) {
  if (pdfUrls.has(id)) return; // the link already points at the fetched PDF
  ev.preventDefault();
  say("insp-done-msg", "正在获取检查表 PDF…", "wait");
  try {
    let file;
    try {
      file = await client.file(link.dataset.pdfUrl);
    } catch (e) {
      if (e.status) throw e;
      setNet(NET_DOWN); say("insp-done-msg", NET_DOWN, "bad"); return;
    }
    const blob = new Blob([file.blob], { type: "application/pdf" });
    const declared = file.headers.get("X-Content-SHA256");
    const got = await sha256Hex(blob);
    if (got && declared && got !== declared) throw new Error("检查表 PDF 与其摘要不符，请重新获取");
    const url = URL.createObjectURL(blob);
    pdfUrls.set(id, url);
    link.href = url; link.target = "_blank"; link.rel = "noopener";
    link.dataset.blob = "1";
    say("insp-done-msg", `检查表 PDF 已获取${got ? "，摘要已核对" : ""}（SHA-256 ${(got || declared || "").slice(0, 16)}…）`, "ok");
    if (!window.open(url, "_blank")) say("insp-done-msg", "浏览器拦截了新窗口：请再点一次链接打开检查表", "wait");
  } catch (e) { say("insp-done-msg", e.message || "未能获取检查表", "bad"); }
}
