// The kernel benchmark page (`/bench.html?bench=1`) as a product: a few small cases (CPU-only
// machine: WebGPU on SwiftShader) benchmarked with the onnxruntime-web kernel peer on the linear
// ones; the roofline must hold one point per benchmarked case and side and both roofs, the JSON
// download must parse and agree with the page, "Copy summary" must copy the share line. Writes
// docs/screenshots/bench.png.
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../harness/browser.ts';
import { useDevServerAndChromium } from '../harness/browser_hooks.ts';
import { attentionSuite } from '../../src/selftest/cases/attention.cases.ts';
import { linearSuite } from '../../src/selftest/cases/linear.cases.ts';

const env = useDevServerAndChromium();

/** The page's ?cases= filter: a matvec (M = 1), a matmul (M = 72) and the one-step attention case. */
const CASES = ['K=1024 N=1024', 'M=72 K=512', 'cap=3000'];
const keep = (suite: string, name: string) => CASES.some((c) => `${suite}: ${name}`.toLowerCase().includes(c.toLowerCase()));

it('bench.html?bench=1 plots every benchmarked case, ours and the peer, under both measured roofs, and downloads the results as JSON', async () => {
  const linear = linearSuite.bench.filter((c) => keep('linear', c.name)).map((c) => `linear: ${c.name}`);
  const attention = attentionSuite.bench.filter((c) => keep('attention', c.name)).map((c) => `attention: ${c.name}`);
  expect(linear.length).toBe(2);
  expect(attention.length).toBe(1);

  const page = await env.browser.newPage({ viewport: { width: 1100, height: 900 }, acceptDownloads: true });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${env.url}/bench.html?bench=1&suites=linear,attention&cases=${encodeURIComponent(CASES.join(','))}`);
  await page.waitForFunction(() => ['pass', 'fail', 'error'].includes((document.querySelector('.summary') as HTMLElement | null)?.dataset.state ?? ''), undefined, { timeout: 400_000, polling: 250 });
  const text = await page.locator('.summary').textContent();
  expect(errors).toEqual([]);
  expect(await page.locator('.summary').getAttribute('data-state'), `${text}\n${await page.locator('tbody').textContent()}`).toBe('pass');
  expect(text).toBe('3 benchmarked, 0 failed');
  expect(await page.locator('.peer-status').getAttribute('data-available')).toBe('true');
  await page.waitForSelector('figure.roofline[data-state="done"] svg.roofline-chart');

  // One point per benchmarked case and side: ours for all three, both ORT backends for the linear two.
  const points = await page.locator('circle.point').evaluateAll((cs) => cs.map((c) => `${c.getAttribute('data-side')} ${c.getAttribute('data-label')}`).sort());
  const want = [...[...linear, ...attention].map((l) => `ours ${l}`), ...linear.map((l) => `webgpu ${l}`), ...linear.map((l) => `wasm ${l}`)].sort();
  expect(points).toEqual(want);
  for (const c of await page.locator('circle.point').all()) {
    for (const a of ['cx', 'cy']) expect(Number(await c.getAttribute(a))).toBeGreaterThan(0);
  }
  expect(await page.locator('line.roof[data-roof="memory"]').count()).toBe(1);
  expect(await page.locator('line.roof[data-roof="compute"]').count()).toBe(1);
  expect(await page.locator('.legend[data-side="ours"]').count()).toBe(1);
  expect(await page.locator('.legend[data-side="webgpu"]').count()).toBe(1);
  expect(await page.locator('.legend[data-side="wasm"]').count()).toBe(1);

  // The attention row says what it attends over; every column is explained; peer rows give ours ÷ peer.
  const rows = await page.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  expect(rows.find((r) => r[0] === 'attention')?.[1]).toMatch(/cap=3000 .*: attends over 1 slot$/);
  const headers = await page.locator('thead th').allTextContents();
  expect(await page.locator('dl.columns dt').allTextContents()).toEqual(headers);
  const peerRows = rows.filter((r) => r[0].startsWith('↳'));
  expect(peerRows.length).toBe(4);
  for (const r of peerRows) expect(r[8]).toMatch(/^\d+\.\d\d: (ours|peer) faster \(ours [\d.]+ ms vs [\d.]+ ms\)$/);

  // The JSON download parses and holds what the page shows.
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('button.download').click()]);
  const json = JSON.parse(readFileSync((await download.path())!, 'utf8'));
  expect(json.results.map((r: { suite: string; name: string }) => `${r.suite}: ${r.name}`).sort()).toEqual([...linear, ...attention].sort());
  expect(json.results.every((r: { status: string }) => r.status === 'ok')).toBe(true);
  expect(json.peers.length).toBe(4);
  for (const p of json.peers) {
    expect(p.status).toBe('ok');
    expect(p.ratio).toBeCloseTo(p.oursMedianMs / p.peerMedianMs, 6);
  }
  expect(json.copyBandwidth.gbps).toBeGreaterThan(0);
  expect(json.peakCompute.gflops).toBeGreaterThan(0);
  expect(await page.locator('line.roof[data-roof="compute"] title').textContent()).toContain(`GFLOP/s`);
  const share = await page.locator('.share-line').textContent();
  expect(json.summary).toBe(share);
  expect(share).toMatch(/swiftshader \(software adapter: CPU figures, not GPU figures\).*copy [\d.]+ GB\/s · peak FMA [\d.]+ GFLOP\/s · 3 cases · matvec up to \d+% of copy BW · matmul up to \d+% of peak FMA · ours÷ORT-webgpu [\d.]+ .* ours÷ORT-wasm [\d.]+/);

  // "Copy summary" puts the same line on the clipboard.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: env.url });
  await page.locator('button.copy-summary').click();
  await page.waitForSelector('.share-line[data-copied]');
  expect(await page.locator('.share-line').getAttribute('data-copied')).toBe('yes');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(share);

  const shots = resolve(ROOT, 'docs/screenshots');
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: resolve(shots, 'bench.png'), fullPage: true });
}, 600_000);

it('bench.html?bench=1&peer=0 benchmarks ours alone: no peer rows or points, and says the peer was not run', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.url}/bench.html?bench=1&suites=linear&cases=${encodeURIComponent('K=1024 N=1024')}&peer=0`);
  await page.waitForFunction(() => ['pass', 'fail', 'error'].includes((document.querySelector('.summary') as HTMLElement | null)?.dataset.state ?? ''), undefined, { timeout: 300_000, polling: 250 });
  expect(await page.locator('.summary').textContent()).toBe('1 benchmarked, 0 failed');
  expect(await page.locator('.peer-status').textContent()).toBe('kernel peer not run: no kernel peer requested');
  expect(await page.locator('circle.point').evaluateAll((cs) => cs.map((c) => c.getAttribute('data-side')))).toEqual(['ours']);
  expect(await page.locator('.legend[data-side]').count()).toBe(1);
  expect(await page.locator('tbody tr.peer').count()).toBe(0);
  expect(await page.locator('.share-line').textContent()).not.toMatch(/ORT/);
}, 300_000);
