// The counters (what happened and what is due), the ranking of all 16 prefectures, today's trend, the anomalies by
// rule and the classes short of inspections.
import * as M from "../lib/monitor.js";
import { $, el } from "../lib/dom.js";
import { topWithRest } from "../lib/lists.js";
import { emit, on, shortName } from "./state.js";

let trend = null;

export function initPanels() {
  trend = echarts.init($("trend"), null, { renderer: "svg" });
  // The trend's box gives way when the counters' state row wraps or the rule list grows: the chart follows its box
  // (drawn at the first size, its axis fell below the panel's edge).
  new ResizeObserver(() => trend.resize()).observe($("trend"));
  on("overview", render);
  on("shortfall", renderShortfall);
}

function render(overview) {
  const c = overview.counters;
  $("c-classes").textContent = c.classes_today;
  $("c-insession").textContent = c.classes_in_session;
  $("c-checkins").textContent = c.checkins_today;
  $("c-passrate").textContent = c.pass_rate == null ? "–" : (c.pass_rate * 100).toFixed(1) + "%";
  $("c-anomalies").textContent = c.anomalies_today;
  // What is actually waiting: active alerts (anomalies handled by a closed alert no longer count).
  $("c-open").textContent = c.alerts_active;
  const waiting = [];
  if (c.alerts_returned) waiting.push(`退回 ${c.alerts_returned}`);
  if (c.alerts_overdue) waiting.push(`超时 ${c.alerts_overdue}`);
  $("c-open-label").textContent = waiting.length ? `待处置（${waiting.join("，")}）` : "待处置告警";
  renderByState(c.alerts_by_state || {});
  // What is due: classes short of their inspections, sessions about to start.
  const due = overview.due;
  $("c-short").textContent = due.short_of_inspections;
  $("c-short-min").textContent = due.inspections_required;
  $("c-starting").textContent = due.sessions_within_hour;
  const first = due.starting[0];
  $("c-starting-label").textContent = first ? `1 小时内开课（最早 ${first.start}）` : "1 小时内开课";
  $("c-starting").parentElement.title = due.starting.map(s => `${s.start} ${s.class_name}（${s.session_name}）`).join("\n");
  renderRanking(overview.prefectures);
  renderRules(overview.anomalies_by_rule);
  renderTrend(overview.trend);
}

// The waiting alerts split by state, in the server's order, named as /public/rules.json names the states.
function renderByState(byState) {
  $("c-by-state").replaceChildren(...Object.entries(byState).map(([state, n]) => {
    const li = el("li", `state-${state}`, M.DISPATCH.states[state] || state);
    li.dataset.state = state;
    li.append(el("b", "", String(n)));
    return li;
  }));
}

// All 16 prefectures, most anomalies first, in two columns; a click shows its counties on the map.
function renderRanking(prefectures) {
  const ranking = $("ranking");
  const prefs = [...prefectures].sort((a, b) => b.anomalies - a.anomalies || b.classes - a.classes
    || a.code.localeCompare(b.code));
  const top = Math.max(1, ...prefs.map(p => p.anomalies));
  ranking.replaceChildren(...prefs.map(p => {
    const li = el("li");
    li.dataset.code = p.code;
    li.title = `${p.name}：班次 ${p.classes}，上课中 ${p.in_session}，签到 ${p.checkins}，异常 ${p.anomalies}`;
    const bar = el("span", "bar"); const fill = el("i"); fill.style.width = (100 * p.anomalies / top) + "%";
    bar.append(fill);
    li.append(el("span", "name", shortName(p.name)), bar, el("b", "", String(p.anomalies)));
    li.addEventListener("click", () => emit("drill", p.code));
    return li;
  }));
}

// At most RULES_SHOWN lines (five rows of two), the most frequent first; beyond them one line adds up the rest, so
// that a day on which every rule has fired still fits the screen (the demo fires about fifteen).
const RULES_SHOWN = 10;

function renderRules(byRule) {
  const list = $("by-rule");
  const rules = Object.entries(byRule).sort((a, b) => b[1] - a[1]);
  const { shown, rest } = topWithRest(rules, RULES_SHOWN);
  const line = (name, n, title) => {
    const li = el("li"); li.append(el("span", "", name), el("b", "", String(n)));
    if (title) li.title = title;
    return li;
  };
  list.replaceChildren(...shown.map(([rule, n]) => line(M.ruleName(rule), n)));
  if (rest.length) {
    list.append(line(`其他 ${rest.length} 类`, rest.reduce((sum, [, n]) => sum + n, 0),
      rest.map(([rule, n]) => `${M.ruleName(rule)} ${n}`).join("、")));
  }
  if (!rules.length) list.append(el("li", "", "暂无异常"));
}

function renderTrend(t) {
  if (!trend || !t) return;
  const axis = { color: "#8aa4cf", fontSize: 16 };
  trend.setOption({
    grid: { left: 46, right: 46, top: 34, bottom: 28 },
    legend: { top: 0, right: 0, textStyle: { color: "#cfe0ff", fontSize: 16 }, itemWidth: 16, itemHeight: 10 },
    tooltip: { trigger: "axis", textStyle: { fontSize: 16 } },
    xAxis: { type: "category", data: t.labels, axisLabel: { ...axis, interval: 11 },
      axisLine: { lineStyle: { color: "#2a4b85" } } },
    yAxis: [
      { type: "value", minInterval: 1, axisLabel: axis, splitLine: { lineStyle: { color: "#17305e" } } },
      { type: "value", minInterval: 1, axisLabel: axis, splitLine: { show: false } },
    ],
    series: [
      { name: "签到", type: "bar", data: t.checkins, itemStyle: { color: "#49e3ff" }, barMaxWidth: 8 },
      { name: "异常", type: "line", yAxisIndex: 1, data: t.anomalies, itemStyle: { color: "#ff8a65" },
        lineStyle: { width: 3 }, symbolSize: 5, connectNulls: false },
    ],
  });
}

// Classes short of the two inspections each must have (clause 十四), fewest first.
function renderShortfall(list) {
  const top = [...list].sort((a, b) => a.filed - b.filed).slice(0, 6);
  $("short-count").textContent = `${list.length} 个`;
  $("shortfall").replaceChildren(...top.map(c => {
    const li = el("li");
    li.append(el("span", "name", `${c.class_name}（${c.institution_name}）`), el("b", "", `${c.filed}/${c.required}`));
    return li;
  }));
}
