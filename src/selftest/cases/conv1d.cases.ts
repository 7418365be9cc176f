import { conv1d, conv1dContext, conv1dOutLen, relayoutConv1dWeight } from '../../kernels/conv1d.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';

export interface Conv1dCaseSpec {
  tIn: number;
  cIn: number;
  cOut: number;
  k: number;
  stride?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
  res?: boolean;
  act?: 'none' | 'elu';
  replicate?: boolean;
  /** replicate mode: first call (prev ignored, x[0] replicated). */
  first?: boolean;
  path?: 'tiled' | 'direct';
}

/**
 * CPU reference in f64, PyTorch semantics: xcat = [prev | x] (time-major [T, C]), then
 * y[t, co] = b[co] + res[t, co] + Σ W[co, ci, k] · act(xcat[t·S + k·D, g·cin_g + ci]), W in PyTorch layout [C_out, C_in/G, K].
 */
export function conv1dRef(x: Float32Array, prev: Float32Array, w: Float32Array, b: Float32Array | null, res: Float32Array | null, s: Conv1dCaseSpec): Float32Array {
  const S = s.stride ?? 1, D = s.dilation ?? 1, G = s.groups ?? 1;
  const P = conv1dContext(s.k, S, D);
  const tOut = conv1dOutLen(s.tIn, P, s.k, S, D);
  const cinG = s.cIn / G, coutG = s.cOut / G;
  const act = (v: number) => (s.act === 'elu' ? (v > 0 ? v : Math.expm1(v)) : v);
  const xc = (j: number, c: number) => act(j < P ? (s.replicate && s.first ? x[c] : prev[j * s.cIn + c]) : x[(j - P) * s.cIn + c]);
  const y = new Float32Array(tOut * s.cOut);
  for (let t = 0; t < tOut; t++) {
    for (let co = 0; co < s.cOut; co++) {
      const g = Math.floor(co / coutG);
      let acc = b ? b[co] : 0;
      for (let ci = 0; ci < cinG; ci++) {
        for (let k = 0; k < s.k; k++) acc += w[(co * cinG + ci) * s.k + k] * xc(t * S + k * D, g * cinG + ci);
      }
      if (res) acc += res[t * s.cOut + co];
      y[t * s.cOut + co] = acc;
    }
  }
  return y;
}

function caseName(s: Conv1dCaseSpec): string {
  const parts = [`T=${s.tIn} Cin=${s.cIn} Cout=${s.cOut} K=${s.k}`];
  if ((s.stride ?? 1) > 1) parts.push(`S=${s.stride}`);
  if ((s.dilation ?? 1) > 1) parts.push(`D=${s.dilation}`);
  if ((s.groups ?? 1) > 1) parts.push(`G=${s.groups}`);
  if (s.bias) parts.push('bias');
  if (s.res) parts.push('res');
  if (s.act === 'elu') parts.push('elu');
  if (s.replicate) parts.push(s.first ? 'replicate-first' : 'replicate');
  if (s.path) parts.push(s.path);
  return parts.join(' ');
}

export function conv1dCase(s: Conv1dCaseSpec, seed: number): KernelCase {
  return {
    name: caseName(s),
    setup(ctx) {
      const rng = new Rng(seed);
      const S = s.stride ?? 1, D = s.dilation ?? 1, G = s.groups ?? 1;
      const P = conv1dContext(s.k, S, D);
      const tOut = conv1dOutLen(s.tIn, P, s.k, S, D);
      const cinG = s.cIn / G;
      const xs = rng.normals(s.tIn * s.cIn);
      const ps = rng.normals(Math.max(P, 1) * s.cIn);
      const ws = rng.normals(s.cOut * cinG * s.k, 1 / Math.sqrt(cinG * s.k));
      const bs = s.bias ? rng.normals(s.cOut, 0.1) : null;
      const rs = s.res ? rng.normals(tOut * s.cOut) : null;
      const x = ctx.upload(xs, [s.tIn, s.cIn], 'f32', 'x');
      const prev = P > 0 ? ctx.upload(ps.subarray(0, P * s.cIn), [P, s.cIn], 'f32', 'prev') : null;
      const wt = ctx.upload(relayoutConv1dWeight(ws, s.cOut, cinG, s.k, G), [G, s.k * cinG, s.cOut / G], 'f32', 'wt');
      const b = bs ? ctx.upload(bs, [s.cOut], 'f32', 'b') : null;
      const res = rs ? ctx.upload(rs, [tOut, s.cOut], 'f32', 'res') : null;
      const y = sentinelTensor(ctx, [tOut, s.cOut], 'y');
      const want = conv1dRef(xs, ps, ws, bs, rs, s);
      return {
        record: (rec) =>
          conv1d(rec, x, prev, wt, b, res, y, {
            kernelSize: s.k, stride: S, dilation: D, groups: G, act: s.act, padMode: s.replicate ? 'replicate' : 'constant', first: s.first, path: s.path,
          }),
        async check(c) {
          const got = await c.readF32(y);
          assertClose(`conv1d ${caseName(s)}`, got, want, { atol: 1e-5, scaleTol: 2e-6 * Math.sqrt(cinG * s.k), shape: [tOut, s.cOut] });
        },
        flops: 2 * tOut * s.cOut * cinG * s.k,
        bytes: 4 * (s.tIn * s.cIn + ws.length + tOut * s.cOut),
        tensors: [x, wt, y, ...[prev, b, res].filter((t) => t !== null)],
      };
    },
  };
}

const TESTS: Conv1dCaseSpec[] = [
  { tIn: 1, cIn: 1, cOut: 1, k: 1 },
  { tIn: 17, cIn: 1, cOut: 3, k: 7, bias: true },
  { tIn: 63, cIn: 3, cOut: 17, k: 3, dilation: 2, bias: true, act: 'elu' },
  { tIn: 315, cIn: 17, cOut: 63, k: 3, bias: true, act: 'elu' },
  { tIn: 63, cIn: 63, cOut: 17, k: 1, bias: true, res: true, act: 'elu' },
  { tIn: 315, cIn: 3, cOut: 17, k: 10, stride: 5, bias: true, act: 'elu' },
  { tIn: 2179 - 19, cIn: 3, cOut: 1, k: 8, stride: 4, bias: true },
  { tIn: 63, cIn: 17, cOut: 65, k: 4, stride: 3, dilation: 2, bias: true },
  { tIn: 18, cIn: 17, cOut: 17, k: 4, stride: 2, replicate: true, first: true },
  { tIn: 18, cIn: 17, cOut: 17, k: 4, stride: 2, replicate: true, first: false },
  { tIn: 3, cIn: 17, cOut: 63, k: 7, bias: true },
  { tIn: 17, cIn: 6, cOut: 9, k: 3, groups: 3, bias: true, act: 'elu' },
  { tIn: 63, cIn: 17, cOut: 17, k: 4, stride: 3, groups: 17, bias: true },
  { tIn: 16, cIn: 17, cOut: 34, k: 3, stride: 2, groups: 17, replicate: true, first: true },
];

export const conv1dSuite: KernelSuite = {
  name: 'conv1d',
  // Every groups = 1 shape through both paths ('grouped' ignores the choice).
  tests: TESTS.flatMap((s, i) => ((s.groups ?? 1) > 1 ? [conv1dCase(s, 1000 + i)] : [conv1dCase({ ...s, path: 'tiled' }, 1000 + i), conv1dCase({ ...s, path: 'direct' }, 1000 + i)])),
  bench: [
    // Real Mimi SEANet encoder stages at 1 s of audio (24 kHz): resblock k=3 at 64 ch, stride-4 conv 64->128, last conv 1024->512.
    conv1dCase({ tIn: 24000, cIn: 64, cOut: 32, k: 3, bias: true, act: 'elu' }, 1),
    conv1dCase({ tIn: 24000, cIn: 64, cOut: 128, k: 8, stride: 4, bias: true, act: 'elu' }, 2),
    conv1dCase({ tIn: 50, cIn: 1024, cOut: 512, k: 3, bias: true, act: 'elu' }, 3),
  ],
};
