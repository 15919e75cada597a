// The wallet's service worker (scope /wallet/): the app shell from the cache, pages from the
// network with the last good copy kept for offline use (the card list, every card page seen,
// and the last 50 transactions). Signing out deletes every cache (Clear-Site-Data and
// offline.js), so nothing of one user stays for the next.

const VERSION = "hcekit-wallet-1";
const SHELL = [
  "/wallet/static/wallet.css",
  "/wallet/static/wallet.js",
  "/wallet/static/api.js",
  "/wallet/static/live.js",
  "/wallet/static/offline.js",
  "/wallet/static/icon.svg",
  "/wallet/manifest.webmanifest",
];
const KEPT = [/^\/wallet\/cards$/, /^\/wallet\/transactions$/, /^\/wallet\/cards\/\d+$/];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(VERSION).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== VERSION).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

async function fromShell(request) {
  const cached = await caches.match(request);
  const fresh = fetch(request).then(async (response) => {
    if (response.ok) await (await caches.open(VERSION)).put(request, response.clone());
    return response;
  }).catch(() => null);
  return cached || (await fresh) || Response.error();
}

async function page(request, url) {
  try {
    const response = await fetch(request);
    if (response.ok && !response.redirected && KEPT.some((re) => re.test(url.pathname)) && !url.search) {
      await (await caches.open(VERSION)).put(url.pathname, response.clone());
    }
    return response;
  } catch (err) {
    const cached = (await caches.match(url.pathname)) || (await caches.match("/wallet/cards"));
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname === "/wallet/events") return;
  if (SHELL.includes(url.pathname)) {
    event.respondWith(fromShell(request));
  } else if (request.mode === "navigate" && url.pathname.startsWith("/wallet/")) {
    event.respondWith(page(request, url));
  }
});
