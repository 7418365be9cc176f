import { rvqDecode, rvqEncode } from '../../kernels/rvq.ts';
import { assertClose, assertEqualInts } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';

export interface RvqCaseSpec {
  frames: number;
  dim: number;
  bins: number;
  layers: number;
  /** Duplicate centroid 3 at a higher index in every layer and aim frame 0 at it (tie -> lowest index). */
  tie?: boolean;
  /** Codes block offset inside a bigger codes tensor. */
  row0?: number;
  col0?: number;
}

/**
 * CPU reference (core_vq.py ResidualVectorQuantization.encode): squared L2 in f64 over f32 values,
 * argmin with ties to the lowest index, residual updated in f32 like torch.
 */
export function rvqEncodeRef(x: Float32Array, cb: Float32Array, s: RvqCaseSpec): { codes: Int32Array; quantized: Float32Array } {
  const { frames: F, dim: D, bins: B, layers: L } = s;
  const codes = new Int32Array(L * F);
  const quantized = new Float32Array(F * D);
  for (let f = 0; f < F; f++) {
    const r = x.slice(f * D, (f + 1) * D);
    for (let q = 0; q < L; q++) {
      let best = Infinity;
      let bj = 0;
      for (let j = 0; j < B; j++) {
        let acc = 0;
        for (let d = 0; d < D; d++) {
          const diff = r[d] - cb[(q * B + j) * D + d];
          acc += diff * diff;
        }
        if (acc < best) {
          best = acc;
          bj = j;
        }
      }
      codes[q * F + f] = bj;
      for (let d = 0; d < D; d++) {
        const v = cb[(q * B + bj) * D + d];
        r[d] = Math.fround(r[d] - v);
        quantized[f * D + d] = Math.fround(quantized[f * D + d] + v);
      }
    }
  }
  return { codes, quantized };
}

function name(s: RvqCaseSpec): string {
  return `F=${s.frames} D=${s.dim} bins=${s.bins} L=${s.layers}${s.tie ? ' tie' : ''}${s.row0 || s.col0 ? ` at [${s.row0 ?? 0},${s.col0 ?? 0}]` : ''}`;
}

function data(s: RvqCaseSpec, seed: number): { x: Float32Array; cb: Float32Array } {
  const rng = new Rng(seed);
  const cb = new Float32Array(s.layers * s.bins * s.dim);
  // Layer q's centroids shrink like real residual codebooks.
  for (let q = 0; q < s.layers; q++) cb.set(rng.normals(s.bins * s.dim, 0.7 ** q), q * s.bins * s.dim);
  const x = rng.normals(s.frames * s.dim);
  if (s.tie) {
    for (let q = 0; q < s.layers; q++) {
      const base = q * s.bins * s.dim;
      cb.copyWithin(base + (s.bins - 1) * s.dim, base + 3 * s.dim, base + 4 * s.dim);
    }
    for (let d = 0; d < s.dim; d++) x[d] = cb[(s.bins - 1) * s.dim + d];
  }
  return { x, cb };
}

export function rvqEncodeCase(s: RvqCaseSpec, seed: number): KernelCase {
  return {
    name: `encode ${name(s)}`,
    setup(ctx) {
      const { x: xs, cb: cbs } = data(s, seed);
      const rows = s.layers + (s.row0 ?? 0) + 1;
      const cols = s.frames + (s.col0 ?? 0) + 2;
      const x = ctx.upload(xs, [s.frames, s.dim], 'f32', 'x');
      const cb = ctx.upload(cbs, [s.layers, s.bins, s.dim], 'f32', 'cb');
      const codes = ctx.upload(new Int32Array(rows * cols).fill(-7), [rows, cols], 'i32', 'codes');
      const y = sentinelTensor(ctx, [s.frames, s.dim], 'quantized');
      const want = rvqEncodeRef(xs, cbs, s);
      return {
        record: (rec) => rvqEncode(rec, x, cb, codes, y, { row0: s.row0, col0: s.col0 }),
        async check(c) {
          const all = (await c.read(codes)) as Int32Array;
          const expect = new Int32Array(rows * cols).fill(-7);
          for (let q = 0; q < s.layers; q++) {
            for (let f = 0; f < s.frames; f++) expect[(q + (s.row0 ?? 0)) * cols + (s.col0 ?? 0) + f] = want.codes[q * s.frames + f];
          }
          assertEqualInts(`rvq codes ${name(s)}`, all, expect, [rows, cols]);
          if (s.tie) assertEqualInts('tie resolves to the lowest index', [all[(s.row0 ?? 0) * cols + (s.col0 ?? 0)]], [3]);
          assertClose(`rvq quantized ${name(s)}`, await c.readF32(y), want.quantized, { atol: 1e-6, rtol: 1e-6 });
        },
        flops: 3 * s.frames * s.layers * s.bins * s.dim,
        bytes: 4 * (xs.length + cbs.length + s.frames * s.layers),
        tensors: [x, cb, codes, y],
      };
    },
  };
}

export function rvqDecodeCase(s: RvqCaseSpec, seed: number, withInit: boolean): KernelCase {
  return {
    name: `decode ${name(s)}${withInit ? ' +init' : ''}`,
    setup(ctx) {
      const { cb: cbs } = data(s, seed);
      const rng = new Rng(seed + 1);
      const rows = s.layers + (s.row0 ?? 0);
      const cols = s.frames + (s.col0 ?? 0);
      const codeVals = new Int32Array(rows * cols);
      for (let i = 0; i < codeVals.length; i++) codeVals[i] = rng.int(s.bins);
      const inits = withInit ? rng.normals(s.frames * s.dim) : null;
      const want = new Float32Array(s.frames * s.dim);
      for (let f = 0; f < s.frames; f++) {
        for (let d = 0; d < s.dim; d++) {
          let v = inits ? inits[f * s.dim + d] : 0;
          for (let q = 0; q < s.layers; q++) {
            const c = codeVals[(q + (s.row0 ?? 0)) * cols + (s.col0 ?? 0) + f];
            v = Math.fround(v + cbs[(q * s.bins + c) * s.dim + d]);
          }
          want[f * s.dim + d] = v;
        }
      }
      const codes = ctx.upload(codeVals, [rows, cols], 'i32', 'codes');
      const cb = ctx.upload(cbs, [s.layers, s.bins, s.dim], 'f32', 'cb');
      const init = inits ? ctx.upload(inits, [s.frames, s.dim], 'f32', 'init') : null;
      const y = sentinelTensor(ctx, [s.frames, s.dim], 'y');
      return {
        record: (rec) => rvqDecode(rec, codes, cb, init, y, s.frames, { row0: s.row0, col0: s.col0 }),
        async check(c) {
          assertClose(`rvq decode ${name(s)}`, await c.readF32(y), want, { atol: 1e-6, rtol: 1e-6 });
        },
        flops: s.frames * s.layers * s.dim,
        bytes: 4 * (s.frames * s.layers + 2 * s.frames * s.dim),
        tensors: [codes, cb, y, ...(init ? [init] : [])],
      };
    },
  };
}

const TESTS: RvqCaseSpec[] = [
  { frames: 1, dim: 1, bins: 1, layers: 1 },
  { frames: 3, dim: 17, bins: 63, layers: 3 },
  { frames: 17, dim: 3, bins: 315, layers: 1, tie: true },
  { frames: 63, dim: 20, bins: 96, layers: 15, row0: 1, col0: 5 },
  { frames: 5, dim: 63, bins: 17, layers: 7, tie: true },
];

export const rvqSuite: KernelSuite = {
  name: 'rvq',
  tests: [
    ...TESTS.map((s, i) => rvqEncodeCase(s, 3000 + i)),
    ...TESTS.map((s, i) => rvqDecodeCase(s, 3100 + i, i % 2 === 1)),
  ],
  bench: [
    // Real Mimi: 256-dim codebooks of 2048 bins, 1 s of audio = 13 frames at 12.5 Hz, 7 acoustic + 1 semantic layers (Moshi's 8).
    rvqEncodeCase({ frames: 13, dim: 256, bins: 2048, layers: 7 }, 1),
    rvqDecodeCase({ frames: 13, dim: 256, bins: 2048, layers: 7 }, 2, false),
  ],
};
