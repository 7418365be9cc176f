import { convTranspose1d, convTr1dTaps, relayoutConvTr1dWeight } from '../../kernels/conv_transpose1d.ts';
import { assertClose } from '../check.ts';
import { type KernelCase, type KernelSuite, sentinelTensor } from '../kernel_case.ts';
import { Rng } from '../rng.ts';

export interface ConvTr1dCaseSpec {
  t: number;
  cIn: number;
  cOut: number;
  k: number;
  stride: number;
  groups?: number;
  bias?: boolean;
  act?: 'none' | 'elu';
  /** Carry a random partial state in (a later streaming call). */
  partial?: boolean;
  path?: 'tiled' | 'direct';
}

/**
 * CPU reference in f64 with PyTorch semantics: full = ConvTranspose1d(x) (length (T-1)·S + K, W
 * [C_in, C_out/G, K]); then y = full with partial added to the first PT rows and the bias removed
 * from rows ≥ T·S (streaming StreamingConvTranspose1d: those rows become the next partial). Time-major.
 */
export function convTr1dRef(x: Float32Array, w: Float32Array, b: Float32Array | null, partial: Float32Array | null, s: ConvTr1dCaseSpec): Float32Array {
  const G = s.groups ?? 1;
  const cinG = s.cIn / G, coutG = s.cOut / G;
  const PT = s.k - s.stride;
  const tExt = s.t * s.stride + PT;
  const act = (v: number) => (s.act === 'elu' ? (v > 0 ? v : Math.expm1(v)) : v);
  const full = new Float64Array(tExt * s.cOut);
  for (let i = 0; i < s.t; i++) {
    for (let ci = 0; ci < s.cIn; ci++) {
      const g = Math.floor(ci / cinG);
      const xv = act(x[i * s.cIn + ci]);
      for (let col = 0; col < coutG; col++) {
        const co = g * coutG + col;
        for (let k = 0; k < s.k; k++) full[(i * s.stride + k) * s.cOut + co] += xv * w[(ci * coutG + col) * s.k + k];
      }
    }
  }
  const y = new Float32Array(tExt * s.cOut);
  for (let t = 0; t < tExt; t++) {
    for (let co = 0; co < s.cOut; co++) {
      let v = full[t * s.cOut + co];
      if (b && t < s.t * s.stride) v += b[co];
      if (partial && t < PT) v += partial[t * s.cOut + co];
      y[t * s.cOut + co] = v;
    }
  }
  return y;
}

function caseName(s: ConvTr1dCaseSpec): string {
  const parts = [`T=${s.t} Cin=${s.cIn} Cout=${s.cOut} K=${s.k} S=${s.stride}`];
  if ((s.groups ?? 1) > 1) parts.push(`G=${s.groups}`);
  if (s.bias) parts.push('bias');
  if (s.act === 'elu') parts.push('elu');
  if (s.partial) parts.push('partial');
  if (s.path) parts.push(s.path);
  return parts.join(' ');
}

export function convTr1dCase(s: ConvTr1dCaseSpec, seed: number): KernelCase {
  return {
    name: caseName(s),
    setup(ctx) {
      const rng = new Rng(seed);
      const G = s.groups ?? 1;
      const PT = s.k - s.stride;
      const tExt = s.t * s.stride + PT;
      const coutG = s.cOut / G;
      const xs = rng.normals(s.t * s.cIn);
      const ws = rng.normals(s.cIn * coutG * s.k, 1 / Math.sqrt((s.cIn / G) * s.k / s.stride));
      const bs = s.bias ? rng.normals(s.cOut, 0.1) : null;
      const ps = PT > 0 ? (s.partial ? rng.normals(PT * s.cOut) : new Float32Array(PT * s.cOut)) : null;
      const x = ctx.upload(xs, [s.t, s.cIn], 'f32', 'x');
      const wt = ctx.upload(relayoutConvTr1dWeight(ws, s.cIn, coutG, s.k, s.stride, G), [G, s.stride, convTr1dTaps(s.k, s.stride) * (s.cIn / G), coutG], 'f32', 'wt');
      const b = bs ? ctx.upload(bs, [s.cOut], 'f32', 'b') : null;
      const partial = ps ? ctx.upload(ps, [PT, s.cOut], 'f32', 'partial') : null;
      const y = sentinelTensor(ctx, [tExt, s.cOut], 'y');
      const want = convTr1dRef(xs, ws, bs, ps, s);
      return {
        record: (rec) => convTranspose1d(rec, x, partial, wt, b, y, { kernelSize: s.k, stride: s.stride, groups: G, act: s.act, path: s.path }),
        async check(c) {
          const got = await c.readF32(y);
          assertClose(`conv_transpose1d ${caseName(s)}`, got, want, { atol: 1e-5, scaleTol: 2e-6 * Math.sqrt((s.cIn / G) * s.k), shape: [tExt, s.cOut] });
        },
        flops: 2 * s.t * s.cIn * coutG * s.k,
        bytes: 4 * (xs.length + ws.length + tExt * s.cOut),
        tensors: [x, wt, y, ...[b, partial].filter((t) => t !== null)],
      };
    },
  };
}

const TESTS: ConvTr1dCaseSpec[] = [
  { t: 1, cIn: 1, cOut: 1, k: 1, stride: 1 },
  { t: 3, cIn: 17, cOut: 3, k: 4, stride: 2, bias: true, partial: true },
  { t: 17, cIn: 63, cOut: 17, k: 16, stride: 8, bias: true, act: 'elu', partial: true },
  { t: 63, cIn: 17, cOut: 65, k: 10, stride: 5, bias: true, act: 'elu' },
  { t: 17, cIn: 3, cOut: 1, k: 7, stride: 3, bias: true, partial: true },
  { t: 315, cIn: 3, cOut: 5, k: 3, stride: 3, bias: true },
  { t: 17, cIn: 63, cOut: 63, k: 4, stride: 2, groups: 63, partial: true },
  { t: 63, cIn: 6, cOut: 9, k: 5, stride: 2, groups: 3, bias: true, act: 'elu', partial: true },
];

export const convTr1dSuite: KernelSuite = {
  name: 'conv_transpose1d',
  // Every groups = 1 shape through both paths ('grouped' ignores the choice).
  tests: TESTS.flatMap((s, i) => ((s.groups ?? 1) > 1 ? [convTr1dCase(s, 2000 + i)] : [convTr1dCase({ ...s, path: 'tiled' }, 2000 + i), convTr1dCase({ ...s, path: 'direct' }, 2000 + i)])),
  bench: [
    // Real Mimi SEANet decoder stages for 1 s of audio: stride-8 (512->256 at 25 Hz in), last stride-4 (128->64 at 6 kHz in), upsample (512 ch, channel-wise).
    convTr1dCase({ t: 25, cIn: 1024, cOut: 512, k: 16, stride: 8, bias: true, act: 'elu', partial: true }, 1),
    convTr1dCase({ t: 6000, cIn: 128, cOut: 64, k: 8, stride: 4, bias: true, act: 'elu', partial: true }, 2),
    convTr1dCase({ t: 13, cIn: 512, cOut: 512, k: 4, stride: 2, groups: 512, partial: true }, 3),
  ],
};
