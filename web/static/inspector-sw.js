// The inspector page's offline shell (a service worker): the page, its scripts, styles and the rule catalogue are
// kept, so a reload without network shows the page and the drafts this phone holds (localStorage), not the
// browser's error. Fresh copies are fetched whenever the network answers; API data is never cached here (the page
// keeps what it needs in sessionStorage and localStorage itself).
"use strict";
const SHELL = "inspector-shell-v2";
const FILES = ["/inspector", "/static/common.js", "/static/inspector-draws.js", "/static/inspector.css",
  "/public/rules.json", ...["main", "state", "ui", "alerts", "task", "phone", "form", "gcj02"]
    .map(name => `/static/inspector/${name}.js`)];

self.addEventListener("install", event => {
  event.waitUntil(caches.open(SHELL).then(cache => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", event => {
  event.waitUntil(caches.keys()
    .then(keys => Promise.all(keys.filter(k => k.startsWith("inspector-shell-") && k !== SHELL).map(k => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", event => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !FILES.includes(url.pathname)) return;
  // Network first (a new version of the page arrives at once), the kept copy when there is no network.
  event.respondWith(fetch(event.request).then(response => {
    if (response.ok) {
      const copy = response.clone();
      event.waitUntil(caches.open(SHELL).then(cache => cache.put(url.pathname, copy)));
    }
    return response;
  }).catch(() => caches.match(url.pathname).then(hit => hit || Response.error())));
});
