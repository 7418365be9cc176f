/**
 * Streaming convolutions, ports of moshi/modules/conv.py `StreamingConv1d` and
 * `StreamingConvTranspose1d` (causal, norm "none"). Activations are time-major [T, C].
 *
 * State (named per-module GPU buffers, cleared by reset()):
 * - StreamingConv1d.prev [P, C_in]: the last P = (K-1)·dilation + 1 - stride input rows
 *   (`_StreamingConv1dState.previous`), zeros after reset; with pad_mode 'replicate' the first call
 *   after a reset reads x[0] for every context row (`state.first`).
 * - StreamingConvTranspose1d.partial [K-S, C_out]: the overlapping tail of the last call's output,
 *   carried WITHOUT bias (`_StreamingConvTr1dState.partial`).
 * A non-streaming pass over a whole clip equals a streaming pass from a reset state (the official
 * non-streaming forward initialises the same zero state and drops the transposed-conv tail).
 */
import { type GpuContext, type Recorder, ShapeError, Tensor } from '../gpu/index.ts';
import { type ConvAct, conv1d, conv1dContext, conv1dOutLen, relayoutConv1dWeight } from '../kernels/conv1d.ts';
import { convTr1dTaps, convTranspose1d, relayoutConvTr1dWeight } from '../kernels/conv_transpose1d.ts';
import { unary } from '../kernels/unary.ts';
import type { VarBuilder } from '../weights/var_builder.ts';

/** A window of rows [row0, row0 + rows) of a time-major tensor [T, C] (for copies; offsets need only 4-byte alignment). */
export function rowsView(t: Tensor, row0: number, rows: number, label = `${t.label}[${row0}:${row0 + rows}]`): Tensor {
  const c = t.shape[1];
  if (t.dtype !== 'f32' || t.rank !== 2 || row0 < 0 || row0 + rows > t.shape[0]) {
    throw new ShapeError(`rows [${row0}, ${row0 + rows}) of '${t.label}' [${t.shape.join(', ')}] (${t.dtype})`);
  }
  return new Tensor(t.buffer, [rows, c], 'f32', label, t.byteOffset + row0 * c * 4, false);
}

/**
 * Places a conv's input activation (ELU): on a CPU fallback adapter (SwiftShader) one
 * elementwise ELU pass into a buffer, then the conv reads it (each value's exp computed once
 * instead of once per tap and output-channel block); otherwise fused into the conv kernel's input
 * read (no extra memory traffic; best on GPUs). The results are identical (ELU(0) = 0 keeps zero
 * context exact). Returns the tensor the conv should read and the act it should fuse.
 */
function placeAct(rec: Recorder, act: ConvAct | undefined, x: Tensor, buffers: Map<string, Tensor>, label: string): { input: Tensor; act: ConvAct } {
  if (act !== 'elu') return { input: x, act: 'none' };
  const mode = rec.ctx.kernelChoice.convAct ?? 'auto'; // GpuContext.kernelChoice may force it
  if (mode === 'fused' || (mode === 'auto' && !rec.ctx.adapter.isFallbackAdapter)) return { input: x, act: 'elu' };
  const key = x.shape.join('x');
  let a = buffers.get(key);
  if (!a) {
    a = rec.ctx.tensor(x.shape, 'f32', `${label}.elu_in`);
    buffers.set(key, a);
  }
  unary(rec, 'elu', x, a);
  return { input: a, act: 'none' };
}

export interface StreamingConv1dConfig {
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  stride?: number;
  dilation?: number;
  groups?: number;
  bias?: boolean;
  padMode?: 'constant' | 'replicate';
  /** Activation fused on the input read (the nn.ELU module that precedes the conv in SEANet). */
  act?: ConvAct;
}

/**
 * moshi/modules/conv.py StreamingConv1d (+ NormConv1d with norm "none"). Weights at
 * `<vb>.conv.conv.weight` [C_out, C_in/G, K] and `.conv.conv.bias` [C_out] (when bias).
 */
export class StreamingConv1d {
  readonly stride: number;
  readonly dilation: number;
  readonly groups: number;
  readonly kernelSize: number;
  readonly context: number;
  readonly inChannels: number;
  readonly outChannels: number;
  /** Left context state [P, C_in] (null when P = 0). */
  readonly prev: Tensor | null;
  private readonly scratch: Tensor | null;
  private first = true;
  private pendingClear = false;
  private readonly actBuffers = new Map<string, Tensor>();

  private constructor(
    readonly name: string,
    readonly cfg: StreamingConv1dConfig,
    readonly wt: Tensor,
    readonly bias: Tensor | null,
    ctx: GpuContext,
  ) {
    this.stride = cfg.stride ?? 1;
    this.dilation = cfg.dilation ?? 1;
    this.groups = cfg.groups ?? 1;
    this.kernelSize = cfg.kernelSize;
    this.inChannels = cfg.inChannels;
    this.outChannels = cfg.outChannels;
    this.context = conv1dContext(this.kernelSize, this.stride, this.dilation);
    this.prev = this.context > 0 ? ctx.tensor([this.context, cfg.inChannels], 'f32', `${name}.previous`) : null;
    this.scratch = this.context > 0 ? ctx.tensor([this.context, cfg.inChannels], 'f32', `${name}.previous.shift`) : null;
  }

  /** Reads `<vb>.conv.conv.{weight,bias}`, relays the weight for the kernel (load-time transform). */
  static load(ctx: GpuContext, vb: VarBuilder, cfg: StreamingConv1dConfig): StreamingConv1d {
    const g = cfg.groups ?? 1;
    if (cfg.inChannels % g || cfg.outChannels % g) throw new ShapeError(`${vb.prefix}: channels ${cfg.inChannels}->${cfg.outChannels} not divisible by groups ${g}`);
    const cv = vb.pp('conv').pp('conv');
    const w = cv.host('weight', [cfg.outChannels, cfg.inChannels / g, cfg.kernelSize]);
    const cinG = cfg.inChannels / g;
    const wt = ctx.upload(relayoutConv1dWeight(w, cfg.outChannels, cinG, cfg.kernelSize, g), [g, cfg.kernelSize * cinG, cfg.outChannels / g], 'f32', cv.key('weight'));
    const bias = cfg.bias === false ? null : cv.tensor('bias', [cfg.outChannels]);
    return new StreamingConv1d(vb.prefix, cfg, wt, bias, ctx);
  }

  /** Output rows for `tIn` input rows (tIn must be a multiple of the stride). */
  outLen(tIn: number): number {
    return conv1dOutLen(tIn, this.context, this.kernelSize, this.stride, this.dilation);
  }

  /**
   * Records y = conv([prev | x]) (+ res) and the state update prev <- last P rows of [prev | x].
   * x: f32 [T, C_in] with T a positive multiple of the stride; y: f32 [outLen(T), C_out]; res: like y or null.
   * Throws ShapeError for a bad length (official: "Steps must be multiple of stride") or, in
   * replicate mode, T < P (official: "Not enough content to pad streaming.").
   */
  forward(rec: Recorder, x: Tensor, y: Tensor, res: Tensor | null = null): void {
    const T = x.shape[0];
    if (T <= 0 || T % this.stride !== 0) throw new ShapeError(`${this.name}: input '${x.label}' has ${T} rows, expected a positive multiple of the stride ${this.stride}`);
    const P = this.context;
    if (this.cfg.padMode === 'replicate' && T < P) throw new ShapeError(`${this.name}: ${T} input rows are not enough to pad ${P} rows of replicate context`);
    if (this.pendingClear && this.prev) rec.clear(this.prev);
    this.pendingClear = false;
    const { input, act } = placeAct(rec, this.cfg.act, x, this.actBuffers, this.name);
    x = input; // x: [T, C_in] after the (separate) activation: the state keeps activated rows, as the official conv input
    conv1d(rec, x, this.prev, this.wt, this.bias, res, y, {
      kernelSize: this.kernelSize,
      stride: this.stride,
      dilation: this.dilation,
      groups: this.groups,
      act,
      padMode: this.cfg.padMode,
      first: this.first,
    });
    if (this.prev && this.scratch) {
      const C = this.inChannels;
      if (T >= P) {
        rec.copy(rowsView(x, T - P, P), this.prev, P * C * 4);
      } else {
        // prev <- [prev[T:], x]: shift through the scratch buffer (a buffer cannot be copied onto itself).
        rec.copy(rowsView(this.prev, T, P - T), this.scratch, (P - T) * C * 4);
        rec.copy(this.scratch, this.prev, (P - T) * C * 4);
        rec.copy(x, rowsView(this.prev, P - T, T), T * C * 4);
      }
    }
    this.first = false;
  }

  /** Clears the streaming state (zeros; replicate mode re-arms the first-call padding) at the next forward. */
  reset(): void {
    this.pendingClear = true;
    this.first = true;
  }

  destroy(): void {
    for (const t of [this.wt, this.bias, this.prev, this.scratch, ...this.actBuffers.values()]) t?.destroy();
  }
}

export interface StreamingConvTr1dConfig {
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  stride: number;
  groups?: number;
  bias?: boolean;
  act?: ConvAct;
}

/**
 * moshi/modules/conv.py StreamingConvTranspose1d (+ NormConvTranspose1d, norm "none"). Weights at
 * `<vb>.convtr.convtr.weight` [C_in, C_out/G, K] and `.convtr.convtr.bias` [C_out] (when bias).
 */
export class StreamingConvTranspose1d {
  readonly stride: number;
  readonly groups: number;
  readonly kernelSize: number;
  readonly inChannels: number;
  readonly outChannels: number;
  /** Carried overlap [K - S, C_out] without bias (null when K = S). */
  readonly partial: Tensor | null;
  private pendingClear = false;
  private readonly actBuffers = new Map<string, Tensor>();

  private constructor(
    readonly name: string,
    readonly cfg: StreamingConvTr1dConfig,
    readonly wt: Tensor,
    readonly bias: Tensor | null,
    ctx: GpuContext,
  ) {
    this.stride = cfg.stride;
    this.groups = cfg.groups ?? 1;
    this.kernelSize = cfg.kernelSize;
    this.inChannels = cfg.inChannels;
    this.outChannels = cfg.outChannels;
    const pt = this.kernelSize - this.stride;
    if (pt < 0) throw new ShapeError(`${name}: kernel size ${this.kernelSize} is smaller than stride ${this.stride}`);
    this.partial = pt > 0 ? ctx.tensor([pt, cfg.outChannels], 'f32', `${name}.partial`) : null;
  }

  static load(ctx: GpuContext, vb: VarBuilder, cfg: StreamingConvTr1dConfig): StreamingConvTranspose1d {
    const g = cfg.groups ?? 1;
    if (cfg.inChannels % g || cfg.outChannels % g) throw new ShapeError(`${vb.prefix}: channels ${cfg.inChannels}->${cfg.outChannels} not divisible by groups ${g}`);
    const cv = vb.pp('convtr').pp('convtr');
    const coutG = cfg.outChannels / g;
    const w = cv.host('weight', [cfg.inChannels, coutG, cfg.kernelSize]);
    const taps = convTr1dTaps(cfg.kernelSize, cfg.stride);
    const wt = ctx.upload(relayoutConvTr1dWeight(w, cfg.inChannels, coutG, cfg.kernelSize, cfg.stride, g), [g, cfg.stride, taps * (cfg.inChannels / g), coutG], 'f32', cv.key('weight'));
    const bias = cfg.bias === false ? null : cv.tensor('bias', [cfg.outChannels]);
    return new StreamingConvTranspose1d(vb.prefix, cfg, wt, bias, ctx);
  }

  /** Rows of the extended output buffer for T input rows: T·S returned + (K-S) carried. */
  extLen(tIn: number): number {
    return tIn * this.stride + this.kernelSize - this.stride;
  }

  /**
   * Records the transposed conv of x [T, C_in] into yExt [T·S + K - S, C_out] and carries the tail:
   * rows [0, T·S) of yExt are this call's output; the last K - S rows (no bias) become `partial`.
   */
  forward(rec: Recorder, x: Tensor, yExt: Tensor): void {
    if (this.pendingClear && this.partial) rec.clear(this.partial);
    this.pendingClear = false;
    const { input, act } = placeAct(rec, this.cfg.act, x, this.actBuffers, this.name);
    convTranspose1d(rec, input, this.partial, this.wt, this.bias, yExt, { kernelSize: this.kernelSize, stride: this.stride, groups: this.groups, act });
    if (this.partial) {
      const T = x.shape[0];
      const pt = this.kernelSize - this.stride;
      rec.copy(rowsView(yExt, T * this.stride, pt), this.partial, pt * this.outChannels * 4);
    }
  }

  reset(): void {
    this.pendingClear = true;
  }

  destroy(): void {
    for (const t of [this.wt, this.bias, this.partial, ...this.actBuffers.values()]) t?.destroy();
  }
}

/**
 * Activation buffers of a streaming model, created on first use and reused by every later call
 * with the same name and shape (one set per chunk length). Names are per-module, so buffers never
 * alias within one recording.
 */
export class Workspace {
  private readonly tensors = new Map<string, Tensor>();
  constructor(private readonly ctx: GpuContext, readonly label: string) {}

  /** The f32 (or `dtype`) tensor called `name` with exactly `shape`. */
  get(name: string, shape: readonly number[], dtype: 'f32' | 'i32' = 'f32'): Tensor {
    const key = `${name}|${shape.join('x')}|${dtype}`;
    let t = this.tensors.get(key);
    if (!t) {
      t = this.ctx.tensor(shape, dtype, `${this.label}.${name}`);
      this.tensors.set(key, t);
    }
    return t;
  }

  /** Bytes held. */
  get bytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.byteLength;
    return n;
  }

  destroy(): void {
    for (const t of this.tensors.values()) t.destroy();
    this.tensors.clear();
  }
}
