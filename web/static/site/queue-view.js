// The outbox on screen: the list of captures kept on the phone until they are delivered (with when each is tried
// again), the 立即重试 button, and what each attempt came to, said in the check-in's or the snapshot's result box.
import * as M from "../lib/monitor.js";
import { S, finalVerdict, learnLiveness, outbox } from "./state.js";
import { fillTrainees, say, showLogin } from "./checkin.js";
import { SiteSnapshot } from "./snapshot.js";
import { SiteVerdict } from "./verdict.js";

const { $ } = M;
const announced = new Set();  // keys whose first failed attempt was reported in the result box

const whoLine = item => M.el("p", "who", `${item.label} · 拍摄于 ${M.time(item.captured_at)}`);

async function checkinResult(item, r) {
  const box = $("result");
  if (r.outcome === "delivered") {
    const body = await finalVerdict(r.body);
    SiteVerdict.show(box, SiteVerdict.describe(body, "checkin"));
    box.append(whoLine(item));
    if (r.body.duplicate) box.append(M.el("p", "detail", "此记录此前已送达服务器，本次未重复计入"));
    box.dataset.checkinId = body.id;
    box.dataset.status = body.status;
  } else if (r.outcome === "refused") {
    if (r.body?.code === "LIVENESS_REQUIRED") {
      learnLiveness(item.fields.class_id);
      fillTrainees();
    }
    SiteVerdict.show(box, SiteVerdict.refusal(r.body, "checkin"));
    box.append(whoLine(item));
    box.dataset.code = r.body?.code || "";
  } else if (r.outcome === "auth") {
    say("bad", `${r.body?.message || "机构令牌无效或已停用"}：记录已保存在本手机，请输入有效的机构令牌后自动上传`);
    showLogin();
  } else if (item.key === S.lastKey && !announced.has(item.key)) {
    announced.add(item.key);
    say("wait", `${r.error}：记录已保存在本手机，联网后自动上传`);
  }
}

let shown = { items: [], sending: new Set() };

function renderQueue() {
  const { items, sending } = shown;
  $("queue-box").classList.toggle("hidden", !items.length);
  $("queue-count").textContent = String(items.length);
  $("queue").replaceChildren(...items.map(item => {
    const li = M.el("li");
    li.dataset.key = item.key;
    const wait = item.next_at > Date.now() ? `，约 ${Math.ceil((item.next_at - Date.now()) / 1000)} 秒后重试` : "";
    const state = sending.has(item.key) ? "正在上传…" : item.last_error ? item.last_error + wait : "等待上传";
    li.append(M.el("span", "when", M.time(item.captured_at)), M.el("span", "what", item.label),
      M.el("span", "state", state));
    return li;
  }));
}

/** Follows the outbox: its list (redrawn each second while a retry is counted down) and its results. */
export function initQueueView() {
  outbox.on("result", (item, r) => (item.kind === "snapshot" ? SiteSnapshot.result(item, r) : checkinResult(item, r)));
  outbox.on("change", (items, sending) => { shown = { items, sending }; renderQueue(); });
  setInterval(() => { if (shown.items.some(i => i.next_at > Date.now() - 1000)) renderQueue(); }, 1000);
  $("queue-retry").addEventListener("click", () => outbox.pump(true));
}
