import { type GpuContext, QuantizedTensor, bf16BitsToF32, f32ToBf16Bits } from '../../gpu/index.ts';
import { embedding } from '../../kernels/embedding.ts';
import { type LinearOptions, linear, linearPath } from '../../kernels/linear.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';
import { embeddingRef } from './embedding.cases.ts';
import { linearRef } from './linear.cases.ts';
import { ODD_SIZES } from '../sizes.ts';

/** A quantized layout under test: PyTorch q8, or MLX affine with `bits` and `groupSize`. */
export type QuantSpec = { format: 'q8' } | { format: 'affine'; bits: 2 | 4 | 8; groupSize: 32 | 64 | 128 };

export function specName(s: QuantSpec): string {
  return s.format === 'q8' ? 'q8' : `q${s.bits}g${s.groupSize}`;
}

/**
 * Random quantized [n, k] weights in the layout of `spec`, uploaded as a QuantizedTensor, and the
 * dequantized values (the fixtures README's formulas, in f32) for the CPU reference:
 * - q8: CB int8 in [-127, 127], SCB f32 in [0.5, 3): W = CB · SCB / 127;
 * - affine: q uniform in [0, 2^bits), BF16 scales of both signs and biases: W = scale · q + bias.
 */
export function makeQuantized(ctx: GpuContext, rng: Rng, spec: QuantSpec, n: number, k: number, label = 'w', opts: { rangeBound?: boolean } = {}): { w: QuantizedTensor; deq: Float32Array } {
  const deq = new Float32Array(n * k);
  if (spec.format === 'q8') {
    const bytes = new Uint8Array(Math.ceil((n * k) / 4) * 4);
    const scb = new Float32Array(n);
    for (let r = 0; r < n; r++) scb[r] = 0.5 + 2.5 * rng.next();
    for (let e = 0; e < n * k; e++) {
      const q = rng.int(255) - 127;
      bytes[e] = q & 0xff;
      deq[e] = Math.fround(Math.fround(q * scb[Math.floor(e / k)]) / 127);
    }
    const q = ctx.upload(new Uint32Array(bytes.buffer), [bytes.length / 4], 'u32', `${label}.q`, opts);
    const scales = ctx.upload(scb, [n], 'f32', `${label}.scb`, opts);
    return { w: new QuantizedTensor('q8', [n, k], 8, k, q, scales, null, label), deq };
  }
  const { bits, groupSize: gs } = spec;
  const epw = 32 / bits;
  const groups = k / gs;
  const words = new Uint32Array((n * k) / epw);
  const bf = (v: number) => f32ToBf16Bits(v);
  const sBits = new Uint16Array(n * groups);
  const bBits = new Uint16Array(n * groups);
  for (let g = 0; g < n * groups; g++) {
    sBits[g] = bf((rng.next() < 0.5 ? -1 : 1) * (0.01 + 0.2 * rng.next()));
    bBits[g] = bf(rng.normal() * 0.5);
  }
  for (let e = 0; e < n * k; e++) {
    const q = rng.int(1 << bits);
    words[Math.floor(e / epw)] = (words[Math.floor(e / epw)] | (q << (bits * (e % epw)))) >>> 0;
    const g = Math.floor(e / gs);
    deq[e] = Math.fround(Math.fround(bf16BitsToF32(sBits[g]) * q) + bf16BitsToF32(bBits[g]));
  }
  const pack = (h: Uint16Array) => {
    const out = new Uint32Array(Math.ceil(h.length / 2));
    for (let i = 0; i < h.length; i++) out[i >> 1] |= h[i] << ((i & 1) * 16);
    return out;
  };
  const q = ctx.upload(words, [n, (k * bits) / 32], 'u32', `${label}.q`, opts);
  const scales = ctx.upload(pack(sBits), [n, groups], 'bf16', `${label}.scales`, opts);
  const biases = ctx.upload(pack(bBits), [n, groups], 'bf16', `${label}.biases`, opts);
  return { w: new QuantizedTensor('affine', [n, k], bits, gs, q, scales, biases, label), deq };
}

const TOL = { scaleTol: 1e-4, atol: 1e-6 };

function linearQuantCase(spec: QuantSpec, xShape: number[], k: number, n: number, bias: boolean, seed: number, opts: LinearOptions = {}): KernelCase {
  const m = xShape.slice(0, -1).reduce((a, c) => a * c, 1);
  const path = linearPath(m, k, spec.format, spec.format === 'q8' ? 8 : spec.bits);
  return {
    name: `linear ${specName(spec)} x[${xShape.join(',')}] N=${n}${bias ? ' +b' : ''} (${path}${opts.subgroups === false ? ', no subgroups' : ''})`,
    setup(ctx) {
      const rng = new Rng(seed);
      const xs = rng.normals(m * k);
      const { w, deq } = makeQuantized(ctx, rng, spec, n, k);
      const bs = bias ? rng.normals(n) : null;
      const x = ctx.upload(xs, xShape, 'f32', 'x');
      const b = bs ? ctx.upload(bs, [n], 'f32', 'b') : null;
      const y = sentinelTensor(ctx, [...xShape.slice(0, -1), n], 'y');
      return {
        record: (rec) => linear(rec, x, w, b, y, opts),
        async check(c) {
          const got = await c.readF32(y);
          assertClose(`linear ${specName(spec)} M=${m} K=${k} N=${n}`, got, linearRef(xs, deq, bs, m, k, n), { ...TOL, shape: [m, n] });
        },
        flops: 2 * m * n * k,
        bytes: 4 * m * k + w.byteLength + 4 * m * n + (bias ? 4 * n : 0),
        tensors: [x, w.q, w.scales, ...(w.biases ? [w.biases] : []), ...(b ? [b] : []), y],
      };
    },
  };
}

function embeddingQuantCase(spec: QuantSpec, v: number, d: number, rows: number, accumulate: boolean, seed: number): KernelCase {
  return {
    name: `embedding ${specName(spec)} V=${v} D=${d} rows=${rows}${accumulate ? ' accumulate' : ''}`,
    setup(ctx) {
      const rng = new Rng(seed);
      const { w, deq } = makeQuantized(ctx, rng, spec, v, d, 'table');
      // Valid ids, the zero token -1, other negatives and ids past the table.
      const idv = new Int32Array(rows);
      for (let i = 0; i < rows; i++) idv[i] = i % 4 === 3 ? [-1, -5, v, v + 7][rng.int(4)] : rng.int(v);
      const ids = ctx.upload(idv, [rows], 'i32', 'ids');
      const y0 = accumulate ? rng.normals(rows * d) : new Float32Array(rows * d).fill(-12345.678);
      const y = accumulate ? ctx.upload(y0, [rows, d], 'f32', 'y') : sentinelTensor(ctx, [rows, d], 'y');
      return {
        record: (rec) => embedding(rec, w, ids, y, { accumulate }),
        async check(c) {
          const got = await c.readF32(y);
          assertClose(`embedding ${specName(spec)} V=${v} D=${d}`, got, embeddingRef(deq, v, d, idv, 0, rows, y0, accumulate), { atol: 1e-6, rtol: 1e-6, shape: [rows, d] });
        },
        flops: 0,
        bytes: rows * d * 4,
        tensors: [w.q, w.scales, ...(w.biases ? [w.biases] : []), ids, y],
      };
    },
  };
}

const AFFINE: QuantSpec[] = [
  { format: 'affine', bits: 4, groupSize: 32 },
  { format: 'affine', bits: 8, groupSize: 64 },
  { format: 'affine', bits: 2, groupSize: 32 },
  { format: 'affine', bits: 4, groupSize: 64 },
  { format: 'affine', bits: 8, groupSize: 32 },
  { format: 'affine', bits: 4, groupSize: 128 },
];
const Q8: QuantSpec = { format: 'q8' };

function tests(): KernelCase[] {
  const cases: KernelCase[] = [];
  let seed = 1;
  // q8 over the odd grid (any K: odd K takes the generic matvec), M ∈ {1, 3, 17}.
  [1, 3, 17].forEach((m, mi) => {
    ODD_SIZES.forEach((k, ki) => {
      ODD_SIZES.forEach((n, ni) => {
        if ((ki + ni + mi) % 3 !== 0 || k * n > 700_000) return;
        const bias = (ki + ni) % 2 === 1;
        cases.push(linearQuantCase(Q8, m === 1 && !bias ? [k] : [m, k], k, n, bias, seed++));
      });
    });
  });
  // q8 rows of whole vec4 words (the quantized matvec: K % 16 == 0), and word-aligned K that is not (generic).
  for (const [k, n] of [[16, 1], [64, 17], [320, 63], [2176, 3], [316, 17], [4, 3]] as const) cases.push(linearQuantCase(Q8, [k], k, n, n % 2 === 1, seed++));
  // The workgroup-memory reduction too, on devices where the subgroup one is the default.
  cases.push(linearQuantCase(Q8, [320], 320, 63, true, seed++, { subgroups: false }));
  // MLX affine: K a multiple of the group size; N odd; M = 1 (quantized matvec) and M > 1 (matmul).
  AFFINE.forEach((spec, si) => {
    const gs = (spec as { groupSize: number }).groupSize;
    for (const [mult, n] of [[1, 1], [3, 17], [5, 63], [9, 315]] as const) {
      const k = gs * mult;
      cases.push(linearQuantCase(spec, [k], k, n, (si + n) % 2 === 0, seed++));
    }
    cases.push(linearQuantCase(spec, [9 * gs], 9 * gs, 63, si % 2 === 1, seed++, { subgroups: false }));
    cases.push(linearQuantCase(spec, [3, 2 * gs], 2 * gs, 17, si % 2 === 0, seed++));
    cases.push(linearQuantCase(spec, [17, gs], gs, 63, si % 2 === 1, seed++));
    // Embedding rows (MLX quantizes embeddings): odd V, rows mixing valid and out-of-range ids.
    cases.push(embeddingQuantCase(spec, 17, 2 * gs, 5, si % 2 === 0, seed++));
    cases.push(embeddingQuantCase(spec, 2179, gs, 17, si % 2 === 1, seed++));
  });
  // 2-bit rows of whole vec4 words (K % 64 == 0), where a vec4 spans two groups of 32.
  const Q2: QuantSpec = { format: 'affine', bits: 2, groupSize: 32 };
  cases.push(linearQuantCase(Q2, [64], 64, 17, true, seed++), linearQuantCase(Q2, [320], 320, 63, false, seed++), linearQuantCase(Q2, [192], 192, 5, false, seed++, { subgroups: false }));
  cases.push(embeddingQuantCase(Q8, 63, 17, 9, true, seed++));
  return cases;
}

/** Real-size matvecs of Moshi 7B (M = 1) in each quantized format. */
function bench(): KernelCase[] {
  const specs: QuantSpec[] = [Q8, { format: 'affine', bits: 8, groupSize: 64 }, { format: 'affine', bits: 4, groupSize: 32 }];
  const cases: KernelCase[] = [];
  for (const spec of specs) {
    cases.push(linearQuantCase(spec, [4096], 4096, 4096, false, 7));
    cases.push(linearQuantCase(spec, [4096], 4096, 22528, false, 8));
    cases.push(linearQuantCase(spec, [1024], 1024, 5632, false, 9));
  }
  return cases;
}

export const linearQuantSuite: KernelSuite = { name: 'quant', tests: tests(), bench: bench() };
