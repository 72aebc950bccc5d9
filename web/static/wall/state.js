// The wall's state, apart from its views: the one API client (its token), the latest overview, the live feed's cursor
// and role, classes that alarmed lately, the returned alerts; a small event bus the views subscribe to.
import { createClient } from "../lib/api.js";

export const client = createClient({ tokenKey: "monitor.wall.token" });

export const state = {
  overview: null,
  lastId: null,        // the last event id seen: a reconnect resumes from it
  role: null,          // from the live feed's hello
  may: null,           // the hello's capabilities (null until it came): only who may dispatch sees those buttons
  alarmed: new Map(),  // class id -> time (ms) of its latest anomaly
  returned: new Map(), // alert id -> what the returned list shows
  returnedLoad: 0,     // bumped by every change of `returned`, so a load that started before it never overwrites it
  announceAfter: null, // events up to the first hello are history: no sound for them
  live: false,
  get token() { return client.token; },
};

export const setToken = token => client.setToken(token);
export const api = (path, options) => client.request(path, options);
export const photo = sha => client.photoUrl(sha);
/** A vendored file (the map outlines): no token, it is public. */
export const staticJson = path => client.get(path, { auth: false });
export const isOperator = () => (state.may || []).includes("dispatch_alerts");  // the live feed's hello says so

const listeners = new Map();
export function on(name, fn) {
  if (!listeners.has(name)) listeners.set(name, []);
  listeners.get(name).push(fn);
}
export function emit(name, ...args) {
  for (const fn of listeners.get(name) || []) {
    try { fn(...args); } catch (e) { console.error(name, e); }
  }
}

// Prefecture names as the wall shows them: 红河哈尼族彝族自治州 -> 红河州, 昆明市 -> 昆明.
export function shortName(name) {
  return name.replace(/(彝族|哈尼族|壮族|苗族|傣族|景颇族|傈僳族|藏族|白族).*自治州$/, "州").replace(/市$/, "");
}
