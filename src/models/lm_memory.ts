/**
 * GPU memory of a Moshi LM as this engine stores it, computed from its configuration before
 * anything is uploaded: weights in their checkpoint format (kept packed: halves, int8, MLX words),
 * the KV caches for the chosen context, and the step's activations. Used to refuse a model that
 * cannot fit the adapter before a 15 GB upload starts, and to choose among the released variants.
 */
import { gatingHidden } from '../modules/gating.ts';
import type { LmConfig } from './lm_config.ts';
import { mainDimFeedforward } from './lm_config.ts';

/** How the LM's matrices are stored on the GPU. */
export type LmStorage =
  | { kind: 'f32' | 'f16' | 'bf16' }
  /** PyTorch q8: Linear weights int8 + f32 row scale; embeddings and norms bf16. */
  | { kind: 'q8' }
  /** MLX affine: Linear and Embedding weights `bits`-bit with bf16 scale + bias per group; norms bf16. */
  | { kind: 'affine'; bits: number; groupSize: number };

/** A matrix [rows, cols] of the model, and whether it is an embedding table. */
interface Matrix {
  name: string;
  rows: number;
  cols: number;
  embedding: boolean;
}

/** Every weight matrix of `LMModel(**cfg)` (conditioners excluded: they stay on the host). */
export function lmMatrices(cfg: LmConfig): { matrices: Matrix[]; vectors: number } {
  const D = cfg.dim;
  const Dd = cfg.depformer.dim;
  const m: Matrix[] = [];
  const add = (name: string, rows: number, cols: number, embedding = false) => m.push({ name, rows, cols, embedding });
  for (let k = 0; k < cfg.nQ; k++) add(`emb.${k}`, cfg.card + 1, D, true);
  add('text_emb', cfg.textCard + 1, D, true);
  add('text_linear', cfg.textCardOut, D);
  let vectors = D + (cfg.biasProj ? cfg.textCardOut : 0); // out_norm (+ bias)
  const H = gatingHidden(D, mainDimFeedforward(cfg));
  for (let l = 0; l < cfg.numLayers; l++) {
    add(`transformer.layers.${l}.in_proj`, 3 * D, D);
    add(`transformer.layers.${l}.out_proj`, D, D);
    if (cfg.gating === 'none') {
      add(`transformer.layers.${l}.linear1`, mainDimFeedforward(cfg), D);
      add(`transformer.layers.${l}.linear2`, D, mainDimFeedforward(cfg));
    } else {
      add(`transformer.layers.${l}.gating.linear_in`, 2 * H, D);
      add(`transformer.layers.${l}.gating.linear_out`, D, H);
    }
    vectors += (cfg.norm === 'layer_norm' ? 4 : 2) * D + (cfg.layerScale !== null ? 2 * D : 0);
  }
  if (cfg.depQ > 0) {
    const schedule = cfg.depformer.weightsPerStepSchedule;
    const sets = cfg.depformer.weightsPerStep ? (schedule ? Math.max(...schedule) + 1 : cfg.depQ) : 1;
    const nIn = cfg.depformer.multiLinear ? (schedule ? Math.max(...schedule) + 1 : cfg.depQ) : 1;
    for (let k = 0; k < nIn; k++) add(`depformer_in.${k}`, Dd, D);
    for (let k = 0; k < cfg.depQ - 1; k++) add(`depformer_emb.${k}`, cfg.card + 1, Dd, true);
    add('depformer_text_emb', cfg.textCard + 1, Dd, true);
    const Hd = gatingHidden(Dd, cfg.depformer.dimFeedforward);
    for (let l = 0; l < cfg.depformer.numLayers; l++) {
      for (let s = 0; s < sets; s++) {
        add(`depformer.layers.${l}.in_proj.${s}`, 3 * Dd, Dd);
        add(`depformer.layers.${l}.out_proj.${s}`, Dd, Dd);
        add(`depformer.layers.${l}.gating.${s}.linear_in`, 2 * Hd, Dd);
        add(`depformer.layers.${l}.gating.${s}.linear_out`, Dd, Hd);
      }
      vectors += 2 * Dd + (cfg.depformer.layerScale !== null ? 2 * Dd : 0);
    }
    for (let k = 0; k < cfg.depQ; k++) add(`linears.${k}`, cfg.card, Dd);
    if (cfg.depformer.norm) vectors += cfg.depQ * Dd * (cfg.depformer.norm === 'layer_norm' ? 2 : 1);
    if (cfg.biasProj) vectors += cfg.depQ * cfg.card;
  }
  for (let h = 0; h < cfg.extraHeadsNumHeads; h++) add(`extra_heads.${h}`, cfg.extraHeadsDim, D);
  return { matrices: m, vectors };
}

const word4 = (bytes: number) => Math.ceil(bytes / 4) * 4;

/** Bytes of one matrix stored as `s` (what VarBuilder.weight uploads). */
function matrixBytes(x: Matrix, s: LmStorage): number {
  const n = x.rows * x.cols;
  switch (s.kind) {
    case 'f32':
      return 4 * n;
    case 'f16':
    case 'bf16':
      return word4(2 * n);
    case 'q8':
      return x.embedding ? word4(2 * n) : word4(n) + 4 * x.rows;
    case 'affine': {
      const groups = x.rows * Math.ceil(x.cols / s.groupSize);
      return (n * s.bits) / 8 + 2 * word4(2 * groups);
    }
  }
}

/** GPU bytes of every weight of the LM stored as `s` (norms, layer scales and biases are kept f32). */
export function lmWeightBytes(cfg: LmConfig, s: LmStorage): number {
  const { matrices, vectors } = lmMatrices(cfg);
  return matrices.reduce((a, x) => a + matrixBytes(x, s), 0) + vectors * 4;
}

/**
 * GPU bytes of the KV caches (src/kernels/attention.ts KVCache: keys, values, flash-decoding
 * partials and, on the depformer's short caches, the qkv rows per layer): the temporal transformer over `context` steps plus the depformer's dep_q slots.
 */
export function lmKvCacheBytes(cfg: LmConfig, kv: 'f32' | 'f16', context = cfg.context): number {
  const layer = (d: number, h: number, cap: number) => {
    const dh = d / h;
    const kvBytes = kvTensorBytes(d, h, cap, kv);
    const splits = Math.ceil(cap / 256);
    // + KVCache.rows, f32 [cap, 3·d rounded up to 64], on caches of at most 16 slots (attention.ts kvRowsBytes, ROWS_MAX_SLOTS; not imported: this file stays free of GPU code).
    const rows = cap <= 16 ? 4 * cap * Math.ceil((3 * d) / 64) * 64 : 0;
    return 2 * kvBytes + (splits > 1 ? 4 * h * splits * (dh + 2) : 4) + rows;
  };
  const main = cfg.numLayers * layer(cfg.dim, cfg.numHeads, context);
  const dep = cfg.depQ > 0 ? cfg.depformer.numLayers * layer(cfg.depformer.dim, cfg.depformer.numHeads, cfg.depQ) : 0;
  return main + dep;
}

/** Bytes of one layer's keys (or values) [H, cap, Dh] in a `kv` cache: one GPU buffer, bound whole. */
function kvTensorBytes(d: number, h: number, cap: number, kv: 'f32' | 'f16'): number {
  const dh = d / h;
  return kv === 'f16' ? word4(2 * h * cap * (dh + (dh & 1))) : 4 * h * cap * dh;
}

/**
 * The largest KV-cache tensor: one temporal-transformer layer's keys (or values) over `context`
 * steps (the depformer's caches hold dep_q steps). It must fit one buffer and one binding.
 */
export function lmKvTensorBytes(cfg: LmConfig, kv: 'f32' | 'f16', context = cfg.context): number {
  return kvTensorBytes(cfg.dim, cfg.numHeads, context, kv);
}

/** Activations and scratch of one step (inputs, qkv, FFN hidden, logits; a few MB for the 7B). */
export function lmActivationBytes(cfg: LmConfig): number {
  const D = cfg.dim;
  const H = gatingHidden(D, mainDimFeedforward(cfg));
  const Dd = cfg.depformer.dim;
  const Hd = gatingHidden(Dd, cfg.depformer.dimFeedforward);
  const floats = 8 * D + 3 * D + 3 * H + cfg.textCardOut + 8 * Dd + 3 * Dd + 3 * Hd + cfg.depQ * cfg.card;
  return 4 * floats;
}

export interface LmMemory {
  weights: number;
  kvCache: number;
  activations: number;
  total: number;
  /** The largest single weight matrix (one GPU buffer: must fit maxBufferSize and maxStorageBufferBindingSize). */
  largestTensor: { name: string; bytes: number };
}

/** The whole LM's GPU memory in storage `s` with a `kv` cache over `context` steps. */
export function lmMemory(cfg: LmConfig, s: LmStorage, kv: 'f32' | 'f16', context = cfg.context): LmMemory {
  const weights = lmWeightBytes(cfg, s);
  const kvCache = lmKvCacheBytes(cfg, kv, context);
  const activations = lmActivationBytes(cfg);
  let largestTensor = { name: '', bytes: 0 };
  for (const x of lmMatrices(cfg).matrices) {
    const b = s.kind === 'affine' ? (x.rows * x.cols * s.bits) / 8 : matrixBytes(x, s);
    if (b > largestTensor.bytes) largestTensor = { name: x.name, bytes: b };
  }
  return { weights, kvCache, activations, total: weights + kvCache + activations, largestTensor };
}

/** Bytes as a short human string: '15.4 GB', '812 MB'. */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 1 : 2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(0)} MB`;
  return `${(n / 1e3).toFixed(0)} kB`;
}
