// The kernel self-test page (`npm start` -> /bench.html) as a person opens it: the page reports the
// WebGPU adapter and runs kernel cases in its module Worker, then shows "N passed, 0 failed".
import { expect, it } from 'vitest';
import { useDevServerAndChromium } from '../harness/browser_hooks.ts';
import { ropeSuite } from '../kernels/rope.cases.ts';
import { normSuite } from '../kernels/norm.cases.ts';

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

it('bench.html names an unknown suite instead of hanging', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.url}/bench.html?suites=nope`);
  await page.waitForFunction(() => (document.querySelector('.summary') as HTMLElement | null)?.dataset.state === 'error', undefined, { timeout: 120_000, polling: 250 });
  expect(await page.locator('.adapter').textContent()).toMatch(/unknown kernel suite nope; suites: .*rope/);
}, 300_000);
