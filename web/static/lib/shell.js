// The offline shell of a phone page (web/static/shell-sw.js, served as /<page>-sw.js with scope /<page>): a reload
// without network shows the page and what the phone holds, not the browser's error. `document.body.dataset.
// offlineShell` says whether it is registered (the page works without it, online).
export function registerShell(page) {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker.register(`/${page}-sw.js`, { scope: `/${page}` })
    .then(() => { document.body.dataset.offlineShell = "registered"; })
    .catch(() => { document.body.dataset.offlineShell = "unavailable"; });
}
