// STT with Moshi (src/engine/load.ts LoadOptions.stt, src/engine/engine.ts GpuLoop.stt): one Mimi
// encode serves both LMs. The ref Moshi (../shared/fixtures/ref) and the STT fixture
// (../shared/fixtures/stt; both read 8 codebooks of the ref Mimi) over the STT fixture's speech
// (ref/mimi/input_pcm_f32, 36 frames), one 1920-sample frame per Engine.step, then
// Engine.flushStt() (Stop: the right padding through the shared encoder and the STT model only):
// - Moshi's tokens and PCM equal a Moshi-only run at every step;
// - the STT model's tokens equal the official golden (stt/stt/text_tokens [54]) at every frame, its
//   dropped first step too, its extra heads within the fixture README's 1e-4;
// - the step's GPU work: the same submits as the Moshi-only step (≤ 2 with timestamp-query), one
//   readback, the STT dispatches counted in stages.stt.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LoadedEngine, loadEngine } from '../../src/engine/load.ts';
import { EngineError, type StepResult } from '../../src/engine/engine.ts';
import type { GpuContext } from '../../src/gpu/index.ts';
import { createNodeGpuContext } from '../../src/gpu/node.ts';
import type { SttStep } from '../../src/models/stt.ts';
import type { ModelFiles } from '../../src/weights/sources.ts';
import { STT_ATOL } from './stt_golden.ts';

const ROOT = process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures');
const REF = join(ROOT, 'ref');
const STT = join(ROOT, 'stt');
const json = (f: string) => JSON.parse(readFileSync(f, 'utf8'));
const f32 = (f: string) => {
  const b = readFileSync(f);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const i32 = (f: string) => {
  const b = readFileSync(f);
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const moshiFiles = (): ModelFiles => ({
  mimiConfig: json(join(REF, 'mimi_tiny_config.json')),
  mimiWeights: new Uint8Array(readFileSync(join(REF, 'mimi_tiny.safetensors'))),
  lmConfig: json(join(REF, 'moshi_tiny_config.json')),
  lmWeights: new Uint8Array(readFileSync(join(REF, 'moshi_tiny.safetensors'))),
  tokenizer: null,
  names: {},
  origins: {},
});
const sttFiles = () => ({ lmConfig: json(join(STT, 'config.json')), lmWeights: new Uint8Array(readFileSync(join(STT, 'stt_tiny.safetensors'))), tokenizer: null, names: { lmWeights: 'stt_tiny.safetensors' } });
const sampling = { temp: 0, tempText: 0, topK: 250, topKText: 25, seed: 0 };

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpuContext();
});
afterAll(() => ctx?.destroy());

async function run(withStt: boolean): Promise<{ steps: StepResult[]; stt: SttStep[]; dropped: number | null }> {
  let loaded: LoadedEngine | null = null;
  try {
    loaded = await loadEngine(ctx, moshiFiles(), { sampling, condition: null, kvCache: 'f32', sttKvCache: 'f32', ...(withStt ? { stt: sttFiles() } : {}) });
    const pcm = f32(join(REF, 'mimi/input_pcm_f32.f32.bin'));
    const steps: StepResult[] = [];
    for (let t = 0; t * 1920 < pcm.length; t++) steps.push(await loaded.engine.step(pcm.slice(t * 1920, (t + 1) * 1920)));
    if (!withStt) {
      await expect(loaded.engine.flushStt()).rejects.toThrow(EngineError);
      return { steps, stt: [], dropped: null };
    }
    const stt = steps.map((s) => s.stt).filter((s): s is SttStep => s !== null);
    stt.push(...(await loaded.engine.flushStt()));
    await expect(loaded.engine.flushStt(), 'a second Stop is refused').rejects.toThrow(/called twice/);
    return { steps, stt, dropped: loaded.engine.sttProcedure!.droppedFirst };
  } finally {
    loaded?.dispose();
  }
}

it('Moshi + STT on one Mimi encode: Moshi as alone, STT as the official golden at every frame', async () => {
  const alone = await run(false);
  const both = await run(true);
  expect(both.steps.length).toBe(36);
  // Moshi is not disturbed by the STT model beside it.
  for (const [i, r] of both.steps.entries()) {
    const a = alone.steps[i];
    expect(r.frame?.text, `step ${i} Moshi text token`).toBe(a.frame?.text);
    expect(Array.from(r.frame?.audio ?? []), `step ${i} Moshi audio tokens`).toEqual(Array.from(a.frame?.audio ?? []));
    expect(Array.from(r.pcm), `step ${i} Moshi PCM`).toEqual(Array.from(a.pcm));
    expect(a.stt).toBeNull();
    // GPU work: the STT step rides in the LM submit and the one readback.
    const w = r.gpuWork!;
    const wa = a.gpuWork!;
    expect(w.readbacks, `step ${i} readbacks`).toBe(1);
    expect(w.submits, `step ${i} submits`).toBe(wa.submits);
    if (ctx.hasTimestamps) expect(w.submits).toBeLessThanOrEqual(2);
    expect(w.stages.stt, `step ${i} STT dispatches`).toBeGreaterThan(0);
    expect(w.stages.encode + w.stages.lm + w.stages.stt + w.stages.decode).toBe(w.dispatches);
    expect(w.dispatches - w.stages.stt, `step ${i}: the rest of the step is Moshi's own`).toBe(wa.dispatches);
  }
  expect(both.steps.some((r) => r.frame !== null)).toBe(true);
  // The STT model: the official procedure's tokens at every frame, extra heads within tolerance.
  const gold = i32(join(STT, 'stt/text_tokens.i32.bin'));
  const goldHeads = f32(join(STT, 'stt/extra_heads.f32.bin'));
  expect(both.stt.length).toBe(gold.length); // 54 = 36 frames of speech + 18 of right padding
  expect(both.dropped, 'the first frame is stepped twice, its first result dropped').toBe(i32(join(STT, 'stt/dropped_first_step.i32.bin'))[0]);
  let worst = 0;
  for (const [i, s] of both.stt.entries()) {
    expect(s.step).toBe(i);
    expect(s.inputFrame).toBe(i);
    expect(s.token, `STT frame ${i} token`).toBe(gold[i]);
    expect(s.nonFinite, `STT frame ${i} finite`).toBe(false);
    expect(s.extraHeads.length).toBe(12);
    for (let j = 0; j < 12; j++) worst = Math.max(worst, Math.abs(s.extraHeads[j] - goldHeads[i * 12 + j]));
  }
  expect(worst).toBeLessThanOrEqual(STT_ATOL);
  // Words come during the conversation, not only at Stop (the text lags 0.5 s = ~6 frames).
  expect(both.steps.filter((r) => r.stt !== null).length).toBe(36);
}, 600_000);

it('refuses an STT model that cannot share the Mimi, naming what is wrong', async () => {
  const bad = sttFiles();
  bad.lmConfig = { ...bad.lmConfig, n_q: 9, delays: new Array(10).fill(0) };
  await expect(loadEngine(ctx, moshiFiles(), { sampling, condition: null, stt: bad })).rejects.toThrow(/quantizer.n_q.*STT model reads n_q = 9/);
  const moshi = sttFiles();
  moshi.lmConfig = json(join(REF, 'moshi_tiny_config.json'));
  await expect(loadEngine(ctx, moshiFiles(), { sampling, condition: null, stt: moshi })).rejects.toThrow(/dep_q = 8: not a speech-to-text model/);
}, 120_000);

it('an STT model whose text logits overflow (finite weights of 3e38): every step reports it as a named fault beside Moshi\'s clean steps', async () => {
  const files = sttFiles();
  const w = files.lmWeights;
  const n = Number(new DataView(w.buffer, w.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(w.subarray(8, 8 + n))) as Record<string, { data_offsets: [number, number] }>;
  const [a, b] = header['text_linear.weight'].data_offsets;
  new Float32Array(w.buffer, w.byteOffset + 8 + n + a, (b - a) / 4).fill(3e38);
  const loaded = await loadEngine(ctx, moshiFiles(), { sampling, condition: null, kvCache: 'f32', sttKvCache: 'f32', stt: files });
  try {
    const pcm = f32(join(REF, 'mimi/input_pcm_f32.f32.bin'));
    for (let t = 0; t < 4; t++) {
      const r = await loaded.engine.step(pcm.slice(t * 1920, (t + 1) * 1920));
      expect(r.stt?.nonFinite, `step ${t}`).toBe(true);
      expect(r.faults.map((f) => f.message), `step ${t}`).toEqual([expect.stringMatching(new RegExp(`^step ${t}: the speech-to-text model's text logits .* caption step ${t} is not trustworthy`))]);
    }
    expect(loaded.engine.metrics.snapshot().nonFinite.textLogitSteps).toBe(4);
  } finally {
    loaded.dispose();
  }
}, 300_000);
