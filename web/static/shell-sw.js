// The phone pages' offline shell (one service worker, served as /inspector-sw.js with scope /inspector and as
// /site-sw.js with scope /site): each page, its modules, the shared ones (lib/), its style and the rule catalogue
// are kept, so a reload without network shows the page and what the phone holds (the inspector's drafts in
// localStorage, the site's queue in IndexedDB), not the browser's error. The list comes from the server
// (/<page>-shell.json, read from the folders). Network first: a new version arrives at once. API requests
// (uploads, verdicts, tasks) never pass through this cache.
"use strict";
const PAGE = self.location.pathname.replace(/^\//, "").replace(/-sw\.js$/, "");
const SHELL = `${PAGE}-shell-v4`;
let files = null;

async function shellFiles() {
  if (!files) {
    const cache = await caches.open(SHELL);
    const listed = await fetch(`/${PAGE}-shell.json`, { cache: "no-store" }).then(r => (r.ok ? r.json() : null))
      .catch(() => null);
    if (listed) { files = listed; await cache.put("/shell-files", new Response(JSON.stringify(listed))); }
    else files = await cache.match("/shell-files").then(r => (r ? r.json() : []));
  }
  return files;
}

self.addEventListener("install", event => {
  event.waitUntil(shellFiles()
    .then(list => caches.open(SHELL).then(cache => cache.addAll(list)))
    .then(() => self.skipWaiting()));
});

self.addEventListener("activate", event => {
  event.waitUntil(caches.keys()
    .then(keys => Promise.all(keys.filter(k => k.startsWith(`${PAGE}-shell-`) && k !== SHELL).map(k => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// Only the shell's own files are answered here; everything else (the API above all) goes to the network untouched.
const mayBeShell = path => (files ? files.includes(path)
  : path === `/${PAGE}` || path.startsWith("/static/") || path === "/public/rules.json");

self.addEventListener("fetch", event => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !mayBeShell(url.pathname)) return;
  event.respondWith(shellFiles().then(list => {
    if (!list.includes(url.pathname)) return fetch(event.request);
    return fetch(event.request).then(response => {
      if (response.ok) {
        const copy = response.clone();
        event.waitUntil(caches.open(SHELL).then(cache => cache.put(url.pathname, copy)));
      }
      return response;
    }).catch(() => caches.match(url.pathname).then(hit => hit || Response.error()));
  }));
});
