// The page's Transcribe mode as a person uses it, in headless Chromium (Debian's, WebGPU on
// SwiftShader) over the dev server: switch to Transcribe (the hub list shows the Kyutai STT
// models), pick the tiny STT model of ../shared/fixtures/stt with the ref Mimi and a tokenizer as
// local files, Load, play the fixture speech WAV; the captions the engine Worker sends must be the
// official procedure's tokens (../shared/fixtures/stt/stt/text_tokens: run_inference.py), the
// text their SentencePiece pieces, the pause markers where the chosen extra head's golden
// probability rises above the threshold, and the .txt / .srt / .vtt downloads the golden words.
// Then the fake microphone: Stop feeds the right padding (the last words), the run ends 'stopped'.
// Writes docs/screenshots/transcribe.png.
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { ViteDevServer } from 'vite';
import { timedWords } from '../../src/models/stt.ts';
import { formatSrt, formatVtt, subtitleCues } from '../../src/text/subtitles.ts';
import { TextTokenizer } from '../../src/text/tokenizer.ts';
import { FIXTURES_DIR, ROOT, launchChromium, startDevServer } from '../harness/browser.ts';

const FAKE_MIC = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'];
const SHOTS = resolve(ROOT, 'docs/screenshots');
const SPM = resolve(ROOT, 'tests/fixtures/spm/tiny_unigram.model');
const MODEL_FILES = [
  resolve(FIXTURES_DIR, 'stt/config.json'),
  resolve(FIXTURES_DIR, 'stt/stt_tiny.safetensors'),
  resolve(FIXTURES_DIR, 'ref/mimi_tiny_config.json'),
  resolve(FIXTURES_DIR, 'ref/mimi_tiny.safetensors'),
  SPM,
];
const SPEECH = resolve(FIXTURES_DIR, 'ref/mimi/input_speech_24k_pcm16.wav');

const i32 = (p: string) => {
  const b = readFileSync(resolve(FIXTURES_DIR, p));
  return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const f32 = (p: string) => {
  const b = readFileSync(resolve(FIXTURES_DIR, p));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

let server: ViteDevServer;
let url = '';
let browser: Browser;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  const s = await startDevServer();
  server = s.server;
  url = s.url;
  browser = await launchChromium(FAKE_MIC);
  context = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url });
  page = await context.newPage();
  mkdirSync(SHOTS, { recursive: true });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const tx = () => page.evaluate(() => ({ ...window.__solacelive!.transcribe! }));

/** Clicks a download button and returns the file's name and text. */
async function downloaded(button: string): Promise<{ name: string; text: string }> {
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: 10_000 }), page.click(button)]);
  const path = await d.path();
  return { name: d.suggestedFilename(), text: readFileSync(path, 'utf8') };
}

it('Transcribe mode: local STT model + the fixture speech WAV -> the golden tokens as captions, pause markers, .txt/.srt/.vtt', async () => {
  const goldTokens = Array.from(i32('stt/stt/text_tokens.i32.bin'));
  const goldHeads = f32('stt/stt/extra_heads.f32.bin'); // [54, 2, 6]
  const tok = await TextTokenizer.fromBytes(new Uint8Array(readFileSync(SPM)), { skipIds: [0, 3] });
  const goldText = tok.decode(goldTokens).trim();
  const goldWords = timedWords({ tokens: Int32Array.from(goldTokens), tokenFrames: Int32Array.from(goldTokens, (_, i) => i), frameSeconds: 0.08, offsetSeconds: 0.5 }, tok, 0);

  await page.goto(url);
  // A person's path: the mode switch, then the model card.
  await page.check('input[name="mode"][value="transcribe"]');
  expect(await page.locator('.card.transcribe').isVisible()).toBe(true);
  expect(await page.locator('.card.talk').isVisible()).toBe(false);
  const picker = await page.evaluate(() => window.__solacelive!.modelPicker!.options.map((o) => o.label));
  expect(picker.length).toBe(2);
  expect(picker[0]).toMatch(/^stt-1b-en_fr — 1\.98 GB download, 2\.\d\d GB GPU/);
  expect(picker[1]).toMatch(/^stt-2\.6b-en — 5\.23 GB download, 5\.\d\d GB GPU/);
  expect(await page.locator('select[name="hubModel"] option').allTextContents()).toContain('Other repository…');

  await page.check('input[name="src"][value="files"]');
  await page.locator('input[name="files"]').setInputFiles(MODEL_FILES);
  await page.click('button.load');
  await page.waitForFunction(() => ['ready', 'error'].includes(window.__solacelive?.state ?? ''), undefined, { timeout: 180_000, polling: 200 });
  const loaded = await page.evaluate(() => ({ state: window.__solacelive!.state, error: window.__solacelive!.error, status: document.querySelector('.load-status')?.textContent }));
  expect(loaded.state, JSON.stringify(loaded)).toBe('ready');
  expect(loaded.status).toMatch(/speech-to-text/);
  expect((await tx()).model).toEqual({ numHeads: 2, headDim: 6, audioDelaySeconds: 0.5, audioSilencePrefixSeconds: 0, frameSeconds: 0.08, endOfPaddingId: 0 });

  // Pause head 0; a threshold between its golden probabilities, so that markers appear.
  const p0 = Array.from({ length: goldTokens.length }, (_, i) => goldHeads[i * 12]);
  const thr = Number([...p0].sort((a, b) => a - b)[Math.floor(p0.length / 2)].toFixed(3));
  await page.selectOption('select[name="sttHead"]', '0');
  await page.fill('input[name="sttThreshold"]', String(thr));
  const goldPauses: number[] = [];
  p0.forEach((p, i) => {
    if (p > thr && !(i > 0 && p0[i - 1] > thr)) goldPauses.push(i);
  });
  expect(goldPauses.length).toBeGreaterThan(0);

  await page.locator('input[name="sttFile"]').setInputFiles(SPEECH);
  await page.click('button.stt-file');
  await page.waitForFunction(() => window.__solacelive?.transcribe?.state === 'running', undefined, { timeout: 30_000, polling: 50 });
  // Live: captions arrive while the file plays (2.88 s in real time), word by word.
  await page.waitForFunction(() => (window.__solacelive?.transcribe?.tokens.length ?? 0) >= 10, undefined, { timeout: 60_000, polling: 100 });
  const early = await tx();
  expect(early.state).toBe('running');
  expect(await page.locator('.captions .word').count()).toBeGreaterThan(0);
  // The file ends by itself: the engine feeds the right padding (1.5 s) and says so.
  await page.waitForFunction(() => {
    const t = window.__solacelive?.transcribe;
    return t?.state === 'ended' && t.sentSteps !== null && t.tokens.length === t.sentSteps;
  }, undefined, { timeout: 120_000, polling: 100 });
  await page.waitForTimeout(50); // the last render
  const r = await tx();
  expect(r.endReason).toBe('file-ended');
  // The official procedure's transcript, token for token (36 speech frames + 18 of padding).
  expect(r.tokens).toEqual(goldTokens);
  expect(r.text).toBe(goldText);
  expect(r.words).toEqual(goldWords);
  expect(r.pauses).toEqual(goldPauses);
  // What is shown: one span per word, a marker per pause, a probability per head.
  expect(await page.locator('.captions .word').allTextContents()).toEqual(goldWords.map((w) => w.text));
  expect(await page.locator('.captions .pause').count()).toBe(goldPauses.length);
  expect(await page.locator('.stt-probs .prob').count()).toBe(2);
  expect(await page.locator('.stt-probs .prob.chosen').getAttribute('data-head')).toBe('0');
  await page.screenshot({ path: resolve(SHOTS, 'transcribe.png'), fullPage: true });

  // Copy and the downloads.
  await page.click('button.stt-copy');
  await page.waitForFunction(() => document.querySelector('.stt-export-status')?.textContent !== '', undefined, { timeout: 5000 });
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(goldText);
  const txt = await downloaded('button.stt-txt');
  expect(txt).toEqual({ name: 'transcript.txt', text: `${goldText}\n` });
  const srt = await downloaded('button.stt-srt');
  expect(srt.name).toBe('transcript.srt');
  expect(srt.text).toBe(formatSrt(subtitleCues(goldWords)));
  expect(srt.text).toMatch(/^1\n00:00:00,\d{3} --> 00:00:\d\d,\d{3}\n/);
  const vtt = await downloaded('button.stt-vtt');
  expect(vtt.name).toBe('transcript.vtt');
  expect(vtt.text).toBe(formatVtt(subtitleCues(goldWords)));
  expect(vtt.text.startsWith('WEBVTT\n\n00:00:00.')).toBe(true);

  // Another threshold re-marks the same captions: above every probability, no pause.
  await page.fill('input[name="sttThreshold"]', '1');
  await page.waitForFunction(() => document.querySelectorAll('.captions .pause').length === 0, undefined, { timeout: 5000 });
}, 600_000);

it('URLs source: the same STT model by URL (config, weights, Mimi config, tokenizer) transcribes the WAV to the golden tokens', async () => {
  const goldTokens = Array.from(i32('stt/stt/text_tokens.i32.bin'));
  const fsUrl = (p: string) => `${url}/@fs${p}`;
  await page.check('input[name="src"][value="urls"]');
  await page.fill('input[name="mimiConfig"]', fsUrl(MODEL_FILES[2]));
  await page.fill('input[name="mimiWeights"]', fsUrl(MODEL_FILES[3]));
  await page.fill('input[name="lmConfig"]', fsUrl(MODEL_FILES[0]));
  await page.fill('input[name="lmWeights"]', fsUrl(MODEL_FILES[1]));
  await page.fill('input[name="tokenizer"]', fsUrl(SPM));
  await page.click('button.load');
  await page.waitForFunction(() => window.__solacelive?.state === 'loading', undefined, { timeout: 10_000, polling: 50 }).catch(() => undefined);
  await page.waitForFunction(() => ['ready', 'error'].includes(window.__solacelive?.state ?? ''), undefined, { timeout: 180_000, polling: 200 });
  expect(await page.evaluate(() => window.__solacelive!.error)).toBeNull();
  await page.locator('input[name="sttFile"]').setInputFiles(SPEECH);
  await page.click('button.stt-file');
  await page.waitForFunction(() => {
    const t = window.__solacelive?.transcribe;
    return t?.state === 'ended' && t.sentSteps !== null && t.tokens.length === t.sentSteps;
  }, undefined, { timeout: 120_000, polling: 100 });
  expect((await tx()).tokens).toEqual(goldTokens);
}, 300_000);

it('hub: Transcribe mode fetches the STT repository config.json, model.safetensors, its Mimi and tokenizer', async () => {
  const p = await context.newPage();
  const requested: string[] = [];
  const files: Record<string, Buffer> = {
    'config.json': readFileSync(MODEL_FILES[0]),
    'model.safetensors': readFileSync(MODEL_FILES[1]),
    'mimi-pytorch-e351c8d8@125.safetensors': readFileSync(MODEL_FILES[3]), // the tiny Mimi: not the released Mimi's shapes
    'tokenizer_en_fr_audio_8000.model': readFileSync(SPM),
  };
  await p.route('**/hubmock/**', (route) => {
    const path = new URL(route.request().url()).pathname;
    if (route.request().method() === 'GET') requested.push(path); // (the size probe's HEAD requests come first)
    const body = files[decodeURIComponent(path.split('/').pop()!)];
    return body ? route.fulfill({ status: 200, body, headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) } }) : route.fulfill({ status: 404, body: 'not found' });
  });
  await p.goto(`${url}/?mode=transcribe&hubBase=${encodeURIComponent(`${url}/hubmock`)}`);
  await p.evaluate(() => window.__solacelive!.modelPicker!.ready);
  expect(await p.evaluate(() => window.__solacelive!.modelPicker!.mode)).toBe('transcribe');
  await p.selectOption('select[name="hubModel"]', 'kyutai/stt-1b-en_fr');
  await p.click('button.load');
  await p.waitForFunction(() => window.__solacelive?.state === 'error', undefined, { timeout: 120_000, polling: 200 });
  const base = '/hubmock/kyutai/stt-1b-en_fr/resolve/main/';
  expect(requested.sort()).toEqual([`${base}config.json`, `${base}mimi-pytorch-e351c8d8%40125.safetensors`, `${base}model.safetensors`, `${base}tokenizer_en_fr_audio_8000.model`]);
  // The config made it an STT load (src/engine/load_stt.ts's check; Moshi's loader would say the Mimi
  // writes no audio tokens): the released Mimi (2048 bins) does not fit this tiny model (card 64).
  const err = await p.evaluate(() => window.__solacelive!.error ?? '');
  expect(err).toMatch(/ModelMismatchError: the STT model's audio card is 64, the Mimi's codebooks have 2048 bins/);
  console.log(`hub (mock) STT load error, as expected: ${err.slice(0, 200)}`);
  await p.close();
}, 300_000);

it('microphone: captions while live; Stop feeds the right padding and ends the run', async () => {
  expect((await tx()).state).toBe('ended');
  await page.click('button.stt-mic');
  await page.waitForFunction(() => window.__solacelive?.transcribe?.state === 'running', undefined, { timeout: 30_000, polling: 50 });
  expect(await page.textContent('button.stt-mic')).toBe('Stop');
  await page.waitForFunction(() => (window.__solacelive?.transcribe?.tokens.length ?? 0) >= 5, undefined, { timeout: 60_000, polling: 100 });
  // The mode cannot change under a running transcription.
  await page.check('input[name="mode"][value="talk"]').catch(() => undefined);
  expect(await page.locator('.card.transcribe').isVisible()).toBe(true);
  await page.click('button.stt-mic');
  await page.waitForFunction(() => window.__solacelive?.transcribe?.state === 'ended', undefined, { timeout: 60_000, polling: 100 });
  const r = await tx();
  expect(r.endReason).toBe('stopped');
  // At least the 18 frames of padding (1.5 s) came after the live ones, every one received.
  expect(r.sentSteps).toBeGreaterThanOrEqual(5 + 18);
  await page.waitForFunction((n) => window.__solacelive?.transcribe?.tokens.length === n, r.sentSteps, { timeout: 10_000 });
  expect(await page.textContent('button.stt-mic')).toBe('Start microphone');
}, 300_000);
