// The phone check: trainees drawn from the roster, calls timed by the page, completion.
import { $, el } from "../lib/dom.js";
import { dateTime, time } from "../lib/format.js";
import { newKey } from "../lib/api.js";
import { CACHE, CHECK_OF, DRAFT, S, hooks, store } from "./state.js";
import { call, post, say, why } from "./ui.js";

// -- the phone check -----------------------------------------------------------------------------------------------
$("phone").addEventListener("click", async () => {
  const id = S.current;
  const button = $("phone");
  button.disabled = true;
  say("t-msg", "正在抽取学员…", "wait");
  try {
    const c = await post(`/api/v1/alerts/${id}/phone-checks`);
    store.set(localStorage, CHECK_OF + id, c.id);
    // The server answers the alert's open check when there is one (never a second draw): say when it was drawn.
    const calls = (c.calls || []).length;
    say("t-msg", `本次抽查于 ${time(c.created_at)} 从班级名册随机抽取 ${c.trainees.length} 名学员`
      + (calls ? `，已记录 ${calls} 通电话` : "") + "，请逐一电话核实（点号码拨出，本页自动计时）", "ok");
    showCheck(c);
    await hooks.refreshAlert(id);
  } catch (e) { say("t-msg", why(e), "bad"); button.disabled = false; }
});

/** Shows the phone check `checkId` of the task open. `found`: it is the alert's latest check as the server lists it
 *  (not one this phone started): shown unless it was abandoned, and remembered as the alert's check on this phone. */
export async function loadCheck(checkId, found = false) {
  const forAlert = S.current;
  let c = null;
  try {
    c = await call(`/api/v1/phone-checks/${checkId}`);
  } catch (e) {
    c = store.get(sessionStorage, `${CACHE}check.${checkId}`);
    if (!c && !e.network) store.drop(localStorage, CHECK_OF + forAlert);
    if (!c && e.network && found && S.checkAsked === checkId) S.checkAsked = null;  // asked again when back online
  }
  if (!c || S.current !== forAlert) return;
  if (found) {
    if (c.state === "abandoned") return;  // ended with an earlier round of the alert: a new one may be started
    store.set(localStorage, CHECK_OF + forAlert, c.id);
  }
  showCheck(c);
}

export function showCheck(c) {
  S.check = c;
  store.set(sessionStorage, `${CACHE}check.${c.id}`, c);
  $("check").classList.remove("hidden");
  const done = c.state === "done";
  const by = c.inspector ? `由 ${c.inspector} ` : "";
  $("check-started").textContent = done
    ? `${dateTime(c.created_at)}（北京时间）${by}发起，${dateTime(c.completed_at)} 完成`
    : `进行中：${dateTime(c.created_at)}（北京时间）${by}发起。请逐一拨打下方学员电话并记录通话，`
      + `接通不少于 ${c.required} 人后点「完成抽查」`;
  $("check-summary").textContent = done
    ? `抽查已完成：抽取 ${c.trainees.length} 人，接通 ${c.reached} 人，确认在班 ${c.confirmed_present} 人（${dateTime(c.completed_at)}）`
    : c.done ? `抽取 ${c.trainees.length} 人。${c.message}，可以点「完成抽查」`
      : `抽取 ${c.trainees.length} 人，确认在班 ${c.confirmed_present} 人。${c.message}`;
  $("check-summary").className = `summary ${done ? "ok" : ""}`;
  $("check-list").replaceChildren(...c.trainees.map(t => traineeItem(c, t)));
  $("complete").classList.toggle("hidden", done);
  hooks.renderTask();
}

export function lastCall(c, traineeId) { return c.calls.filter(x => x.trainee_id === traineeId).at(-1); }
export const CDR = { confirmed: " · 话单已印证", unconfirmed: " · 话单未印证" };
export function seconds(s) { return s >= 60 ? `${Math.floor(s / 60)} 分 ${s % 60} 秒` : `${s} 秒`; }
export function callText(k) {
  if (!k) return "尚未记录通话";
  const how = k.reached ? `已接通${k.present === true ? " · 确认在班" : k.present === false ? " · 不在班" : ""}` : "未接通";
  const when = k.started_at ? `${time(k.started_at)} 起 ${seconds(k.duration_s)}` : `${seconds(k.duration_s)}`;
  return `${how} · ${when}${k.timing === "page" ? "（本页计时）" : ""}${CDR[k.cdr_state] || ""}${k.answers ? "：" + k.answers : ""}`;
}

export function traineeItem(c, t) {
  const li = el("li", "trainee");
  li.dataset.traineeId = t.trainee_id;
  const who = el("div", "who");
  who.append(el("b", "", t.name), el("span", "idno", t.id_number_masked),
    el("span", `state ${t.state}`, t.state_text || ""));
  li.append(who);
  if (t.phone) {
    const tel = el("a", "tel button", `拨打 ${t.phone}`);
    tel.href = `tel:${t.phone}`;
    tel.addEventListener("click", () => callStarted(c.id, t.trainee_id));
    li.append(tel);
  } else li.append(el("p", "hint", t.has_phone ? `电话 ${t.phone_masked}` : "未登记手机号：无法拨打，不能记为接通"));
  const k = lastCall(c, t.trainee_id);
  li.append(el("div", `last ${k ? (k.reached ? "reached" : "missed") : ""}`, callText(k)));
  if (c.state === "open") li.append(callForm(c, t, Boolean(k)));
  return li;
}

// A call's times are the page's own: tapping the number starts it, coming back to the page (or 「结束通话」)
// ends it. Nothing is typed: the server moves them onto its clock and refuses times that cannot be true.
export const draftKey = (checkId, traineeId) => `${DRAFT}call.${checkId}.${traineeId}`;
export function readCall(form) {
  return { reached: form.elements.reached.value, present: form.elements.present.checked,
    answers: form.elements.answers.value,
    started: form.dataset.started ? Number(form.dataset.started) : null,
    ended: form.dataset.ended ? Number(form.dataset.ended) : null };
}
export function syncPresent(form) {
  const reached = form.elements.reached.value === "yes";
  form.elements.present.disabled = !reached;
  if (!reached) form.elements.present.checked = false;
}
export function showTiming(form) {
  const started = Number(form.dataset.started || 0), ended = Number(form.dataset.ended || 0);
  const line = form.querySelector(".timing");
  const stop = form.querySelector(".stop");
  stop.classList.toggle("hidden", !started || Boolean(ended));
  if (!started) line.textContent = form.dataset.phone ? "通话计时：点上方号码拨出后自动开始" : "通话计时：无号码，可直接记为未接通";
  else if (!ended) line.textContent = `通话中：${time(started)} 拨出`;  // Beijing time, whatever the phone's zone
  else line.textContent = `本页计时：${time(started)} 拨出，`
    + `通话 ${seconds(Math.round((ended - started) / 1000))}`;
}

export function callForm(c, t, called) {
  const key = draftKey(c.id, t.trainee_id);
  const details = el("details", "call");
  details.append(el("summary", "", called ? "重新记录通话" : "记录通话"));
  const form = el("form");
  form.noValidate = true;
  if (t.phone) form.dataset.phone = t.phone;
  const timing = el("p", "timing hint");
  const stop = el("button", "stop secondary hidden", "结束通话"); stop.type = "button";
  stop.addEventListener("click", () => { callEnded(form); });
  const choices = el("div", "choices");
  choices.setAttribute("role", "group");
  choices.setAttribute("aria-label", `${t.name}：通话结果`);
  for (const [value, label] of [["yes", "接通"], ["no", "未接通"]]) {
    const l = el("label", "choice");
    const input = el("input"); input.type = "radio"; input.name = "reached"; input.value = value;
    if (value === "yes" && !t.has_phone) input.disabled = true;  // nobody is reached on a number not on file
    l.append(input, ` ${label}`);
    choices.append(l);
  }
  const presentLabel = el("label", "choice");
  const present = el("input"); present.type = "checkbox"; present.name = "present";
  presentLabel.append(present, " 确认在班");
  choices.append(presentLabel);
  const answersLabel = el("label", "", "通话内容");
  const answers = el("textarea"); answers.name = "answers"; answers.rows = 2; answers.maxLength = 2000;
  answers.placeholder = "学员所述：是否在班、今日所学内容等";
  answers.setAttribute("aria-label", `与${t.name}的通话内容`);
  answersLabel.append(answers);
  const submit = el("button", "", "保存通话记录"); submit.type = "submit";
  const saved = el("p", "hint draft");
  const msg = el("p", "msg");
  form.append(timing, stop, choices, answersLabel, saved, submit, msg);
  details.append(form);
  const draft = store.get(localStorage, key);
  if (draft) {
    if (draft.reached) for (const r of form.elements.reached) r.checked = r.value === draft.reached;
    present.checked = Boolean(draft.present);
    answers.value = draft.answers || "";
    if (draft.started) form.dataset.started = draft.started;
    if (draft.ended) form.dataset.ended = draft.ended;
    saved.textContent = "已恢复本机保存的草稿";
  }
  syncPresent(form);
  showTiming(form);
  details.open = !called || Boolean(draft);
  form.addEventListener("input", () => {
    syncPresent(form);
    keepDraft(key, readCall(form));
    saved.textContent = "草稿已保存在本机";
  });
  form.addEventListener("submit", ev => { ev.preventDefault(); recordCall(c.id, t.trainee_id, form, submit, msg); });
  return details;
}

export function formOf(traineeId) { return document.querySelector(`#check-list li[data-trainee-id="${traineeId}"] form`); }
export function callStarted(checkId, traineeId) {
  const form = formOf(traineeId);
  if (!form) return;
  form.dataset.started = String(Date.now());
  delete form.dataset.ended;
  form.closest("details").open = true;
  showTiming(form);
  keepDraft(draftKey(checkId, traineeId), readCall(form));
}
export function callEnded(form) {
  if (!form.dataset.started || form.dataset.ended) return;
  form.dataset.ended = String(Date.now());
  showTiming(form);
  form.dispatchEvent(new Event("input"));
}
// Back on the page after the dialler: the call has ended.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible" || !S.check) return;
  for (const form of document.querySelectorAll("#check-list form[data-started]")) callEnded(form);
});

// A call's draft keeps, besides what was typed, its Idempotency-Key and the bodies sent under it whose answer never
// came (also across a reload): a retry after a lost answer gets back the call recorded then, never a second one.
function keepDraft(key, fields) {
  const { key: sendKey, sent } = store.get(localStorage, key) || {};
  store.set(localStorage, key, Object.assign(fields, sendKey ? { key: sendKey, sent } : {}));
}
async function sendCall(checkId, traineeId, json) {
  const key = draftKey(checkId, traineeId);
  const draft = store.get(localStorage, key) || {};
  const earlier = draft.sent || [];
  Object.assign(draft, { key: draft.key || newKey(), sent: [...earlier, json] });
  store.set(localStorage, key, draft);
  for (const body of [json, ...earlier]) {  // the server refuses a key used for another body: try the earlier ones
    try {
      return await post(`/api/v1/phone-checks/${checkId}/calls`, body, { idempotencyKey: draft.key });
    } catch (e) { if (e.code !== "IDEMPOTENCY_KEY_REUSED") throw e; }
  }
  return call(`/api/v1/phone-checks/${checkId}`);  // recorded under this key, its body not kept here: the check now
}

export async function recordCall(checkId, traineeId, form, submit, msg) {
  const f = readCall(form);
  if (!f.reached) { say(msg, "请选择接通或未接通", "bad"); return; }
  const reached = f.reached === "yes";
  let { started, ended } = f;
  if (form.dataset.phone && !started) { say(msg, "请先点上方号码拨出，本页会为通话计时", "bad"); return; }
  if (started && !ended) { callEnded(form); ended = Number(form.dataset.ended); }
  if (!started) started = ended = Date.now();  // no number on file: nothing was dialled
  submit.disabled = true;
  say(msg, "正在保存…", "wait");
  try {
    const c = await sendCall(checkId, traineeId, { trainee_id: traineeId, reached,
      present: reached ? f.present : null, answers: f.answers.trim() || null,
      started_at: new Date(started).toISOString(), ended_at: new Date(ended).toISOString(),
      page_now: new Date().toISOString() });
    store.drop(localStorage, draftKey(checkId, traineeId));
    showCheck(c);
    say("check-msg", "通话记录已保存", "ok");
  } catch (e) {
    say(msg, why(e), "bad");
    submit.disabled = false;
  }
}

$("complete").addEventListener("click", async () => {
  if (!S.check) return;
  const button = $("complete");
  button.disabled = true;
  say("check-msg", "正在提交…", "wait");
  try {
    showCheck(await post(`/api/v1/phone-checks/${S.check.id}/complete`));
    say("check-msg", "电话抽查已完成，请填写检查表并办结", "ok");
  } catch (e) { say("check-msg", why(e), "bad"); } finally { button.disabled = false; }
});
