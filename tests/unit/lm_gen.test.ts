import { describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/index.ts';
import { LMModel } from '../../src/models/lm.ts';
import { type LMGenTrace, LMGen, LMGEN_DEFAULTS } from '../../src/models/lm_gen.ts';
import { parseLmConfig } from '../../src/models/lm_config.ts';
import { SafetensorsFile } from '../../src/weights/safetensors.ts';
import { VarBuilder, WeightError } from '../../src/weights/var_builder.ts';
import { fixtureI32, fixtureJson, nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { topKSet } from '../kernels/sample.cases.ts';

const read = nodeFixtures();

async function loadTiny(ctx: GpuContext, set: 'ref' | 'ref2b' = 'ref') {
  const cfg = parseLmConfig(await fixtureJson(read, `${set}/moshi_tiny_config.json`), set);
  const st = SafetensorsFile.parse(await read(`${set}/moshi_tiny.safetensors`), `${set}/moshi_tiny.safetensors`);
  return { cfg, st, lm: await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), cfg) };
}

async function run(gen: LMGen, user: Int32Array, steps: number, nUser: number) {
  const out: (number[] | null)[] = [];
  for (let t = 0; t < steps; t++) {
    const r = await gen.step(user.subarray(t * nUser, (t + 1) * nUser));
    out.push(r && [r.text, ...r.audio]);
  }
  return out;
}

describe('LMGen (tiny ref LM)', () => {
  it('uses the official sampling defaults', async () => {
    const ctx = await nodeContext();
    const { lm } = await loadTiny(ctx);
    const gen = new LMGen(lm);
    expect({ temp: gen.temp, tempText: gen.tempText, topK: gen.topK, topKText: gen.topKText }).toEqual(LMGEN_DEFAULTS);
    gen.destroy();
    lm.destroy();
  });

  it('rejects wrong lengths, out-of-range codes, bad options and conditions', async () => {
    const ctx = await nodeContext();
    const { lm } = await loadTiny(ctx);
    const gen = new LMGen(lm, { temp: 0, tempText: 0 });
    await expect(gen.step(new Int32Array(7))).rejects.toThrow(/expected 8 user codes \(n_q - dep_q\), got 7/);
    await expect(gen.step(Int32Array.from([0, 1, 2, 64, 0, 0, 0, 0]))).rejects.toThrow(/user code 3 = 64 is outside \[0, 64\)/);
    await expect(gen.step(Int32Array.from([0, 1, 2, -2, 0, 0, 0, 0]))).rejects.toThrow(/user code 3 = -2/);
    expect(gen.stepIndex).toBe(0);
    expect(() => new LMGen(lm, { temp: -1 })).toThrow(/temp must be a finite number >= 0/);
    expect(() => new LMGen(lm, { topK: 2.5 })).toThrow(/topK must be an integer >= 0/);
    expect(() => new LMGen(lm, { seed: -3 })).toThrow(/seed must be an integer/);
    expect(() => new LMGen(lm, { condition: { description: 'good' } })).toThrow(/has no conditioners/);
    gen.destroy();
    lm.destroy();
  });

  it('a conditioned model needs its condition', async () => {
    const ctx = await nodeContext();
    const { lm } = await loadTiny(ctx, 'ref2b');
    expect(() => new LMGen(lm, { temp: 0, tempText: 0 })).toThrow(/conditioned on description; pass opts\.condition/);
    const gen = new LMGen(lm, { temp: 0, tempText: 0, condition: { description: 'superb' } });
    await expect(gen.step(new Int32Array(16))).rejects.toThrow(/'superb' is not one of/);
    gen.destroy();
    lm.destroy();
  });

  it('a missing or extra weight is named at load', async () => {
    const ctx = await nodeContext();
    const { cfg, st } = await loadTiny(ctx).then((x) => (x.lm.destroy(), x));
    const entries = new Map(st.tensors);
    entries.delete('depformer_text_emb.weight');
    await expect(LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries, 'pruned'), cfg)).rejects.toThrow(/missing key 'depformer_text_emb\.weight'/);
    const extra = new Map(st.tensors);
    extra.set('extra_heads.0.weight', st.tensors.get('text_linear.weight')!);
    await expect(LMModel.load(ctx, VarBuilder.fromEntries(ctx, extra, 'extra'), cfg)).rejects.toThrow(WeightError);
    await expect(LMModel.load(ctx, VarBuilder.fromEntries(ctx, extra, 'extra'), cfg)).rejects.toThrow(/extra_heads\.0\.weight/);
  });

  it('sampling: top-k 1 equals greedy; tokens stay in the top-k; the seed repeats, also after reset', async () => {
    const ctx = await nodeContext();
    const { lm } = await loadTiny(ctx);
    const user = await fixtureI32(read, 'ref/lm/user_input_codes.i32.bin');
    const greedyOut = await fixtureI32(read, 'ref/lm/lmgen_out_tokens.i32.bin');
    const steps = 5;
    const top1 = new LMGen(lm, { temp: 1.5, tempText: 1.5, topK: 1, topKText: 1, seed: 9 });
    const got1 = await run(top1, user, steps, 8);
    for (let t = 1; t < steps; t++) expect(got1[t]).toEqual(Array.from(greedyOut.subarray(t * 9, (t + 1) * 9)));
    top1.destroy();

    const traces: LMGenTrace[] = [];
    const a = new LMGen(lm, { temp: 1.2, tempText: 1.2, topK: 5, topKText: 3, seed: 77, trace: (t) => traces.push(t) });
    const ra = await run(a, user, steps, 8);
    for (const tr of traces) {
      expect(topKSet(tr.textLogits, 3).has(tr.sampled[0])).toBe(true);
      for (let k = 0; k < 8; k++) expect(topKSet(tr.depformerLogits.subarray(k * 64, (k + 1) * 64), 5).has(tr.sampled[1 + k])).toBe(true);
    }
    a.reset();
    const again = await run(a, user, steps, 8);
    expect(again).toEqual(ra);
    a.destroy();
    const b = new LMGen(lm, { temp: 1.2, tempText: 1.2, topK: 5, topKText: 3, seed: 77 });
    expect(await run(b, user, steps, 8)).toEqual(ra);
    b.destroy();
    const c = new LMGen(lm, { temp: 1.2, tempText: 1.2, topK: 5, topKText: 3, seed: 78 });
    expect(await run(c, user, steps, 8)).not.toEqual(ra);
    c.destroy();
    lm.destroy();
  }, 300_000);
});
