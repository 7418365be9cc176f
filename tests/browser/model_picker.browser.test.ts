// The hub source's model picker on the voice-assistant page, in headless Chromium: the eight
// released repositories with download size and GPU memory, marked against this adapter, the
// largest that fits preselected; ?hubRepo= wins; Load fetches the chosen repository's LM file.
// Screenshots: docs/screenshots/picker.png (the list open as a listbox), downloading.png (a Load
// waiting on the hub mirror's Mimi file).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { FIXTURES_DIR, ROOT } from '../harness/browser.ts';
import { useDevServerAndChromium } from '../harness/browser_hooks.ts';

const env = useDevServerAndChromium();

async function picker(page: Page) {
  return page.evaluate(async () => {
    const p = window.__solacelive!.modelPicker!;
    await p.ready;
    const select = document.querySelector<HTMLSelectElement>('select[name="hubModel"]')!;
    return {
      options: p.options.map((o) => ({ repo: o.repo, label: o.label, fits: o.fits })),
      selected: p.selected,
      selectValue: select.value,
      optionCount: select.options.length,
      repo: document.querySelector<HTMLInputElement>('input[name="hubRepo"]')!.value,
      // Hidden for a released model: the attribute and what a person sees (CSS must not override it).
      repoHidden: document.querySelector<HTMLElement>('.hub-repo')!.hidden && getComputedStyle(document.querySelector<HTMLElement>('.hub-repo')!).display === 'none',
      budget: p.budget,
      hint: document.querySelector('.model-fit')!.textContent ?? '',
    };
  });
}

it('lists the released models with sizes and fit, preselects the largest that fits', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.url}/`);
  const p = await picker(page);
  expect(p.options.map((o) => o.repo)).toEqual(['moshiko', 'moshika'].flatMap((v) => ['pytorch-bf16', 'pytorch-q8', 'mlx-q8', 'mlx-q4'].map((f) => `kyutai/${v}-${f}`)));
  expect(p.optionCount).toBe(9); // + "Other repository…"
  for (const o of p.options) expect(o.label).toMatch(/GB download, [\d.]+ GB GPU · (fits|too large here)$/);
  expect(p.budget).not.toBeNull();
  // The first of moshiko's variants (largest first) that fits, else q4.
  const moshiko = p.options.filter((o) => o.repo.startsWith('kyutai/moshiko-'));
  const want = moshiko.find((o) => o.fits)?.repo ?? 'kyutai/moshiko-mlx-q4';
  expect(p.selected).toBe(want);
  expect(p.selectValue).toBe(want);
  expect(p.repo).toBe(want);
  expect(p.repoHidden).toBe(true);
  // bf16 (17 GB) never fits the assumed budget (navigator.deviceMemory, at most 8 GB in Chrome).
  expect(moshiko[0].fits).toBe(false);
  expect(p.hint).toMatch(/WebGPU does not report GPU memory/);
  // The list shown whole (a listbox: headless Chromium draws no open dropdown).
  await page.evaluate(() => document.querySelector<HTMLSelectElement>('select[name="hubModel"]')!.setAttribute('size', '9'));
  await page.locator('.card.model').screenshot({ path: resolve(ROOT, 'docs/screenshots/picker.png') });
}, 120_000);

it('?hubRepo= selects that repository; an unknown one shows the repository field', async () => {
  const page = await env.browser.newPage();
  await page.goto(`${env.url}/?hubRepo=kyutai/moshika-pytorch-q8`);
  let p = await picker(page);
  expect(p.selected).toBe('kyutai/moshika-pytorch-q8');
  await page.goto(`${env.url}/?hubRepo=someone/my-moshi`);
  p = await picker(page);
  expect(p.selectValue).toBe('');
  expect(p.repo).toBe('someone/my-moshi');
  expect(p.repoHidden).toBe(false);
}, 120_000);

it('Load fetches the chosen repository and its LM file name (model.q4.safetensors for MLX q4)', async () => {
  const page = await env.browser.newPage();
  const requested: string[] = [];
  // A hub mirror holding the tokenizer and the Mimi (tiny fixtures) but no LM file.
  const files: Record<string, Buffer> = {
    'tokenizer_spm_32k_3.model': readFileSync(resolve(ROOT, 'tests/fixtures/spm/tiny_unigram.model')),
    'tokenizer-e351c8d8-checkpoint125.safetensors': readFileSync(resolve(FIXTURES_DIR, 'ref/mimi_tiny.safetensors')),
  };
  let release: () => void = () => {};
  const mimiHeld = new Promise<void>((r) => (release = r));
  await page.route('**/hubmock/**', async (route) => {
    const path = new URL(route.request().url()).pathname;
    requested.push(path);
    // The Mimi download waits until the "downloading" screenshot is taken.
    if (path.endsWith('.safetensors') && path.includes('tokenizer-') && route.request().method() === 'GET') await mimiHeld;
    const body = files[path.split('/').pop()!];
    return body ? route.fulfill({ status: 200, body, headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) } }) : route.fulfill({ status: 404, body: 'not found' });
  });
  await page.goto(`${env.url}/?hubBase=${encodeURIComponent(`${env.url}/hubmock`)}`);
  await picker(page);
  await page.selectOption('select[name="hubModel"]', 'kyutai/moshika-mlx-q4');
  await page.click('button.load');
  await page.waitForFunction(() => /file \d of \d/.test(document.querySelector('.load-status')?.textContent ?? ''), undefined, { timeout: 60_000, polling: 100 });
  await page.locator('.card.model').screenshot({ path: resolve(ROOT, 'docs/screenshots/downloading.png') });
  release();
  await page.waitForFunction(() => ['error', 'idle'].includes(window.__solacelive?.state ?? '') && (window.__solacelive?.error ?? '') !== '', undefined, { timeout: 120_000, polling: 200 });
  expect(requested, requested.join(' ')).toContain('/hubmock/kyutai/moshika-mlx-q4/resolve/main/model.q4.safetensors');
  expect(requested.every((u) => u.includes('/kyutai/moshika-mlx-q4/'))).toBe(true);
  expect(await page.evaluate(() => window.__solacelive?.error ?? '')).toMatch(/model\.q4\.safetensors/);
}, 180_000);
