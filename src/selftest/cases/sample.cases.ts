import type { GpuContext } from '../../gpu/index.ts';
import { sample } from '../../kernels/sample.ts';
import { assertEqualInts } from '../check.ts';
import type { KernelCase, KernelSuite } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { ODD_SIZES } from '../sizes.ts';

/** CPU reference: argmax with ties to the lowest index (torch.argmax). */
export function argmaxRef(row: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[b]) b = i;
  return b;
}

/** CPU reference: the top-k index set (ties at the k-th value to the lowest indices), k = 0 = all. */
export function topKSet(row: ArrayLike<number>, k: number): Set<number> {
  const idx = Array.from({ length: row.length }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  return new Set(idx.slice(0, k > 0 ? Math.min(k, row.length) : row.length));
}

/** softmax(row / temp) restricted to the top-k set, as sampling.py sample_top_k draws from. */
export function topKProbs(row: ArrayLike<number>, k: number, temp: number): Float64Array {
  const s = topKSet(row, k);
  let m = -Infinity;
  for (const i of s) m = Math.max(m, row[i] / temp);
  const p = new Float64Array(row.length);
  let z = 0;
  for (const i of s) z += p[i] = Math.exp(row[i] / temp - m);
  for (const i of s) p[i] /= z;
  return p;
}

const sentinelInts = (ctx: GpuContext, n: number, label: string) => ctx.upload(new Int32Array(n).fill(-7), [n], 'i32', label);

/** Logits with many exact ties (values on a coarse grid), so tie rules are exercised. */
function tiedLogits(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => Math.round(rng.normal() * 4) / 2);
}

function greedyCase(rows: number, v: number, seed: number, topK: number): KernelCase {
  return {
    name: `argmax rows=${rows} V=${v}${topK ? ` topK=${topK}` : ''}`,
    setup(ctx) {
      const data = tiedLogits(new Rng(seed), rows * v);
      const logits = ctx.upload(data, [rows, v], 'f32', 'logits');
      const out = sentinelInts(ctx, rows + 2, 'tokens');
      return {
        record: (rec) => sample(rec, logits, out, { temp: 0, topK, outOffset: 1 }),
        async check(c) {
          const got = (await c.read(out)) as Int32Array;
          const want = [-7, ...Array.from({ length: rows }, (_, r) => argmaxRef(data.subarray(r * v, (r + 1) * v))), -7];
          assertEqualInts(`argmax [${rows},${v}]`, got, want);
        },
        flops: rows * v,
        bytes: rows * v * 4 + rows * 4,
        tensors: [logits, out],
      };
    },
  };
}

/** Every sampled token lies in the row's top-k set (ties included by the lowest-index rule). */
function topKMembershipCase(rows: number, v: number, k: number, temp: number, seed: number): KernelCase {
  return {
    name: `top-k membership rows=${rows} V=${v} k=${k} temp=${temp}`,
    setup(ctx) {
      const data = tiedLogits(new Rng(seed), rows * v);
      const logits = ctx.upload(data, [rows, v], 'f32', 'logits');
      const out = sentinelInts(ctx, rows, 'tokens');
      return {
        record: (rec) => sample(rec, logits, out, { temp, topK: k, seed, draw: 3 }),
        async check(c) {
          const got = (await c.read(out)) as Int32Array;
          for (let r = 0; r < rows; r++) {
            const s = topKSet(data.subarray(r * v, (r + 1) * v), k);
            if (!s.has(got[r])) throw new Error(`row ${r}: sampled ${got[r]} is outside the top-${k} set {${[...s].slice(0, 30).join(',')}}`);
          }
        },
        flops: rows * v * 40,
        bytes: rows * v * 4,
        tensors: [logits, out],
      };
    },
  };
}

/** Frequencies over many rows (same logits, independent draws) match softmax(l/temp) on the top-k. */
function distributionCase(v: number, k: number, temp: number, rows: number): KernelCase {
  return {
    name: `distribution V=${v} k=${k} temp=${temp} n=${rows}`,
    setup(ctx) {
      const row = new Rng(99 + v).normals(v, 1.5);
      const data = new Float32Array(rows * v);
      for (let r = 0; r < rows; r++) data.set(row, r * v);
      const logits = ctx.upload(data, [rows, v], 'f32', 'logits');
      const out = sentinelInts(ctx, rows, 'tokens');
      return {
        record: (rec) => sample(rec, logits, out, { temp, topK: k, seed: 1234, draw: 0 }),
        async check(c) {
          const got = (await c.read(out)) as Int32Array;
          const p = topKProbs(row, k, temp);
          const counts = new Float64Array(v);
          for (const t of got) counts[t]++;
          for (let i = 0; i < v; i++) {
            const f = counts[i] / rows;
            const sd = Math.sqrt(Math.max(p[i] * (1 - p[i]), 1e-12) / rows);
            if (p[i] === 0 && counts[i] > 0) throw new Error(`token ${i} has probability 0 (outside top-${k}) but was drawn ${counts[i]} times`);
            if (Math.abs(f - p[i]) > 5 * sd + 1e-3) throw new Error(`token ${i}: frequency ${f.toFixed(4)}, expected ${p[i].toFixed(4)} (±${(5 * sd).toFixed(4)})`);
          }
        },
        flops: rows * v * 40,
        bytes: rows * v * 4,
        tensors: [logits, out],
      };
    },
  };
}

/** The same seed and draw repeat bit for bit; another draw index gives other tokens. */
function repeatCase(v: number, k: number): KernelCase {
  const rows = 64;
  return {
    name: `seed repeats V=${v} k=${k}`,
    setup(ctx) {
      const data = new Rng(5).normals(rows * v, 0.3);
      const logits = ctx.upload(data, [rows, v], 'f32', 'logits');
      const out = sentinelInts(ctx, 4 * rows, 'tokens');
      return {
        record(rec) {
          sample(rec, logits, out, { temp: 1, topK: k, seed: 42, draw: 7, outOffset: 0 });
          sample(rec, logits, out, { temp: 1, topK: k, seed: 42, draw: 7, outOffset: rows });
          sample(rec, logits, out, { temp: 1, topK: k, seed: 42, draw: 8, outOffset: 2 * rows });
          sample(rec, logits, out, { temp: 1, topK: k, seed: 43, draw: 7, outOffset: 3 * rows });
        },
        async check(c) {
          const got = (await c.read(out)) as Int32Array;
          assertEqualInts('same seed and draw', got.subarray(rows, 2 * rows), got.subarray(0, rows));
          const differ = (a: Int32Array, b: Int32Array) => a.reduce((n, x, i) => n + (x !== b[i] ? 1 : 0), 0);
          const d1 = differ(got.subarray(0, rows), got.subarray(2 * rows, 3 * rows));
          const d2 = differ(got.subarray(0, rows), got.subarray(3 * rows, 4 * rows));
          if (d1 < rows / 4) throw new Error(`another draw index changed only ${d1}/${rows} tokens`);
          if (d2 < rows / 4) throw new Error(`another seed changed only ${d2}/${rows} tokens`);
        },
        flops: 4 * rows * v * 40,
        bytes: 4 * rows * v * 4,
        tensors: [logits, out],
      };
    },
  };
}

export const sampleSuite: KernelSuite = {
  name: 'sample',
  tests: [
    ...ODD_SIZES.map((v, i) => greedyCase(v > 300 ? 2 : 3, v, 10 + i, 0)),
    greedyCase(2, 315, 31, 5),
    ...[1, 3, 17, 63, 315, 2179].map((v, i) => topKMembershipCase(v > 300 ? 8 : 32, v, Math.min(v, [1, 2, 5, 25, 40, 250][i]), 0.8, 20 + i)),
    topKMembershipCase(32, 63, 1, 1.0, 41),
    distributionCase(17, 5, 0.8, 1500),
    distributionCase(17, 0, 1.3, 2000),
    repeatCase(315, 25),
  ],
  bench: [greedyCase(1, 32000, 1, 0), topKMembershipCase(1, 32000, 25, 0.7, 2), topKMembershipCase(8, 2048, 250, 0.8, 3)],
};
