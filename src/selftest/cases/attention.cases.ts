import { type Tensor, roundThrough } from '../../gpu/index.ts';
import { KVCache, attention } from '../../kernels/attention.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { ropeRef } from './rope.cases.ts';

/**
 * CPU port of the official streaming attention (moshi/modules/transformer.py
 * `StreamingMultiheadAttention.forward` + `RingKVCache.complete`, batch 1), stateful: each
 * `step(qkv, T)` takes an in_proj output [T, 3D] and returns [T, D]. RoPE (interleaved) at
 * positions offset + t, ring writes at (offset + t) % cap, slot positions and mask exactly as
 * the official code computes them, softmax in f64.
 */
export class RingAttentionRef {
  private readonly kc: Float64Array;
  private readonly vc: Float64Array;
  endOffset = 0;
  /** `kvDtype` 'f16': keys (after RoPE) and values are rounded to f16 as the cache stores them. */
  constructor(readonly h: number, readonly dh: number, readonly cap: number, readonly context: number | null, readonly maxPeriod: number | null, readonly kvDtype: 'f32' | 'f16' = 'f32') {
    this.kc = new Float64Array(h * cap * dh);
    this.vc = new Float64Array(h * cap * dh);
  }

  reset(): void {
    this.endOffset = 0;
  }

  step(data: Float32Array, t: number): Float32Array {
    const { h, dh, cap, context, kc, vc } = this;
    const d = h * dh;
    const qkv = this.maxPeriod === null ? data : ropeRef(data, t, 3 * d, 2 * h, dh, this.endOffset, this.maxPeriod);
    for (let s = 0; s < t; s++) {
      const slot = (this.endOffset + s) % cap;
      for (let c = 0; c < d; c++) {
        const hh = Math.floor(c / dh);
        const dd = c % dh;
        const kv = [qkv[s * 3 * d + d + c], qkv[s * 3 * d + 2 * d + c]];
        const [k, v] = this.kvDtype === 'f16' ? roundThrough(kv, 'f16') : kv;
        kc[(hh * cap + slot) * dh + dd] = k;
        vc[(hh * cap + slot) * dh + dd] = v;
      }
    }
    const last = this.endOffset + t - 1;
    const endIndex = last % cap;
    const newEnd = this.endOffset + t;
    const pos = Array.from({ length: cap }, (_, j) => {
      const delta = j - endIndex;
      const p = delta <= 0 ? last + delta : last + delta - cap;
      return j >= newEnd ? -1 : p;
    });
    const out = new Float32Array(t * d);
    for (let s = 0; s < t; s++) {
      const posQ = this.endOffset + s;
      for (let hh = 0; hh < h; hh++) {
        const scores: number[] = [];
        const idx: number[] = [];
        for (let j = 0; j < cap; j++) {
          const delta = posQ - pos[j];
          if (!(pos[j] >= 0 && delta >= 0 && (context === null || delta < context))) continue;
          let dot = 0;
          for (let dd = 0; dd < dh; dd++) dot += qkv[s * 3 * d + hh * dh + dd] * kc[(hh * cap + j) * dh + dd];
          scores.push(dot / Math.sqrt(dh));
          idx.push(j);
        }
        const mx = Math.max(...scores);
        const p = scores.map((v) => Math.exp(v - mx));
        const sum = p.reduce((x, y) => x + y, 0);
        for (let dd = 0; dd < dh; dd++) {
          let acc = 0;
          idx.forEach((j, n) => (acc += p[n] * vc[(hh * cap + j) * dh + dd]));
          out[s * d + hh * dh + dd] = acc / sum;
        }
      }
    }
    this.endOffset = newEnd;
    return out;
  }
}

/** `RingAttentionRef` over a sequence of calls from a fresh cache: one [T, D] output per chunk. */
export function ringAttentionRef(
  chunks: { data: Float32Array; t: number }[], h: number, dh: number, cap: number, context: number | null, maxPeriod: number | null, kvDtype: 'f32' | 'f16' = 'f32',
): Float32Array[] {
  const ref = new RingAttentionRef(h, dh, cap, context, maxPeriod, kvDtype);
  return chunks.map((c) => ref.step(c.data, c.t));
}

interface AttnSpec {
  h: number;
  dh: number;
  cap: number;
  context: number | null;
  maxPeriod: number | null;
  /** Steps per call, recorded in order into one recording. */
  chunks: number[];
  seed: number;
  /** attention()'s flash-decoding choice (default 'auto': hardware adapters only). */
  split?: 'auto' | 'always' | 'never';
  /** KV cache storage (default f32). */
  kv?: 'f32' | 'f16';
  /** Fusion forced off: calls take the separate write pass instead of the attend pass's own write. */
  unfused?: boolean;
}

/**
 * The most cached slots one query of the case attends over: each recording starts from an empty
 * cache (record() resets it), so a query sees the slots written so far in that recording, at
 * most the capacity and the context window. A one-step case on a fresh cache attends over 1
 * slot however large its capacity.
 */
export function attendedSlots(s: Pick<AttnSpec, 'cap' | 'context' | 'chunks'>): number {
  const total = s.chunks.reduce((a, b) => a + b, 0);
  return Math.min(total, s.cap, s.context ?? Infinity);
}

/** 'attends over 1 slot', 'attends over 1..250 slots (causal)', 'attends over up to 8 slots': for case names. */
export function attendsLabel(s: Pick<AttnSpec, 'cap' | 'context' | 'chunks'>): string {
  const slots = attendedSlots(s);
  return `attends over ${slots === 1 ? '1 slot' : s.chunks.some((t) => t > 1) ? `1..${slots} slots (causal)` : `up to ${slots} slots`}`;
}

/** (query, slot) pairs attended over the case's queries: query p (0-based in the recording) sees min(p + 1, cap, context) slots. */
export function attendedPairs(s: Pick<AttnSpec, 'cap' | 'context' | 'chunks'>): number {
  const total = s.chunks.reduce((a, b) => a + b, 0);
  let pairs = 0;
  for (let p = 0; p < total; p++) pairs += Math.min(p + 1, s.cap, s.context ?? Infinity);
  return pairs;
}

function attentionCase(s: AttnSpec): KernelCase {
  const total = s.chunks.reduce((a, b) => a + b, 0);
  const attends = attendsLabel(s);
  const name = `attention H=${s.h} Dh=${s.dh} cap=${s.cap} context=${s.context} rope=${s.maxPeriod ?? 'none'} chunks=${s.chunks.length > 8 ? `${s.chunks.length}x${s.chunks[0]}` : s.chunks.join(',')}${s.split ? ` split=${s.split}` : ''}${s.kv ? ` kv=${s.kv}` : ''}${s.unfused ? ' unfused' : ''}: ${attends}`;
  return {
    name,
    setup(ctx) {
      const rng = new Rng(s.seed);
      const d = s.h * s.dh;
      const data = s.chunks.map((t) => ({ data: rng.normals(t * 3 * d, 1.5), t }));
      const qkvs = data.map((c, i) => ctx.upload(c.data, [c.t, 3 * d], 'f32', `qkv${i}`));
      const outs = s.chunks.map((t, i) => sentinelTensor(ctx, [t, d], `out${i}`));
      const cache = new KVCache(ctx, { numHeads: s.h, headDim: s.dh, capacity: s.cap, label: 'kv', dtype: s.kv });
      const rope = s.maxPeriod === null ? null : { maxPeriod: s.maxPeriod };
      return {
        record(rec) {
          cache.reset();
          const prev = ctx.kernelChoice;
          if (s.unfused) ctx.kernelChoice = { ...prev, fusion: 'off' };
          try {
            qkvs.forEach((qkv, i) => attention(rec, { qkv, out: outs[i], cache, numHeads: s.h, context: s.context, rope, split: s.split }));
          } finally {
            ctx.kernelChoice = prev;
          }
        },
        async check(c) {
          if (cache.offset !== total) throw new Error(`cache.offset ${cache.offset}, expected ${total}`);
          const want = ringAttentionRef(data, s.h, s.dh, s.cap, s.context, s.maxPeriod, s.kv ?? 'f32');
          // f16 KV: the GPU's f32 -> f16 conversion may round to either neighbour (WGSL), 1 ulp = 2^-11.
          const tol = s.kv === 'f16' ? { atol: 2e-3, rtol: 2e-3 } : { atol: 2e-5, rtol: 1e-4 };
          for (let i = 0; i < outs.length; i++) {
            assertClose(`${name} chunk ${i}`, await c.readF32(outs[i]), want[i], { ...tol, shape: [s.chunks[i], d] });
          }
        },
        // 4 FLOPs (q·k and p·v, multiply + add) per head channel per attended (query, slot) pair.
        flops: 4 * d * attendedPairs(s),
        bytes: s.chunks.reduce((a, t) => a + t * d * 16 + 2 * s.h * Math.min(s.cap, total) * s.dh * 4, 0),
        tensors: [...qkvs, ...outs, { destroy: () => cache.destroy() } as unknown as Tensor],
      };
    },
  };
}

export const attentionSuite: KernelSuite = {
  name: 'attention',
  tests: [
    attentionCase({ h: 1, dh: 2, cap: 1, context: 1, maxPeriod: 10000, chunks: [1, 1, 1], seed: 1 }),
    attentionCase({ h: 2, dh: 8, cap: 16, context: 16, maxPeriod: 10000, chunks: [5], seed: 2 }),
    // The ring wraps inside multi-step calls: the official cache then drops keys the window still allows.
    attentionCase({ h: 3, dh: 6, cap: 7, context: 7, maxPeriod: 10000, chunks: [3, 2, 4, 1, 5, 7, 2], seed: 3 }),
    // A window shorter than the cache (the cache keeps more than the mask allows).
    attentionCase({ h: 2, dh: 4, cap: 10, context: 4, maxPeriod: 10000, chunks: [3, 5, 4, 6], seed: 11 }),
    // Depformer-like: no context limit, capacity = steps, no RoPE, one step per call.
    attentionCase({ h: 4, dh: 8, cap: 8, context: null, maxPeriod: null, chunks: [1, 1, 1, 1, 1, 1, 1, 1], seed: 4 }),
    // No context limit with multi-step calls (the official non-streaming depformer training path).
    attentionCase({ h: 2, dh: 6, cap: 8, context: null, maxPeriod: null, chunks: [3, 2, 3], seed: 12 }),
    // Odd head dim without RoPE; head dims using 1..4 accumulators per thread.
    attentionCase({ h: 2, dh: 17, cap: 20, context: 20, maxPeriod: null, chunks: [3, 17], seed: 5 }),
    attentionCase({ h: 1, dh: 128, cap: 70, context: 70, maxPeriod: 10000, chunks: [63, 1, 2], seed: 6 }),
    attentionCase({ h: 1, dh: 256, cap: 5, context: 5, maxPeriod: 100000, chunks: [2, 3, 1], seed: 7 }),
    attentionCase({ h: 2, dh: 190, cap: 3, context: 3, maxPeriod: 10000, chunks: [1, 3, 2], seed: 8 }),
    // Mimi-like: many tiles of slots, long streams that wrap several times.
    attentionCase({ h: 4, dh: 16, cap: 250, context: 250, maxPeriod: 10000, chunks: [72], seed: 9 }),
    attentionCase({ h: 2, dh: 16, cap: 67, context: 67, maxPeriod: 10000, chunks: Array(90).fill(2), seed: 10 }),
    // The odd grid (ODD_SIZES): capacity and context from {1, 3, 17, 63, 315, 2179}, context = capacity
    // and context < capacity, chunk sequences that fill the ring and wrap it (total > capacity),
    // chunks of T = capacity, T > 1 chunks straddling the ring's end; few heads, small head dims.
    attentionCase({ h: 3, dh: 4, cap: 1, context: 1, maxPeriod: 100000, chunks: [1, 1, 1, 1, 1], seed: 20 }),
    attentionCase({ h: 1, dh: 3, cap: 1, context: null, maxPeriod: null, chunks: [1, 1, 1], seed: 21 }),
    attentionCase({ h: 3, dh: 4, cap: 3, context: 3, maxPeriod: 10000, chunks: [3, 1, 2, 3, 1, 2], seed: 22 }),
    attentionCase({ h: 1, dh: 8, cap: 3, context: 1, maxPeriod: 100000, chunks: [2, 3, 1, 2], seed: 23 }),
    attentionCase({ h: 17, dh: 2, cap: 17, context: 17, maxPeriod: 10000, chunks: [17, 3, 17, 1, 5], seed: 24 }),
    attentionCase({ h: 1, dh: 16, cap: 17, context: 3, maxPeriod: 100000, chunks: [5, 17, 9, 1, 3], seed: 25 }),
    attentionCase({ h: 3, dh: 17, cap: 17, context: null, maxPeriod: null, chunks: [10, 17], seed: 26 }),
    attentionCase({ h: 3, dh: 8, cap: 63, context: 63, maxPeriod: 10000, chunks: [63, 17, 63, 3], seed: 27 }),
    attentionCase({ h: 2, dh: 6, cap: 63, context: 17, maxPeriod: 100000, chunks: [1, 63, 31, 40], seed: 28 }),
    attentionCase({ h: 1, dh: 4, cap: 63, context: 1, maxPeriod: 10000, chunks: [17, 63, 3], seed: 29 }),
    attentionCase({ h: 1, dh: 4, cap: 315, context: 315, maxPeriod: 10000, chunks: [315, 63, 1, 17, 300], seed: 30 }),
    attentionCase({ h: 2, dh: 4, cap: 315, context: 63, maxPeriod: 100000, chunks: [200, 315, 17], seed: 31 }),
    attentionCase({ h: 1, dh: 4, cap: 2179, context: 2179, maxPeriod: 10000, chunks: [2179, 63, 1], seed: 32 }),
    attentionCase({ h: 1, dh: 4, cap: 2179, context: 2179, maxPeriod: 10000, chunks: [2179, 63, 1], seed: 33, split: 'always' }),
    // Flash-decoding (one step over more than SPLIT_SLOTS = 256 cached slots): slot ranges + combine,
    // before and after the ring wraps, head dims using 1, 2 and 4 accumulators, a window that leaves
    // whole ranges masked, and a split count that grows by one mid-stream.
    attentionCase({ h: 2, dh: 128, cap: 600, context: 600, maxPeriod: 10000, chunks: [500, 1, 1, 150, 1], seed: 40, split: 'always' }),
    attentionCase({ h: 1, dh: 256, cap: 520, context: 100, maxPeriod: 100000, chunks: [519, 1, 1, 1], seed: 41, split: 'always' }),
    attentionCase({ h: 3, dh: 6, cap: 1000, context: null, maxPeriod: null, chunks: [511, 1, 1, 299, 1], seed: 42, split: 'always' }),
    attentionCase({ h: 2, dh: 34, cap: 257, context: 257, maxPeriod: 10000, chunks: [255, 1, 1, 1, 100, 1], seed: 43, split: 'always' }),
    // f16 KV cache (packed halves): odd head dims (a padding half per row), wrap, window, T > 1, split.
    attentionCase({ h: 3, dh: 6, cap: 7, context: 7, maxPeriod: 10000, chunks: [3, 2, 4, 1, 5, 7, 2], seed: 50, kv: 'f16' }),
    attentionCase({ h: 2, dh: 17, cap: 20, context: 20, maxPeriod: null, chunks: [3, 17], seed: 51, kv: 'f16' }),
    attentionCase({ h: 1, dh: 3, cap: 5, context: 2, maxPeriod: null, chunks: [2, 3, 1, 4], seed: 52, kv: 'f16' }),
    attentionCase({ h: 2, dh: 128, cap: 300, context: 300, maxPeriod: 10000, chunks: [270, 1, 40, 1], seed: 53, kv: 'f16', split: 'always' }),
    attentionCase({ h: 4, dh: 8, cap: 8, context: null, maxPeriod: null, chunks: [1, 1, 1, 1, 1, 1, 1, 1], seed: 54, kv: 'f16' }),
    // The separate write pass (fusion off): one-step and multi-step calls, f32 / f16, whole and split.
    attentionCase({ h: 4, dh: 8, cap: 8, context: null, maxPeriod: null, chunks: [1, 1, 1, 1, 1, 1, 1, 1], seed: 60, unfused: true }),
    attentionCase({ h: 3, dh: 6, cap: 7, context: 7, maxPeriod: 10000, chunks: [3, 1, 1, 1, 1, 1, 1], seed: 61, kv: 'f16', unfused: true }),
    attentionCase({ h: 2, dh: 34, cap: 257, context: 257, maxPeriod: 10000, chunks: [255, 1, 1, 1], seed: 62, split: 'always', unfused: true }),
  ],
  bench: [
    attentionCase({ h: 32, dh: 128, cap: 3000, context: 3000, maxPeriod: 10000, chunks: [1], seed: 1 }),
    attentionCase({ h: 8, dh: 64, cap: 250, context: 250, maxPeriod: 10000, chunks: [250], seed: 2 }),
  ],
};
