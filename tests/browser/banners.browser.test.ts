// The voice-assistant page's error banners, in headless Chromium: not cross-origin isolated,
// weights invalid; and the no-WebGPU screen. (Device loss and microphone denial are covered by the engine's
// named errors; these three are the states a person meets before talking.)
import { expect, it } from 'vitest';
import { chromium, type Page } from 'playwright-core';
import { CHROMIUM_ARGS, chromiumPath } from '../harness/browser.ts';
import { useDevServerAndChromium } from '../harness/browser_hooks.ts';

const env = useDevServerAndChromium();

const banners = (page: Page) => page.evaluate(() => window.__solacelive?.banners ?? []);
const waitState = (page: Page, states: string[]) =>
  page.waitForFunction((s) => s.includes(window.__solacelive?.state ?? ''), states, { timeout: 120_000, polling: 200 });

it('weights that are not safetensors: error state and the "weights missing or invalid" banner naming the file', async () => {
  const page = await env.browser.newPage();
  // package.json is served by the dev server: a real file, but no safetensors.
  const q = new URLSearchParams({ mimiWeights: '/package.json', lmWeights: '/package.json', autoload: '1' });
  await page.goto(`${env.url}/?${q}`);
  await waitState(page, ['error']);
  const b = await banners(page);
  expect(b.some((x) => /^Weights missing or invalid\..*package\.json/.test(x)), b.join(' | ')).toBe(true);
  expect(await page.locator('.load-status').getAttribute('data-state')).toBe('error');
}, 180_000);

it('a page served without COOP/COEP: the "not cross-origin isolated" banner', async () => {
  const page = await env.browser.newPage();
  await page.route(`${env.url}/`, async (route) => {
    const res = await route.fetch();
    const headers = { ...res.headers() };
    delete headers['cross-origin-opener-policy'];
    delete headers['cross-origin-embedder-policy'];
    await route.fulfill({ response: res, headers });
  });
  await page.goto(`${env.url}/`);
  await page.waitForFunction(() => (window.__solacelive?.banners.length ?? 0) > 0, undefined, { timeout: 60_000 });
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
  const b = await banners(page);
  expect(b.some((x) => x.startsWith('Not cross-origin isolated.')), b.join(' | ')).toBe(true);
}, 120_000);

it('a browser without a WebGPU adapter: the no-WebGPU screen, also when loading', async () => {
  const noGpu = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'), headless: true });
  try {
    const page = await noGpu.newPage();
    const q = new URLSearchParams({ mimiWeights: '/package.json', lmWeights: '/package.json', autoload: '1' });
    await page.goto(`${env.url}/?${q}`);
    await waitState(page, ['error']);
    expect(await page.evaluate(() => window.__solacelive?.screen)).toBe('no-webgpu');
    expect(await page.locator('.no-webgpu').isVisible()).toBe(true);
  } finally {
    await noGpu.close();
  }
}, 180_000);
