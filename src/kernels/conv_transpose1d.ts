import convTrSource from '../../shaders/conv_transpose1d.wgsl?raw';
import { ParamsLayout, type Recorder, ShapeError, type Tensor, expectShape, storageBindings } from '../gpu/index.ts';
import { type Conv1dPath, type ConvAct, convKernels, dispatchConv } from './conv_gemm.ts';

const BINDINGS = storageBindings({ x: 'read', partial: 'read', wt: 'read', bias: 'read', y: 'read_write' });

const PARAMS = new ParamsLayout([
  ['t_in', 'u32'],
  ['t_ext', 'u32'],
  ['c_in', 'u32'],
  ['c_out', 'u32'],
  ['k', 'u32'],
  ['stride', 'u32'],
  ['groups', 'u32'],
  ['taps', 'u32'],
  ['pt', 'u32'],
  ['has_bias', 'u32'],
]);

/** conv_transpose1d, .direct, .grouped over shaders/conv_transpose1d.wgsl + conv_gemm.wgsl (see ConvKernels); `main` runs per phase. */
const KERNELS = convKernels('conv_transpose1d', convTrSource, BINDINGS, PARAMS);

export interface ConvTr1dOptions {
  kernelSize: number;
  stride: number;
  groups?: number;
  /** Activation applied to x on read (default none). */
  act?: ConvAct;
  /** groups = 1 kernel choice, as conv1d's (default 'auto': direct on fallback adapters or C_out < 48). */
  path?: Conv1dPath;
}

/** Taps per output phase: ceil(K / S). */
export function convTr1dTaps(kernelSize: number, stride: number): number {
  return Math.ceil(kernelSize / stride);
}

/**
 * Load-time relayout of a PyTorch ConvTranspose1d weight W [C_in, C_out/G, K] (f32 host values)
 * into wt [G, S, TAPS·cin_g, cout_g], wt[g, ph, m·cin_g + ci, col] = W[g·cin_g + ci, col, ph + m·S]
 * (0 where ph + m·S ≥ K), TAPS = ceil(K/S).
 */
export function relayoutConvTr1dWeight(w: Float32Array, cIn: number, cOutG: number, k: number, stride: number, groups: number): Float32Array {
  if (w.length !== cIn * cOutG * k) throw new ShapeError(`conv_transpose1d weight has ${w.length} values, expected ${cIn}·${cOutG}·${k}`);
  if (cIn % groups !== 0) throw new ShapeError(`conv_transpose1d: C_in ${cIn} is not divisible by groups ${groups}`);
  const cinG = cIn / groups;
  const taps = convTr1dTaps(k, stride);
  const R = taps * cinG;
  const out = new Float32Array(groups * stride * R * cOutG);
  for (let g = 0; g < groups; g++) {
    for (let ph = 0; ph < stride; ph++) {
      for (let m = 0; m < taps; m++) {
        const kk = ph + m * stride;
        if (kk >= k) continue;
        for (let ci = 0; ci < cinG; ci++) {
          for (let col = 0; col < cOutG; col++) {
            out[((g * stride + ph) * R + m * cinG + ci) * cOutG + col] = w[((g * cinG + ci) * cOutG + col) * k + kk];
          }
        }
      }
    }
  }
  return out;
}

/**
 * Causal streaming transposed conv in time-major layout (moshi/modules/conv.py
 * StreamingConvTranspose1d.forward with a streaming state).
 * - x: f32 [T, C_in]; partial: f32 [PT, C_out] (PT = K - S, the previous call's tail without bias) or null when PT = 0
 * - wt: f32 [G, S, ceil(K/S)·C_in/G, C_out/G] (relayoutConvTr1dWeight); bias: f32 [C_out] | null
 * - y: f32 [T·S + PT, C_out]: rows [0, T·S) are the output (bias added, partial added to the first PT rows),
 *   rows [T·S, T·S+PT) the new partial (no bias) that the caller copies into the state.
 * Non-streaming use (official `unpad1d(y, (0, K-S))`) is the same with a zero partial, ignoring the tail rows.
 * Throws ShapeError naming the tensor whose shape or dtype is wrong (K < S is rejected: the
 * official module has no negative partial).
 */
export function convTranspose1d(rec: Recorder, x: Tensor, partial: Tensor | null, wt: Tensor, bias: Tensor | null, y: Tensor, opts: ConvTr1dOptions): void {
  const K = opts.kernelSize;
  const S = opts.stride;
  const G = opts.groups ?? 1;
  if (![K, S, G].every((v) => Number.isInteger(v) && v >= 1)) throw new ShapeError(`conv_transpose1d: kernelSize ${K}, stride ${S}, groups ${G} must be positive integers`);
  if (K < S) throw new ShapeError(`conv_transpose1d: kernel size ${K} is smaller than stride ${S}`);
  expectShape('conv_transpose1d input', x, [-1, -1], ['f32']);
  const [T, cIn] = x.shape;
  if (T < 1) throw new ShapeError(`conv_transpose1d input '${x.label}' has no rows`);
  if (cIn % G !== 0) throw new ShapeError(`conv_transpose1d input '${x.label}': C_in ${cIn} is not divisible by groups ${G}`);
  const taps = convTr1dTaps(K, S);
  expectShape('conv_transpose1d weight', wt, [G, S, taps * (cIn / G), -1], ['f32']);
  const cOut = wt.shape[3] * G;
  const PT = K - S;
  if (PT > 0) {
    if (!partial) throw new ShapeError(`conv_transpose1d: a partial-state tensor [${PT}, ${cOut}] is required (kernel ${K}, stride ${S})`);
    expectShape('conv_transpose1d partial state', partial, [PT, cOut], ['f32']);
  }
  if (bias) expectShape('conv_transpose1d bias', bias, [cOut], ['f32']);
  const tExt = T * S + PT;
  expectShape('conv_transpose1d output', y, [tExt, cOut], ['f32']);
  for (const t of [x, partial, bias, wt]) {
    if (t && t.buffer === y.buffer) throw new ShapeError(`conv_transpose1d: output '${y.label}' shares a buffer with input '${t.label}'`);
  }
  const params = { t_in: T, t_ext: tExt, c_in: cIn, c_out: cOut, k: K, stride: S, groups: G, taps, pt: PT, has_bias: bias ? 1 : 0 };
  const buffers = [x, partial ?? x, wt, bias ?? x, y];
  const ACT = opts.act === 'elu' ? 1 : 0;
  dispatchConv(rec, KERNELS, {
    groups: G, cOut, path: opts.path ?? 'auto', buffers, params, constants: { ACT },
    directThreads: S * Math.ceil(Math.ceil(tExt / S) / 4) * Math.ceil(cOut / 4),
    tiledWorkgroups: (tile) => [Math.ceil(cOut / tile.TN), Math.ceil(Math.ceil(tExt / S) / tile.TM), S],
    groupedThreads: tExt * cOut,
  });
}
