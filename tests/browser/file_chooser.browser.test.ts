// "Local files" with more than one candidate for a role, in headless Chromium: the ref Mimi and
// Moshi with their configs plus a second LM config (the quant fixture's) and a second LM
// checkpoint. Instead of a load error the page shows one chooser per ambiguous role (and none for
// the roles that are clear); the chosen files load; a wrong choice fails naming the files it read.
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { FIXTURES_DIR } from '../harness/browser.ts';
import { useDevServerAndChromium } from '../harness/browser_hooks.ts';

const env = useDevServerAndChromium();
const FILES = [
  'ref/mimi_tiny_config.json',
  'ref/mimi_tiny.safetensors',
  'ref/moshi_tiny_config.json',
  'ref/moshi_tiny.safetensors',
  'quant/lm_config.json',
  'quant/lm_f32.safetensors',
].map((p) => resolve(FIXTURES_DIR, p));

it('several LM configs and checkpoints: a chooser per ambiguous role, the chosen pair loads', async () => {
  const page = await env.browser.newPage();
  await page.goto(env.url);
  await page.check('input[name="src"][value="files"]');
  expect(await page.isVisible('.file-choosers')).toBe(false);
  await page.setInputFiles('input[name="files"]', FILES);
  expect(await page.isVisible('.file-choosers')).toBe(true);
  const choosers = await page.locator('.file-choosers select').evaluateAll((ss) => ss.map((s) => ({ name: (s as HTMLSelectElement).name, options: [...(s as HTMLSelectElement).options].map((o) => o.text) })));
  expect(choosers).toEqual([
    { name: 'choose-lmWeights', options: ['moshi_tiny.safetensors', 'lm_f32.safetensors'] },
    { name: 'choose-lmConfig', options: ['moshi_tiny_config.json', 'lm_config.json'] },
  ]);
  // A mismatched pair (the ref Moshi's config with the quant LM's weights) is refused, naming the weights.
  await page.selectOption('select[name="choose-lmWeights"]', { label: 'lm_f32.safetensors' });
  await page.click('button.load');
  await page.waitForFunction(() => ['ready', 'error'].includes(window.__solacelive?.state ?? ''), undefined, { timeout: 120_000, polling: 200 });
  let h = await page.evaluate(() => ({ state: window.__solacelive!.state, error: window.__solacelive!.error ?? '' }));
  expect(h.state).toBe('error');
  expect(h.error).toMatch(/lm_f32\.safetensors/);
  expect(h.error).not.toMatch(/several/);
  // The matching pair loads.
  await page.selectOption('select[name="choose-lmWeights"]', { label: 'moshi_tiny.safetensors' });
  await page.click('button.load');
  await page.waitForFunction(() => window.__solacelive?.state === 'loading', undefined, { timeout: 10_000, polling: 50 }).catch(() => undefined);
  await page.waitForFunction(() => ['ready', 'error'].includes(window.__solacelive?.state ?? ''), undefined, { timeout: 120_000, polling: 200 });
  h = await page.evaluate(() => ({ state: window.__solacelive!.state, error: window.__solacelive!.error ?? '' }));
  expect(h.state, h.error).toBe('ready');
  expect(await page.textContent('.load-status')).toMatch(/Ready: Mimi \(8 codebooks\) \+ LM dim 64/);
}, 300_000);
