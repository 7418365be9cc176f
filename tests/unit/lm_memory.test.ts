// The GPU memory computed from a config before loading equals what the loaded model holds, for
// every published layout (tiny fixtures), and gives the released 7B's sizes.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LMModel } from '../../src/models/lm.ts';
import { MOSHI_7B_CONFIG, parseLmConfig } from '../../src/models/lm_config.ts';
import { type LmStorage, lmKvCacheBytes, lmMatrices, lmWeightBytes } from '../../src/models/lm_memory.ts';
import { SafetensorsFile } from '../../src/weights/safetensors.ts';
import { VarBuilder } from '../../src/weights/var_builder.ts';
import { nodeContext } from '../harness/node_gpu.ts';

const FIX = process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures');
const cfg = parseLmConfig(JSON.parse(readFileSync(resolve(FIX, 'quant/lm_config.json'), 'utf8')), 'quant/lm_config.json');

const FILES: [string, LmStorage][] = [
  ['lm_f32.safetensors', { kind: 'f32' }],
  ['model.bf16.safetensors', { kind: 'bf16' }],
  ['model.q8.safetensors', { kind: 'q8' }],
  ['model.q4.safetensors', { kind: 'affine', bits: 4, groupSize: 32 }],
  ['model.q8.mlx.safetensors', { kind: 'affine', bits: 8, groupSize: 64 }],
];

describe('LM GPU memory from the config', () => {
  for (const [file, storage] of FILES) {
    it(`${file}: weights and KV cache equal the loaded model's`, async () => {
      const ctx = await nodeContext();
      const st = SafetensorsFile.parse(readFileSync(resolve(FIX, 'quant', file)), file);
      for (const kv of ['f32', 'f16'] as const) {
        const lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), cfg, { kvCache: kv });
        try {
          expect(lm.weightBytes).toBe(lmWeightBytes(cfg, storage));
          expect(lm.kvCacheBytes).toBe(lmKvCacheBytes(cfg, kv));
        } finally {
          lm.destroy();
        }
      }
    });
  }

  it('Moshi 7B: 7,687,729,152 parameters (the official count); bf16 15.4 GB, q8 7.7 GB, MLX q4 4.3 (g64) to 4.8 GB (g32)', () => {
    const { matrices, vectors } = lmMatrices(MOSHI_7B_CONFIG);
    expect(matrices.reduce((a, m) => a + m.rows * m.cols, 0) + vectors).toBe(7_687_729_152);
    const gb = (s: LmStorage) => lmWeightBytes(MOSHI_7B_CONFIG, s) / 1e9;
    expect(gb({ kind: 'bf16' })).toBeCloseTo(15.38, 1);
    expect(gb({ kind: 'q8' })).toBeGreaterThan(7.5);
    expect(gb({ kind: 'q8' })).toBeLessThan(8.5);
    // 4 bits + a bf16 scale and bias per group: 0.625 bytes per weight at g32, 0.5625 at g64.
    expect(gb({ kind: 'affine', bits: 4, groupSize: 32 })).toBeCloseTo(4.81, 1);
    expect(gb({ kind: 'affine', bits: 4, groupSize: 64 })).toBeCloseTo(4.33, 1);
    expect(gb({ kind: 'affine', bits: 8, groupSize: 64 })).toBeCloseTo(8.17, 1);
    // KV cache over the 3000-step context: 32 layers × 2 × 3000 × 4096 halves ≈ 1.6 GB.
    expect(lmKvCacheBytes(MOSHI_7B_CONFIG, 'f16') / 1e9).toBeCloseTo(1.58, 1);
  });
});
