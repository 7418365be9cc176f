// The recording-level step's GPU work on the tiny fixture models (Node WebGPU): one readback per
// step into a reused staging buffer, two submits where the device has timestamp-query (three
// without), and the dispatch count of the fused decode step (src/kernels/linear.ts fusedMatvec,
// the attend pass's own KV write) against the unfused kernels: fewer dispatches, the same tokens,
// and the PCM within float rounding (fusion reorders f32 sums).
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeWav } from '../../src/audio/wav.ts';
import { type LoadedEngine, loadEngine } from '../../src/engine/load.ts';
import type { StepResult } from '../../src/engine/engine.ts';
import type { GpuContext } from '../../src/gpu/index.ts';
import { createNodeGpuContext } from '../../src/gpu/node.ts';
import type { ModelFiles } from '../../src/weights/sources.ts';

const DIR = join(process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures'), 'ref');
const json = (f: string) => JSON.parse(readFileSync(join(DIR, f), 'utf8'));
const files = (): ModelFiles => ({
  mimiConfig: json('mimi_tiny_config.json'),
  mimiWeights: new Uint8Array(readFileSync(join(DIR, 'mimi_tiny.safetensors'))),
  lmConfig: json('moshi_tiny_config.json'),
  lmWeights: new Uint8Array(readFileSync(join(DIR, 'moshi_tiny.safetensors'))),
  tokenizer: null,
  names: {},
  origins: {},
});
const sampling = { temp: 0, tempText: 0, topK: 250, topKText: 25, seed: 0 };
const STEPS = 6;

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpuContext();
});
afterAll(() => ctx?.destroy());

async function run(fusion: 'on' | 'off'): Promise<StepResult[]> {
  const prev = ctx.kernelChoice;
  ctx.kernelChoice = { ...prev, fusion };
  let loaded: LoadedEngine | null = null;
  try {
    loaded = await loadEngine(ctx, files(), { sampling, condition: null });
    const speech = decodeWav(readFileSync(join(DIR, 'mimi/input_speech_24k_pcm16.wav'))).samples;
    const out: StepResult[] = [];
    for (let t = 0; t < STEPS; t++) out.push(await loaded.engine.step(speech.slice(t * 1920, (t + 1) * 1920)));
    return out;
  } finally {
    loaded?.dispose();
    ctx.kernelChoice = prev;
  }
}

it('one readback and at most two submits per step; fused steps dispatch less and compute the same tokens and PCM', async () => {
  const fused = await run('on');
  const unfused = await run('off');
  const decoding = fused.filter((r) => r.frame !== null);
  expect(decoding.length).toBeGreaterThan(0); // the tiny LM's delays leave some steps without a frame
  for (const [i, r] of fused.entries()) {
    const w = r.gpuWork!;
    expect(w, `step ${i}`).not.toBeNull();
    expect(w.readbacks, `step ${i} readbacks`).toBe(1);
    const decoded = r.frame !== null;
    expect(w.submits, `step ${i} submits`).toBe(ctx.hasTimestamps ? 2 : decoded ? 3 : 2);
    expect(w.stages.encode + w.stages.lm + w.stages.stt + w.stages.decode, `step ${i} stage dispatches`).toBe(w.dispatches);
    expect(w.stages.stt, `step ${i}: no STT model, no STT dispatches`).toBe(0);
    expect(w.stages.decode > 0, `step ${i} decode dispatches`).toBe(decoded);
    expect(unfused[i].gpuWork!.dispatches, `step ${i}: fused ${w.dispatches} vs unfused dispatches`).toBeGreaterThan(w.dispatches);
    expect(unfused[i].frame?.text).toBe(r.frame?.text);
    expect(Array.from(unfused[i].frame?.audio ?? [])).toEqual(Array.from(r.frame?.audio ?? []));
  }
  // The decode step's work is the same every step once frames flow: a deterministic count.
  const counts = new Set(decoding.slice(1).map((r) => r.gpuWork!.dispatches));
  expect(counts.size).toBe(1);
  // Fusion changes only the order of f32 sums: the PCM agrees to float rounding.
  for (const [i, r] of fused.entries()) {
    const a = r.pcm;
    const b = unfused[i].pcm;
    let worst = 0;
    for (let j = 0; j < a.length; j++) worst = Math.max(worst, Math.abs(a[j] - b[j]));
    expect(worst, `step ${i} PCM`).toBeLessThan(1e-4);
  }
});
