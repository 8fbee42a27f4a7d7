// Cairn's service worker: thin on purpose. It keeps the app shell, the ES modules and libsodium in a cache so
// that the app starts with the network off, and it tells open pages to replay the outbox when the browser
// says the connection is back. It never sees a key, a draft or an envelope: the queue, sync and crypto live
// in the page's ES modules, and sending needs a person's unlocked device key.
//
// The server fills in BUILD (a hash of every cached file) and ASSETS, so any change to the app changes these
// bytes: the browser then installs the new worker beside the old one, and the page offers "update ready".
// The outbox lives in IndexedDB, which no cache change touches.

/* eslint-env serviceworker */
const BUILD = '__CAIRN_BUILD__';
const ASSETS = ['__CAIRN_ASSETS__'];
const CACHE = `cairn-shell-${BUILD}`;
const SHELL = '/';

const worker = /** @type {any} */ (self);

worker.addEventListener('install', (/** @type {any} */ event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(ASSETS.map((url) => new Request(url, { cache: 'reload' })));
    const clients = await worker.clients.matchAll({ type: 'window' });
    if (clients.length === 0) await worker.skipWaiting(); // nothing open: nothing to disturb
  })());
});

worker.addEventListener('activate', (/** @type {any} */ event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('cairn-shell-') && name !== CACHE) await caches.delete(name);
    }
    await worker.clients.claim();
  })());
});

worker.addEventListener('message', (/** @type {any} */ event) => {
  if (event.data && event.data.type === 'skip-waiting') worker.skipWaiting();
});

worker.addEventListener('fetch', (/** @type {any} */ event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname === '/sync' || url.pathname === '/sw.js') return;
  if (request.mode === 'navigate') {
    event.respondWith((async () => (await caches.match(SHELL, { cacheName: CACHE })) ?? fetch(request))());
    return;
  }
  event.respondWith((async () => (await caches.match(request, { cacheName: CACHE, ignoreSearch: true })) ?? fetch(request))());
});

// Background Sync: the browser wakes the worker when a connection is back; the pages do the sending.
worker.addEventListener('sync', (/** @type {any} */ event) => {
  if (event.tag === 'cairn-outbox') {
    event.waitUntil((async () => {
      for (const client of await worker.clients.matchAll({ type: 'window' })) client.postMessage({ type: 'replay' });
    })());
  }
});
