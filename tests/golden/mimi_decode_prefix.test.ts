import { describe, expect, it } from 'vitest';
import { MimiInputError, MimiModel } from '../../src/models/mimi.ts';
import { fixtureI32, nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { loadMimiFixture } from './mimi_helpers.ts';

// Decoding fewer codebooks than the Mimi holds (Moshi's dep_q audio tokens through a Mimi loaded
// with the STT model's 32 codebooks): as the official SplitResidualVectorQuantizer.decode, the codes
// given decide the codebooks summed. On the ref Mimi (8 codebooks): the first 4 rows of the official
// st_codes decoded by the 8-codebook Mimi with codebooks = 4 equal the decode of a Mimi loaded with
// num_codebooks = 4, and differ from the 8-codebook decode (so the test sees a wrong count).
describe('Mimi decode of a codebook prefix', () => {
  it('4 codes through the 8-codebook Mimi = the 4-codebook Mimi, ≠ 8 codes', async () => {
    const ctx = await nodeContext();
    const read = nodeFixtures();
    const fix = await loadMimiFixture(read, 'ref');
    const codes = await fixtureI32(read, 'ref/mimi/st_codes.i32.bin'); // [8, F]
    const F = codes.length / 8;
    const first4 = codes.slice(0, 4 * F);
    const decode = async (loaded: number, given: number, c: Int32Array): Promise<Float32Array> => {
      const mimi = await MimiModel.load(ctx, { ...fix.config, num_codebooks: loaded }, fix.vb(ctx));
      try {
        return await mimi.decode(c, F, given); // streaming, from a fresh state
      } finally {
        mimi.destroy();
      }
    };
    const via8 = await decode(8, 4, first4);
    const via4 = await decode(4, 4, first4);
    const all8 = await decode(8, 8, codes);
    expect(via8.length).toBe(F * 1920);
    let maxDiff = 0;
    for (let i = 0; i < via8.length; i++) maxDiff = Math.max(maxDiff, Math.abs(via8[i] - via4[i]));
    expect(maxDiff).toBeLessThanOrEqual(1e-6);
    let diff8 = 0;
    for (let i = 0; i < via8.length; i++) diff8 = Math.max(diff8, Math.abs(via8[i] - all8[i]));
    expect(diff8).toBeGreaterThan(1e-3);
    // A count the Mimi does not hold is refused, naming it.
    const mimi = await MimiModel.load(ctx, { ...fix.config, num_codebooks: 4 }, fix.vb(ctx));
    try {
      await expect(mimi.decode(codes, F, 8)).rejects.toThrow(MimiInputError);
      await expect(mimi.decode(codes, F, 8)).rejects.toThrow(/8 codebooks asked, this Mimi was loaded with num_codebooks = 4/);
    } finally {
      mimi.destroy();
    }
  }, 600_000);
});
