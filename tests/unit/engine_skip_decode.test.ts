// Skipping a step's decode on the recording-level (GPU) backend: the LM's tokens are those of a
// run without skips, the skipped steps output silence, the others audio; nothing else changes.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeWav } from '../../src/audio/wav.ts';
import { type LoadedEngine, loadEngine } from '../../src/engine/load.ts';
import { FRAME_SAMPLES } from '../../src/engine/metrics.ts';
import type { GpuContext } from '../../src/gpu/index.ts';
import { createNodeGpuContext } from '../../src/gpu/node.ts';

const DIR = join(process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures'), 'ref');
let ctx: GpuContext;
let loaded: LoadedEngine;
beforeAll(async () => {
  ctx = await createNodeGpuContext();
  const json = (f: string) => JSON.parse(readFileSync(join(DIR, f), 'utf8'));
  loaded = await loadEngine(ctx, {
    mimiConfig: json('mimi_tiny_config.json'), mimiWeights: new Uint8Array(readFileSync(join(DIR, 'mimi_tiny.safetensors'))),
    lmConfig: json('moshi_tiny_config.json'), lmWeights: new Uint8Array(readFileSync(join(DIR, 'moshi_tiny.safetensors'))),
    tokenizer: null, names: {}, origins: {},
  }, { sampling: { temp: 0, tempText: 0, topK: 250, topKText: 25, seed: 0 }, condition: null });
});
afterAll(() => {
  loaded?.dispose();
  ctx?.destroy();
});

it('GPU backend: skipped decodes give silence and leave the token stream unchanged', async () => {
  const engine = loaded.engine;
  expect(engine.mode).toBe('gpu');
  const speech = decodeWav(readFileSync(join(DIR, 'mimi/input_speech_24k_pcm16.wav'))).samples;
  const frame = (t: number) => speech.subarray(t * FRAME_SAMPLES, (t + 1) * FRAME_SAMPLES);
  const N = 8;
  const run = async (skip: Set<number>) => {
    engine.reset();
    const out = [];
    for (let t = 0; t < N; t++) out.push(await engine.step(frame(t), { skipDecode: skip.has(t) }));
    return out;
  };
  const plain = await run(new Set());
  const skipped = await run(new Set([2, 3]));
  for (let t = 0; t < N; t++) {
    expect(skipped[t].frame?.text ?? null, `step ${t}`).toBe(plain[t].frame?.text ?? null);
    expect(skipped[t].frame?.audio ?? null, `step ${t}`).toEqual(plain[t].frame?.audio ?? null);
  }
  expect(skipped.map((r) => r.decodeSkipped)).toEqual([false, false, true, true, false, false, false, false]);
  for (const t of [2, 3]) expect(skipped[t].pcm.every((v) => v === 0)).toBe(true);
  expect(plain[2].pcm.some((v) => v !== 0)).toBe(true);
  expect(skipped[5].pcm.some((v) => v !== 0)).toBe(true);
  expect(engine.metrics.snapshot().skippedDecodes).toBe(2);
  // The per-step finiteness checks (logits on the GPU, decoded PCM) ran and found nothing.
  for (const r of [...plain, ...skipped]) expect(r.faults).toEqual([]);
  expect(engine.metrics.snapshot().nonFinite).toEqual({ inputFrames: 0, inputSamples: 0, textLogitSteps: 0, audioLogitSteps: 0, outputFrames: 0, outputSamples: 0 });
}, 300_000);
