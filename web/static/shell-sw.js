// The phone pages' offline shell (one service worker, served as /inspector-sw.js with scope /inspector and as
// /site-sw.js with scope /site): each page, its scripts, styles and the rule catalogue are kept, so a reload without
// network shows the page and what the phone holds (the inspector's drafts in localStorage, the site's queue in
// IndexedDB), not the browser's error. Network first: a new version arrives at once. API requests (uploads,
// verdicts, tasks) never pass through this cache.
"use strict";
const SHELLS = {
  inspector: ["/inspector", "/static/common.js", "/static/inspector-draws.js", "/static/inspector.css",
    ...["main", "state", "ui", "alerts", "task", "phone", "form", "gcj02"].map(m => `/static/inspector/${m}.js`)],
  site: ["/site", "/static/common.js", "/static/site.js", "/static/site-queue.js", "/static/site-camera.js",
    "/static/site-verdict.js", "/static/site-snapshot.js", "/static/site.css", "/static/manifest-site.webmanifest",
    "/static/icons/site-32.png", "/static/icons/site-192.png", "/static/icons/site-512.png"],
};
const PAGE = self.location.pathname.replace(/^\//, "").replace(/-sw\.js$/, "");
const FILES = [...(SHELLS[PAGE] || []), "/public/rules.json"];
const SHELL = `${PAGE}-shell-v3`;

self.addEventListener("install", event => {
  event.waitUntil(caches.open(SHELL).then(cache => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", event => {
  event.waitUntil(caches.keys()
    .then(keys => Promise.all(keys.filter(k => k.startsWith(`${PAGE}-shell-`) && k !== SHELL).map(k => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", event => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !FILES.includes(url.pathname)) return;
  event.respondWith(fetch(event.request).then(response => {
    if (response.ok) {
      const copy = response.clone();
      event.waitUntil(caches.open(SHELL).then(cache => cache.put(url.pathname, copy)));
    }
    return response;
  }).catch(() => caches.match(url.pathname).then(hit => hit || Response.error())));
});
