// The inspector page's shared state and constants: the page's one API client (its token too), one object the
// views read and change (S), the storage keys, and storage that never stops the page when it is full or disabled.
import { createClient } from "../lib/api.js";
import { DISPATCH } from "../lib/catalogue.js";

export const TOKEN_KEY = "monitor.inspector.token";
// The one client of this page (web/static/lib/api.js): the token lives in it (localStorage, so the inspector stays
// signed in for the sign-in's 12 hours when the task is opened from a notification, another tab or after the
// phone's browser restarts; a #token= link replaces it), every call and every file goes through it, every POST
// carries an Idempotency-Key.
export const client = createClient({ tokenKey: TOKEN_KEY, keep: "local" });
// localStorage keeps what the inspector typed until the server has it (drafts), and which phone check belongs to
// which alert; sessionStorage keeps the last answers (they hold trainees' numbers) only for this tab, so a reload
// while the network is down still shows the forms.
export const DRAFT = "monitor.inspector.draft.";
export const CHECK_OF = "monitor.inspector.check.";
export const CACHE = "monitor.inspector.cache.";
export const OUTCOMES = DISPATCH.outcomes;  // served with the rule catalogue (/public/rules.json)
export const ACTIONS = DISPATCH.actions;
export const WORKING = ["accepted", "on_site", "phoning"];
export const FINISHED = ["closed", "resolved"];
export const NET_DOWN = "网络异常：未能连接服务器。已填写的内容已保存在本机，网络恢复后请重新提交。";

export const S = {
  get token() { return client.token; },  // kept by the client: reads and writes go through it
  set token(t) { client.setToken(t); },
  me: null,
  alerts: [],
  draws: [], // the classes a 双随机 draw gave this inspector (draws.js loads them; the task view reads them)
  current: null, // the alert the task view shows
  check: null, // its phone check
  checkAsked: null, // the alert's latest phone check, once asked for (a check started elsewhere is shown, not redrawn)
  announceAfter: null, // events up to the first hello are history: no sound for them
};

export const store = {
  get(area, key) { try { return JSON.parse(area.getItem(key)); } catch { return null; } },
  set(area, key, value) { try { area.setItem(key, JSON.stringify(value)); } catch { /* the form still works */ } },
  drop(area, key) { try { area.removeItem(key); } catch { /* nothing to drop */ } },
  keys(area) { try { return Object.keys(area); } catch { return []; } },
};

// Functions of the upper modules that the lower ones call back (set once by main.js): the modules form layers,
// lib < state < ui < alerts, draws < phone, form, close < task < main, and never import upwards.
export const hooks = {};
