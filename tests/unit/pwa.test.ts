// public/sw.js + public/manifest.webmanifest in headless Chromium: the app shell (page, hashed
// asset, manifest, icons) is served offline after one online visit, still cross-origin isolated;
// model files are never put in the shell cache.
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, launchChromium } from '../harness/browser.ts';

const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin' };

const INDEX = `<!doctype html><html><head><meta charset="utf-8"><title>SolaceLive shell</title>
<link rel="manifest" href="./manifest.webmanifest"></head><body><script type="module" src="./assets/app-abc123.js"></script></body></html>`;
const APP = `window.__appLoaded = true;`;

let server: Server;
let origin: string;

beforeAll(async () => {
  const files: Record<string, { body: Buffer | string; type: string }> = {
    '/': { body: INDEX, type: 'text/html' },
    '/index.html': { body: INDEX, type: 'text/html' },
    '/assets/app-abc123.js': { body: APP, type: 'text/javascript' },
    '/sw.js': { body: readFileSync(resolve(ROOT, 'public/sw.js')), type: 'text/javascript' },
    '/manifest.webmanifest': { body: readFileSync(resolve(ROOT, 'public/manifest.webmanifest')), type: 'application/manifest+json' },
    '/icons/icon-192.png': { body: readFileSync(resolve(ROOT, 'public/icons/icon-192.png')), type: 'image/png' },
    '/icons/icon-512.png': { body: readFileSync(resolve(ROOT, 'public/icons/icon-512.png')), type: 'image/png' },
    '/icons/icon-maskable-512.png': { body: readFileSync(resolve(ROOT, 'public/icons/icon-maskable-512.png')), type: 'image/png' },
    '/models/model.safetensors': { body: Buffer.alloc(64), type: 'application/octet-stream' },
  };
  server = createServer((req, res) => {
    const f = files[new URL(req.url ?? '/', 'http://x').pathname];
    if (!f) return void res.writeHead(404, ISOLATION).end();
    res.writeHead(200, { 'Content-Type': f.type, 'Content-Length': String(Buffer.byteLength(f.body)), ...ISOLATION });
    res.end(f.body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

describe('PWA', () => {
  it('manifest names the app and lists PNG icons that exist with the declared sizes', () => {
    const m = JSON.parse(readFileSync(resolve(ROOT, 'public/manifest.webmanifest'), 'utf8'));
    expect(m.name).toBe('SolaceLive');
    expect(m.start_url).toBeTruthy();
    expect(m.display).toBe('standalone');
    for (const icon of m.icons as { src: string; sizes: string; type: string }[]) {
      const png = readFileSync(resolve(ROOT, 'public', icon.src));
      expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
      const [w, h] = icon.sizes.split('x').map(Number);
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([w, h]);
      expect(icon.type).toBe('image/png');
    }
    expect(m.icons.some((i: { purpose?: string }) => i.purpose === 'maskable')).toBe(true);
  });

  it('service worker serves the app shell offline, isolated, and never caches model files', async () => {
    const browser = await launchChromium();
    try {
      const context = await browser.newContext();
      const page = await context.newPage();
      await page.goto(`${origin}/`);
      await page.evaluate(async () => {
        await navigator.serviceWorker.register('/sw.js');
        await navigator.serviceWorker.ready;
        if (!navigator.serviceWorker.controller) {
          await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
        }
        // Online uses that the worker should cache (asset) or ignore (model file).
        await fetch('/assets/app-abc123.js');
        await fetch('/models/model.safetensors');
      });
      const cached = await page.evaluate(async () => (await (await caches.open('solacelive-shell-v1')).keys()).map((r) => new URL(r.url).pathname).sort());
      expect(cached).toEqual(['/', '/assets/app-abc123.js', '/icons/icon-192.png', '/icons/icon-512.png', '/icons/icon-maskable-512.png', '/index.html', '/manifest.webmanifest']);
      await context.setOffline(true);
      await page.reload();
      const offline = await page.evaluate(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return {
          title: document.title,
          app: (window as unknown as { __appLoaded?: boolean }).__appLoaded === true,
          isolated: crossOriginIsolated,
          controlled: !!navigator.serviceWorker.controller,
          model: await fetch('/models/model.safetensors').then(
            (r) => `status ${r.status}`,
            () => 'network error',
          ),
        };
      });
      expect(offline).toEqual({ title: 'SolaceLive shell', app: true, isolated: true, controlled: true, model: 'network error' });
      await context.close();
    } finally {
      await browser.close();
    }
  });
});
