// The official checkpoint layouts, not only the tiny fixtures:
// - the tiny golden checkpoints have exactly the key structure of the released Mimi and Moshi 7B
//   checkpoints (../shared/fixtures/ref/{mimi,moshi7b}_keys_full.json) up to layer counts, so the
//   golden tests (which load every key of the tiny files and fail on any unused one) load the real
//   key names 1:1;
// - the released Mimi at its real size loads from its full key list (every key, every shape) with
//   MIMI_RELEASED_CONFIG, and streams one frame each way.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/index.ts';
import { createNodeGpuContext } from '../../src/gpu/node.ts';
import { MimiModel } from '../../src/models/mimi.ts';
import { MIMI_RELEASED_CONFIG } from '../../src/models/mimi_config.ts';
import { SafetensorsFile, type TensorEntry } from '../../src/weights/safetensors.ts';
import { hostToEntry, VarBuilder } from '../../src/weights/var_builder.ts';

const FIX = process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures');
type Key = { name: string; shape: number[] };
const fullKeys = (f: string): Key[] => (JSON.parse(readFileSync(join(FIX, 'ref', f), 'utf8')) as { checkpoint_layout_keys: Key[] }).checkpoint_layout_keys;
const tinyKeys = (set: string, f: string) => [...SafetensorsFile.parse(new Uint8Array(readFileSync(join(FIX, set, f))), f).tensors.keys()];
/** Key structure: layer and codebook indices folded (layers.3.x -> layers.N.x). */
const structure = (names: Iterable<string>) => [...new Set([...names].map((k) => k.replace(/\.layers\.\d+\./g, '.layers.N.')))].sort();

it('tiny Mimi checkpoints (ref, ref2b) have the released Mimi key structure', () => {
  const want = structure(fullKeys('mimi_keys_full.json').map((k) => k.name));
  expect(want.length).toBeGreaterThan(50);
  for (const set of ['ref', 'ref2b']) expect(structure(tinyKeys(set, 'mimi_tiny.safetensors')), set).toEqual(want);
});

it('the tiny 7B-shaped LM checkpoint (ref) has the Moshi 7B key structure', () => {
  const want = structure(fullKeys('moshi7b_keys_full.json').map((k) => k.name));
  expect(want.length).toBeGreaterThan(40);
  expect(structure(tinyKeys('ref', 'moshi_tiny.safetensors'))).toEqual(want);
});

let ctx: GpuContext;
beforeAll(async () => {
  ctx = await createNodeGpuContext();
});
afterAll(() => ctx?.destroy());

it('the released Mimi loads at real size from its full key list and streams a frame each way', async () => {
  const keys = fullKeys('mimi_keys_full.json');
  // Small deterministic weights (the shapes are the point); codebook usage 1 so centroids = sums.
  const entries = new Map<string, TensorEntry>();
  let values = 0;
  for (const { name, shape } of keys) {
    const n = shape.reduce((a, b) => a * b, 1);
    values += n;
    const v = new Float32Array(n);
    if (name.endsWith('cluster_usage') || name.endsWith('_initialized')) v.fill(1);
    else for (let i = 0; i < n; i++) v[i] = (((i * 2654435761) >>> 0) / 2 ** 32 - 0.5) * 0.02;
    entries.set(name, hostToEntry(name, v, shape, 'F32'));
  }
  expect(values).toBe(96_151_393);
  const model = await MimiModel.load(ctx, MIMI_RELEASED_CONFIG, VarBuilder.fromEntries(ctx, entries, 'mimi_keys_full.json'));
  try {
    expect(model.frameSize).toBe(1920);
    const pcm = Float32Array.from({ length: 1920 }, (_, i) => 0.3 * Math.sin(i / 7));
    const codes = await model.encode(pcm);
    expect(codes.length).toBe(MIMI_RELEASED_CONFIG.num_codebooks);
    for (const c of codes) expect(c >= 0 && c < MIMI_RELEASED_CONFIG.quantizer.bins).toBe(true);
    const out = await model.decode(codes, 1);
    expect(out.length).toBe(1920);
    expect(out.every(Number.isFinite)).toBe(true);
  } finally {
    model.destroy();
  }
}, 300_000);
