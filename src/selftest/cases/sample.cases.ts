import { type GpuContext, type Tensor, type WeightTensor, roundThrough } from '../../gpu/index.ts';
import { canFuseSampleEmbedding, sample } from '../../kernels/sample.ts';
import { assertClose, assertEqualInts } from '../check.ts';
import type { KernelCase, KernelSuite } from '../kernel_case.ts';
import { type QuantSpec, makeQuantized, specName } from './linear_quant.cases.ts';
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

/** Quantile of the chi-square distribution with `df` degrees of freedom at standard-normal z (Wilson–Hilferty; within 1% of the exact value for df >= 3 in the tail used here). */
export function chi2Quantile(df: number, z: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

/** One-sided standard-normal quantile of the false-alarm rate 1e-6: a correct sampler fails for fewer than one seed in 10^6. */
const Z_FALSE_ALARM = 4.753;
/** Required separation of a wrong setting's expected statistic from the threshold, in its own standard deviations. */
const POWER_SIGMAS = 6;

/**
 * Chi-square bins over the support of `p` (the top-k set): tokens by decreasing probability,
 * consecutive ranks pooled into about `target` bins of equal mass, except the least likely token of
 * the support (the truncation boundary: rank k-1), which is a bin of its own. Returns each bin's
 * tokens.
 */
function rankBins(p: Float64Array, target: number): number[][] {
  const support = Array.from(p.keys()).filter((i) => p[i] > 0).sort((a, b) => p[b] - p[a] || a - b);
  const last = support.pop()!;
  const rest = support.reduce((m, i) => m + p[i], 0);
  const bins: number[][] = [];
  let cur: number[] = [];
  let mass = 0;
  for (const i of support) {
    cur.push(i);
    mass += p[i];
    if (mass >= rest / (target - 1)) {
      bins.push(cur);
      cur = [];
      mass = 0;
    }
  }
  if (cur.length) bins.push(cur);
  bins.push([last]);
  return bins;
}

/** Chi-square bins of single tokens of the support (those expected fewer than 5 times in n draws pooled into one bin). */
function tokenBins(p: Float64Array, n: number): number[][] {
  const support = Array.from(p.keys()).filter((i) => p[i] > 0);
  const small = support.filter((i) => n * p[i] < 5);
  const bins = support.filter((i) => n * p[i] >= 5).map((i) => [i]);
  if (small.length) bins.push(small);
  return bins;
}

/** Pearson's statistic of `counts` (per token, n draws) against `p` over `bins`; also the noncentrality N·Σ(q−p)²/p of a distribution q. */
function chi2(bins: number[][], p: Float64Array, counts: ArrayLike<number>, n: number): number {
  let x = 0;
  for (const b of bins) {
    let e = 0;
    let o = 0;
    for (const i of b) {
      e += n * p[i];
      o += counts[i];
    }
    x += ((o - e) * (o - e)) / e;
  }
  return x;
}
function noncentrality(bins: number[][], p: Float64Array, q: Float64Array, n: number): number {
  let l = 0;
  for (const b of bins) {
    let pb = 0;
    let qb = 0;
    for (const i of b) {
      pb += p[i];
      qb += q[i];
    }
    l += (n * (qb - pb) * (qb - pb)) / pb;
  }
  return l;
}

/**
 * Logits with a known top-k structure, at random positions: the k admitted values on an even
 * ladder from `spread` down to 0 (so temperature shapes the distribution strongly), the first
 * excluded value just below (-0.05, so including it by an off-by-one draws it often), the rest
 * well below (-0.2 .. -3.2).
 */
function ladderLogits(v: number, k: number, spread: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const vals = Array.from({ length: v }, (_, rank) => (rank < k ? (k === 1 ? spread : spread * (1 - rank / (k - 1))) : rank === k ? -0.05 : -0.2 - 3 * rng.next()));
  const pos = Array.from({ length: v }, (_, i) => i);
  for (let i = v - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [pos[i], pos[j]] = [pos[j], pos[i]];
  }
  const out = new Float32Array(v);
  vals.forEach((x, rank) => (out[pos[rank]] = x));
  return out;
}

/**
 * The sampler's distribution equals the exact tempered top-k softmax: `rows × draws` draws (≥ 2^17
 * for the model's settings) from one logits row, compared by two Pearson chi-square tests, one over
 * rank bins (rankBins), one over single tokens (tokenBins), each with its threshold at false-alarm
 * rate 1e-6; any draw outside the top-k set fails at once. Before sampling, the case proves its own
 * power: for each wrong setting (another temperature, top-k k-1, i.e. the truncation one short)
 * the expected statistic (df + λ, λ the noncentrality) of one of the tests must clear its
 * threshold by POWER_SIGMAS of its standard deviation √(2(df + 2λ)),
 * and for top-k k+1 (one too many) the extra token's expected count must exceed 21
 * (P(never drawn) < 1e-9); a case may waive the top-k k-1 proof (`proveKMinus1: false`). So a sampler with temperature 1.0 for 0.8, top-k 249 for 250 or an
 * off-by-one in the truncation fails for every seed but a negligible fraction.
 */
function exactDistributionCase(label: string, v: number, k: number, temp: number, wrongTemps: number[], rows: number, draws: number, opts: { spread?: number; proveKMinus1?: boolean } = {}): KernelCase {
  const spread = opts.spread ?? 1.2;
  const n = rows * draws;
  return {
    name: `exact distribution ${label}: V=${v} k=${k} temp=${temp}, ${n} draws`,
    setup(ctx) {
      const row = ladderLogits(v, k, spread, 1000 + v + k);
      const p = topKProbs(row, k, temp);
      // Two chi-square tests, each at false-alarm rate 1e-6: rank bins (shape: temperature, the
      // boundary token) and single tokens (any one token's probability).
      const tests = [{ name: 'rank bins', bins: rankBins(p, 32) }, { name: 'single tokens', bins: tokenBins(p, n) }].map((t) => ({ ...t, df: t.bins.length - 1, threshold: chi2Quantile(t.bins.length - 1, Z_FALSE_ALARM) }));
      const alternatives: [string, Float64Array][] = [
        ...wrongTemps.map((t): [string, Float64Array] => [`temp ${t}`, topKProbs(row, k, t)]),
        ...(k > 1 && opts.proveKMinus1 !== false ? [[`top-k ${k - 1}`, topKProbs(row, k - 1, temp)] as [string, Float64Array]] : []),
      ];
      for (const [what, q] of alternatives) {
        // Power: the better of the two tests must put the wrong setting's expected statistic POWER_SIGMAS above its threshold.
        const margins = tests.map(({ bins, df, threshold }) => {
          const lambda = noncentrality(bins, p, q, n);
          return { lambda, df, threshold, sd: (df + lambda - threshold) / Math.sqrt(2 * (df + 2 * lambda)) };
        });
        if (Math.max(...margins.map((m) => m.sd)) < POWER_SIGMAS) {
          throw new Error(`test design: with ${what} the expected chi-square is only ${margins.map((m) => `${m.sd.toFixed(1)} sd (df ${m.df}: ${(m.df + m.lambda).toFixed(0)} vs ${m.threshold.toFixed(0)})`).join(' / ')} above the thresholds; draw more`);
        }
      }
      if (k > 0 && k < v) {
        const extra = topKProbs(row, k + 1, temp);
        const outside = extra.reduce((m, x, i) => m + (p[i] === 0 ? x : 0), 0);
        if (n * outside < 21) throw new Error(`test design: with top-k ${k + 1} the extra token is expected ${(n * outside).toFixed(1)} times; draw more`);
      }
      const data = new Float32Array(rows * v);
      for (let r = 0; r < rows; r++) data.set(row, r * v);
      const logits = ctx.upload(data, [rows, v], 'f32', 'logits');
      const out = sentinelInts(ctx, n, 'tokens');
      return {
        record: (rec) => sample(rec, logits, out, { temp, topK: k, seed: 2024 + v, draw: 5, draws }),
        async check(c) {
          const got = (await c.read(out)) as Int32Array;
          const counts = new Float64Array(v);
          for (let i = 0; i < n; i++) {
            const t = got[i];
            if (!(t >= 0 && t < v)) throw new Error(`draw ${i} (row ${Math.floor(i / draws)}) wrote ${t}, not a token of [0, ${v})`);
            if (p[t] === 0) throw new Error(`draw ${i}: token ${t} is outside the top-${k} set (logit ${row[t]}, the k-th largest is ${Math.min(...Array.from(row).filter((_, j) => p[j] > 0))})`);
            counts[t]++;
          }
          const failed = tests.flatMap(({ name, bins, df, threshold }) => {
            const x = chi2(bins, p, counts, n);
            if (x <= threshold) return [];
            const worst = bins.map((bin) => {
              const e = bin.reduce((m, i) => m + n * p[i], 0);
              const o = bin.reduce((m, i) => m + counts[i], 0);
              return { bin, e, o, z: (o - e) / Math.sqrt(e) };
            }).sort((a, b) => Math.abs(b.z) - Math.abs(a.z))[0];
            return [`chi-square (${name}) ${x.toFixed(1)} > ${threshold.toFixed(1)} (df ${df}; worst bin: ${worst.bin.length} token(s) from ${worst.bin[0]}, ${worst.o} draws, expected ${worst.e.toFixed(1)}, z = ${worst.z.toFixed(1)})`];
          });
          if (failed.length) throw new Error(`not softmax(logits / ${temp}) on the top-${k} (false-alarm rate 1e-6 per test): ${failed.join('; ')}`);
        },
        flops: n * Math.min(k || v, v) * 40,
        bytes: rows * v * 4 + n * 4,
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

/**
 * The finiteness check folded into sampling (opts.check): rows of tied logits, one element
 * `bad` (NaN / ±Infinity) at flat index `badAt` (null: all finite). The flag word is pre-set to
 * 4 (must survive) with a sentinel in element 1: expect 4 | 2 with a bad value, 4 without. The
 * same sample without the check, into a second buffer, must give the same tokens (the check does
 * not change sampling), and greedy tokens of a clean case must be the argmax.
 */
function checkedCase(rows: number, v: number, temp: number, topK: number, badAt: number | null, bad: number, seed: number): KernelCase {
  const what = badAt === null ? 'clean' : `${bad} at ${badAt}`;
  return {
    name: `finiteness check rows=${rows} V=${v} temp=${temp} k=${topK} ${what}`,
    setup(ctx) {
      const data = tiedLogits(new Rng(seed), rows * v);
      if (badAt !== null) data[badAt] = bad;
      const logits = ctx.upload(data, [rows, v], 'f32', 'logits');
      const out = sentinelInts(ctx, rows, 'tokens');
      const ref = sentinelInts(ctx, rows, 'tokens (unchecked)');
      const flags = ctx.upload(new Uint32Array([4, 0xdead]), [2], 'u32', 'flags');
      return {
        record(rec) {
          sample(rec, logits, out, { temp, topK, seed, draw: 9, check: { flags, bit: 2 } });
          sample(rec, logits, ref, { temp, topK, seed, draw: 9 });
        },
        async check(c) {
          const f = new Uint32Array(((await c.read(flags)) as Uint32Array).buffer.slice(0));
          const want = badAt === null ? 4 : 4 | 2;
          if (f[0] !== want || f[1] !== 0xdead) throw new Error(`flags [${f[0]}, ${f[1]}], expected [${want}, ${0xdead}] (${what}, rows ${rows} × V ${v})`);
          if (badAt !== null) return;
          const got = (await c.read(out)) as Int32Array;
          assertEqualInts(`checked vs unchecked tokens [${rows},${v}]`, got, (await c.read(ref)) as Int32Array);
          if (temp <= 0) assertEqualInts(`checked argmax [${rows},${v}]`, got, Array.from({ length: rows }, (_, r) => argmaxRef(data.subarray(r * v, (r + 1) * v))));
        },
        flops: 2 * rows * v,
        bytes: 2 * rows * v * 4,
        tensors: [logits, out, ref, flags],
      };
    },
  };
}

type TableFormat = 'f32' | 'f16' | 'bf16' | QuantSpec;

/**
 * The embedding fused after the draw (opts.embed; the depformer's depformer_emb[k](token) added to
 * its next input): one row of V logits, a table [V + 1, D] of `fmt` (card + 1 rows, as
 * depformer_emb), y [yOffset + D + 5] random. Expects the same token as the sample without the
 * embedding, y[yOffset + d] = y0 + table[token, d] (table as the GPU holds it), y elsewhere unchanged.
 */
function embedCase(fmt: TableFormat, v: number, d: number, temp: number, topK: number, yOffset: number, seed: number): KernelCase {
  const name = `embedding ${typeof fmt === 'string' ? fmt : specName(fmt)} V=${v} D=${d} temp=${temp} k=${topK} at ${yOffset}`;
  return {
    name,
    setup(ctx) {
      const rng = new Rng(seed);
      const data = rng.normals(v, 1);
      const logits = ctx.upload(data, [1, v], 'f32', 'logits');
      const out = sentinelInts(ctx, 2, 'tokens');
      const ref = sentinelInts(ctx, 1, 'tokens (no embedding)');
      let table: WeightTensor;
      let deq: Float32Array;
      if (typeof fmt === 'string') {
        deq = roundThrough(rng.normals((v + 1) * d, 1), fmt);
        table = ctx.upload(deq, [v + 1, d], fmt, 'table');
      } else {
        ({ w: table, deq } = makeQuantized(ctx, rng, fmt, v + 1, d));
      }
      const y0 = rng.normals(yOffset + d + 5, 1);
      const y = ctx.upload(y0, [y0.length], 'f32', 'y');
      return {
        record(rec) {
          if (!canFuseSampleEmbedding(rec, table)) throw new Error(`${name}: the fused embedding was refused`);
          sample(rec, logits, out, { temp, topK, seed, draw: 3, outOffset: 1, embed: { table, y, yOffset } });
          sample(rec, logits, ref, { temp, topK, seed, draw: 3 });
        },
        async check(c) {
          const got = (await c.read(out)) as Int32Array;
          assertEqualInts(`${name}: tokens with and without the embedding`, got.subarray(1, 2), (await c.read(ref)) as Int32Array);
          if (got[0] !== -7) throw new Error(`${name}: out[0] changed to ${got[0]}`);
          if (temp <= 0) assertEqualInts(`${name}: argmax`, got.subarray(1, 2), [argmaxRef(data)]);
          const tok = got[1];
          const want = Float64Array.from(y0);
          for (let i = 0; i < d; i++) want[yOffset + i] += deq[tok * d + i];
          assertClose(name, await c.readF32(y), want, { atol: 1e-6, rtol: 1e-6 });
        },
        flops: 2 * v + d,
        bytes: 4 * v + 4 * 2 * d,
        tensors: [logits, out, ref, y, table as Tensor],
      };
    },
  };
}

const TABLE_FORMATS: TableFormat[] = ['f32', 'f16', 'bf16', { format: 'q8' }, { format: 'affine', bits: 4, groupSize: 32 }, { format: 'affine', bits: 8, groupSize: 64 }];

export const sampleSuite: KernelSuite = {
  name: 'sample',
  tests: [
    ...ODD_SIZES.map((v, i) => greedyCase(v > 300 ? 2 : 3, v, 10 + i, 0)),
    greedyCase(2, 315, 31, 5),
    ...[1, 3, 17, 63, 315, 2179].map((v, i) => topKMembershipCase(v > 300 ? 8 : 32, v, Math.min(v, [1, 2, 5, 25, 40, 250][i]), 0.8, 20 + i)),
    topKMembershipCase(32, 63, 1, 1.0, 41),
    // The model's settings (official defaults): audio temp 0.8, top-k 250, card 2048; text temp 0.7, top-k 25, card 32000.
    exactDistributionCase('audio', 2048, 250, 0.8, [1.0, 0.7], 16, 16384),
    exactDistributionCase('text', 32000, 25, 0.7, [1.0, 0.8], 8, 16384),
    // The other paths: a small top-k, the whole row (k = 0), and k > SAMPLE_KMAX (no compaction).
    exactDistributionCase('small k', 63, 5, 0.8, [1.0], 8, 4096),
    exactDistributionCase('whole row', 17, 0, 1.3, [1.0], 16, 1024),
    // (k > KMAX runs the slower chunked race per draw: fewer draws, which prove temperature and top-k + 1 but not top-k - 1.)
    exactDistributionCase('k > KMAX', 300, 260, 0.7, [1.0], 64, 512, { proveKMinus1: false }),
    repeatCase(315, 25),
    // Finiteness folded in: every path (greedy, compacted top-k, whole row, k > KMAX), first / last / middle rows.
    ...ODD_SIZES.map((v, i) => checkedCase(2, v, 0, 0, i % 2 ? 2 * v - 1 : 0, [NaN, Infinity, -Infinity][i % 3], 50 + i)),
    checkedCase(3, 2179, 0, 0, null, 0, 60),
    checkedCase(3, 2179, 0.8, 25, 2179 + 1000, NaN, 61),
    checkedCase(3, 2179, 0.8, 25, null, 0, 62),
    checkedCase(1, 315, 1.1, 0, 200, -Infinity, 63),
    checkedCase(1, 315, 1.1, 0, null, 0, 64),
    checkedCase(2, 300, 0.7, 260, 599, Infinity, 65),
    checkedCase(2, 300, 0.7, 260, null, 0, 66),
    // The fused embedding: every table format on the model's path (top-k 250 of 2048, D 128, into block 2 of a stack),
    // and the other paths (greedy, whole row, k > KMAX) in f32 and bf16.
    ...TABLE_FORMATS.map((f, i) => embedCase(f, 2048, 128, 0.8, 250, 2 * 128, 70 + i)),
    ...(['f32', 'bf16'] as const).flatMap((f, i) => [embedCase(f, 315, 64, 0, 0, 3, 80 + i), embedCase(f, 63, 64, 1.1, 0, 0, 82 + i), embedCase(f, 300, 96, 0.7, 260, 5, 84 + i)]),
  ],
  bench: [greedyCase(1, 32000, 1, 0), topKMembershipCase(1, 32000, 25, 0.7, 2), topKMembershipCase(8, 2048, 250, 0.8, 3)],
};
