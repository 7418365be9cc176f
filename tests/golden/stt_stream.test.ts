// The live STT transcriber (src/models/stt.ts SttStream) against the official procedure's golden
// (../shared/fixtures/stt, moshi/run_inference.py model_type "stt"): the fixture speech fed one
// 1920-sample frame at a time as a microphone delivers it, then flush() (the right padding) on Stop.
// Every frame's token must equal the golden token of that frame, every step's extra heads within
// 1e-4, the dropped first step too; other chunk sizes give the same steps; misuse is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/index.ts';
import { LMModel } from '../../src/models/lm.ts';
import { LMGen } from '../../src/models/lm_gen.ts';
import { parseLmConfig, type LmConfig } from '../../src/models/lm_config.ts';
import { MimiModel } from '../../src/models/mimi.ts';
import { SttError, SttStream, type SttStep, transcribe } from '../../src/models/stt.ts';
import { SafetensorsFile } from '../../src/weights/safetensors.ts';
import { VarBuilder } from '../../src/weights/var_builder.ts';
import { fixtureF32, fixtureI32, fixtureJson, nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { loadMimiFixture } from './mimi_helpers.ts';
import { STT_ATOL } from './stt_golden.ts';

const read = nodeFixtures();
let ctx: GpuContext;
let cfg: LmConfig;
let mimi: MimiModel;
let lm: LMModel;
let gen: LMGen;
let pcm: Float32Array;
let goldTokens: Int32Array;
let goldHeads: Float32Array;
let goldDropped: number;

beforeAll(async () => {
  ctx = await nodeContext();
  cfg = parseLmConfig(await fixtureJson(read, 'stt/config.json'), 'stt/config.json');
  const m = await loadMimiFixture(read, 'ref');
  mimi = await MimiModel.load(ctx, m.config, m.vb(ctx));
  lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [SafetensorsFile.parse(await read('stt/stt_tiny.safetensors'), 'stt')]), cfg, { kvCache: 'f32' });
  gen = new LMGen(lm, { seed: 1 }); // greedy: the config's lm_gen_config (temp 0)
  pcm = await fixtureF32(read, 'ref/mimi/input_pcm_f32.f32.bin');
  goldTokens = await fixtureI32(read, 'stt/stt/text_tokens.i32.bin');
  goldHeads = await fixtureF32(read, 'stt/stt/extra_heads.f32.bin');
  goldDropped = (await fixtureI32(read, 'stt/stt/dropped_first_step.i32.bin'))[0];
}, 300_000);
afterAll(() => {
  gen?.destroy();
  lm?.destroy();
  mimi?.destroy();
});

const HD = 2 * 6; // extra heads [2, 6] per step

/** Max |Δ| of one step's extra heads against golden step `i`. */
function headErr(s: SttStep, i: number): number {
  let m = 0;
  for (let j = 0; j < HD; j++) m = Math.max(m, Math.abs(s.extraHeads[j] - goldHeads[i * HD + j]));
  return m;
}

describe('SttStream (live STT) == the official procedure', () => {
  it('one 1920-sample frame at a time, then flush(): the golden token at every frame, extra heads within 1e-4', async () => {
    expect(gen.tempText).toBe(0);
    const stream = new SttStream(mimi, gen);
    expect(stream.procedure.numHeads * stream.procedure.headDim).toBe(HD);
    const F = goldTokens.length; // 54 = 36 speech frames + 18 frames of the right padding
    const speechFrames = pcm.length / 1920;
    expect(speechFrames).toBe(36);
    const steps: SttStep[] = [];
    let maxErr = 0;
    for (let t = 0; t < speechFrames; t++) {
      const got = await stream.push(pcm.subarray(t * 1920, (t + 1) * 1920));
      // Delays 0: each frame gives its step at once (the text lag is in the training, not in steps).
      expect(got.length, `frame ${t}`).toBe(1);
      const s = got[0];
      expect([s.step, s.inputFrame, s.frame], `frame ${t}`).toEqual([t, t, t]);
      expect(s.token, `frame ${t}: token`).toBe(goldTokens[t]);
      maxErr = Math.max(maxErr, headErr(s, t));
      steps.push(s);
      if (t === 0) expect(stream.droppedFirst, 'the first frame goes to LMGen twice, its first result is dropped').toBe(goldDropped);
    }
    const tail = await stream.flush();
    // audio_delay_seconds + 1 = 1.5 s = 36000 zeros = 18 whole frames (480 samples dropped).
    expect(tail.length).toBe(F - speechFrames);
    tail.forEach((s, i) => {
      expect(s.token, `padding frame ${speechFrames + i}: token`).toBe(goldTokens[speechFrames + i]);
      maxErr = Math.max(maxErr, headErr(s, speechFrames + i));
    });
    steps.push(...tail);
    console.log(`[stt stream] ${steps.length} steps frame by frame; max |Δ| extra heads ${maxErr.toExponential(2)}`);
    expect(maxErr).toBeLessThanOrEqual(STT_ATOL);
    expect(stream.framesIn).toBe(F);
    // The times: frame × 80 ms − audio_delay_seconds (0.5), clamped at 0.
    expect(steps[10].time).toBeCloseTo(10 * 0.08 - 0.5, 9);
    expect(steps[3].time).toBe(0);
    // Ended: more input or a second flush is refused until reset().
    await expect(stream.push(new Float32Array(1920))).rejects.toThrow(/push after flush\(\).*reset\(\)/);
    await expect(stream.flush()).rejects.toThrow(/flush called twice/);
  }, 300_000);

  it('odd chunk sizes (1000 samples, the whole input) give the same steps; transcribe() is push + flush', async () => {
    const stream = new SttStream(mimi, gen);
    const a: SttStep[] = [];
    for (let i = 0; i < pcm.length; i += 1000) a.push(...(await stream.push(pcm.subarray(i, Math.min(i + 1000, pcm.length)))));
    a.push(...(await stream.flush()));
    expect(Array.from(a, (s) => s.token)).toEqual(Array.from(goldTokens));
    stream.reset();
    const b = [...(await stream.push(pcm)), ...(await stream.flush())];
    expect(Array.from(b, (s) => s.token)).toEqual(Array.from(goldTokens));
    b.forEach((s, i) => expect(headErr(s, i), `step ${i}`).toBeLessThanOrEqual(STT_ATOL));
    const r = await transcribe(mimi, gen, pcm);
    expect(Array.from(r.tokens)).toEqual(Array.from(goldTokens));
    expect(r.droppedFirst).toBe(goldDropped);
  }, 300_000);

  it('a silence prefix is prepended before the first sample (frames shift, times subtract it)', async () => {
    const stt = { audioDelaySeconds: 0.5, audioSilencePrefixSeconds: 0.12 }; // 2880 samples: 1.5 frames
    const stream = new SttStream(mimi, gen, { stt });
    const got = await stream.push(new Float32Array(1000));
    expect(got.length).toBe(2); // 2880 + 1000 = 3880 samples: two whole frames
    expect(stream.procedure.offsetSeconds).toBeCloseTo(0.62, 9);
    const rest = await stream.flush();
    expect(stream.framesIn).toBe(Math.floor((2880 + 1000 + 36000) / 1920));
    expect(got.length + rest.length).toBe(stream.framesIn);
  }, 300_000);

  it('refuses bad input and models that cannot transcribe, naming what is wrong', async () => {
    const stream = new SttStream(mimi, gen);
    const bad = new Float32Array(1920);
    bad[7] = Number.NaN;
    await expect(stream.push(bad)).rejects.toThrow(/sample 7 of 1920 is NaN/);
    expect(() => new SttStream(mimi, gen, { stt: { audioDelaySeconds: -1, audioSilencePrefixSeconds: 0 } })).toThrow(/audio_delay_seconds must be a finite number of seconds >= 0, got -1/);
    // A Moshi-like LM (dep_q > 0) is not a speech-to-text model.
    const fake = { lm: { cfg: { ...cfg, depQ: 8 }, numExtraHeads: 0 } } as unknown as LMGen;
    expect(() => new SttStream(mimi, fake)).toThrow(SttError);
    expect(() => new SttStream(mimi, fake)).toThrow(/dep_q = 8.*not a speech-to-text model/);
    const wide = { lm: { cfg: { ...cfg, nQ: 32 }, numExtraHeads: 2 } } as unknown as LMGen;
    expect(() => new SttStream(mimi, wide)).toThrow(/the Mimi emits 8 codebooks, the STT model reads n_q = 32/);
  }, 300_000);
});

/** The STT fixture's weights with every value of `key` (F32) set to `value`: finite, so the loader accepts it. */
async function withTensorFilled(key: string, value: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(await read('stt/stt_tiny.safetensors'));
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const t = header[key];
  if (t?.dtype !== 'F32') throw new Error(`stt_tiny.safetensors: ${key} is not an F32 tensor`);
  new Float32Array(bytes.buffer, bytes.byteOffset + 8 + n + t.data_offsets[0], (t.data_offsets[1] - t.data_offsets[0]) / 4).fill(value);
  return bytes;
}

describe('SttStream finiteness', () => {
  it('finite but overflowing weights (text logits ±inf / NaN) mark every step nonFinite; transcribe() lists them; the fixture model marks none', async () => {
    const clean = await transcribe(mimi, gen, pcm);
    expect(clean.nonFiniteSteps).toEqual([]);
    const bad = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [SafetensorsFile.parse(await withTensorFilled('text_linear.weight', 3e38), 'stt-overflow')]), cfg, { kvCache: 'f32' });
    const badGen = new LMGen(bad, { seed: 1 });
    try {
      const r = await transcribe(mimi, badGen, pcm);
      expect(r.nonFiniteSteps).toEqual(Array.from(r.tokens, (_, i) => i));
    } finally {
      badGen.destroy();
      bad.destroy();
    }
  }, 300_000);
});
