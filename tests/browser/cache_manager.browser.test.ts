// Resumed downloads and the cache manager in the page (headless Chromium, the app from the vite
// dev server, the tiny fixture models from the hub-like server of tests/harness/hub_server.ts,
// cross-origin like the real hub). The LM weights' connection drops four times: the engine
// Worker retries three times, each resuming with Range, then the Load fails with the bytes kept
// (in OPFS); the cache manager lists the cached files and the unfinished one. The tab is closed;
// a new tab's Load asks only for the rest (Range from the stored bytes) and gets ready. Then the
// manager lists the five cached files with their sizes, deletes one, clears all: the list is
// empty, the Cache API and OPFS hold nothing, and the storage line is refreshed.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { FIXTURES_DIR, ROOT } from '../harness/browser.ts';
import { useDevServerAndChromium } from '../harness/browser_hooks.ts';
import { HubServer } from '../harness/hub_server.ts';
import { bytesText } from '../../src/ui/load_progress.ts';

const env = useDevServerAndChromium();
const hub = new HubServer();
const FILES: Record<string, Uint8Array> = {
  'mimi_tiny_config.json': readFileSync(join(FIXTURES_DIR, 'ref/mimi_tiny_config.json')),
  'mimi_tiny.safetensors': readFileSync(join(FIXTURES_DIR, 'ref/mimi_tiny.safetensors')),
  'moshi_tiny_config.json': readFileSync(join(FIXTURES_DIR, 'ref/moshi_tiny_config.json')),
  'moshi_tiny.safetensors': readFileSync(join(FIXTURES_DIR, 'ref/moshi_tiny.safetensors')),
  'tiny_unigram.model': readFileSync(resolve(ROOT, 'tests/fixtures/spm/tiny_unigram.model')),
};
const LM = 'moshi_tiny.safetensors';
const CUT = 300_000; // bytes sent before each drop

beforeAll(async () => {
  await hub.start();
  for (const [k, v] of Object.entries(FILES)) hub.files.set(k, v);
});
afterAll(() => hub.close());

const query = () =>
  new URLSearchParams({
    mimiConfig: hub.url('mimi_tiny_config.json'),
    mimiWeights: hub.url('mimi_tiny.safetensors'),
    lmConfig: hub.url('moshi_tiny_config.json'),
    lmWeights: hub.url(LM),
    tokenizer: hub.url('tiny_unigram.model'),
    autoload: '1',
  });
const settled = (page: Page) =>
  page.waitForFunction(() => ['ready', 'error'].includes(window.__solacelive?.state ?? ''), undefined, { timeout: 180_000, polling: 200 });
const rows = (page: Page) =>
  page.$$eval('.cache-list tbody tr', (trs) => trs.map((tr) => ({ file: tr.querySelector('.file')?.textContent, size: tr.querySelector('.size')?.textContent, kind: (tr as HTMLElement).dataset.kind })));
const watchStatus = (page: Page) =>
  page.evaluate(() => {
    const seen: string[] = ((window as unknown as { __statusSeen: string[] }).__statusSeen = []);
    const s = document.querySelector('.load-status')!;
    new MutationObserver(() => seen.push(s.textContent ?? '')).observe(s, { childList: true, characterData: true, subtree: true });
  });

it('a dropped LM download resumes in the Worker, survives the tab, and the cache manager lists, deletes and clears', async () => {
  const context = await env.browser.newContext();
  try {
    // 1. Four drops: the first attempt and its three retries each end CUT bytes further on.
    hub.fault(LM, ...[0, 1, 2, 3].map(() => ({ kind: 'drop' as const, after: CUT })));
    const page = await context.newPage();
    await page.goto(`${env.url}/?${query()}`);
    await watchStatus(page);
    await settled(page);
    expect(await page.evaluate(() => window.__solacelive?.state)).toBe('error');
    const lmRequests = hub.cdnRequests(LM);
    expect(lmRequests.map((r) => [r.range, r.status, r.sent])).toEqual([
      [null, 200, CUT], [`bytes=${CUT}-`, 206, CUT], [`bytes=${2 * CUT}-`, 206, CUT], [`bytes=${3 * CUT}-`, 206, CUT],
    ]);
    // Cross-origin: no If-Range (it would need a CORS preflight); the 206's ETag is compared instead.
    expect(lmRequests.every((r) => r.ifRange === null)).toBe(true);
    const banners = await page.evaluate(() => window.__solacelive?.banners ?? []);
    expect(banners.some((b) => b.startsWith('Network error.') && b.includes(`${4 * CUT} bytes are kept: Load again to resume`)), banners.join(' | ')).toBe(true);
    const seen = await page.evaluate(() => (window as unknown as { __statusSeen: string[] }).__statusSeen);
    expect(seen.some((t) => /^Connection problem on moshi_tiny\.safetensors \(file 5 of 5\): trying again in 1 s \(retry 1 of 3\)/.test(t)), seen.join('\n')).toBe(true);
    expect(seen.some((t) => new RegExp(`^Resuming moshi_tiny\\.safetensors from ${bytesText(CUT).replace('.', '\\.')} \\(file 5 of 5\\) · `).test(t)), seen.join('\n')).toBe(true);
    for (const t of seen) expect(t).not.toMatch(/\b(initiate|progress|download|done|retry):/);
    // The manager: four cached files and the unfinished LM download.
    await page.click('.cache-manager summary');
    await expect.poll(() => rows(page).then((r) => r.length), { timeout: 10_000 }).toBe(5);
    const partial = (await rows(page)).find((r) => r.kind === 'partial');
    expect(partial).toEqual({ file: LM, size: `${bytesText(4 * CUT)} of ${bytesText(FILES[LM].length)} (unfinished: resumes at the next Load)`, kind: 'partial' });
    await page.close();

    // 2. A new tab: the Load resumes from the stored parts (OPFS) and asks only for the rest.
    hub.log.length = 0;
    const page2 = await context.newPage();
    await page2.goto(`${env.url}/?${query()}`);
    await settled(page2);
    expect(await page2.evaluate(() => window.__solacelive?.error ?? null)).toBe(null);
    expect(hub.cdnRequests(LM).map((r) => [r.range, r.status, r.sent])).toEqual([[`bytes=${4 * CUT}-`, 206, FILES[LM].length - 4 * CUT]]);
    // Only the LM is downloaded again: the other four come from the cache (the size probe, HEAD, asks for the LM alone).
    expect(hub.log.filter((r) => r.path.startsWith('/cdn/')).map((r) => `${r.method} ${r.path.split('/').pop()}`).sort()).toEqual([`GET ${LM}`, `HEAD ${LM}`]);

    // 3. The manager: five cached files with their sizes; delete one; clear all.
    await page2.click('.cache-manager summary');
    await expect.poll(() => rows(page2).then((r) => r.length), { timeout: 10_000 }).toBe(5);
    const listed = await rows(page2);
    expect(listed.map((r) => [r.file, r.size, r.kind]).sort()).toEqual(Object.entries(FILES).map(([f, b]) => [f, bytesText(b.length), 'cached']).sort());
    expect(await page2.textContent('.cache-summary')).toBe(`(1 model, 5 files, ${bytesText(Object.values(FILES).reduce((n, b) => n + b.length, 0))})`);
    await page2.screenshot({ path: resolve(ROOT, 'docs/screenshots/cache-manager.png'), fullPage: true });
    const storageBefore = await page2.textContent('.storage');
    expect(storageBefore).toMatch(/^Storage: [\d.]+ [MG]B used of [\d.]+ [MG]B for this site; /);
    await page2.click(`.cache-list tr:has(td.file:text-is("moshi_tiny_config.json")) button.cache-delete`);
    await expect.poll(() => rows(page2).then((r) => r.map((x) => x.file).sort()), { timeout: 10_000 }).toEqual(Object.keys(FILES).filter((f) => f !== 'moshi_tiny_config.json').sort());
    expect(await page2.evaluate(async () => (await (await caches.open('solacelive-weights-v1')).keys()).length)).toBe(4);
    await page2.click('button.cache-clear');
    expect(await page2.textContent('button.cache-clear')).toMatch(/Really/);
    expect((await rows(page2)).length).toBe(4); // one click only arms it
    await page2.click('button.cache-clear');
    await expect.poll(() => rows(page2).then((r) => r.length), { timeout: 10_000 }).toBe(0);
    expect(await page2.isVisible('.cache-empty')).toBe(true);
    expect(await page2.textContent('.cache-summary')).toBe('(none)');
    const left = await page2.evaluate(async () => {
      const names: string[] = [];
      const root = await navigator.storage.getDirectory();
      for await (const [name] of (root as unknown as { entries(): AsyncIterable<[string, unknown]> }).entries()) names.push(name);
      return { cached: (await caches.keys()).includes('solacelive-weights-v1') ? (await (await caches.open('solacelive-weights-v1')).keys()).length : 0, opfs: names };
    });
    expect(left).toEqual({ cached: 0, opfs: [] });
    expect(await page2.textContent('.storage')).toMatch(/^Storage: /);
  } finally {
    await context.close();
  }
}, 400_000);

it('storage full (a quota set through the DevTools protocol): the "Storage full." banner names the bytes needed and free; nothing half-cached', async () => {
  const context = await env.browser.newContext();
  try {
    hub.faults.clear();
    const page = await context.newPage();
    await page.goto(`${env.url}/`);
    const origin = new URL(env.url).origin;
    const cdp = await context.newCDPSession(page);
    // Room for the configs, the tokenizer and the Mimi weights (2.6 MB), not for the LM too (1.7 MB more).
    await cdp.send('Storage.overrideQuotaForOrigin', { origin, quotaSize: 3_500_000 });
    await page.goto(`${env.url}/?${query()}`);
    await settled(page);
    expect(await page.evaluate(() => window.__solacelive?.state)).toBe('error');
    const banners = await page.evaluate(() => window.__solacelive?.banners ?? []);
    const full = banners.find((b) => b.startsWith('Storage full.'));
    expect(full, banners.join(' | ')).toMatch(
      new RegExp(`^Storage full\\.: +moshi_tiny\\.safetensors: storage full: caching it needs ${FILES[LM].length} bytes, the browser's estimate leaves \\d+ bytes free \\(\\d+ of \\d+ used\\)(, yet the browser refused it \\(.*\\))?; nothing was cached\\. Delete cached models or free disk space, then Load again\\. What this site stores is listed under “Stored models”\\.$`),
    );
    // Chromium's estimate does not show the overridden quota (it reports usage + free disk), so the
    // free bytes named are the estimate's, whatever they are; the message says when they contradict the refusal.
    const free = Number(/leaves (\d+) bytes free/.exec(full!)![1]);
    expect(full!.includes('yet the browser refused it')).toBe(free >= FILES[LM].length);
    // The LM is not in the cache (no half-written entry); the four others are, and the manager lists them.
    const keys = await page.evaluate(async () => (await (await caches.open('solacelive-weights-v1')).keys()).map((r) => r.url.split('/').pop()));
    expect(keys.sort()).toEqual(Object.keys(FILES).filter((f) => f !== LM).sort());
    await page.click('.cache-manager summary');
    await expect.poll(() => rows(page).then((r) => r.map((x) => x.file).sort()), { timeout: 10_000 }).toEqual(Object.keys(FILES).filter((f) => f !== LM).sort());
    await cdp.send('Storage.overrideQuotaForOrigin', { origin }); // back to the browser's own quota
  } finally {
    await context.close();
  }
}, 300_000);
