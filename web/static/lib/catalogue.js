// The rule catalogue as the server serves it (/public/rules.json): rule names and severities in zh-CN and the
// dispatch vocabulary (states, actions, outcomes, checklist…). Pages never copy these; they read them from here.
export const RULES = {};
export const SEVERITY = {};
export const DISPATCH = { states: {}, actions: {}, outcomes: {}, page_states: {}, levels: {}, checklist: {}, results: {} };

/** Resolves once the catalogue is loaded (or could not be: the pages then show rule codes instead of names). */
export const catalogue = fetch("/public/rules.json")
  .then(r => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
  .then(body => {
    for (const rule of body.rules) RULES[rule.code] = rule.name;
    Object.assign(SEVERITY, body.severities);
    for (const key of Object.keys(DISPATCH)) Object.assign(DISPATCH[key], body.dispatch[key]);
  })
  .catch(() => {});

/** A rule's zh-CN name, or its code while the catalogue is not loaded. */
export const ruleName = code => RULES[code] || code;
