// The kernel self-test page (`npm start` -> /bench.html) as a person opens it: the page reports the
// WebGPU adapter and runs kernel cases in its module Worker, then shows "N passed, 0 failed".
import { expect, it } from 'vitest';
import { useDevServerAndChromium } from '../harness/browser_hooks.ts';
import { ropeSuite } from '../../src/selftest/cases/rope.cases.ts';
import { normSuite } from '../../src/selftest/cases/norm.cases.ts';
import { unarySuite } from '../../src/selftest/cases/unary.cases.ts';

const env = useDevServerAndChromium();

it('bench.html reports the adapter and runs the chosen kernel suites in its Worker', async () => {
  const page = await env.browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${env.url}/bench.html?suites=rope,norm`);
  const summary = page.locator('.summary');
  await page.waitForFunction(() => ['pass', 'fail', 'error'].includes((document.querySelector('.summary') as HTMLElement | null)?.dataset.state ?? ''), undefined, { timeout: 300_000, polling: 250 });
  const text = await summary.textContent();
  const adapter = await page.locator('.adapter').textContent();
  expect(errors).toEqual([]);
  expect(await summary.getAttribute('data-state'), `${text}\n${adapter}`).toBe('pass');
  expect(text).toBe(`${ropeSuite.tests.length + normSuite.tests.length} passed, 0 failed`);
  expect(adapter).toMatch(/swiftshader|features:/);
  expect(await page.locator('tbody tr.ok').count()).toBe(ropeSuite.tests.length + normSuite.tests.length);
}, 600_000);

it('bench.html?bench=1 benchmarks the chosen suites: validated cases with median ms, GFLOP/s, GB/s, FLOP/B, fraction of copy bandwidth', async () => {
  const page = await env.browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${env.url}/bench.html?suites=unary&bench=1`);
  await page.waitForFunction(() => ['pass', 'fail', 'error'].includes((document.querySelector('.summary') as HTMLElement | null)?.dataset.state ?? ''), undefined, { timeout: 300_000, polling: 250 });
  const text = await page.locator('.summary').textContent();
  expect(errors).toEqual([]);
  expect(text).toBe(`${unarySuite.bench.length} benchmarked, 0 failed`);
  expect(await page.locator('.copy').textContent()).toMatch(/adapter copy bandwidth [\d.]+ GB\/s .*GPU timestamps/);
  expect(await page.locator('.peer-status').textContent()).toBe('kernel peer not run: no linear (matvec / matmul) case in this run');
  const rows = await page.locator('tbody tr.ok').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  expect(rows.length).toBe(unarySuite.bench.length);
  for (const r of rows) {
    expect(r[0]).toBe('unary');
    for (const v of [r[2], r[3], r[4]]) expect(Number(v)).toBeGreaterThan(0); // ms, GFLOP/s, GB/s
    expect(Number(r[5])).toBe(1); // FLOP/B: unary cases count 8 FLOPs per 8 bytes
    expect(r[6]).toMatch(/^\d+(\.\d)?%$/);
  }
}, 600_000);

it('bench.html names an unknown suite instead of hanging', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.url}/bench.html?suites=nope`);
  await page.waitForFunction(() => (document.querySelector('.summary') as HTMLElement | null)?.dataset.state === 'error', undefined, { timeout: 120_000, polling: 250 });
  expect(await page.locator('.adapter').textContent()).toMatch(/unknown kernel suite nope; suites: .*rope/);
}, 300_000);
