/**
 * StreamingTransformer (src/modules/transformer.ts) against a CPU reference of the official
 * moshi/modules/transformer.py semantics, with seeded in-memory weights in the checkpoint layout:
 * - depformer path: weights_per_step (stacked in_proj/out_proj split by vb.chunks, gating.{k}),
 *   rms_norm_f32 (eps 1e-8), SiLU gating, context None (capacity = steps), no positional embedding;
 * - LM path: RoPE, rms_norm_f32, SiLU gating, bf16 weights kept packed ('native'), a short context
 *   so the ring wraps while streaming in chunks of 1 and 2 steps;
 * - Mimi path: LayerNorm, GELU FFN, LayerScale, context shorter than the stream;
 * - errors: missing keys, step/offset mismatch, too many steps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GpuContext, Tensor, roundThrough } from '../../src/gpu/index.ts';
import { NORM_EPS, StreamingTransformer, type TransformerConfig, gatingHidden } from '../../src/modules/transformer.ts';
import type { TensorEntry } from '../../src/weights/safetensors.ts';
import { VarBuilder, WeightError, hostToEntry } from '../../src/weights/var_builder.ts';
import { assertClose } from '../../src/selftest/check.ts';
import { sentinelTensor } from '../../src/selftest/kernel_case.ts';
import { nodeContext } from '../harness/node_gpu.ts';
import { Rng } from '../../src/selftest/rng.ts';
import { RingAttentionRef } from '../../src/selftest/cases/attention.cases.ts';
import { layerNormRef, rmsNormRef } from '../../src/selftest/cases/norm.cases.ts';
import { erf } from '../../src/selftest/cases/unary.cases.ts';

type W = Map<string, { values: Float32Array; shape: number[] }>;

/** Seeded weights of a StreamingTransformer under `prefix`, checkpoint layout. */
function makeWeights(cfg: TransformerConfig, prefix: string, seed: number): W {
  const rng = new Rng(seed);
  const D = cfg.dModel;
  const mult = cfg.weightsPerStep || 1;
  const w: W = new Map();
  const put = (k: string, shape: number[], values: Float32Array) => w.set(`${prefix}.${k}`, { values, shape });
  const lin = (k: string, n: number, kk: number) => put(k, [n, kk], rng.normals(n * kk, 1 / Math.sqrt(kk)));
  const dims = Array.isArray(cfg.dimFeedforward) ? cfg.dimFeedforward : Array<number>(mult).fill(cfg.dimFeedforward);
  for (let l = 0; l < cfg.numLayers; l++) {
    const L = `layers.${l}`;
    lin(`${L}.self_attn.in_proj_weight`, mult * 3 * D, D);
    lin(`${L}.self_attn.out_proj.weight`, mult * D, D);
    for (const n of ['norm1', 'norm2']) {
      if (cfg.norm.startsWith('layer_norm')) {
        put(`${L}.${n}.weight`, [D], Float32Array.from(rng.normals(D, 0.1), (v) => 1 + v));
        put(`${L}.${n}.bias`, [D], rng.normals(D, 0.1));
      } else {
        put(`${L}.${n}.alpha`, [1, 1, D], Float32Array.from(rng.normals(D, 0.1), (v) => 1 + v));
      }
    }
    if (cfg.gating === 'none') {
      lin(`${L}.linear1.weight`, dims[0], D);
      lin(`${L}.linear2.weight`, D, dims[0]);
    } else {
      dims.forEach((f, s) => {
        const g = mult > 1 ? `${L}.gating.${s}` : `${L}.gating`;
        const hid = gatingHidden(D, f);
        lin(`${g}.linear_in.weight`, 2 * hid, D);
        lin(`${g}.linear_out.weight`, D, hid);
      });
    }
    if (cfg.layerScale !== null) {
      put(`${L}.layer_scale_1.scale`, [D], rng.uniforms(D, 0.05, 0.3));
      put(`${L}.layer_scale_2.scale`, [D], rng.uniforms(D, 0.05, 0.3));
    }
  }
  return w;
}

function toEntries(w: W, dtype: 'F32' | 'BF16', skip?: string): Map<string, TensorEntry> {
  const m = new Map<string, TensorEntry>();
  for (const [k, { values, shape }] of w) {
    if (k === skip) continue;
    // Linear weights in the half dtype, norms and scales in f32 (as the policy keeps them).
    const half = dtype === 'BF16' && shape.length === 2;
    m.set(k, hostToEntry(k, values, shape, half ? 'BF16' : 'F32'));
  }
  return m;
}

const silu = (v: number) => v / (1 + Math.exp(-v));
const gelu = (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2));

/** y[T, N] = x[T, K] · W[N, K]ᵀ in f64. */
function matmul(x: Float32Array, w: Float32Array, t: number, n: number, k: number): Float32Array {
  const y = new Float32Array(t * n);
  for (let i = 0; i < t; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += x[i * k + q] * w[j * k + q];
      y[i * n + j] = s;
    }
  }
  return y;
}

/** CPU reference of the official StreamingTransformer in streaming mode (batch 1). */
class TransformerRef {
  private readonly caches: RingAttentionRef[];
  offset = 0;
  constructor(readonly cfg: TransformerConfig, readonly w: W, readonly prefix: string, halfWeights: boolean) {
    const D = cfg.dModel;
    const mult = cfg.weightsPerStep || 1;
    const cap = cfg.context ?? (mult > 1 ? mult : cfg.kvCapacity!);
    this.caches = Array.from({ length: cfg.numLayers }, () => new RingAttentionRef(cfg.numHeads, D / cfg.numHeads, cap, cfg.context, cfg.positionalEmbedding === 'rope' ? cfg.maxPeriod : null, cfg.kvDtype ?? 'f32'));
    if (halfWeights) for (const v of w.values()) if (v.shape.length === 2) v.values = roundThrough(v.values, 'bf16');
  }
  private get(k: string): Float32Array {
    const v = this.w.get(`${this.prefix}.${k}`);
    if (!v) throw new Error(`reference: no weight ${k}`);
    return v.values;
  }
  reset(): void {
    this.offset = 0;
    for (const c of this.caches) c.reset();
  }
  private norm(x: Float32Array, k: string, t: number): Float32Array {
    const D = this.cfg.dModel;
    const eps = NORM_EPS[this.cfg.norm];
    return this.cfg.norm.startsWith('layer_norm')
      ? layerNormRef(x, this.get(`${k}.weight`), this.get(`${k}.bias`), t, D, eps)
      : rmsNormRef(x, this.get(`${k}.alpha`), t, D, eps);
  }
  /** Rows of x through per-step (row t uses block offset + t) or shared [N, K] weight blocks. */
  private lin(x: Float32Array, t: number, key: string, n: number, k: number, perStep: boolean): Float32Array {
    const w = this.get(key);
    if (!perStep) return matmul(x, w.subarray(0, n * k), t, n, k);
    const y = new Float32Array(t * n);
    for (let i = 0; i < t; i++) {
      const s = this.offset + i;
      y.set(matmul(x.subarray(i * k, (i + 1) * k), w.subarray(s * n * k, (s + 1) * n * k), 1, n, k), i * n);
    }
    return y;
  }
  forward(xin: Float32Array, t: number): Float32Array {
    const { cfg } = this;
    const D = cfg.dModel;
    const mult = cfg.weightsPerStep || 1;
    const x = Float32Array.from(xin);
    const dims = Array.isArray(cfg.dimFeedforward) ? cfg.dimFeedforward : Array<number>(mult).fill(cfg.dimFeedforward);
    for (let l = 0; l < cfg.numLayers; l++) {
      const L = `layers.${l}`;
      const n1 = this.norm(x, `${L}.norm1`, t);
      const qkv = this.lin(n1, t, `${L}.self_attn.in_proj_weight`, 3 * D, D, mult > 1);
      const a = this.caches[l].step(qkv, t);
      const u = this.lin(a, t, `${L}.self_attn.out_proj.weight`, D, D, mult > 1);
      const s1 = cfg.layerScale !== null ? this.get(`${L}.layer_scale_1.scale`) : null;
      for (let i = 0; i < t * D; i++) x[i] += (s1 ? s1[i % D] : 1) * u[i];
      const n2 = this.norm(x, `${L}.norm2`, t);
      const u2 = new Float32Array(t * D);
      for (let r = 0; r < t; r++) {
        const row = n2.subarray(r * D, (r + 1) * D);
        let out: Float32Array;
        if (cfg.gating === 'none') {
          const f = dims[0];
          const h = matmul(row, this.get(`${L}.linear1.weight`), 1, f, D).map(gelu);
          out = matmul(h, this.get(`${L}.linear2.weight`), 1, D, f);
        } else {
          const s = mult > 1 ? this.offset + r : 0;
          const g = mult > 1 ? `${L}.gating.${s}` : `${L}.gating`;
          const hid = gatingHidden(D, dims[s]);
          const h = matmul(row, this.get(`${g}.linear_in.weight`), 1, 2 * hid, D);
          const act = Float32Array.from({ length: hid }, (_, j) => silu(h[j]) * h[hid + j]);
          out = matmul(act, this.get(`${g}.linear_out.weight`), 1, D, hid);
        }
        u2.set(out, r * D);
      }
      const s2 = cfg.layerScale !== null ? this.get(`${L}.layer_scale_2.scale`) : null;
      for (let i = 0; i < t * D; i++) x[i] += (s2 ? s2[i % D] : 1) * u2[i];
    }
    this.offset += t;
    return x;
  }
}

const DEPFORMER: TransformerConfig = {
  dModel: 32, numHeads: 4, numLayers: 2, dimFeedforward: 132, causal: true, context: null, maxPeriod: 10000,
  positionalEmbedding: 'none', norm: 'rms_norm_f32', gating: 'silu', layerScale: null, weightsPerStep: 8, layerBlocks: true,
};
const LM: TransformerConfig = {
  dModel: 48, numHeads: 3, numLayers: 2, dimFeedforward: 4 * 48, causal: true, context: 6, maxPeriod: 10000,
  positionalEmbedding: 'rope', norm: 'rms_norm_f32', gating: 'silu', layerScale: null,
};
const MIMI: TransformerConfig = {
  dModel: 40, numHeads: 5, numLayers: 2, dimFeedforward: 80, causal: true, context: 5, maxPeriod: 10000,
  positionalEmbedding: 'rope', norm: 'layer_norm', gating: 'none', layerScale: 0.01,
};
/** Mimi-like with layer blocks over a ring of 20 slots (more than ROWS_MAX_SLOTS: keys and values, no qkv rows). */
const MIMI_BLOCKS: TransformerConfig = { ...MIMI, context: 20, layerBlocks: true };

describe('StreamingTransformer vs a CPU reference (node)', () => {
  let ctx: GpuContext;
  const keep: { destroy(): void }[] = [];
  beforeAll(async () => {
    ctx = await nodeContext();
  });
  afterAll(() => {
    for (const k of keep.splice(0)) k.destroy();
  });

  /** Streams `chunks` through GPU and CPU, `rounds` times with reset() in between; compares every chunk. */
  async function streamCompare(name: string, cfg: TransformerConfig, chunks: number[], o: { dtype?: 'F32' | 'BF16'; rounds?: number; useStep?: boolean; seed: number; fusion?: ('on' | 'off')[]; layerBlocks?: 'on' | 'off'; blocks?: ('on' | 'off')[]; threads?: number }): Promise<Map<string, number>> {
    const tally = new Map<string, number>();
    const prevTally = ctx.dispatchTally;
    const prevChoice = ctx.kernelChoice;
    ctx.dispatchTally = tally;
    try {
    const runChoice = { ...prevChoice, ...(o.layerBlocks ? { layerBlocks: o.layerBlocks } : {}), ...(o.threads ? { layerBlockThreads: o.threads } : {}) };
    ctx.kernelChoice = runChoice;
    const prefix = 'model.tr';
    const w = makeWeights(cfg, prefix, o.seed);
    const vb = VarBuilder.fromEntries(ctx, toEntries(w, o.dtype ?? 'F32'));
    const tr = StreamingTransformer.load(ctx, vb.pp('model').pp('tr'), cfg, o.dtype === 'BF16' ? 'native' : 'f32');
    keep.push(tr);
    vb.finish(); // every generated key was consumed
    const ref = new TransformerRef(cfg, w, prefix, o.dtype === 'BF16');
    const rng = new Rng(o.seed + 1);
    const D = cfg.dModel;
    for (let round = 0; round < (o.rounds ?? 1); round++) {
      tr.reset();
      ref.reset();
      const rec = ctx.record(name);
      const reads: { p: Promise<unknown>; want: Float32Array; t: number; i: number }[] = [];
      chunks.forEach((t, i) => {
        const xs = rng.normals(t * D, 1);
        const x = ctx.upload(xs, [t, D], 'f32', `x${i}`);
        const y = sentinelTensor(ctx, [t, D], `y${i}`);
        keep.push(x, y);
        if (o.fusion) ctx.kernelChoice = { ...runChoice, fusion: o.fusion[i] };
        if (o.blocks) ctx.kernelChoice = { ...runChoice, layerBlocks: o.blocks[i] };
        tr.forward(rec, x, y, o.useStep ? { step: ref.offset } : {});
        reads.push({ p: rec.readback(y), want: ref.forward(xs, t), t, i });
      });
      ctx.kernelChoice = runChoice;
      await rec.submit();
      for (const r of reads) {
        // An f16 cache rounds k and v computed in f32 here, in f64 in the reference: one f16 ulp apart at a rounding boundary.
        const tol = cfg.kvDtype === 'f16' ? { atol: 2e-3, rtol: 2e-3 } : { atol: 1e-5, scaleTol: 1e-5, rtol: 1e-4 };
        assertClose(`${name} round ${round} chunk ${r.i}`, (await r.p) as Float32Array, r.want, { ...tol, shape: [r.t, D] });
      }
      expect(tr.offset).toBe(chunks.reduce((a, b) => a + b, 0));
    }
    } finally {
      ctx.dispatchTally = prevTally;
      ctx.kernelChoice = prevChoice;
    }
    return tally;
  }

  /** Dispatches of `tally` whose label matches `re`. */
  const count = (tally: Map<string, number>, re: RegExp) => [...tally].reduce((n, [l, c]) => n + (re.test(l) ? c : 0), 0);

  it('depformer: 8 single steps with per-step weights (step k), twice with reset(): two layer blocks per layer', async () => {
    const tally = await streamCompare('depformer', DEPFORMER, [1, 1, 1, 1, 1, 1, 1, 1], { rounds: 2, useStep: true, seed: 10 });
    // Every step of every layer ran as the attention block + the FFN block (src/kernels/layer_block.ts), then one sum per step.
    expect(count(tally, /^layer_block\.attend\./)).toBe(2 * 8 * DEPFORMER.numLayers);
    expect(count(tally, /^layer_block\.ffn\./)).toBe(2 * 8 * DEPFORMER.numLayers);
    expect(count(tally, /^layer_block\.sum$/)).toBe(2 * 8);
    expect(count(tally, /^(attention|linear)\./)).toBe(0);
  });

  it('depformer: layer blocks with LayerScale over bf16 weights', async () => {
    const tally = await streamCompare('depformer scaled', { ...DEPFORMER, layerScale: 0.1 }, [1, 1, 1, 1, 1, 1, 1, 1], { dtype: 'BF16', useStep: true, seed: 12 });
    expect(count(tally, /^layer_block\.ffn\.bf16\.wg\d+$/)).toBe(8 * DEPFORMER.numLayers);
  });

  it('depformer: 8 single steps with layer blocks off: attention + out_proj in one fused matvec', async () => {
    const tally = await streamCompare('depformer matvecs', DEPFORMER, [1, 1, 1, 1, 1, 1, 1, 1], { rounds: 2, useStep: true, seed: 10, layerBlocks: 'off' });
    // Every step of every layer took attention + out_proj in one dispatch (linear.ts fusedAttendMatvec), no attend pass.
    expect(count(tally, /^linear\.matvec(_quant)?(_sg)?\.attend\+/)).toBe(2 * 8 * DEPFORMER.numLayers);
    expect(count(tally, /^(attention|layer_block)\./)).toBe(0);
  });

  it('depformer: the kernel path switched mid-stream (fused attention steps, then unfused ones, and back)', async () => {
    const fusion: ('on' | 'off')[] = ['on', 'on', 'off', 'on', 'off', 'off', 'on', 'on'];
    const tally = await streamCompare('depformer switch', DEPFORMER, [1, 1, 1, 1, 1, 1, 1, 1], { useStep: true, seed: 15, fusion, layerBlocks: 'off' });
    expect(count(tally, /^linear\.matvec(_quant)?(_sg)?\.attend\+/)).toBe(5 * DEPFORMER.numLayers);
    // attention() wrote k / v of every filled slot from the rows after fused steps: slots 0, 1 before step 2, 0..3 before step 4.
    expect(count(tally, /^attention\.write_kv_rows$/)).toBe((2 + 4) * DEPFORMER.numLayers);
  });

  it('depformer: layer blocks switched with unfused steps mid-stream', async () => {
    const fusion: ('on' | 'off')[] = ['on', 'on', 'off', 'on', 'off', 'off', 'on', 'on'];
    const tally = await streamCompare('depformer blocks switch', DEPFORMER, [1, 1, 1, 1, 1, 1, 1, 1], { useStep: true, seed: 16, fusion });
    expect(count(tally, /^layer_block\.attend\./)).toBe(5 * DEPFORMER.numLayers);
    expect(count(tally, /^attention\.write_kv_rows$/)).toBe((2 + 4) * DEPFORMER.numLayers);
  });

  it('layer blocks into an output window no binding can start at (sum into the stream, then a copy) equal the bound output', async () => {
    const D = DEPFORMER.dModel;
    const prefix = 'model.tr';
    const w = makeWeights(DEPFORMER, prefix, 18);
    const tr = StreamingTransformer.load(ctx, VarBuilder.fromEntries(ctx, toEntries(w, 'F32')).pp('model').pp('tr'), DEPFORMER);
    keep.push(tr);
    const x = ctx.upload(new Rng(19).normals(D, 1), [1, D], 'f32', 'x');
    const aligned = sentinelTensor(ctx, [1, D], 'y aligned');
    const big = sentinelTensor(ctx, [2, D], 'y big');
    const window = new Tensor(big.buffer, [1, D], 'f32', 'y window', 4 * D, false); // 128 bytes in: not a binding offset
    keep.push(x, aligned, big);
    const got: Float32Array[] = [];
    for (const y of [aligned, window]) {
      tr.reset();
      const rec = ctx.record('window');
      tr.forward(rec, x, y, { step: 0 });
      const p = rec.readback(y);
      await rec.submit();
      got.push((await p) as Float32Array);
    }
    expect(Array.from(got[1])).toEqual(Array.from(got[0]));
  });

  it('depformer: layer blocks and the fused attention matvec alternating over one cache', async () => {
    // Both read the cache's qkv rows; neither writes k / v, so no attention() pass runs.
    const blocks: ('on' | 'off')[] = ['on', 'off', 'on', 'off', 'off', 'on', 'on', 'off'];
    const tally = await streamCompare('depformer blocks/matvecs', DEPFORMER, [1, 1, 1, 1, 1, 1, 1, 1], { useStep: true, seed: 17, blocks });
    expect(count(tally, /^layer_block\.attend\./)).toBe(4 * DEPFORMER.numLayers);
    expect(count(tally, /^linear\.matvec(_quant)?(_sg)?\.attend\+/)).toBe(4 * DEPFORMER.numLayers);
    expect(count(tally, /^attention\./)).toBe(0);
  });

  it('depformer: several steps per call (row t uses weights offset + t), per-step dim_feedforward list', async () => {
    await streamCompare('depformer multi', { ...DEPFORMER, dimFeedforward: [132, 96, 132, 60, 132, 132, 72, 132] }, [3, 1, 4], { seed: 20 });
  });

  it('LM-like: RoPE + rms_norm_f32 + SiLU gating, bf16 weights packed, ring wraps in chunks of 1 and 2', async () => {
    await streamCompare('lm', LM, [1, 2, 1, 1, 2, 2, 1, 2, 1, 1, 2], { dtype: 'BF16', seed: 30 });
  });

  it('Mimi-like: LayerNorm + GELU + LayerScale, context 5 over 14 steps', async () => {
    const tally = await streamCompare('mimi', MIMI, [5, 2, 1, 3, 3], { seed: 40 });
    expect(count(tally, /^layer_block\./)).toBe(0);
  });

  it('Mimi-like layer blocks: LayerNorm + GELU + LayerScale + RoPE over a ring of 20, chunks of 1 to 5 as the ring wraps', async () => {
    const chunks = [5, 2, 1, 3, 3, 2, 2, 2, 4, 2, 1];
    const tally = await streamCompare('mimi blocks', MIMI_BLOCKS, chunks, { seed: 41, rounds: 2 });
    expect(count(tally, /^layer_block\.attend\.f32\.wg\d+$/)).toBe(2 * chunks.length * MIMI.numLayers);
    expect(count(tally, /^layer_block\.ffn\.f32\.wg\d+$/)).toBe(2 * chunks.length * MIMI.numLayers);
    expect(count(tally, /^(attention|linear)\./)).toBe(0);
  });

  it('Mimi-like layer blocks: bf16 weights and an f16 key / value ring', async () => {
    const tally = await streamCompare('mimi blocks f16', { ...MIMI_BLOCKS, kvDtype: 'f16' }, [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2], { seed: 42, dtype: 'BF16' });
    expect(count(tally, /^layer_block\.attend\.bf16\.wg\d+$/)).toBe(12 * MIMI.numLayers);
  });

  it('layer blocks with the hardware workgroup (64 threads, 4 lanes per row) on the depformer and Mimi-like configs', async () => {
    const dep = await streamCompare('depformer blocks wg64', { ...DEPFORMER, layerScale: 0.1 }, [1, 1, 1, 1, 1, 1, 1, 1], { useStep: true, seed: 13, threads: 64 });
    expect(count(dep, /^layer_block\.(attend|ffn)\.f32\.wg64$/)).toBe(2 * 8 * DEPFORMER.numLayers);
    const mimi = await streamCompare('mimi blocks wg64', { ...MIMI_BLOCKS, kvDtype: 'f16' }, [5, 2, 1, 3, 3, 2, 2, 2, 4, 2, 1], { seed: 43, threads: 64 });
    expect(count(mimi, /^layer_block\.(attend|ffn)\.f32\.wg64$/)).toBe(2 * 11 * MIMI.numLayers);
  });

  it('LM-like with layer blocks: RoPE over a short cache of qkv rows (one step), chunks of 2 on the other kernels', async () => {
    const tally = await streamCompare('lm blocks', { ...LM, layerBlocks: true }, [1, 2, 1, 1, 2, 2, 1, 2, 1, 1, 2], { dtype: 'BF16', seed: 31 });
    expect(count(tally, /^layer_block\.attend\.bf16\.wg\d+$/)).toBe(6 * LM.numLayers);
  });

  it('errors: missing key, step/offset mismatch, too many steps, unsupported config', async () => {
    const w = makeWeights(DEPFORMER, 'dep', 50);
    expect(() => StreamingTransformer.load(ctx, VarBuilder.fromEntries(ctx, toEntries(w, 'F32', 'dep.layers.1.gating.3.linear_in.weight')).pp('dep'), DEPFORMER)).toThrow(WeightError);
    expect(() => StreamingTransformer.load(ctx, VarBuilder.fromEntries(ctx, toEntries(w, 'F32', 'dep.layers.1.gating.3.linear_in.weight')).pp('dep'), DEPFORMER)).toThrow(/dep\.layers\.1\.gating\.3\.linear_in\.weight/);
    const wrongShape = { ...DEPFORMER, dModel: 16 };
    expect(() => StreamingTransformer.load(ctx, VarBuilder.fromEntries(ctx, toEntries(w, 'F32')).pp('dep'), wrongShape)).toThrow(/has shape \[768, 32\], expected \[384, 16\]/);
    expect(() => StreamingTransformer.load(ctx, VarBuilder.fromEntries(ctx, toEntries(w, 'F32')).pp('dep'), { ...DEPFORMER, causal: false })).toThrow(/only causal/);
    expect(() => StreamingTransformer.load(ctx, VarBuilder.fromEntries(ctx, toEntries(w, 'F32')).pp('dep'), { ...DEPFORMER, weightsPerStep: 0 })).toThrow(/context is null/);

    const tr = StreamingTransformer.load(ctx, VarBuilder.fromEntries(ctx, toEntries(w, 'F32')).pp('dep'), DEPFORMER);
    keep.push(tr);
    const x = ctx.tensor([1, 32], 'f32', 'x');
    const y = ctx.tensor([1, 32], 'f32', 'y');
    const x9 = ctx.tensor([9, 32], 'f32', 'x9');
    const y9 = ctx.tensor([9, 32], 'f32', 'y9');
    keep.push(x, y, x9, y9);
    const rec = ctx.record('errors');
    expect(() => tr.forward(rec, x, y, { step: 1 })).toThrow(/step 1 requested but the streaming offset is 0/);
    expect(() => tr.forward(rec, x9, y9)).toThrow(/exceed the KV cache capacity 8/);
    expect(() => tr.forward(rec, x, x)).toThrow(/share a buffer/);
    for (let k = 0; k < 8; k++) tr.forward(rec, x, y, { step: k });
    expect(() => tr.forward(rec, x, y, { step: 8 })).toThrow(/exceed the 8 steps with per-step weights/);
    await rec.submit();
  });
});
