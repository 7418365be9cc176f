/*
 * SolaceLive service worker (built by vite-plugin-pwa's injectManifest strategy into sw.js):
 * precaches every file of the build (pages, hashed JS/CSS chunks: the engine Worker, the audio
 * worklets, the tokenizer; the manifest, icons) from the revisioned list Workbox injects at
 * `self.__WB_MANIFEST`, so after one online visit the app starts, loads local model files and
 * runs offline. Precached responses are stored as the server sent them, COOP/COEP headers
 * included, so an offline start is still cross-origin isolated (SharedArrayBuffer).
 *
 * Model weights are NOT handled here: they are large, cross-origin (the hub) or picked files,
 * and cached by src/weights/cache.ts; no route matches them, so they go to the network as usual.
 *
 * A new build has a new manifest, hence a new worker: it installs beside the old one and waits
 * until the page (src/ui/pwa.ts, "Update available · reload") sends SKIP_WAITING; then the
 * outdated precache is cleaned up.
 */
import { clientsClaim } from 'workbox-core';
import { cleanupOutdatedCaches, precacheAndRoute, type PrecacheEntry } from 'workbox-precaching';

const sw = self as unknown as ServiceWorkerGlobalScope;

// Query strings select a model and options on the page (?mimiWeights=…&autoload=1): the page is the same file.
precacheAndRoute((self as unknown as { __WB_MANIFEST: (string | PrecacheEntry)[] }).__WB_MANIFEST, { ignoreURLParametersMatching: [/.*/] });
cleanupOutdatedCaches();
clientsClaim();

sw.addEventListener('message', (event) => {
  if ((event.data as { type?: string } | null)?.type === 'SKIP_WAITING') void sw.skipWaiting();
});

// The hand-versioned shell cache of the worker before this one (solacelive-shell-v1) is not Workbox's: drop it.
sw.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k.startsWith('solacelive-shell-')).map((k) => caches.delete(k)))));
});
