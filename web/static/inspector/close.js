// Closing a task (办结): the outcome and its note, with a draft kept on this phone until the server has it.
import { $ } from "../lib/dom.js";
import { DRAFT, OUTCOMES, S, store } from "./state.js";
import { flash, post, say, why } from "./ui.js";
import { upsert } from "./alerts.js";

export const closeKey = () => `${DRAFT}close.${S.current}`;
export function restoreClose() {
  const form = $("close-form");
  const draft = store.get(localStorage, closeKey());
  for (const r of form.elements.outcome) r.checked = Boolean(draft && r.value === draft.outcome);
  $("close-note").value = (draft && draft.note) || "";
  $("close-draft").textContent = draft ? "已恢复本机保存的草稿" : "";
}
$("close-form").addEventListener("input", () => {
  if (S.current == null) return;
  store.set(localStorage, closeKey(), { outcome: $("close-form").elements.outcome.value, note: $("close-note").value });
  $("close-draft").textContent = "草稿已保存在本机";
});
$("close-form").addEventListener("submit", async ev => {
  ev.preventDefault();
  const id = S.current;
  const outcome = $("close-form").elements.outcome.value;
  const note = $("close-note").value.trim();
  if (!outcome) { say("close-msg", "请选择处置结果", "bad"); return; }
  if (note.length < 2) { say("close-msg", "请填写处置说明（至少 2 个字）", "bad"); return; }
  $("close-submit").disabled = true;
  say("close-msg", "正在提交…", "wait");
  try {
    const a = await post(`/api/v1/alerts/${id}/close`, { outcome, note });
    store.drop(localStorage, `${DRAFT}close.${id}`);
    upsert(a);
    say("close-msg", "");
    flash(`已办结（${OUTCOMES[a.outcome] || a.outcome}），已移入我的历史`);
    location.hash = "";
  } catch (e) { say("close-msg", why(e), "bad"); } finally { $("close-submit").disabled = false; }
});
