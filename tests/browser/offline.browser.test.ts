// The installable app offline, in headless Chromium over `vite build` + `vite preview`: after one
// online visit (Load never pressed) the server goes away and the context goes offline; the page
// reloads from the service worker's precache, still cross-origin isolated, loads the tiny models
// from local files (engine Worker chunk, tokenizer chunk, worklets all precached) and runs the
// microphone (Chromium's fake device). /bench.html opens offline too. Then a new build is served:
// the page says "Update available" and its reload button brings the new version.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { build, preview, type PreviewServer } from 'vite';
import { FIXTURES_DIR, ROOT, launchChromium } from '../harness/browser.ts';

const FAKE_MIC = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];
const CONFIG = resolve(ROOT, 'vite.config.ts');
const MODEL_FILES = [
  join(FIXTURES_DIR, 'ref/mimi_tiny.safetensors'),
  join(FIXTURES_DIR, 'ref/mimi_tiny_config.json'),
  join(FIXTURES_DIR, 'ref/moshi_tiny.safetensors'),
  join(FIXTURES_DIR, 'ref/moshi_tiny_config.json'),
  resolve(ROOT, 'tests/fixtures/spm/tiny_unigram.model'),
];
/** Marks the second build's page, so the test sees which version it is shown. */
const NEW_VERSION = '<!-- solacelive test: second build -->';

let tmp: string;
let outA: string;
let outB: string;
let server: PreviewServer | null = null;
let port = 0;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const logs: string[] = [];

async function serve(outDir: string, atPort: number): Promise<void> {
  server = await preview({ root: ROOT, configFile: CONFIG, logLevel: 'error', build: { outDir }, preview: { host: '127.0.0.1', port: atPort, strictPort: atPort !== 0 } });
  port = (server.httpServer.address() as AddressInfo).port;
}

async function stopServer(): Promise<void> {
  const s = server;
  server = null;
  if (!s) return;
  // Stop listening now (the port is free for the next server); open keep-alive connections are cut.
  const http = s.httpServer as unknown as { close: () => void; closeAllConnections?: () => void };
  http.close();
  http.closeAllConnections?.();
  await Promise.race([s.close().catch(() => undefined), new Promise((ok) => setTimeout(ok, 5000))]);
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'solacelive-offline-'));
  outA = join(tmp, 'a');
  outB = join(tmp, 'b');
  // A production build, as `npm run build` makes (vitest sets NODE_ENV=test, which Vite would keep:
  // import.meta.env.DEV true, and the page would not register its service worker).
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  await build({ root: ROOT, configFile: CONFIG, logLevel: 'error', build: { outDir: outA, emptyOutDir: true } });
  await build({
    root: ROOT, configFile: CONFIG, logLevel: 'error', build: { outDir: outB, emptyOutDir: true },
    plugins: [{ name: 'second-build', transformIndexHtml: (html: string) => html.replace('</body>', `${NEW_VERSION}</body>`) }],
  });
  process.env.NODE_ENV = nodeEnv;
  mkdirSync(resolve(ROOT, 'docs/screenshots'), { recursive: true });
  browser = await launchChromium(FAKE_MIC);
  context = await browser.newContext();
  page = await context.newPage();
  page.on('console', (m) => logs.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await stopServer();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

it('the service worker precaches every file of the build, by a revision or a hashed name', () => {
  const sw = readFileSync(join(outA, 'sw.js'), 'utf8');
  const entries = [...sw.matchAll(/\{"revision":(null|"[0-9a-f]+"),"url":"([^"]+)"\}/g)].map((m) => ({ revision: m[1], url: m[2] }));
  const built = (readdirSync(outA, { recursive: true, withFileTypes: true }) as { name: string; parentPath: string; isFile: () => boolean }[])
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(outA.length + 1))
    .filter((f) => f !== 'sw.js');
  expect(entries.map((e) => e.url).sort()).toEqual(built.sort());
  for (const e of entries) expect(e.revision !== 'null' || /-[\w-]{8}\.\w+$/.test(e.url), e.url).toBe(true);
  // A second build with a changed page has another manifest, hence a new service worker.
  expect(readFileSync(join(outB, 'sw.js'), 'utf8')).not.toBe(sw);
});

const state = () => page.evaluate(() => window.__solacelive?.state ?? '');

it('after one online visit: offline reload, Load from local files, microphone running; /bench.html offline', async () => {
  await serve(outA, 0);
  await page.goto(`http://127.0.0.1:${port}/`);
  // The service worker is active once its install (the precache) has finished.
  const active = await page.evaluate(() => Promise.race([navigator.serviceWorker.ready.then(() => 'active'), new Promise((ok) => setTimeout(() => ok('no active service worker after 60 s'), 60_000))]));
  expect(active, logs.join('\n')).toBe('active');
  await stopServer();
  await context.setOffline(true);
  await page.reload();
  expect(await page.evaluate(() => ({ title: document.title, isolated: crossOriginIsolated, controlled: !!navigator.serviceWorker.controller }))).toEqual({
    title: 'SolaceLive · voice assistant', isolated: true, controlled: true,
  });
  expect(await page.locator('.offline-note').isVisible()).toBe(true);
  // Model files are not the service worker's: offline they fail like any network request.
  expect(await page.evaluate(() => fetch('/models/model.safetensors').then((r) => `status ${r.status}`, () => 'network error'))).toBe('network error');
  await page.check('input[name="src"][value="files"]');
  await page.setInputFiles('input[name="files"]', MODEL_FILES);
  await page.click('button.load');
  await page.waitForFunction(() => ['ready', 'error'].includes(window.__solacelive?.state ?? ''), undefined, { timeout: 120_000, polling: 200 });
  expect(await page.evaluate(() => window.__solacelive?.error ?? null)).toBe(null);
  expect(await state()).toBe('ready');
  expect(await page.textContent('.load-status')).toMatch(/tokenizer/);
  await page.click('button.mic');
  // Steps run on the fake microphone's input: the capture worklet, the engine loop and playback all work offline.
  await page.waitForFunction(() => (window.__solacelive?.metrics?.steps ?? 0) >= 3, undefined, { timeout: 120_000, polling: 250 });
  expect(await state()).toBe('running');
  await page.screenshot({ path: resolve(ROOT, 'docs/screenshots/offline.png'), fullPage: true });
  await page.click('button.mic');

  const bench = await context.newPage();
  await bench.goto(`http://127.0.0.1:${port}/bench.html`);
  expect(await bench.title()).toBe('SolaceLive · WGSL kernels');
  await bench.waitForFunction(() => (document.getElementById('selftest')?.children.length ?? 0) > 0, undefined, { timeout: 30_000 });
  await bench.close();
}, 300_000);

it('a new version served: "Update available" on the page, and its reload shows the new version', async () => {
  await context.setOffline(false);
  await serve(outB, port);
  await page.reload();
  expect(await page.locator('.offline-note').isVisible()).toBe(false);
  const update = page.locator('.banner', { hasText: 'Update available' });
  await update.waitFor({ timeout: 60_000 });
  expect(await page.content()).not.toContain(NEW_VERSION);
  await page.screenshot({ path: resolve(ROOT, 'docs/screenshots/update-available.png') });
  await Promise.all([page.waitForEvent('load', { timeout: 60_000 }), update.locator('button', { hasText: 'reload' }).click()]);
  await page.waitForFunction((marker) => document.documentElement.outerHTML.includes(marker.slice(4, -3).trim()), NEW_VERSION, { timeout: 30_000 });
  expect(await page.content()).toContain('second build');
}, 180_000);
