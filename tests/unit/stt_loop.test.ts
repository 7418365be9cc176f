// The engine Worker's speech-to-text path in Node (WebGPU through Dawn): loadStt builds the tiny
// STT model of ../shared/fixtures/stt from model bytes as the Worker does (and refuses what does
// not fit, naming it), and SttLoop runs it over a frame source: a played file ends by itself with
// the golden tokens; Stop flushes the right padding (18 frames); bad samples are zeroed and counted.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FrameSource } from '../../src/engine/driver.ts';
import { ArrayFrameSource } from '../../src/engine/driver.ts';
import { ModelMismatchError } from '../../src/engine/load.ts';
import { type LoadedStt, loadStt } from '../../src/engine/load_stt.ts';
import { SttLoop } from '../../src/engine/stt_loop.ts';
import type { GpuContext } from '../../src/gpu/index.ts';
import type { SttStep } from '../../src/models/stt.ts';
import type { ModelFiles } from '../../src/weights/sources.ts';
import { FIXTURES_DIR, ROOT } from '../harness/browser.ts';
import { nodeContext } from '../harness/node_gpu.ts';

const fx = (p: string) => new Uint8Array(readFileSync(resolve(FIXTURES_DIR, p)));
const json = (p: string) => JSON.parse(readFileSync(resolve(FIXTURES_DIR, p), 'utf8')) as Record<string, unknown>;
const files = (over: Partial<ModelFiles> = {}): ModelFiles => ({
  mimiWeights: fx('ref/mimi_tiny.safetensors'),
  lmWeights: fx('stt/stt_tiny.safetensors'),
  mimiConfig: json('ref/mimi_tiny_config.json'),
  lmConfig: json('stt/config.json'),
  tokenizer: new Uint8Array(readFileSync(resolve(ROOT, 'tests/fixtures/spm/tiny_unigram.model'))),
  names: { lmConfig: 'config.json', lmWeights: 'stt_tiny.safetensors', mimiWeights: 'mimi_tiny.safetensors', tokenizer: 'tiny_unigram.model' },
  origins: {},
  ...over,
});
const i32 = (p: string) => {
  const b = fx(p);
  return Array.from(new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4));
};

let ctx: GpuContext;
let stt: LoadedStt;
let pcm: Float32Array;
let gold: number[];

beforeAll(async () => {
  ctx = await nodeContext();
  stt = await loadStt(ctx, files());
  const b = fx('ref/mimi/input_pcm_f32.f32.bin');
  pcm = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  gold = i32('stt/stt/text_tokens.i32.bin');
}, 300_000);
afterAll(() => stt?.dispose());

/** Frames of `pcm`, then nothing (a live source that never ends); counts the frames pulled. */
class LiveSource implements FrameSource {
  readonly ended = false;
  pulled = 0;
  constructor(private readonly pcm: Float32Array) {}
  pull(out: Float32Array): boolean {
    if ((this.pulled + 1) * 1920 > this.pcm.length) return false;
    out.set(this.pcm.subarray(this.pulled * 1920, (this.pulled + 1) * 1920));
    this.pulled++;
    return true;
  }
  async wait(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, Math.min(ms, 5)));
  }
  queued(): number {
    return 0;
  }
}

describe('loadStt', () => {
  it('builds the STT model, its Mimi at n_q codebooks, the tokenizer; the info the page needs', () => {
    expect(stt.kind).toBe('stt');
    expect(stt.mimi.numCodebooks).toBe(8);
    expect(stt.gen.tempText).toBe(0);
    expect(stt.info.depQ).toBe(0);
    expect(stt.info.hasTokenizer).toBe(true);
    expect(stt.info.stt).toEqual({ numHeads: 2, headDim: 6, audioDelaySeconds: 0.5, audioSilencePrefixSeconds: 0, frameSeconds: 0.08, endOfPaddingId: 0 });
    expect(stt.info.summary).toMatch(/^speech-to-text: Mimi \(8 codebooks\) \+ STT model dim 64 × 2 layers, text lags 0\.5 s, 2 extra heads, tokenizer; greedy$/);
  });

  it('refuses what is not an STT model or does not fit it, naming the file', async () => {
    await expect(loadStt(ctx, files({ lmConfig: null }))).rejects.toThrow(ModelMismatchError);
    await expect(loadStt(ctx, files({ lmConfig: null }))).rejects.toThrow(/needs its config\.json \(model_type "stt", stt_config\): none was given with stt_tiny\.safetensors/);
    await expect(loadStt(ctx, files({ lmConfig: json('ref/moshi_tiny_config.json') }))).rejects.toThrow(/config\.json has dep_q = \d+.*not a speech-to-text model/);
    const mc = json('ref/mimi_tiny_config.json') as { num_codebooks: number; mimi_config: { quantizer: { n_q: number } } };
    mc.mimi_config.quantizer.n_q = 4;
    mc.num_codebooks = 4;
    await expect(loadStt(ctx, files({ mimiConfig: mc }))).rejects.toThrow(/the Mimi has 4 codebooks \(quantizer\.n_q\), the STT model reads n_q = 8/);
    const before = ctx.liveBytes;
    await expect(loadStt(ctx, files({ lmWeights: fx('ref/moshi_tiny.safetensors') }))).rejects.toThrow();
    expect(ctx.liveBytes, 'a failed load leaves nothing on the GPU').toBe(before);
  }, 120_000);
});

describe('SttLoop', () => {
  it('a played file (endAfterSamples): the golden tokens, then it ends by itself', async () => {
    const steps: SttStep[] = [];
    let end: [string, number] | null = null;
    const loop = new SttLoop(stt.stream, new ArrayFrameSource(pcm), stt.metrics, { onStep: (s) => steps.push(s), onEnd: (r, n) => (end = [r, n]) });
    await loop.run(pcm.length);
    expect(steps.map((s) => s.token)).toEqual(gold);
    expect(end).toEqual(['file-ended', 54]);
    expect(stt.metrics.steps).toBe(54);
    expect(stt.metrics.textTokens).toBe(54); // no padding id in this transcript
  }, 120_000);

  it('Stop on a live source: the frames so far, then 18 frames of right padding (the last words)', async () => {
    const src = new LiveSource(pcm);
    const steps: SttStep[] = [];
    let end: [string, number] | null = null;
    const loop = new SttLoop(stt.stream, src, stt.metrics, { onStep: (s) => steps.push(s), onEnd: (r, n) => (end = [r, n]) });
    const run = loop.run();
    while (steps.length < 10) await new Promise((r) => setTimeout(r, 5));
    expect(loop.isRunning).toBe(true);
    await expect(loop.run()).rejects.toThrow(/SttLoop\.run: already running/);
    loop.stop();
    await run;
    expect(loop.isRunning).toBe(false);
    const live = src.pulled;
    expect(live).toBeGreaterThanOrEqual(10);
    expect(end).toEqual(['stopped', live + 18]);
    // The speech frames give the golden tokens (the padding after Stop differs from the golden's only when Stop came before the speech ended).
    expect(steps.slice(0, live).map((s) => s.token)).toEqual(gold.slice(0, live));
    await expect(loop.run(-1)).rejects.toThrow(/endAfterSamples must be an integer >= 0/);
  }, 120_000);

  it('bad input samples are zeroed before the Mimi and counted', async () => {
    const bad = pcm.slice(0, 1920 * 3);
    bad[5] = Number.NaN;
    bad[1920 + 7] = 1e9;
    let warned = 0;
    const loop = new SttLoop(stt.stream, new ArrayFrameSource(bad), stt.metrics, { onBadInput: (n) => (warned += n) });
    await loop.run(bad.length);
    expect(warned).toBe(2);
    expect(stt.metrics.nonFinite.inputSamples).toBe(2);
    expect(stt.metrics.nonFinite.inputFrames).toBe(2);
  }, 120_000);
});
