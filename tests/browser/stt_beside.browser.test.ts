// The user's words beside Moshi's, as a person gets them, in headless Chromium (Debian's, WebGPU on
// SwiftShader) over the dev server: Talk mode, the tiny Moshi of ../shared/fixtures/ref by URLs,
// "Your words too" → URLs… with the tiny STT model of ../shared/fixtures/stt and a tokenizer, Load
// (one Worker, one Mimi encode serving both LMs), play the fixture speech WAV to Moshi, Stop (the
// right padding goes through the shared encoder and the STT model only). "You said" must show the
// official transcription procedure's tokens (stt/stt/text_tokens: run_inference.py over the speech
// and its padding) while Moshi talks; a second conversation starts a new "You said" that again
// equals the golden (the STT model's state is reset with Moshi's). With Record on, the first
// conversation downloads as a 24 kHz stereo WAV whose left channel is the played speech sample for
// sample and whose right channel is Moshi's voice, and a transcript with both speakers' turns.
// Writes docs/screenshots/you_said.png.
import { mkdirSync, readFileSync } from 'node:fs';
import { decodeWav } from '../../src/audio/wav.ts';
import { resolve } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { TextTokenizer } from '../../src/text/tokenizer.ts';
import { FIXTURES_DIR, ROOT } from '../harness/browser.ts';
import { useDevServerAndChromium } from '../harness/browser_hooks.ts';

const SHOTS = resolve(ROOT, 'docs/screenshots');
const SPM = '/tests/fixtures/spm/tiny_unigram.model';
const fx = (p: string) => `/@fs${FIXTURES_DIR}/${p}`;
const MOSHI = { mimiConfig: fx('ref/mimi_tiny_config.json'), mimiWeights: fx('ref/mimi_tiny.safetensors'), lmConfig: fx('ref/moshi_tiny_config.json'), lmWeights: fx('ref/moshi_tiny.safetensors'), tokenizer: SPM };
const STT = { sttConfig: fx('stt/config.json'), sttWeights: fx('stt/stt_tiny.safetensors'), sttTokenizer: SPM };
const SPEECH = resolve(FIXTURES_DIR, 'ref/mimi/input_speech_24k_pcm16.wav');
/** Counted steps of the golden: 36 speech frames + 18 frames of right padding. */
const GOLD_STEPS = 54;
/** Speech frames: Stop must come after the loop has taken all of them (queued input is not stepped after Stop). */
const SPEECH_FRAMES = 36;

const env = useDevServerAndChromium();
let url = '';
let page: Page;

beforeAll(async () => {
  url = env.url;
  page = await env.browser.newPage({ viewport: { width: 1200, height: 1000 }, acceptDownloads: true });
  mkdirSync(SHOTS, { recursive: true });
});

const user = () => page.evaluate(() => ({ ...window.__solacelive!.user }));

/** Plays the speech WAV to Moshi, waits for the loop to take every speech frame, Stops, and returns the user's words. */
async function converse(): Promise<{ text: string; tokens: number[]; ended: boolean }> {
  await page.setInputFiles('input[name="talkFile"]', SPEECH);
  await page.click('button.file');
  await page.waitForFunction(() => window.__solacelive?.state === 'running', undefined, { timeout: 30_000 });
  await page.waitForFunction((n) => (window.__solacelive?.user.tokens.length ?? 0) >= n, SPEECH_FRAMES + 4, { timeout: 120_000, polling: 200 });
  await page.click('button.mic'); // Stop
  await page.waitForFunction(() => window.__solacelive?.user.ended === true, undefined, { timeout: 60_000, polling: 200 });
  return user();
}

it('Talk with "Your words too": the STT model beside Moshi shows the golden tokens as the user\'s words, per conversation', async () => {
  const b = readFileSync(resolve(FIXTURES_DIR, 'stt/stt/text_tokens.i32.bin'));
  const gold = Array.from(new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4));
  expect(gold.length).toBe(GOLD_STEPS);
  const tok = await TextTokenizer.fromBytes(new Uint8Array(readFileSync(resolve(ROOT, SPM.slice(1)))), { skipIds: [0, 3] });
  const goldText = tok.decode(gold).trim();

  await page.goto(url);
  await page.check('input[name="src"][value="urls"]');
  for (const [k, v] of Object.entries(MOSHI)) await page.fill(`input[name="${k}"]`, url + v);
  // The choice lists the released STT model that can share Moshi's encoder (no silence prefix), then files and URLs.
  const options = await page.locator('select[name="sttBeside"] option').evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
  expect(options).toEqual(['', 'kyutai/stt-1b-en_fr', 'files', 'urls']);
  // With a released Moshi and STT model chosen, the hint gives both models' GPU memory together.
  await page.selectOption('select[name="sttBeside"]', 'kyutai/stt-1b-en_fr');
  expect((await user()).hint).toMatch(/moshiko-.* \+ stt-1b-en_fr .* = .* of GPU memory/);
  await page.selectOption('select[name="sttBeside"]', 'urls');
  for (const [k, v] of Object.entries(STT)) await page.fill(`input[name="${k}"]`, url + v);
  await page.click('button.load');
  await page.waitForFunction(() => ['ready', 'error'].includes(window.__solacelive?.state ?? ''), undefined, { timeout: 180_000, polling: 200 });
  const h = await page.evaluate(() => ({ state: window.__solacelive!.state, error: window.__solacelive!.error }));
  expect(h.state, h.error ?? '').toBe('ready');
  expect(await page.textContent('.load-status')).toMatch(/speech-to-text beside it/);
  expect(await page.isVisible('.you-said')).toBe(true);

  await page.check('input[name="record"]');
  const first = await converse();
  // Every counted step of the official procedure: the speech, then zeros (the page's silence after
  // the file, then the right padding Stop feeds) — the golden's 54 steps are the first ones.
  expect(first.tokens.slice(0, GOLD_STEPS)).toEqual(gold);
  expect(first.text.startsWith(goldText), JSON.stringify({ text: first.text, goldText })).toBe(true);
  expect(await page.textContent('.user-transcript')).toBe(first.text);
  // The conversation as turns: both speakers, the user's turns together are the user's words.
  const turns = await page.evaluate(() => window.__solacelive!.turns);
  expect(new Set(turns.map((t) => t.speaker))).toEqual(new Set(['user', 'moshi']));
  const squash = (t: string) => t.replace(/\s+/g, '');
  expect(squash(turns.filter((t) => t.speaker === 'user').map((t) => t.text).join(''))).toBe(squash(first.text));
  for (let i = 1; i < turns.length; i++) {
    expect(turns[i].speaker).not.toBe(turns[i - 1].speaker);
    expect(turns[i].start).toBeGreaterThanOrEqual(turns[i - 1].start);
  }
  expect(await page.locator('.conversation .turn').count()).toBe(turns.length);
  // Moshi talked meanwhile (its words and audio came through the same loop).
  const moshi = await page.evaluate(() => ({ textPackets: window.__solacelive!.textPackets, played: window.__solacelive!.played.samples }));
  expect(moshi.textPackets).toBeGreaterThan(0);
  expect(moshi.played).toBeGreaterThan(0);
  await page.screenshot({ path: resolve(SHOTS, 'you_said.png'), fullPage: true });

  // The recording: the transcript has both speakers, the WAV both voices step by step.
  const rec = (await page.evaluate(() => window.__solacelive!.recording))!;
  expect(rec.seconds).toBeGreaterThanOrEqual((SPEECH_FRAMES + 4) * 0.08);
  expect(rec.droppedFrames).toBe(0);
  expect(rec.transcript).toMatch(/^\[0:0\d\.\d\] (You|Moshi): /m);
  expect(rec.transcript).toMatch(/\] You: /);
  expect(rec.transcript).toMatch(/\] Moshi: /);
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 10_000 }), page.click('button.save-wav')]);
  expect(dl.suggestedFilename()).toMatch(/^conversation-.*\.wav$/);
  const wav = new Uint8Array(readFileSync(await dl.path()));
  const dv = new DataView(wav.buffer, wav.byteOffset);
  expect({ channels: dv.getUint16(22, true), rate: dv.getUint32(24, true), bits: dv.getUint16(34, true) }).toEqual({ channels: 2, rate: 24000, bits: 16 });
  const stereo = new Int16Array(wav.slice(44).buffer);
  expect(stereo.length).toBe(Math.round(rec.seconds / 0.08) * 1920 * 2);
  const speech = decodeWav(readFileSync(SPEECH), SPEECH).samples; // PCM16: exact through the page and back
  let leftDiff = 0;
  for (let i = 0; i < speech.length; i++) leftDiff = Math.max(leftDiff, Math.abs(stereo[2 * i] - Math.round(speech[i] * 32768)));
  expect(leftDiff, 'left channel = the played speech').toBe(0);
  let right = 0;
  for (let i = 1; i < stereo.length; i += 2) right = Math.max(right, Math.abs(stereo[i]));
  expect(right, "right channel = Moshi's voice").toBeGreaterThan(0);
  const [dt] = await Promise.all([page.waitForEvent('download', { timeout: 10_000 }), page.click('button.save-transcript')]);
  expect(readFileSync(await dt.path(), 'utf8')).toBe(rec.transcript);
  await page.uncheck('input[name="record"]');

  // A second conversation: a new "You said", from the STT model's first step again.
  const second = await converse();
  expect(second.tokens.slice(0, GOLD_STEPS)).toEqual(gold);
  expect(await page.textContent('.user-transcript')).toBe(second.text);
}, 420_000);
