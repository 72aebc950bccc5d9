// What a page imports as one namespace (`import * as M from "../lib/monitor.js"`): the API client, the offline
// queue, the live feed, the served rule catalogue, times in Asia/Shanghai and the DOM helpers.
export { ApiError, backoffMs, createClient, describeStatus, newKey } from "./api.js";
export { createOutbox, outcomeOf } from "./outbox.js";
export { openLive } from "./live.js";
export { registerShell } from "./shell.js";
export { tokenPrompt } from "./login.js";
export { DISPATCH, RULES, SEVERITY, catalogue, ruleName } from "./catalogue.js";
export { dateTime, isoWithZone, time, today } from "./format.js";
export { $, el } from "./dom.js";
