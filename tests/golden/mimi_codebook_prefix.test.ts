import { describe, expect, it } from 'vitest';
import { MimiModel } from '../../src/models/mimi.ts';
import { assertEqualInts } from '../../src/selftest/check.ts';
import { fixtureF32, fixtureI32, nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { loadMimiFixture } from './mimi_helpers.ts';

// The Moshi + STT sharing claim: Mimi's codes come from a residual (split) vector quantizer, where
// codebook k quantizes what codebooks 0..k-1 left, so the first n codes of an encode with more
// codebooks equal an encode with n codebooks. One encoder set to 32 codebooks (kyutai/stt-1b-en_fr's
// n_q) therefore also gives Moshi's 8. Shown on the ref Mimi (quantizer.n_q 8): its 8-codebook
// streaming encode (checked against the official st_codes) against encodes with 1, 2, 4 and 7 codebooks.
describe('Mimi codebook prefix (residual quantization)', () => {
  it('the first n codes of the 8-codebook encode equal the n-codebook encode, n = 1, 2, 4, 7', async () => {
    const ctx = await nodeContext();
    const read = nodeFixtures();
    const fix = await loadMimiFixture(read, 'ref');
    const pcm = await fixtureF32(read, 'ref/mimi/input_pcm_f32.f32.bin');
    const F = pcm.length / 1920;
    const encode = async (n: number): Promise<Int32Array> => {
      const mimi = await MimiModel.load(ctx, { ...fix.config, num_codebooks: n }, fix.vb(ctx));
      try {
        expect(mimi.numCodebooks).toBe(n);
        return await mimi.encode(pcm); // streaming, from a fresh state: codes [n, F]
      } finally {
        mimi.destroy();
      }
    };
    const full = await encode(8);
    assertEqualInts('8-codebook streaming encode vs official st_codes', full, await fixtureI32(read, 'ref/mimi/st_codes.i32.bin'), [8, F]);
    for (const n of [1, 2, 4, 7]) {
      const part = await encode(n);
      expect(part.length).toBe(n * F);
      assertEqualInts(`first ${n} of 8 codebooks vs the ${n}-codebook encode`, full.subarray(0, n * F), part, [n, F]);
    }
    // The later codebooks do carry information (the prefix is not trivially equal to everything).
    expect(Array.from(full.subarray(7 * F)).some((c, t) => c !== full[t])).toBe(true);
  }, 600_000);
});
