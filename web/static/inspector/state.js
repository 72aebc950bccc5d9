// The inspector page's shared state and constants: one object the views read and change (S), the storage keys,
// and storage that never stops the page when it is full or disabled.
export const M = Monitor;  // web/static/common.js, a classic script loaded first (a global binding, not a window property)
export const TOKEN_KEY = "monitor.inspector.token";
// localStorage keeps what the inspector typed until the server has it (drafts), and which phone check belongs to
// which alert; sessionStorage keeps the last answers (they hold trainees' numbers) only for this tab, so a reload
// while the network is down still shows the forms.
export const DRAFT = "monitor.inspector.draft.";
export const CHECK_OF = "monitor.inspector.check.";
export const CACHE = "monitor.inspector.cache.";
export const OUTCOMES = M.DISPATCH.outcomes;  // served with the rule catalogue (/public/rules.json)
export const ACTIONS = M.DISPATCH.actions;
export const WORKING = ["accepted", "on_site", "phoning"];
export const FINISHED = ["closed", "resolved"];
export const NET_DOWN = "网络异常：未能连接服务器。已填写的内容已保存在本机，网络恢复后请重新提交。";
export const $ = id => document.getElementById(id);

export const S = {
  token: M.takeToken(TOKEN_KEY),
  me: null,
  alerts: [],
  current: null, // the alert the task view shows
  check: null, // its phone check
  lastId: null, // the last live event seen, so a reconnect resumes where it stopped
  announceAfter: null, // events up to the first hello are history: no sound for them
};

export const store = {
  get(area, key) { try { return JSON.parse(area.getItem(key)); } catch { return null; } },
  set(area, key, value) { try { area.setItem(key, JSON.stringify(value)); } catch { /* the form still works */ } },
  drop(area, key) { try { area.removeItem(key); } catch { /* nothing to drop */ } },
  keys(area) { try { return Object.keys(area); } catch { return []; } },
};

// Functions of the upper modules that the lower ones call back (set once by main.js): the modules form layers,
// state < ui < alerts < phone, form < task < main, and never import upwards.
export const hooks = {};
