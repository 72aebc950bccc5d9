// The site page's offline shell (a service worker, scope /site): the page, its scripts, styles, icons, manifest
// and the rule catalogue are kept, so opening or reloading the page without network shows the page and the
// captures waiting in its queue (IndexedDB), not the browser's error. Fresh copies are fetched whenever the
// network answers; API requests (uploads, verdicts, class lists) never pass through this cache.
"use strict";
const SHELL = "site-shell-v1";
const FILES = ["/site", "/static/common.js", "/static/site.js", "/static/site-queue.js", "/static/site-camera.js",
  "/static/site-verdict.js", "/static/site-snapshot.js", "/static/site.css", "/static/manifest-site.webmanifest",
  "/static/icons/site-32.png", "/static/icons/site-192.png", "/static/icons/site-512.png", "/public/rules.json"];

self.addEventListener("install", event => {
  event.waitUntil(caches.open(SHELL).then(cache => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", event => {
  event.waitUntil(caches.keys()
    .then(keys => Promise.all(keys.filter(k => k.startsWith("site-shell-") && k !== SHELL).map(k => caches.delete(k))))
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
