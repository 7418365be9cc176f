/**
 * `npm run bench -- lm [--format bf16,q8,mlx-q8,q4] [--runs N] [--seed S] [--skip-depformer] [--skip-layer]`
 *
 * The Moshi 7B LM's per-frame work at its real sizes, on this adapter (Node, Dawn), with seeded
 * random weights generated in memory (VarBuilder.fromEntries; no file read) in each requested
 * storage format (default bf16): 'bf16' (kyutai/moshiko-pytorch-bf16), 'q8' (PyTorch int8 + row
 * scale, embeddings bf16: moshiko-pytorch-q8), 'mlx-q8' (MLX affine 8-bit, group 64) and 'q4'
 * (MLX affine 4-bit, group 32; linears and embeddings quantized: moshiko-mlx-q4):
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
 * Reported per format: median ms (GPU timestamps when the adapter has them, else wall time),
 * weight bytes read per step, GB/s = weight bytes / time, and that as a fraction of the adapter's
 * copy bandwidth measured in the same run (bench/common.ts measureCopyBandwidth); the whole
 * model's GPU memory in that format (src/models/lm_memory.ts), the bytes a full 7B step reads and
 * the lower bound on its time those bytes give on a few GPUs from their published memory
 * bandwidth (an ESTIMATE, labelled so). Weights: bf16 matrices N(0, 1/fan_in), random int8 / MLX
 * words with small random scales, RMSNorm alpha 1 (f32), bf16 embeddings N(0, 1).
 * Writes bench/results/lm-<time>.json.
 */
import { parseArgs } from 'node:util';
import type { GpuContext, Recorder, WeightTensor } from '../src/gpu/index.ts';
import { embedding } from '../src/kernels/embedding.ts';
import { linear } from '../src/kernels/linear.ts';
import { sample } from '../src/kernels/sample.ts';
import { MOSHI_7B_LM_KWARGS, mainDimFeedforward, parseLmConfig } from '../src/models/lm_config.ts';
import { type LmStorage, formatBytes, lmMatrices, lmMemory } from '../src/models/lm_memory.ts';
import { StreamingTransformer, type TransformerConfig, gatingHidden } from '../src/modules/transformer.ts';
import type { TensorEntry } from '../src/weights/safetensors.ts';
import { VarBuilder, hostToEntry } from '../src/weights/var_builder.ts';
import { Rng } from '../src/selftest/rng.ts';
import { createBenchContext, measureCopyBandwidth, printTable, timeRecording, writeResults, type Timing } from './common.ts';

const CFG = parseLmConfig(MOSHI_7B_LM_KWARGS, 'MOSHI_7B_LM_KWARGS');

/** Storage formats the benchmark builds, as the published checkpoints store them. */
const FORMATS: Record<string, LmStorage> = {
  bf16: { kind: 'bf16' },
  q8: { kind: 'q8' },
  'mlx-q8': { kind: 'affine', bits: 8, groupSize: 64 },
  q4: { kind: 'affine', bits: 4, groupSize: 32 },
};

/**
 * Seeded random weights in one storage format: matrices (`X.weight`) as bf16 N(0, 1/fan_in), int8
 * + f32 `X.weight_scb` (q8), or MLX words + bf16 `X.scales` / `X.biases` (affine); embeddings bf16
 * N(0, 1) (affine: quantized like the matrices); `.alpha` = 1 (f32).
 */
class WeightMaker {
  readonly entries = new Map<string, TensorEntry>();
  private readonly rng: Rng;
  private state: number;
  constructor(seed: number, readonly format: LmStorage) {
    this.rng = new Rng(seed);
    this.state = (seed * 2654435761) >>> 0 || 1;
  }
  /** Random bytes (xorshift32: fast at hundreds of MB). */
  private bytesOf(n: number): Uint8Array {
    const words = new Uint32Array(Math.ceil(n / 4));
    let x = this.state;
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[i] = x >>> 0;
    }
    this.state = x >>> 0;
    return new Uint8Array(words.buffer, 0, n);
  }
  private quantized(name: string, shape: number[]): void {
    const [n, k] = shape;
    const f = this.format;
    const base = name.replace(/\.weight$/, '');
    if (f.kind === 'q8') {
      this.entries.set(name, { name, dtype: 'I8', shape, data: this.bytesOf(n * k) });
      this.entries.set(`${name}_scb`, hostToEntry(`${name}_scb`, this.rng.uniforms(n, 0.5, 2), [n], 'F32'));
    } else if (f.kind === 'affine') {
      const groups = k / f.groupSize;
      const cols = (k * f.bits) / 32;
      this.entries.set(name, { name, dtype: 'U32', shape: [n, cols], data: this.bytesOf(n * cols * 4) });
      this.entries.set(`${base}.scales`, hostToEntry(`${base}.scales`, this.rng.uniforms(n * groups, -0.02, 0.02), [n, groups], 'BF16'));
      this.entries.set(`${base}.biases`, hostToEntry(`${base}.biases`, this.rng.uniforms(n * groups, -0.1, 0.1), [n, groups], 'BF16'));
    }
  }
  matrix(name: string, shape: number[]): void {
    if (this.format.kind === 'q8' || this.format.kind === 'affine') return this.quantized(name, shape);
    const n = shape.reduce((a, b) => a * b, 1);
    this.entries.set(name, hostToEntry(name, this.rng.normals(n, 1 / Math.sqrt(shape[shape.length - 1])), shape, 'BF16'));
  }
  embedding(name: string, shape: number[]): void {
    if (this.format.kind === 'affine') return this.quantized(name, shape);
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

/** Keys of a StreamingTransformer with `layers` layers (module layout `in_projs.{s}`, as the q8 checkpoint; gated FFN). */
function transformerWeights(w: WeightMaker, prefix: string, dim: number, layers: number, hidden: number, steps: number): void {
  for (let l = 0; l < layers; l++) {
    const p = `${prefix}layers.${l}.`;
    w.alpha(`${p}norm1.alpha`, dim);
    w.alpha(`${p}norm2.alpha`, dim);
    for (let s = 0; s < steps; s++) {
      w.matrix(`${p}self_attn.in_projs.${s}.weight`, [3 * dim, dim]);
      w.matrix(`${p}self_attn.out_projs.${s}.weight`, [dim, dim]);
    }
    for (let s = 0; s < steps; s++) {
      const g = steps > 1 ? `${p}gating.${s}.` : `${p}gating.`;
      w.matrix(`${g}linear_in.weight`, [2 * hidden, dim]);
      w.matrix(`${g}linear_out.weight`, [dim, hidden]);
    }
  }
}

interface Row {
  format: string;
  what: string;
  medianMs: number;
  weightBytes: number;
  gbps: number;
  fractionOfCopy: number;
  timing: Timing['source'];
  runs: number;
}

function row(format: string, what: string, t: Timing, bytes: number, copyGbps: number): Row {
  const gbps = bytes / (t.medianMs * 1e6);
  return { format, what, medianMs: t.medianMs, weightBytes: bytes, gbps, fractionOfCopy: gbps / copyGbps, timing: t.source, runs: t.runs };
}

/** (1) One full depformer step of the 7B: 8 codebook steps, per-step weights, greedy sampling. */
async function benchDepformer(ctx: GpuContext, format: string, seed: number, runs: number, copyGbps: number): Promise<Row> {
  const D = CFG.dim; // 4096
  const dep = CFG.depformer;
  const Dd = dep.dim; // 1024
  const Q = CFG.depQ; // 8
  const hidden = gatingHidden(Dd, dep.dimFeedforward); // 2816
  const w = new WeightMaker(seed, FORMATS[format]);
  for (let k = 0; k < Q; k++) w.matrix(`depformer_in.${k}.weight`, [Dd, D]);
  for (let k = 0; k < Q - 1; k++) w.embedding(`depformer_emb.${k}.weight`, [CFG.card + 1, Dd]);
  w.embedding('depformer_text_emb.weight', [CFG.textCard + 1, Dd]);
  transformerWeights(w, 'depformer.', Dd, dep.numLayers, hidden, Q);
  for (let k = 0; k < Q; k++) w.matrix(`linears.${k}.weight`, [CFG.card, Dd]);
  // Bytes read per step: every matrix once (depformer_in, per-step layer weights, linears, norms),
  // plus one embedding row per codebook step (not the whole tables).
  const rowBytes = w.bytes((k) => k.startsWith('depformer_text_emb')) / (CFG.textCard + 1);
  const bytes = w.bytes((k) => !/emb/.test(k)) + Q * rowBytes;

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
  const depIn = Array.from({ length: Q }, (_, k) => vb.pp('depformer_in').pp(k).weight('weight', [Dd, D], 'native'));
  const embs: WeightTensor[] = [vb.pp('depformer_text_emb').weight('weight', [CFG.textCard + 1, Dd], 'native'),
    ...Array.from({ length: Q - 1 }, (_, k) => vb.pp('depformer_emb').pp(k).weight('weight', [CFG.card + 1, Dd], 'native'))];
  const linears = Array.from({ length: Q }, (_, k) => vb.pp('linears').pp(k).weight('weight', [CFG.card, Dd], 'native'));
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
    return row(format, `depformer step (dim ${Dd}, ${dep.numLayers} layers, ${Q} codebook steps, per-step weights)`, t, bytes, copyGbps);
  } finally {
    depformer.destroy();
    for (const t of [...depIn, ...embs, ...linears, h, tokens, dIn, dOut, ...logits]) t.destroy();
  }
}

/** (2) One temporal transformer layer of the 7B (dim 4096, 32 heads, gated FFN 11264, bf16). */
async function benchTemporalLayer(ctx: GpuContext, format: string, seed: number, runs: number, copyGbps: number): Promise<Row> {
  const D = CFG.dim;
  const ffn = mainDimFeedforward(CFG); // 16896 nominal -> gating hidden 11264
  const hidden = gatingHidden(D, ffn);
  const w = new WeightMaker(seed + 2, FORMATS[format]);
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
    return row(format, `temporal transformer layer (dim ${D}, ${CFG.numHeads} heads, FFN ${hidden}), KV position 0`, t, bytes, copyGbps);
  } finally {
    layer.destroy();
    x.destroy();
    y.destroy();
  }
}

/** Published memory bandwidth of a few GPUs (GB/s), for the lower bound on a step's time. */
const GPU_BANDWIDTH: [string, number][] = [
  ['NVIDIA H200', 4800],
  ['NVIDIA RTX 4090', 1008],
  ['NVIDIA RTX 4060 Laptop', 256],
  ['Apple M3 Max (400 GB/s)', 400],
  ['Apple M3', 100],
];

/**
 * Bytes one full 7B step reads in `s`: every matrix except the embedding tables once, one row of
 * each of the 17 input and 8 depformer embeddings, norms. From the config, not measured.
 */
function stepBytes(s: LmStorage): number {
  const { matrices } = lmMatrices(CFG);
  let b = lmMemory(CFG, s, 'f16').weights;
  let lookups = 0;
  for (const m of matrices) {
    if (!m.embedding) continue;
    const perRow = (s.kind === 'affine' ? (m.cols * s.bits) / 8 + (4 * m.cols) / s.groupSize : s.kind === 'f32' ? 4 * m.cols : 2 * m.cols);
    b -= perRow * m.rows;
    lookups += perRow;
  }
  return b + lookups;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      format: { type: 'string', default: 'bf16' },
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
  const formats = String(values.format).split(',').map((f) => f.trim()).filter(Boolean);
  const unknown = formats.filter((f) => !Object.hasOwn(FORMATS, f));
  if (!formats.length || unknown.length) throw new Error(`bench lm: unknown --format ${unknown.join(', ') || "''"}; formats: ${Object.keys(FORMATS).join(', ')} (comma-separated)`);

  const ctx = await createBenchContext();
  try {
    const copy = await measureCopyBandwidth(ctx);
    const rows: Row[] = [];
    for (const format of formats) {
      if (!values['skip-depformer']) rows.push(await benchDepformer(ctx, format, seed, runs, copy.gbps));
      if (!values['skip-layer']) {
        const layer = await benchTemporalLayer(ctx, format, seed, runs, copy.gbps);
        rows.push(layer);
        const L = CFG.numLayers;
        rows.push({ ...layer, what: `temporal transformer, ${L} layers (EXTRAPOLATED: ${L} × one layer)`, medianMs: L * layer.medianMs, weightBytes: L * layer.weightBytes });
      }
    }
    const adapter = `${ctx.adapter.vendor} ${ctx.adapter.architecture}`.trim();
    printTable(
      ['format', 'what', 'median ms', 'weight MB/step', 'GB/s', 'of copy BW', 'timing', 'runs'],
      rows.map((r) => [r.format, r.what, r.medianMs, r.weightBytes / 1e6, r.gbps, r.fractionOfCopy, r.timing, r.runs]),
      `Moshi 7B LM pieces, seeded random weights, on ${adapter || 'this adapter'}; copy bandwidth ${copy.gbps.toFixed(2)} GB/s (read + write)`,
    );
    const paper = formats.map((f) => {
      const s = FORMATS[f];
      const mem = lmMemory(CFG, s, 'f16');
      const bytes = stepBytes(s);
      return { format: f, gpuMemory: mem.total, weights: mem.weights, kvCache: mem.kvCache, bytesPerStep: bytes, lowerBoundMs: Object.fromEntries(GPU_BANDWIDTH.map(([g, bw]) => [g, bytes / (bw * 1e6)])) };
    });
    printTable(
      ['format', 'GPU memory (7B)', 'weights', 'KV cache', 'MB read/step', ...GPU_BANDWIDTH.map(([g]) => `ms ≥ ${g}`)],
      paper.map((p) => [p.format, formatBytes(p.gpuMemory), formatBytes(p.weights), formatBytes(p.kvCache), p.bytesPerStep / 1e6, ...GPU_BANDWIDTH.map(([g]) => p.lowerBoundMs[g])]),
      'The whole Moshi 7B step on paper (from the config; ESTIMATE: bytes read per step / published memory bandwidth, a lower bound ignoring compute, dispatch overhead and the KV cache reads)',
    );
    const path = writeResults('lm', { adapter: ctx.adapter, copyBandwidth: copy, config: 'MOSHI_7B_LM_KWARGS', seed, runs, formats, rows, paper });
    console.log(`\nwrote ${path}`);
  } finally {
    ctx.destroy();
  }
}
