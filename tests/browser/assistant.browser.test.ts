// The voice-assistant page as a person meets it, in headless Chromium over the dev server (tiny
// models from ../shared/fixtures, Chromium's fake microphone): banners that can be dismissed and
// that a later success clears, one place per message, titles that say what went wrong (a network
// failure, a file not found); status lines in words; one Stop label; meters back to silence on
// Stop; the output meter and Moshi's waveform lane honest about his voice (shown, or 'skipped'
// when the loop is behind real time; shown with ?catchUp=0); a transcript section per
// conversation (microphone, then a file); the Install button; the no-WebGPU screen.
// Screenshots of these states go to docs/screenshots/ (README links them).
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { CHROMIUM_ARGS, FIXTURES_DIR, ROOT, chromiumPath, launchChromium, startDevServer } from '../harness/browser.ts';

const FAKE_MIC = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];
const SHOTS = resolve(ROOT, 'docs/screenshots');
const fx = (p: string) => `/@fs${FIXTURES_DIR}/${p}`;
const TINY = { mimiConfig: fx('ref/mimi_tiny_config.json'), mimiWeights: fx('ref/mimi_tiny.safetensors'), lmConfig: fx('ref/moshi_tiny_config.json'), lmWeights: fx('ref/moshi_tiny.safetensors'), tokenizer: `/tests/fixtures/spm/tiny_unigram.model` };

let server: ViteDevServer;
let url = '';
let browser: Browser;
let page: Page;

beforeAll(async () => {
  const s = await startDevServer();
  server = s.server;
  url = s.url;
  browser = await launchChromium(FAKE_MIC);
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const hook = () => page.evaluate(() => ({ ...window.__solacelive!, modelPicker: undefined, metrics: null }));
const settled = () => page.waitForFunction(() => ['ready', 'error'].includes(window.__solacelive?.state ?? ''), undefined, { timeout: 120_000, polling: 200 });
const bannerTexts = () => page.locator('.banner').allTextContents();
/**
 * The output side while running: 30 samples, 100 ms apart, of the output meter's label and the
 * Moshi lane's peak |sample|, with the reply frames Moshi produced and those left undecoded over
 * that window (metrics.tokenSteps, metrics.skippedDecodes).
 */
async function sampleOutput(): Promise<{ produced: number; skipped: number; samples: { label: string; peak: number }[] }> {
  const counts = () => page.evaluate(() => ({ tok: window.__solacelive?.metrics?.tokenSteps ?? 0, sk: window.__solacelive?.metrics?.skippedDecodes ?? 0 }));
  const m0 = await counts();
  const samples: { label: string; peak: number }[] = [];
  for (let i = 0; i < 30; i++) {
    samples.push(await page.evaluate(() => ({ label: document.querySelector('.out-db')?.textContent ?? '', peak: window.__solacelive?.waveform.peaks[1] ?? 0 })));
    await page.waitForTimeout(100);
  }
  const m1 = await counts();
  return { produced: m1.tok - m0.tok, skipped: m1.sk - m0.sk, samples };
}
/** Loads through the URL source with these weights URLs (the tiny configs and tokenizer). */
async function loadUrls(mimiWeights: string, lmWeights: string): Promise<void> {
  await page.check('input[name="src"][value="urls"]');
  for (const [k, v] of Object.entries({ ...TINY, mimiWeights, lmWeights })) await page.fill(`input[name="${k}"]`, v.startsWith('/') ? url + v : v);
  await page.click('button.load');
  await page.waitForFunction(() => window.__solacelive?.state === 'loading', undefined, { timeout: 10_000, polling: 50 }).catch(() => undefined);
  await settled();
}

it('banners: right titles, one place per message, dismissible, cleared by a successful Load', async () => {
  await page.goto(url);
  await page.screenshot({ path: resolve(SHOTS, 'first-visit.png'), fullPage: true });

  // A weights URL the dev server does not have: it answers index.html with 200.
  await loadUrls('/models/missing/mimi.safetensors', '/models/missing/model.safetensors');
  let b = await bannerTexts();
  expect(b.some((t) => t.startsWith('Model file not found.') && t.includes('mimi.safetensors')), b.join(' | ')).toBe(true);
  expect(b.some((t) => /Weights missing or invalid|safetensors header/i.test(t)), b.join(' | ')).toBe(false);
  // The message is in the banner only; the status line points to it.
  const status = (await page.textContent('.load-status')) ?? '';
  expect(status).not.toContain('mimi.safetensors');
  expect(await page.getAttribute('.load-status', 'data-state')).toBe('error');
  await page.screenshot({ path: resolve(SHOTS, 'error.png'), fullPage: true });

  // Dismissed: gone from the page and from the hook.
  await page.locator('.banner', { hasText: 'Model file not found.' }).locator('button.banner-close').click();
  expect(await page.locator('.banner', { hasText: 'Model file not found.' }).count()).toBe(0);
  expect((await hook()).banners.some((t) => t.startsWith('Model file not found.'))).toBe(false);

  // No server at all: a network failure, not invalid weights.
  await loadUrls('http://127.0.0.1:9/mimi.safetensors', 'http://127.0.0.1:9/model.safetensors');
  b = await bannerTexts();
  expect(b.some((t) => t.startsWith('Network error.')), b.join(' | ')).toBe(true);
  expect(b.some((t) => t.startsWith('Weights missing or invalid.')), b.join(' | ')).toBe(false);

  // Real files that are no safetensors: "weights missing or invalid".
  await loadUrls('/package.json', '/package.json');
  b = await bannerTexts();
  expect(b.some((t) => t.startsWith('Weights missing or invalid.')), b.join(' | ')).toBe(true);

  // The status line in words while loading (no raw event names), then a successful Load clears every load banner.
  await page.evaluate(() => {
    const seen: string[] = ((window as unknown as { __statusSeen: string[] }).__statusSeen = []);
    const s = document.querySelector('.load-status')!;
    new MutationObserver(() => seen.push(s.textContent ?? '')).observe(s, { childList: true, characterData: true, subtree: true });
  });
  await loadUrls(TINY.mimiWeights, TINY.lmWeights);
  expect((await hook()).state).toBe('ready');
  expect(await page.locator('.banner').count(), (await bannerTexts()).join(' | ')).toBe(0);
  const seen = await page.evaluate(() => (window as unknown as { __statusSeen: string[] }).__statusSeen);
  expect(seen.length).toBeGreaterThan(0);
  for (const t of seen) expect(t, seen.join(' | ')).not.toMatch(/\b(initiate|progress|download|done):/);
  await page.waitForFunction(() => /^Storage: [\d.]+ [MG]B used of [\d.]+ [MG]B for this site; /.test(document.querySelector('.storage')?.textContent ?? ''), undefined, { timeout: 10_000 });
  await page.screenshot({ path: resolve(SHOTS, 'ready.png'), fullPage: true });
}, 300_000);

it('talking: one Stop label, meters at silence after Stop, a transcript section per conversation', async () => {
  expect((await hook()).state).toBe('ready');
  await page.click('button.mic');
  await page.waitForFunction(() => (window.__solacelive?.metrics?.steps ?? 0) >= 40 && (window.__solacelive?.textPackets ?? 0) > 0, undefined, { timeout: 120_000, polling: 250 });
  expect(await page.textContent('button.mic')).toBe('Stop');
  // The waveform is drawn while running; the top lane is the (fake) microphone's signal.
  await page.waitForFunction(() => (window.__solacelive?.waveform.frames ?? 0) > 3 && (window.__solacelive?.waveform.peaks[0] ?? 0) > 1e-3, undefined, { timeout: 30_000, polling: 100 });
  // While Moshi runs the output meter is (almost) never a bare '–∞ dB' that reads as dead: the tiny
  // model's decoded audio is loud noise, so a silent meter is the worklet 'buffering' (after an
  // underrun) or his decodes 'skipped' (the loop behind real time, as on a 2-core software
  // adapter), which the metrics must then back.
  const w = await sampleOutput();
  const bare = w.samples.filter((x) => x.label === '–∞ dB').length;
  expect(bare, JSON.stringify(w)).toBeLessThanOrEqual(5);
  if (w.samples.some((x) => x.label === 'skipped')) expect(w.skipped, JSON.stringify(w)).toBeGreaterThan(0);
  if (w.skipped === 0) expect(w.samples.filter((x) => x.peak > 1e-3).length, JSON.stringify(w)).toBeGreaterThan(w.samples.length / 3);
  await page.screenshot({ path: resolve(SHOTS, 'talking.png'), fullPage: true });
  await page.click('button.mic');
  await page.waitForFunction(() => window.__solacelive?.state === 'ready', undefined, { timeout: 30_000 });
  await page.waitForTimeout(600); // a few meter refreshes
  expect(await page.textContent('.in-db')).toBe('–∞ dB');
  expect(await page.textContent('.out-db')).toBe('–∞ dB');
  expect(await page.evaluate(() => (document.querySelector('.fill.in') as HTMLElement).style.width)).toBe('0%');
  const micText = ((await hook()).text).trim();
  expect(micText.length).toBeGreaterThan(0);

  // The same conversation again, from a file: a new section below the first, and it grows (not frozen).
  await page.setInputFiles('input[name="talkFile"]', resolve(FIXTURES_DIR, 'ref/mimi/input_speech_24k_pcm16.wav'));
  const before = (await hook()).textPackets;
  await page.click('button.file');
  await page.waitForFunction(() => window.__solacelive?.state === 'running', undefined, { timeout: 30_000 });
  expect(await page.textContent('button.mic')).toBe('Stop');
  await page.waitForFunction((n) => (window.__solacelive?.textPackets ?? 0) > n + 3, before, { timeout: 120_000, polling: 250 });
  const h = await hook();
  const sections = h.text.split('\n\n');
  expect(sections.length, JSON.stringify(h.text)).toBeGreaterThanOrEqual(2);
  // The microphone's section is what it showed at Stop (its last TEXT_FINAL may land just after).
  expect(sections[0].trim().startsWith(micText), JSON.stringify({ micText, text: h.text })).toBe(true);
  expect(sections[sections.length - 1].trim().length).toBeGreaterThan(0);
  // The page shows what the hook holds (read together: text keeps arriving).
  const [shown, held] = await page.evaluate(() => [document.querySelector('.transcript')?.textContent, window.__solacelive?.text]);
  expect(shown).toBe(held);
  await page.click('button.mic');
}, 300_000);

it("catchUp=0: every reply frame decoded, so Moshi's lane and the output meter carry his voice", async () => {
  // Without the lag rule the tiny model's decoded noise (RMS ~0.5) plays even on a machine slower
  // than real time: the output meter and the waveform's bottom lane must show it (at the point
  // where the talking test looks, 40 steps in).
  await page.goto(`${url}/?catchUp=0`);
  await loadUrls(TINY.mimiWeights, TINY.lmWeights);
  expect((await hook()).state).toBe('ready');
  await page.click('button.mic');
  try {
    await page.waitForFunction(() => (window.__solacelive?.metrics?.steps ?? 0) >= 40, undefined, { timeout: 120_000, polling: 250 });
    const w = await sampleOutput();
    expect(w.skipped, JSON.stringify(w)).toBe(0);
    expect(w.produced, JSON.stringify(w)).toBeGreaterThan(0);
    // Underruns re-buffer in silence on a machine slower than real time: his voice in a third of the samples at least.
    expect(w.samples.filter((x) => x.peak > 1e-3).length, JSON.stringify(w)).toBeGreaterThan(w.samples.length / 3);
    expect(w.samples.filter((x) => /^-?\d+ dB$/.test(x.label)).length, JSON.stringify(w)).toBeGreaterThan(0);
    expect(w.samples.some((x) => x.label === 'skipped'), JSON.stringify(w)).toBe(false);
  } finally {
    await page.click('button.mic');
    await page.waitForFunction(() => window.__solacelive?.state === 'ready', undefined, { timeout: 30_000 });
  }
}, 300_000);

it('Install: a button only where the browser offers installation, which asks the browser once', async () => {
  await page.goto(url);
  expect(await page.locator('button.install').isVisible()).toBe(false);
  // What Chromium sends when the app is installable (headless Chromium never offers it by itself).
  await page.evaluate(() => {
    const e = new Event('beforeinstallprompt', { cancelable: true }) as Event & { prompt: () => Promise<void> };
    e.prompt = async () => void ((window as unknown as { __prompted: number }).__prompted = ((window as unknown as { __prompted?: number }).__prompted ?? 0) + 1);
    dispatchEvent(e);
    (window as unknown as { __prevented: boolean }).__prevented = e.defaultPrevented;
  });
  expect(await page.evaluate(() => (window as unknown as { __prevented: boolean }).__prevented)).toBe(true);
  await page.locator('button.install').click();
  expect(await page.evaluate(() => (window as unknown as { __prompted?: number }).__prompted)).toBe(1);
  expect(await page.locator('button.install').isVisible()).toBe(false);
});

it('no WebGPU adapter: a screen up front that says which browsers and how to turn WebGPU on', async () => {
  const noGpu = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'), headless: true });
  try {
    const p = await noGpu.newPage({ viewport: { width: 1200, height: 900 } });
    await p.goto(url);
    const screen = p.locator('.no-webgpu');
    await screen.waitFor({ state: 'visible', timeout: 60_000 });
    const text = (await screen.textContent()) ?? '';
    expect(text).toMatch(/Chrome/);
    expect(text).toMatch(/Safari/);
    expect(text).toContain('chrome://flags/#enable-unsafe-webgpu');
    expect(text).not.toMatch(/Node|headless|--enable-unsafe-webgpu|VK_ICD|createNodeGpuContext/);
    expect(await p.locator('.grid').isVisible()).toBe(false);
    expect(await p.evaluate(() => window.__solacelive?.screen)).toBe('no-webgpu');
    await p.screenshot({ path: resolve(SHOTS, 'no-webgpu.png'), fullPage: true });
  } finally {
    await noGpu.close();
  }
}, 120_000);
