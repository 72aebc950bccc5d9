// The inspector page's 双随机 section: the classes a draw gave this inspector, where, until when and what to do.
// The list is kept in S.draws, where the task view (task.js, #draw=<class id>) builds a drawn class's task from it.
import { $, el } from "../lib/dom.js";
import { dateTime } from "../lib/format.js";
import { S, client } from "./state.js";

const section = $("draws");

function drawCard(a) {
  const li = el("li", "card draw-task" + (a.done ? " done" : ""));
  const title = el("div", "title");
  title.append(el("b", "", `${a.class_name}（${a.class_code}）`),
    el("span", "badge " + (a.done ? "closed" : "accepted"), a.done ? "已提交检查表" : "待检查"));
  li.append(title);
  const facts = el("dl", "facts");
  const rows = [["培训机构", a.institution_name], ["培训场地", a.venue_name + (a.venue_address ? `（${a.venue_address}）` : "")],
    ["所在县区", a.county_name], ["上课时间", a.sessions.join("；") || "—"], ["培训期", a.class_dates],
    ["抽取", `${a.day} ${a.kind_name}`], ["抽查人员来源", a.tier_name || "—"],
    ["完成时限", `${dateTime(a.window_ends_at)} 前`]];
  if (a.done) rows.push(["已提交", `检查表 ${a.inspection_ids.length} 份`]);
  facts.append(...rows.flatMap(([k, v]) => [el("dt", "", k), el("dd", "", v)]));
  li.append(facts, el("p", "hint", a.todo));
  if (!a.done) {  // the form opens in the task view (task.js, #draw=<class id>)
    const go = el("a", "button", "填写检查表");
    go.href = `#draw=${a.class_id}`;
    li.append(go);
  }
  if (Number.isFinite(a.latitude) && Number.isFinite(a.longitude)) {
    // geo: URIs (RFC 5870) are WGS-84 by definition: the phone's map app converts them itself.
    const nav = el("a", "button secondary", "地图打开场地");
    const name = encodeURIComponent(`${a.institution_name} ${a.venue_name}`);
    nav.href = `geo:${a.latitude.toFixed(6)},${a.longitude.toFixed(6)}?q=${a.latitude.toFixed(6)},${a.longitude.toFixed(6)}(${name})`;
    li.append(nav);
  }
  return li;
}

function renderDraws(list) {
  S.draws = list;
  document.dispatchEvent(new Event("monitor:draws"));  // the task view redraws a drawn class it shows
  $("draw-tasks").replaceChildren(...list.map(drawCard));
  $("draws-empty").classList.toggle("hidden", list.length > 0);
  const open = list.filter(a => !a.done).length;
  $("draw-count").textContent = list.length ? `（待检查 ${open}，共 ${list.length}）` : "";
}

export async function loadDraws() {
  if (!client.token) return;  // not signed in yet (a one-time link is being redeemed): monitor:signed-in loads them
  try {
    const list = await client.get("/api/v1/my/assignments");
    section.classList.remove("hidden");
    renderDraws(list);
  } catch (e) {  // refused: the section hides; offline: it keeps what it showed
    if (e.status === 401 || e.status === 403) section.classList.add("hidden");
  }
}

loadDraws();
setInterval(loadDraws, 60000);
window.addEventListener("focus", loadDraws);
document.addEventListener("monitor:signed-in", loadDraws);  // signed in by a one-time link after this loaded
document.addEventListener("monitor:filed", loadDraws);  // a form filed from the task view
