import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GpuContext, roundThrough } from '../../src/gpu/index.ts';
import { MimiModel } from '../../src/models/mimi.ts';
import { entryToF32, type TensorEntry } from '../../src/weights/safetensors.ts';
import { hostToEntry, VarBuilder } from '../../src/weights/var_builder.ts';
import { assertClose, assertEqualInts } from '../../src/selftest/check.ts';
import { fixtureF32, nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { loadMimiFixture, type MimiFixture } from '../golden/mimi_helpers.ts';

// Checkpoints in F16 / BF16 load like F32 ones: a half checkpoint (transformer matrices kept packed
// with policy 'native') gives the same codes and audio as an F32 checkpoint holding the same
// (half-rounded) values.
const read = nodeFixtures();

for (const dtype of ['BF16', 'F16'] as const) {
  describe(`Mimi from a ${dtype} checkpoint`, () => {
    let ctx: GpuContext;
    let fx: MimiFixture;
    const models: MimiModel[] = [];
    beforeAll(async () => {
      ctx = await nodeContext();
      fx = await loadMimiFixture(read, 'ref');
    }, 300_000);
    afterAll(() => models.forEach((m) => m.destroy()));

    it('encodeAll / decodeAll equal those of the F32 checkpoint with the same rounded values', async () => {
      const half = new Map<string, TensorEntry>();
      const rounded = new Map<string, TensorEntry>();
      for (const [k, e] of fx.file.tensors) {
        const v = entryToF32(e);
        half.set(k, hostToEntry(k, v, e.shape, dtype));
        rounded.set(k, hostToEntry(k, roundThrough(v, dtype === 'F16' ? 'f16' : 'bf16'), e.shape, 'F32'));
      }
      const a = await MimiModel.load(ctx, fx.config, VarBuilder.fromEntries(ctx, half, `${dtype} copy`), { policy: 'native' });
      models.push(a);
      const b = await MimiModel.load(ctx, fx.config, VarBuilder.fromEntries(ctx, rounded, 'f32 copy'));
      models.push(b);
      const pcm = (await fixtureF32(read, 'ref/mimi/input_pcm_f32.f32.bin')).subarray(0, 1920 * 6);
      const ca = await a.encodeAll(pcm);
      const cb = await b.encodeAll(pcm);
      assertEqualInts(`${dtype} vs f32 codes`, ca, cb, [a.numCodebooks, 6]);
      const pa = await a.decodeAll(ca, 6);
      const pb = await b.decodeAll(ca, 6);
      expect(pa.length).toBe(6 * 1920);
      assertClose(`${dtype} vs f32 audio`, pa, pb, { atol: 1e-5 });
    }, 600_000);
  });
}
