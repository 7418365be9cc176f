import convSource from '../../shaders/conv1d.wgsl?raw';
import { ParamsLayout, type Recorder, ShapeError, type Tensor, expectShape, storageBindings } from '../gpu/index.ts';
import { type Conv1dPath, type ConvAct, convKernels, dispatchConv } from './conv_gemm.ts';

export type { Conv1dPath, ConvAct };

const BINDINGS = storageBindings({ x: 'read', prev: 'read', wt: 'read', bias: 'read', res: 'read', y: 'read_write' });

const PARAMS = new ParamsLayout([
  ['t_in', 'u32'],
  ['t_out', 'u32'],
  ['c_in', 'u32'],
  ['c_out', 'u32'],
  ['k', 'u32'],
  ['stride', 'u32'],
  ['dilation', 'u32'],
  ['groups', 'u32'],
  ['p', 'u32'],
  ['first', 'u32'],
  ['has_bias', 'u32'],
  ['has_res', 'u32'],
]);

/** conv1d, conv1d.direct, conv1d.grouped over shaders/conv1d.wgsl + conv_gemm.wgsl (see ConvKernels). */
const KERNELS = convKernels('conv1d', convSource, BINDINGS, PARAMS);

export interface Conv1dOptions {
  kernelSize: number;
  stride?: number;
  dilation?: number;
  groups?: number;
  /** Activation applied to x and prev on read (default none). */
  act?: ConvAct;
  /** 'replicate' with `first` reads x[0] for every left-context row (ConvDownsample1d's first streaming call). */
  padMode?: 'constant' | 'replicate';
  first?: boolean;
  /** groups = 1 kernel choice (default 'auto'). */
  path?: Conv1dPath;
}

/** Left-context rows a causal conv keeps: (K-1)·dilation + 1 - stride (StreamingConv1d `_padding_total`). */
export function conv1dContext(kernelSize: number, stride: number, dilation: number): number {
  return (kernelSize - 1) * dilation + 1 - stride;
}

/** Output rows for `tIn` input rows after `p` rows of left context. */
export function conv1dOutLen(tIn: number, p: number, kernelSize: number, stride: number, dilation: number): number {
  const eff = (kernelSize - 1) * dilation + 1;
  return Math.floor((p + tIn - eff) / stride) + 1;
}

/**
 * Load-time relayout of a PyTorch Conv1d weight W [C_out, C_in/G, K] (f32 host values) into the
 * kernel's layout wt [G, K·cin_g, cout_g] with wt[g, k·cin_g + ci, col] = W[g·cout_g + col, ci, k].
 */
export function relayoutConv1dWeight(w: Float32Array, cOut: number, cInG: number, k: number, groups: number): Float32Array {
  if (w.length !== cOut * cInG * k) throw new ShapeError(`conv1d weight has ${w.length} values, expected ${cOut}·${cInG}·${k}`);
  if (cOut % groups !== 0) throw new ShapeError(`conv1d: C_out ${cOut} is not divisible by groups ${groups}`);
  const coutG = cOut / groups;
  const out = new Float32Array(w.length);
  for (let co = 0; co < cOut; co++) {
    const g = Math.floor(co / coutG);
    const col = co % coutG;
    for (let ci = 0; ci < cInG; ci++) {
      for (let kk = 0; kk < k; kk++) out[(g * k * cInG + kk * cInG + ci) * coutG + col] = w[(co * cInG + ci) * k + kk];
    }
  }
  return out;
}

/**
 * Causal streaming conv1d in time-major layout (moshi/modules/conv.py StreamingConv1d.forward:
 * conv over [previous | x], no right padding), with optional fused input ELU, bias and residual add.
 * - x: f32 [T_in, C_in]; prev: f32 [P, C_in] with P = (K-1)·dilation + 1 - stride, or null when P = 0
 * - wt: f32 [G, K·C_in/G, C_out/G] (relayoutConv1dWeight of the PyTorch [C_out, C_in/G, K] weight)
 * - bias: f32 [C_out] | null; res: f32 [T_out, C_out] | null (added after the bias: SEANet skip)
 * - y: f32 [T_out, C_out], T_out = (P + T_in - ((K-1)·dilation+1))/stride + 1; a buffer distinct from the inputs.
 * Does not update `prev`: the caller (src/modules/conv.ts) copies the new left context afterwards.
 * Throws ShapeError naming the tensor whose shape or dtype is wrong.
 */
export function conv1d(rec: Recorder, x: Tensor, prev: Tensor | null, wt: Tensor, bias: Tensor | null, res: Tensor | null, y: Tensor, opts: Conv1dOptions): void {
  const K = opts.kernelSize;
  const S = opts.stride ?? 1;
  const D = opts.dilation ?? 1;
  const G = opts.groups ?? 1;
  if (![K, S, D, G].every((v) => Number.isInteger(v) && v >= 1)) throw new ShapeError(`conv1d: kernelSize ${K}, stride ${S}, dilation ${D}, groups ${G} must be positive integers`);
  expectShape('conv1d input', x, [-1, -1], ['f32']);
  const [tIn, cIn] = x.shape;
  const P = conv1dContext(K, S, D);
  if (P < 0) throw new ShapeError(`conv1d: stride ${S} exceeds the effective kernel size ${(K - 1) * D + 1}`);
  if (cIn % G !== 0) throw new ShapeError(`conv1d input '${x.label}': C_in ${cIn} is not divisible by groups ${G}`);
  expectShape('conv1d weight', wt, [G, K * (cIn / G), -1], ['f32']);
  const cOut = wt.shape[2] * G;
  const tOut = conv1dOutLen(tIn, P, K, S, D);
  if ((P + tIn - ((K - 1) * D + 1)) % S !== 0 || tOut < 1) {
    throw new ShapeError(`conv1d input '${x.label}': ${tIn} rows plus ${P} of context do not make whole stride-${S} windows of size ${(K - 1) * D + 1}`);
  }
  if (P > 0) {
    if (!prev) throw new ShapeError(`conv1d: a left-context tensor [${P}, ${cIn}] is required (kernel ${K}, stride ${S}, dilation ${D})`);
    expectShape('conv1d left context', prev, [P, cIn], ['f32']);
  }
  if (bias) expectShape('conv1d bias', bias, [cOut], ['f32']);
  if (res) expectShape('conv1d residual', res, [tOut, cOut], ['f32']);
  expectShape('conv1d output', y, [tOut, cOut], ['f32']);
  for (const t of [x, prev, bias, res, wt]) {
    if (t && t.buffer === y.buffer) throw new ShapeError(`conv1d: output '${y.label}' shares a buffer with input '${t.label}'`);
  }
  const replicate = opts.padMode === 'replicate';
  if (replicate && opts.first && tIn < 1) throw new ShapeError('conv1d replicate padding needs at least one input row');
  const params = {
    t_in: tIn, t_out: tOut, c_in: cIn, c_out: cOut, k: K, stride: S, dilation: D, groups: G, p: P,
    first: opts.first ? 1 : 0, has_bias: bias ? 1 : 0, has_res: res ? 1 : 0,
  };
  const buffers = [x, prev ?? x, wt, bias ?? x, res ?? x, y];
  const ACT = opts.act === 'elu' ? 1 : 0;
  const REPLICATE = replicate ? 1 : 0;
  dispatchConv(rec, KERNELS, {
    groups: G, cOut, path: opts.path ?? 'auto', buffers, params, constants: { ACT, REPLICATE },
    directThreads: Math.ceil(tOut / 4) * Math.ceil(cOut / 4),
    tiledWorkgroups: (tile) => [Math.ceil(cOut / tile.TN), Math.ceil(tOut / tile.TM)],
    groupedThreads: tOut * cOut,
  });
}
