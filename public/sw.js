/*
 * SolaceLive service worker: keeps the app shell (pages, hashed build assets, manifest, icons)
 * available offline. Model weights are NOT handled here: they are large, cross-origin (the hub)
 * and cached by src/weights/cache.ts; this worker ignores cross-origin requests and files under
 * /models/.
 *
 * Strategies (same-origin GET only):
 * - navigations (HTML): network first (fresh app), falling back to the cached page when offline;
 * - /assets/* (content-hashed by `vite build`): cache first, stored on first use;
 * - the precached shell files below: cache first, revalidated in the background.
 * Cached responses keep their COOP/COEP headers, so an offline start is still cross-origin
 * isolated (SharedArrayBuffer).
 * A new version (change VERSION) replaces the old shell cache on activate; other caches (weights)
 * are left alone.
 */
const VERSION = 'v1';
const SHELL_CACHE = `solacelive-shell-${VERSION}`;
const SHELL = ['./', './index.html', './manifest.webmanifest', './icons/icon-192.png', './icons/icon-512.png', './icons/icon-maskable-512.png'];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(SHELL_CACHE)
      // Each file on its own: one missing file must not abort the install.
      .then((cache) => Promise.all(SHELL.map((u) => cache.add(new Request(u, { cache: 'reload' })).catch(() => undefined))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('solacelive-shell-') && k !== SHELL_CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

function cacheable(response) {
  return response && response.ok && response.status === 200 && response.type === 'basic';
}

async function networkFirst(request) {
  const cache = await caches.open(SHELL_CACHE);
  try {
    const response = await fetch(request);
    if (cacheable(response)) cache.put(request, response.clone());
    return response;
  } catch (err) {
    const hit = (await cache.match(request, { ignoreSearch: true })) || (await cache.match('./index.html')) || (await cache.match('./'));
    if (hit) return hit;
    throw err;
  }
}

async function cacheFirst(request, revalidate) {
  const cache = await caches.open(SHELL_CACHE);
  const hit = await cache.match(request);
  const refresh = fetch(request).then((response) => {
    if (cacheable(response)) cache.put(request, response.clone());
    return response;
  });
  if (hit) {
    if (revalidate) refresh.catch(() => undefined);
    return hit;
  }
  return refresh;
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET' || request.headers.has('range')) return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return; // hub downloads, CDNs: not ours
  const path = url.pathname;
  // Dev server internals and model files are never cached here.
  if (path.includes('/@') || path.includes('/node_modules/') || path.includes('/src/') || path.includes('/models/') || path.endsWith('.safetensors')) return;
  if (request.mode === 'navigate') {
    event.respondWith(networkFirst(request));
  } else if (path.includes('/assets/')) {
    event.respondWith(cacheFirst(request, false));
  } else if (SHELL.some((s) => new URL(s, self.registration.scope).pathname === path)) {
    event.respondWith(cacheFirst(request, true));
  }
});
