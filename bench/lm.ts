/**
 * `npm run bench -- lm [--runs N] [--seed S] [--skip-depformer] [--skip-layer]`
 *
 * The Moshi 7B LM's per-frame work at its real sizes, on this adapter (Node, Dawn), with seeded
 * random bf16 weights generated in memory (VarBuilder.fromEntries + hostToEntry; no file read):
 *
 * 1. One full depformer step (moshi/models/lm.py `LMGen.depformer_step`): dim 1024, 16 heads,
 *    6 layers, FFN 2816 (SiLU gating), 8 codebook steps with per-step weights, RMSNorm f32, no
 *    positional embedding, as MOSHI_7B: for k = 0..7
 *      d = depformer_in[k](h) + emb_k(prev)         // h: [1, 4096] -> d: [1, 1024]
 *      d = depformer(d, step k)                     // 6 layers, per-step in/out_proj + gating.{k}
 *      logits = linears[k](d); prev = argmax(logits) // [1, 2048], greedy on the GPU
 *    in one recording after `reset()`: exactly the depformer part of an LMGen step.
 * 2. One temporal transformer layer of the 7B (StreamingTransformer, src/modules/transformer.ts):
 *    dim 4096, 32 heads, gated FFN 11264, RMSNorm f32, RoPE, context 3000, one token, KV position
 *    0 (reset before each run, so attention reads one key: the weights dominate). The 32-layer step
 *    time is extrapolated from it (32 × one layer) and labelled so.
 *
 * Reported: median ms (GPU timestamps when the adapter has them, else wall time), weight bytes read
 * per step, GB/s = weight bytes / time, and that as a fraction of the adapter's copy bandwidth
 * measured in the same run (bench/common.ts measureCopyBandwidth). Weights: matrices
 * N(0, 1/fan_in) in bf16, RMSNorm alpha 1 (f32), embeddings N(0, 1) in bf16.
 * Writes bench/results/lm-<time>.json.
 */
import { parseArgs } from 'node:util';
import type { GpuContext, Recorder, Tensor } from '../src/gpu/index.ts';
import { embedding } from '../src/kernels/embedding.ts';
import { linear } from '../src/kernels/linear.ts';
import { sample } from '../src/kernels/sample.ts';
import { MOSHI_7B_LM_KWARGS, mainDimFeedforward, parseLmConfig } from '../src/models/lm_config.ts';
import { StreamingTransformer, type TransformerConfig, gatingHidden } from '../src/modules/transformer.ts';
import type { TensorEntry } from '../src/weights/safetensors.ts';
import { VarBuilder, hostToEntry } from '../src/weights/var_builder.ts';
import { Rng } from '../src/selftest/rng.ts';
import { createBenchContext, measureCopyBandwidth, printTable, timeRecording, writeResults, type Timing } from './common.ts';

const CFG = parseLmConfig(MOSHI_7B_LM_KWARGS, 'MOSHI_7B_LM_KWARGS');

/** Seeded random weights: matrices N(0, 1/fan_in) bf16, `.alpha` = 1 (f32), embeddings N(0, 1) bf16. */
class WeightMaker {
  readonly entries = new Map<string, TensorEntry>();
  private readonly rng: Rng;
  constructor(seed: number) {
    this.rng = new Rng(seed);
  }
  matrix(name: string, shape: number[]): void {
    const n = shape.reduce((a, b) => a * b, 1);
    this.entries.set(name, hostToEntry(name, this.rng.normals(n, 1 / Math.sqrt(shape[shape.length - 1])), shape, 'BF16'));
  }
  embedding(name: string, shape: number[]): void {
    const n = shape.reduce((a, b) => a * b, 1);
    this.entries.set(name, hostToEntry(name, this.rng.normals(n, 1), shape, 'BF16'));
  }
  alpha(name: string, dim: number): void {
    this.entries.set(name, hostToEntry(name, new Float32Array(dim).fill(1), [1, 1, dim], 'F32'));
  }
  /** Bytes of the entries whose key passes `keep`. */
  bytes(keep: (name: string) => boolean = () => true): number {
    let b = 0;
    for (const [k, e] of this.entries) if (keep(k)) b += e.data.byteLength;
    return b;
  }
}

/** Checkpoint keys of a StreamingTransformer with `layers` layers (checkpoint layout, gated FFN). */
function transformerWeights(w: WeightMaker, prefix: string, dim: number, layers: number, hidden: number, steps: number): void {
  for (let l = 0; l < layers; l++) {
    const p = `${prefix}layers.${l}.`;
    w.alpha(`${p}norm1.alpha`, dim);
    w.alpha(`${p}norm2.alpha`, dim);
    w.matrix(`${p}self_attn.in_proj_weight`, [steps * 3 * dim, dim]);
    w.matrix(`${p}self_attn.out_proj.weight`, [steps * dim, dim]);
    for (let s = 0; s < steps; s++) {
      const g = steps > 1 ? `${p}gating.${s}.` : `${p}gating.`;
      w.matrix(`${g}linear_in.weight`, [2 * hidden, dim]);
      w.matrix(`${g}linear_out.weight`, [dim, hidden]);
    }
  }
}

interface Row {
  what: string;
  medianMs: number;
  weightBytes: number;
  gbps: number;
  fractionOfCopy: number;
  timing: Timing['source'];
  runs: number;
}

function row(what: string, t: Timing, bytes: number, copyGbps: number): Row {
  const gbps = bytes / (t.medianMs * 1e6);
  return { what, medianMs: t.medianMs, weightBytes: bytes, gbps, fractionOfCopy: gbps / copyGbps, timing: t.source, runs: t.runs };
}

/** (1) One full depformer step of the 7B: 8 codebook steps, per-step weights, greedy sampling. */
async function benchDepformer(ctx: GpuContext, seed: number, runs: number, copyGbps: number): Promise<Row> {
  const D = CFG.dim; // 4096
  const dep = CFG.depformer;
  const Dd = dep.dim; // 1024
  const Q = CFG.depQ; // 8
  const hidden = gatingHidden(Dd, dep.dimFeedforward); // 2816
  const w = new WeightMaker(seed);
  for (let k = 0; k < Q; k++) w.matrix(`depformer_in.${k}.weight`, [Dd, D]);
  for (let k = 0; k < Q - 1; k++) w.embedding(`depformer_emb.${k}.weight`, [CFG.card + 1, Dd]);
  w.embedding('depformer_text_emb.weight', [CFG.textCard + 1, Dd]);
  transformerWeights(w, 'depformer.', Dd, dep.numLayers, hidden, Q);
  for (let k = 0; k < Q; k++) w.matrix(`linears.${k}.weight`, [CFG.card, Dd]);
  // Bytes read per step: every matrix once (depformer_in, per-step layer weights, linears, norms),
  // plus one embedding row per codebook step (not the whole tables).
  const bytes = w.bytes((k) => !/emb/.test(k)) + Q * Dd * 2;

  const vb = VarBuilder.fromEntries(ctx, w.entries, 'random depformer (7B sizes)');
  const depCfg: TransformerConfig = {
    dModel: Dd,
    numHeads: dep.numHeads,
    numLayers: dep.numLayers,
    dimFeedforward: dep.dimFeedforward,
    causal: true,
    context: null,
    maxPeriod: dep.maxPeriod,
    positionalEmbedding: dep.posEmb,
    norm: CFG.norm,
    gating: dep.gating,
    layerScale: dep.layerScale,
    weightsPerStep: Q,
  };
  const depformer = await StreamingTransformer.load(ctx, vb.pp('depformer'), depCfg, 'native');
  const depIn = Array.from({ length: Q }, (_, k) => vb.pp('depformer_in').pp(k).tensor('weight', [Dd, D], 'native'));
  const embs = [vb.pp('depformer_text_emb').tensor('weight', [CFG.textCard + 1, Dd], 'native'),
    ...Array.from({ length: Q - 1 }, (_, k) => vb.pp('depformer_emb').pp(k).tensor('weight', [CFG.card + 1, Dd], 'native'))];
  const linears = Array.from({ length: Q }, (_, k) => vb.pp('linears').pp(k).tensor('weight', [CFG.card, Dd], 'native'));
  vb.finish();
  w.entries.clear();
  const rng = new Rng(seed + 1);
  const h = ctx.upload(rng.normals(D, 1), [1, D], 'f32', 'bench.h'); // temporal transformer output [1, 4096]
  const tokens = ctx.upload(Int32Array.from({ length: 1 + Q }, (_, i) => (i === 0 ? 17 : 0)), [1 + Q], 'i32', 'bench.tokens'); // [text, a0..a7]: text token 17
  const dIn = ctx.tensor([1, Dd], 'f32', 'bench.d_in');
  const dOut = ctx.tensor([1, Dd], 'f32', 'bench.d_out');
  const logits = Array.from({ length: Q }, (_, k) => ctx.tensor([1, CFG.card], 'f32', `bench.logits.${k}`));
  const record = (rec: Recorder) => {
    depformer.reset();
    for (let k = 0; k < Q; k++) {
      linear(rec, h, depIn[k], null, dIn); // d: [1, Dd]
      embedding(rec, embs[k], tokens, dIn, { accumulate: true, idsOffset: k, rows: 1 });
      depformer.forward(rec, dIn, dOut, { step: k });
      linear(rec, dOut, linears[k], null, logits[k]); // logits: [1, card]
      sample(rec, logits[k], tokens, { temp: 0, outOffset: 1 + k });
    }
  };
  try {
    // Validate before timing: 8 tokens in [0, card) come out.
    const rec = ctx.record('depformer check');
    record(rec);
    await rec.submit();
    const out = new Int32Array(await ctx.read(tokens));
    if (!out.slice(1).every((v) => v >= 0 && v < CFG.card)) throw new Error(`bench lm: depformer produced tokens outside [0, ${CFG.card}): ${out.join(', ')}`);
    const t = await timeRecording(ctx, record, { warmup: 1, runs, minRuns: Math.min(3, runs), label: 'depformer step' });
    return row(`depformer step (dim ${Dd}, ${dep.numLayers} layers, ${Q} codebook steps, per-step bf16 weights)`, t, bytes, copyGbps);
  } finally {
    depformer.destroy();
    for (const t of [...depIn, ...embs, ...linears, h, tokens, dIn, dOut, ...logits]) t.destroy();
  }
}

/** (2) One temporal transformer layer of the 7B (dim 4096, 32 heads, gated FFN 11264, bf16). */
async function benchTemporalLayer(ctx: GpuContext, seed: number, runs: number, copyGbps: number): Promise<Row> {
  const D = CFG.dim;
  const ffn = mainDimFeedforward(CFG); // 16896 nominal -> gating hidden 11264
  const hidden = gatingHidden(D, ffn);
  const w = new WeightMaker(seed + 2);
  transformerWeights(w, 'transformer.', D, 1, hidden, 1);
  const bytes = w.bytes();
  const vb = VarBuilder.fromEntries(ctx, w.entries, 'random 7B temporal layer');
  const tCfg: TransformerConfig = {
    dModel: D,
    numHeads: CFG.numHeads,
    numLayers: 1,
    dimFeedforward: ffn,
    causal: true,
    context: CFG.context,
    maxPeriod: CFG.maxPeriod,
    positionalEmbedding: CFG.positionalEmbedding,
    norm: CFG.norm,
    gating: CFG.gating,
    layerScale: CFG.layerScale,
  };
  const layer = await StreamingTransformer.load(ctx, vb.pp('transformer'), tCfg, 'native');
  vb.finish();
  w.entries.clear();
  const x = ctx.upload(new Rng(seed + 3).normals(D, 1), [1, D], 'f32', 'bench.x'); // [1, 4096]
  const y = ctx.tensor([1, D], 'f32', 'bench.y');
  const record = (rec: Recorder) => {
    layer.reset();
    layer.forward(rec, x, y);
  };
  try {
    const rec = ctx.record('layer check');
    record(rec);
    await rec.submit();
    const out = new Float32Array(await ctx.read(y));
    if (!out.every(Number.isFinite)) throw new Error('bench lm: the temporal layer produced non-finite values');
    const t = await timeRecording(ctx, record, { warmup: 1, runs, minRuns: Math.min(3, runs), label: 'temporal layer' });
    return row(`temporal transformer layer (dim ${D}, ${CFG.numHeads} heads, FFN ${hidden}, bf16), KV position 0`, t, bytes, copyGbps);
  } finally {
    layer.destroy();
    x.destroy();
    y.destroy();
  }
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      runs: { type: 'string', default: '5' },
      seed: { type: 'string', default: '1' },
      'skip-depformer': { type: 'boolean', default: false },
      'skip-layer': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const runs = Number(values.runs);
  const seed = Number(values.seed);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`bench lm: --runs must be a positive integer, got '${values.runs}'`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`bench lm: --seed must be a non-negative integer, got '${values.seed}'`);

  const ctx = await createBenchContext();
  try {
    const copy = await measureCopyBandwidth(ctx);
    const rows: Row[] = [];
    if (!values['skip-depformer']) rows.push(await benchDepformer(ctx, seed, runs, copy.gbps));
    let layer: Row | null = null;
    if (!values['skip-layer']) {
      layer = await benchTemporalLayer(ctx, seed, runs, copy.gbps);
      rows.push(layer);
      const L = CFG.numLayers;
      rows.push({ ...layer, what: `temporal transformer, ${L} layers (EXTRAPOLATED: ${L} × one layer)`, medianMs: L * layer.medianMs, weightBytes: L * layer.weightBytes });
    }
    const adapter = `${ctx.adapter.vendor} ${ctx.adapter.architecture}`.trim();
    printTable(
      ['what', 'median ms', 'weight MB/step', 'GB/s', 'of copy BW', 'timing', 'runs'],
      rows.map((r) => [r.what, r.medianMs, r.weightBytes / 1e6, r.gbps, r.fractionOfCopy, r.timing, r.runs]),
      `Moshi 7B LM pieces, seeded random bf16 weights, on ${adapter || 'this adapter'}; copy bandwidth ${copy.gbps.toFixed(2)} GB/s (read + write)`,
    );
    const path = writeResults('lm', { adapter: ctx.adapter, copyBandwidth: copy, config: 'MOSHI_7B_LM_KWARGS', seed, runs, rows });
    console.log(`\nwrote ${path}`);
  } finally {
    ctx.destroy();
  }
}
