import { bf16BitsToF32, f16BitsToF32, roundThrough } from '../../gpu/dtype.ts';
import { type LinearOptions, linear, linearPath } from '../../kernels/linear.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { ODD_SIZES } from '../sizes.ts';

type WDType = 'f32' | 'f16' | 'bf16';

/**
 * CPU reference of `linear`: y[m,n] = Σk x[m,k]·w[n,k] + b[n] in f64, over the weights as the GPU
 * holds them (already rounded through the half dtype). x [M,K], w [N,K], b [N] | null -> y [M,N].
 */
export function linearRef(x: Float32Array, w: Float32Array, b: Float32Array | null, m: number, k: number, n: number): Float64Array {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = b ? b[j] : 0;
      const xo = i * k;
      const wo = j * k;
      for (let t = 0; t < k; t++) s += x[xo + t] * w[wo + t];
      y[i * n + j] = s;
    }
  }
  return y;
}

/** Tolerance for f32 accumulation over K terms, relative to the output's scale. */
const TOL = { scaleTol: 1e-4, atol: 1e-6 };

/**
 * One linear case with random N(0,1) x, w, b. `xShape` ends in K (its leading dims give M).
 * Weights are uploaded as f32 values and rounded to the half dtype by the upload; the reference
 * uses the same rounded values (roundThrough).
 */
function linearCase(dtype: WDType, xShape: number[], k: number, n: number, bias: boolean, seed: number, opts: LinearOptions = {}): KernelCase {
  const m = xShape.slice(0, -1).reduce((a, c) => a * c, 1);
  const path = linearPath(m, k, dtype);
  return {
    name: `${dtype} x[${xShape.join(',')}] N=${n}${bias ? ' +b' : ''} (${path}${opts.subgroups === false ? ', no subgroups' : ''})`,
    setup(ctx) {
      const rng = new Rng(seed);
      const xs = rng.normals(m * k);
      const ws = roundThrough(rng.normals(n * k), dtype);
      const bs = bias ? rng.normals(n) : null;
      const yShape = [...xShape.slice(0, -1), n];
      const x = ctx.upload(xs, xShape, 'f32', 'x');
      const w = ctx.upload(ws, [n, k], dtype, 'w');
      const b = bs ? ctx.upload(bs, [n], 'f32', 'b') : null;
      const y = sentinelTensor(ctx, yShape, 'y');
      return {
        record: (rec) => linear(rec, x, w, b, y, opts),
        async check(c) {
          const got = await c.readF32(y);
          assertClose(`linear ${dtype} M=${m} K=${k} N=${n}`, got, linearRef(xs, ws, bs, m, k, n), { ...TOL, shape: [m, n] });
        },
        flops: 2 * m * n * k,
        bytes: 4 * m * k + (dtype === 'f32' ? 4 : 2) * n * k + 4 * m * n + (bias ? 4 * n : 0),
        tensors: b ? [x, w, b, y] : [x, w, y],
      };
    },
  };
}

/**
 * The odd grid: M ∈ {1, 3, 17} × K, N ∈ ODD_SIZES × dtype, pruned to one (K, N) pair in three per
 * (dtype, M) so every K and every N still meets every dtype and M; K = N = 2179 is skipped (slow
 * on a software GPU). Bias alternates. M = 1 alternates x of shape [K] and [1, K].
 */
function oddGrid(): KernelCase[] {
  const cases: KernelCase[] = [];
  const dtypes: WDType[] = ['f32', 'f16', 'bf16'];
  const ms = [1, 3, 17];
  let seed = 1;
  dtypes.forEach((dtype, di) => {
    ms.forEach((m, mi) => {
      ODD_SIZES.forEach((k, ki) => {
        ODD_SIZES.forEach((n, ni) => {
          if ((ki + ni + mi) % 3 !== di) return;
          if (k * n > 1_000_000) return;
          const bias = (ki * 7 + ni + mi) % 2 === 1;
          const xShape = m === 1 && !bias ? [k] : [m, k];
          cases.push(linearCase(dtype, xShape, k, n, bias, seed++));
        });
      });
    });
  });
  return cases;
}

/** 16-byte aligned rows (K % 8 == 0, or K % 4 == 0 for f32): the vectorized matvec path (with and
 *  without subgroups). */
function alignedGrid(): KernelCase[] {
  const cases: KernelCase[] = [];
  const dtypes: WDType[] = ['f32', 'f16', 'bf16'];
  let seed = 1000;
  for (const dtype of dtypes) {
    for (const k of [8, 12, 64, 316, 2184]) {
      for (const n of [1, 17, 315]) {
        cases.push(linearCase(dtype, [k], k, n, (k + n) % 3 === 0, seed++));
        // The workgroup-memory reduction too, on devices where the subgroup matvec is the default.
        if (n === 315 || k === 2184) cases.push(linearCase(dtype, [k], k, n, (k + n) % 2 === 0, seed++, { subgroups: false }));
      }
    }
  }
  return cases;
}

/**
 * The matmul path at large odd M ∈ {63, 315, 2179} (1 to 68 row tiles of 32, partial last tiles):
 * K and N from ODD_SIZES with M·K·N ≤ ~12M (most ≤ 2.5M), for f32 and bf16 (and f16 on a few), bias
 * alternating, leading dims folding into M on some.
 */
function largeMGrid(): KernelCase[] {
  const cases: KernelCase[] = [];
  const shapes: { x: number[]; k: number; n: number; dtypes: WDType[] }[] = [
    { x: [63, 3], k: 3, n: 17, dtypes: ['f32', 'bf16', 'f16'] },
    { x: [7, 9, 17], k: 17, n: 315, dtypes: ['f32', 'bf16'] },
    { x: [63, 315], k: 315, n: 63, dtypes: ['f32', 'bf16'] },
    { x: [63, 2179], k: 2179, n: 17, dtypes: ['f32', 'bf16'] },
    { x: [63, 1], k: 1, n: 2179, dtypes: ['f32', 'bf16'] },
    { x: [315, 3], k: 3, n: 2179, dtypes: ['f32', 'bf16', 'f16'] },
    { x: [5, 63, 17], k: 17, n: 63, dtypes: ['f32', 'bf16'] },
    { x: [315, 63], k: 63, n: 17, dtypes: ['f32', 'bf16'] },
    { x: [315, 315], k: 315, n: 3, dtypes: ['f32', 'bf16'] },
    { x: [315, 2179], k: 2179, n: 3, dtypes: ['f32', 'bf16'] },
    { x: [2179, 3], k: 3, n: 17, dtypes: ['f32', 'bf16', 'f16'] },
    { x: [2179, 17], k: 17, n: 3, dtypes: ['f32', 'bf16'] },
    { x: [2179, 63], k: 63, n: 17, dtypes: ['f32', 'bf16'] },
    { x: [2179, 1], k: 1, n: 315, dtypes: ['f32', 'bf16'] },
    { x: [2179, 315], k: 315, n: 17, dtypes: ['f32', 'bf16'] },
  ];
  let seed = 3000;
  shapes.forEach((s, si) => {
    s.dtypes.forEach((dtype, di) => cases.push(linearCase(dtype, s.x, s.k, s.n, (si + di) % 2 === 0, seed++)));
  });
  return cases;
}

export const linearTests: KernelCase[] = [
  ...oddGrid(),
  ...alignedGrid(),
  ...largeMGrid(),
  // Leading dims fold into M; M = 65 crosses a 64-row tile, N = 130 a 64-column one.
  linearCase('bf16', [5, 13, 63], 63, 130, true, 2001),
  linearCase('f32', [65, 64], 64, 3, false, 2002),
];

/**
 * Real model sizes. Weights are random bit patterns of moderate magnitude (fast to make at
 * 100M elements); x ~ N(0,1). The reference unpacks the words row by row.
 */
function benchCase(label: string, dtype: WDType, m: number, k: number, n: number, bias: boolean): KernelCase {
  return {
    name: `${label}: ${dtype} M=${m} K=${k} N=${n}`,
    setup(ctx) {
      const rng = new Rng(m * 7 + k * 13 + n);
      const xs = rng.normals(m * k);
      const words = randomWeightWords(rng, dtype, n * k);
      const bs = bias ? rng.normals(n) : null;
      const x = ctx.upload(xs, m === 1 ? [k] : [m, k], 'f32', 'x');
      const w = ctx.upload(words, [n, k], dtype, 'w');
      const b = bs ? ctx.upload(bs, [n], 'f32', 'b') : null;
      const y = sentinelTensor(ctx, m === 1 ? [n] : [m, n], 'y');
      return {
        record: (rec) => linear(rec, x, w, b, y),
        async check(c) {
          const got = await c.readF32(y);
          const want = new Float64Array(m * n);
          const row = new Float32Array(k);
          for (let j = 0; j < n; j++) {
            unpackRow(words, dtype, j * k, k, row);
            for (let i = 0; i < m; i++) {
              let s = bs ? bs[j] : 0;
              const xo = i * k;
              for (let t = 0; t < k; t++) s += xs[xo + t] * row[t];
              want[i * n + j] = s;
            }
          }
          assertClose(`linear ${dtype} M=${m} K=${k} N=${n}`, got, want, { ...TOL, shape: [m, n] });
        },
        flops: 2 * m * n * k,
        bytes: 4 * m * k + (dtype === 'f32' ? 4 : 2) * n * k + 4 * m * n + (bias ? 4 * n : 0),
        tensors: b ? [x, w, b, y] : [x, w, y],
        linear: {
          m,
          k,
          n,
          weightDtype: dtype,
          x: xs,
          bias: bs,
          weightF32() {
            const out = new Float32Array(n * k);
            const row = new Float32Array(k);
            for (let j = 0; j < n; j++) {
              unpackRow(words, dtype, j * k, k, row);
              out.set(row, j * k);
            }
            return out;
          },
          async runHostToHost(input) {
            // Timed like a library call: no timestamp queries (their resolve + readback is not part of a call).
            const profiler = ctx.profiler;
            const was = profiler?.enabled ?? false;
            if (profiler) profiler.enabled = false;
            try {
              ctx.write(x, input);
              const rec = ctx.record('linear host to host');
              linear(rec, x, w, b, y);
              await rec.submit();
              return await ctx.readF32(y);
            } finally {
              if (profiler) profiler.enabled = was;
            }
          },
        },
      };
    },
  };
}

/** n weights as storage words: halves packed two per u32 with |v| in [2^-8, 2), f32 likewise. */
function randomWeightWords(rng: Rng, dtype: WDType, count: number): Uint32Array {
  const half = (r: number) => {
    // sign | exponent 119..126 | 7 mantissa bits (bf16); f16 uses exponent 7..14 | 10 bits.
    if (dtype === 'bf16') return ((r & 1) << 15) | ((119 + ((r >>> 1) & 7)) << 7) | ((r >>> 4) & 0x7f);
    return ((r & 1) << 15) | ((7 + ((r >>> 1) & 7)) << 10) | ((r >>> 4) & 0x3ff);
  };
  if (dtype === 'f32') {
    const out = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const r = (rng.next() * 4294967296) >>> 0;
      out[i] = ((r & 1) << 31) | ((119 + ((r >>> 1) & 7)) << 23) | (r >>> 9);
    }
    return out;
  }
  const out = new Uint32Array(Math.ceil(count / 2));
  for (let i = 0; i < out.length; i++) {
    const r = (rng.next() * 4294967296) >>> 0;
    const s = (rng.next() * 4294967296) >>> 0;
    out[i] = (half(r) | (half(s) << 16)) >>> 0;
  }
  if (count % 2) out[out.length - 1] &= 0xffff;
  return out;
}

const f32View = new Float32Array(1);
const u32View = new Uint32Array(f32View.buffer);
/** Elements [start, start+len) of a packed weight array as f32. */
function unpackRow(words: Uint32Array, dtype: WDType, start: number, len: number, out: Float32Array): void {
  for (let t = 0; t < len; t++) {
    const e = start + t;
    if (dtype === 'f32') {
      u32View[0] = words[e];
      out[t] = f32View[0];
    } else {
      const h = (words[e >> 1] >>> ((e & 1) * 16)) & 0xffff;
      out[t] = dtype === 'bf16' ? bf16BitsToF32(h) : f16BitsToF32(h);
    }
  }
}

export const linearBench: KernelCase[] = [
  // Moshi 7B temporal transformer, one decode step (M = 1): q/k/v/o 4096², fused qkv 12288,
  // gated FFN in 2·11264 = 22528.
  benchCase('moshi decode', 'bf16', 1, 4096, 4096, false),
  benchCase('moshi decode', 'bf16', 1, 4096, 12288, false),
  benchCase('moshi decode', 'bf16', 1, 4096, 22528, false),
  // Depformer (dim 1024): gated FFN in 2·2816, projections 1024².
  benchCase('depformer', 'bf16', 1, 1024, 5632, false),
  benchCase('depformer', 'bf16', 1, 1024, 1024, false),
  // Mimi transformer over a chunk of frames (f32, dim 512, FFN 2048).
  benchCase('mimi', 'f32', 72, 512, 2048, true),
  benchCase('mimi', 'f32', 250, 512, 2048, true),
];

export const linearSuite: KernelSuite = { name: 'linear', tests: linearTests, bench: linearBench };
