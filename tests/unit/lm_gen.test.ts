import { describe, expect, it } from 'vitest';
import { type GpuContext, Tensor } from '../../src/gpu/index.ts';
import { LMModel } from '../../src/models/lm.ts';
import { type LMGenTrace, LMGen, LMGEN_DEFAULTS } from '../../src/models/lm_gen.ts';
import { parseLmConfig } from '../../src/models/lm_config.ts';
import { SafetensorsFile, entryToF32 } from '../../src/weights/safetensors.ts';
import { VarBuilder, WeightError, hostToEntry } from '../../src/weights/var_builder.ts';
import { fixtureI32, fixtureJson, nodeFixtures } from '../harness/fixtures.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { topKSet } from '../../src/selftest/cases/sample.cases.ts';

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
    // A load that fails at its last key gives back every GPU buffer it had made.
    const before = ctx.liveBytes;
    const late = new Map(st.tensors);
    late.delete('linears.7.weight');
    await expect(LMModel.load(ctx, VarBuilder.fromEntries(ctx, late, 'late'), cfg)).rejects.toThrow(/missing key 'linears\.7\.weight'/);
    expect(ctx.liveBytes).toBe(before);
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

  it('recordStep chains on GPU-resident codes with one readback per step (greedy = fixture)', async () => {
    const ctx = await nodeContext();
    const { lm } = await loadTiny(ctx);
    const user = await fixtureI32(read, 'ref/lm/user_input_codes.i32.bin');
    const want = await fixtureI32(read, 'ref/lm/lmgen_out_tokens.i32.bin');
    const codes = ctx.upload(user, [36, 8], 'i32', 'all user codes');
    const out = ctx.tensor([9], 'i32', 'out');
    const gen = new LMGen(lm, { temp: 0, tempText: 0 });
    await gen.ready;
    const steps = 8;
    for (let t = 0; t < steps; t++) {
      const rec = ctx.record(`step ${t}`);
      // A window of the codes tensor: recordStep only copies from it, so any 4-byte offset works.
      const view = new Tensor(codes.buffer, [8], 'i32', `codes[${t}]`, t * 8 * 4, false);
      const produced = gen.recordStep(rec, view, out);
      const p = produced ? rec.readback(out) : null;
      await rec.submit();
      expect(produced).toBe(t >= 1);
      if (p) expect(Array.from((await p) as Int32Array)).toEqual(Array.from(want.subarray(t * 9, (t + 1) * 9)));
    }
    expect(() => gen.recordStep(ctx.record('bad'), ctx.tensor([3], 'i32', 'short'), out)).toThrow(/must be i32 with >= 8 elements/);
    gen.destroy();
    codes.destroy();
    out.destroy();
    lm.destroy();
  }, 300_000);

  it('BF16 checkpoints: packed (native) and widened (f32) storage give the same logits', async () => {
    const ctx = await nodeContext();
    const { cfg, st } = await loadTiny(ctx).then((x) => (x.lm.destroy(), x));
    const entries = new Map([...st.tensors].map(([k, e]) => [k, hostToEntry(k, entryToF32(e), e.shape, 'BF16')]));
    const user = await fixtureI32(read, 'ref/lm/user_input_codes.i32.bin');
    const logits: Float32Array[][] = [];
    for (const policy of ['native', 'f32'] as const) {
      // f32 KV in both: this compares weight storage only (f16 KV rounding would amplify 1e-7 differences).
      const lm = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries, `bf16 ${policy}`), cfg, { policy, kvCache: 'f32' });
      expect(lm.dtype).toBe(policy === 'native' ? 'bf16' : 'f32');
      const got: Float32Array[] = [];
      const gen = new LMGen(lm, { temp: 0, tempText: 0, trace: (t) => got.push(t.textLogits, t.depformerLogits) });
      for (let t = 0; t < 3; t++) await gen.step(user.subarray(t * 8, (t + 1) * 8));
      logits.push(got);
      gen.destroy();
      lm.destroy();
    }
    logits[0].forEach((a, i) => {
      const b = logits[1][i];
      let m = 0;
      for (let j = 0; j < a.length; j++) m = Math.max(m, Math.abs(a[j] - b[j]));
      expect(m).toBeLessThan(1e-4);
    });
  }, 300_000);

  it("a BF16 checkpoint keeps its KV cache in f16 ('auto'), within 1e-2 of an f32 cache; F32 checkpoints keep f32", async () => {
    const ctx = await nodeContext();
    const { cfg, st } = await loadTiny(ctx).then((x) => (x.lm.destroy(), x));
    const entries = new Map([...st.tensors].map(([k, e]) => [k, hostToEntry(k, entryToF32(e), e.shape, 'BF16')]));
    const user = await fixtureI32(read, 'ref/lm/user_input_codes.i32.bin');
    const run = async (lm: LMModel) => {
      const got: Float32Array[] = [];
      const gen = new LMGen(lm, { temp: 0, tempText: 0, trace: (t) => got.push(t.textLogits, t.depformerLogits) });
      for (let t = 0; t < 6; t++) await gen.step(user.subarray(t * 8, (t + 1) * 8));
      gen.destroy();
      return got;
    };
    const half = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries, 'bf16'), cfg);
    expect(half.transformer.kvDtype).toBe('f16');
    expect(half.depformer!.kvDtype).toBe('f16');
    const full = await LMModel.load(ctx, VarBuilder.fromEntries(ctx, entries, 'bf16 f32 kv'), cfg, { kvCache: 'f32' });
    expect(full.transformer.kvDtype).toBe('f32');
    const a = await run(half);
    const b = await run(full);
    let worst = 0;
    a.forEach((x, i) => x.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i][j])))));
    expect(worst).toBeGreaterThan(0); // the f16 cache is really used
    expect(worst).toBeLessThan(1e-2);
    const f32ckpt = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), cfg);
    expect(f32ckpt.transformer.kvDtype).toBe('f32');
    for (const m of [half, full, f32ckpt]) m.destroy();
  }, 300_000);

  it('flags non-finite text / audio logits in the sampling dispatches (fusion on) and with finite_check (fusion off)', async () => {
    const ctx = await nodeContext();
    const { cfg, st } = await loadTiny(ctx).then((x) => (x.lm.destroy(), x));
    const user = await fixtureI32(read, 'ref/lm/user_input_codes.i32.bin');
    // One NaN weight makes one logit NaN: text_linear row 7 (text logit 7), linears.5 (depformer step 5's logits).
    // The loader refuses non-finite weights, so the NaN is written into the loaded GPU tensor (private fields).
    const poison = (lm: LMModel, keys: readonly string[]) => {
      const fields = lm as unknown as { textLinear: Tensor; linears: Tensor[] };
      for (const k of keys) {
        const e = st.tensors.get(k)!;
        const v = entryToF32(e).slice();
        v[7 * e.shape[1] + 3] = NaN;
        ctx.write(k === 'text_linear.weight' ? fields.textLinear : fields.linears[Number(k.split('.')[1])], v);
      }
    };
    const prev = ctx.kernelChoice;
    try {
      for (const fusion of ['on', 'off'] as const) {
        ctx.kernelChoice = { ...prev, fusion };
        for (const [keys, want] of [
          [[], { textLogits: false, audioLogits: false }],
          [['text_linear.weight'], { textLogits: true, audioLogits: false }],
          [['linears.5.weight'], { textLogits: false, audioLogits: true }],
        ] as const) {
          const lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [st]), cfg);
          poison(lm, keys);
          const gen = new LMGen(lm, { temp: 0, tempText: 0 });
          const tally = new Map<string, number>();
          ctx.dispatchTally = tally;
          for (let t = 0; t < 2; t++) {
            await gen.step(user.subarray(t * 8, (t + 1) * 8));
            expect(gen.lastStepChecks, `fusion ${fusion}, NaN in [${keys}], step ${t}`).toEqual(want);
          }
          ctx.dispatchTally = null;
          const separate = tally.get('finite_check') ?? 0;
          const folded = [...tally].reduce((n, [l, c]) => n + (/\+finite(\+|$)/.test(l) ? c : 0), 0); // sample.*+finite[+embedding.*]
          expect([separate, folded], `fusion ${fusion}: finite_check vs sample+finite dispatches`).toEqual(fusion === 'on' ? [0, 2 * (1 + cfg.depQ)] : [2 * (1 + cfg.depQ), 0]);
          // Fusion on: the text sampling and the audio samplings of codebooks 0 .. dep_q - 2 add the next depformer step's embedding (LMModel.fuseDepformerEmbedding), no embedding dispatch is left for the depformer.
          const embedded = [...tally].reduce((n, [l, c]) => n + (l.includes('+embedding.') ? c : 0), 0);
          expect(embedded, `fusion ${fusion}: samplings with the embedding`).toBe(fusion === 'on' ? 2 * cfg.depQ : 0);
          gen.destroy();
          lm.destroy();
        }
      }
    } finally {
      ctx.kernelChoice = prev;
      ctx.dispatchTally = null;
    }
  }, 300_000);
});

describe('LMModel depformer_in (tiny ref LM)', () => {
  it('fusion on: every codebook\'s depformer_in in one matvec in forward_text (the stacked blocks); off: one per codebook; the same logits', async () => {
    const ctx = await nodeContext();
    const { lm, cfg } = await loadTiny(ctx);
    const prev = ctx.kernelChoice;
    const tokens = ctx.upload(Int32Array.from({ length: cfg.nQ + 1 }, (_, i) => (i * 7) % cfg.card), [cfg.nQ + 1], 'i32', 'tokens');
    const perK: Record<'on' | 'off', number[]> = { on: [], off: [] };
    const logits: Record<'on' | 'off', Float32Array[]> = { on: [], off: [] };
    const perText = { on: 0, off: 0 };
    const perTextTransformer = { on: 0, off: 0 };
    try {
      for (const fusion of ['on', 'off'] as const) {
        ctx.kernelChoice = { ...prev, fusion };
        lm.reset();
        const rec = ctx.record(`depformer_in ${fusion}`);
        const t0 = rec.dispatchCount;
        lm.recordForwardText(rec, tokens, null);
        perText[fusion] = rec.dispatchCount - t0;
        perTextTransformer[fusion] = lm.transformer.lastForwardDispatches;
        lm.resetDepformer();
        const reads: Promise<unknown>[] = [];
        for (let k = 0; k < cfg.depQ; k++) {
          const d0 = rec.dispatchCount;
          lm.recordForwardDepformer(rec, k, tokens, k);
          perK[fusion].push(rec.dispatchCount - d0);
          reads.push(rec.readback(lm.depformerLogits[k]));
        }
        await rec.submit();
        for (const p of reads) logits[fusion].push((await p) as Float32Array);
      }
    } finally {
      ctx.kernelChoice = prev;
      tokens.destroy();
      lm.destroy();
    }
    // recordForwardText records the stacked matvec (one dispatch more with fusion on: see perText), the depformer steps none.
    expect(new Set(perK.on).size).toBe(1);
    expect(new Set(perK.off).size).toBe(1);
    // forward_text outside its transformer, fusion on: the stacked audio embeddings, the text embedding, out_norm, text_linear, and the stacked depformer_in.
    expect(perText.on - perTextTransformer.on).toBe(5);
    expect(cfg.depQ).toBeGreaterThan(1);
    for (let k = 0; k < cfg.depQ; k++) {
      const a = logits.on[k];
      const b = logits.off[k];
      const worst = a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
      expect(worst, `codebook ${k} logits, fused vs unfused`).toBeLessThan(1e-4);
    }
  });
});
