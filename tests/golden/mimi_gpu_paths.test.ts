// The Mimi golden on the conv kernels a hardware adapter takes (issue 11, hardware-path goldens):
// the software adapters pick the direct conv kernels and a separate ELU pass (src/kernels/conv_gemm.ts,
// src/modules/conv.ts); here GpuContext.kernelChoice forces the tiled implicit-GEMM conv for every
// groups = 1 conv1d / conv-transpose and SEANet's ELU fused into the conv's input read, and the
// streaming golden of the official code (../shared/fixtures/ref: st_codes exact, st_decoded_audio
// within 5e-4) must hold. The dispatch tally proves the path ran: tiled conv dispatches, no direct
// ones, no separate ELU pass; the device default is checked to take the other path on a fallback adapter.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/index.ts';
import { MimiModel } from '../../src/models/mimi.ts';
import { assertClose, assertEqualInts } from '../../src/selftest/check.ts';
import { fixtureF32, fixtureI32, nodeFixtures } from '../harness/fixtures.ts';
import { NODE_ADAPTER, NODE_ADAPTER_MISSING, nodeContext } from '../harness/node_gpu.ts';
import { type MimiFixture, loadMimiFixture } from './mimi_helpers.ts';

const read = nodeFixtures();

/** Runs the streaming golden under `choice`; returns the dispatch tally. */
async function streamingGolden(ctx: GpuContext, fx: MimiFixture, choice: GpuContext['kernelChoice']): Promise<Map<string, number>> {
  const prev = ctx.kernelChoice;
  const tally = new Map<string, number>();
  ctx.kernelChoice = choice;
  ctx.dispatchTally = tally;
  const model = await MimiModel.load(ctx, fx.config, fx.vb(ctx));
  try {
    const pcm = await fixtureF32(read, 'ref/mimi/input_pcm_f32.f32.bin');
    const want = await fixtureI32(read, 'ref/mimi/st_codes.i32.bin');
    const F = pcm.length / 1920;
    const K = model.numCodebooks;
    const codes = new Int32Array(K * F);
    for (let t = 0; t < F; t++) {
      const c = await model.encode(pcm.subarray(t * 1920, (t + 1) * 1920));
      for (let k = 0; k < K; k++) codes[k * F + t] = c[k];
    }
    assertEqualInts('st codes', codes, want, [K, F]);
    const audio = new Float32Array(F * 1920);
    for (let t = 0; t < F; t++) audio.set(await model.decode(Int32Array.from({ length: K }, (_, k) => want[k * F + t]), 1), t * 1920);
    console.log(assertClose('st decoded audio', audio, await fixtureF32(read, 'ref/mimi/st_decoded_audio.f32.bin'), { atol: 5e-4 }).message);
  } finally {
    model.destroy();
    ctx.kernelChoice = prev;
    ctx.dispatchTally = null;
  }
  return tally;
}

const count = (tally: Map<string, number>, re: RegExp) => [...tally].reduce((n, [l, c]) => n + (re.test(l) ? c : 0), 0);

describe.skipIf(NODE_ADAPTER_MISSING)(`Mimi streaming golden on the hardware conv path (node ${NODE_ADAPTER})`, () => {
  let ctx: GpuContext;
  let fx: MimiFixture;
  beforeAll(async () => {
    ctx = await nodeContext();
    fx = await loadMimiFixture(read, 'ref');
  });
  afterAll(() => undefined);

  it('tiled conv + fused ELU forced: st_codes exact, st_decoded_audio within 5e-4; the tally shows the path', async () => {
    const tally = await streamingGolden(ctx, fx, { ...ctx.kernelChoice, convPath: 'tiled', convAct: 'fused', layerBlockThreads: 64 });
    // The transformers' layer blocks with the hardware workgroup (64 threads) too.
    expect(count(tally, /^layer_block\.(attend|ffn)\.f32\.wg64$/)).toBeGreaterThan(0);
    expect(count(tally, /^layer_block\.(attend|ffn)\.f32\.wg(?!64$)/)).toBe(0);
    const tiled = count(tally, /^conv(_transpose)?1d$/);
    const direct = count(tally, /^conv(_transpose)?1d\.direct$/);
    const elu = count(tally, /^unary\.elu$/);
    console.log(`hardware conv path: ${tiled} tiled conv dispatches, ${direct} direct, ${elu} separate ELU (${[...tally.keys()].filter((k) => k.startsWith('conv')).join(', ')})`);
    expect(tiled).toBeGreaterThan(0);
    expect(direct).toBe(0);
    expect(elu).toBe(0);
  }, 900_000);

  it('the device default on a fallback adapter takes the other path (direct conv, a separate ELU pass)', async () => {
    if (!ctx.adapter.isFallbackAdapter) return; // a hardware adapter's default is the path above
    const tally = await streamingGolden(ctx, fx, ctx.kernelChoice);
    expect(count(tally, /^conv(_transpose)?1d\.direct$/)).toBeGreaterThan(0);
    expect(count(tally, /^conv(_transpose)?1d$/)).toBe(0);
    expect(count(tally, /^unary\.elu$/)).toBeGreaterThan(0);
    expect(count(tally, /^layer_block\.(attend|ffn)\.f32\.wg4$/)).toBeGreaterThan(0);
  }, 900_000);

  it("layer blocks off: the transformers' fused matmuls (LayerNorm prologue, RoPE / GELU / residual epilogues)", async () => {
    const tally = await streamingGolden(ctx, fx, { ...ctx.kernelChoice, layerBlocks: 'off' });
    expect(count(tally, /^layer_block\./)).toBe(0);
    expect(count(tally, /^linear\.matmul\.f32\+layer_norm\+rope$/)).toBeGreaterThan(0);
  }, 900_000);
});
