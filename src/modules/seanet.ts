/**
 * SEANet encoder / decoder, ports of moshi/modules/seanet.py `SEANetEncoder`, `SEANetDecoder` and
 * `SEANetResnetBlock` (causal, norm "none", true_skip, ELU). Module indices follow the official
 * `nn.Sequential` so weights load by checkpoint key: `encoder.model.{i}.conv.conv.*`,
 * `encoder.model.{i}.block.{1,3}.conv.conv.*`, `decoder.model.{i}.convtr.convtr.*`. The ELU
 * modules hold no weights; each is fused into the input read of the conv that follows it.
 * Activations are time-major [T, C]; every conv is a StreamingConv1d / StreamingConvTranspose1d
 * whose state carries across calls (streaming) until reset().
 */
import type { GpuContext, Recorder, Tensor } from '../gpu/index.ts';
import type { VarBuilder } from '../weights/var_builder.ts';
import { StreamingConv1d, StreamingConvTranspose1d, type Workspace, rowsView } from './conv.ts';

/** `_seanet_kwargs` (moshi/modules/seanet.py SEANetEncoder/SEANetDecoder constructor arguments). */
export interface SeanetConfig {
  channels: number;
  dimension: number;
  causal: boolean;
  n_filters: number;
  n_residual_layers: number;
  activation: 'ELU';
  compress: number;
  dilation_base: number;
  disable_norm_outer_blocks: number;
  kernel_size: number;
  residual_kernel_size: number;
  last_kernel_size: number;
  norm: 'none';
  pad_mode: 'constant';
  /** Decoder order (upsampling); the encoder uses them reversed. */
  ratios: number[];
  true_skip: boolean;
}

/**
 * SEANetResnetBlock: y = x + conv_1x1(ELU(conv_k(ELU(x)))) with hidden = dim / compress,
 * kernel sizes [residual_kernel_size, 1], dilations [dilation, 1]. Weights `block.1` and `block.3`.
 */
export class SEANetResnetBlock {
  private constructor(readonly name: string, readonly conv1: StreamingConv1d, readonly conv2: StreamingConv1d) {}

  static load(ctx: GpuContext, vb: VarBuilder, dim: number, cfg: SeanetConfig, dilation: number): SEANetResnetBlock {
    const hidden = Math.floor(dim / cfg.compress);
    const conv1 = StreamingConv1d.load(ctx, vb.pp('block').pp(1), { inChannels: dim, outChannels: hidden, kernelSize: cfg.residual_kernel_size, dilation, act: 'elu' });
    const conv2 = StreamingConv1d.load(ctx, vb.pp('block').pp(3), { inChannels: hidden, outChannels: dim, kernelSize: 1, act: 'elu' });
    return new SEANetResnetBlock(vb.prefix, conv1, conv2);
  }

  /** x: [T, dim] -> y: [T, dim] (a distinct buffer). */
  forward(rec: Recorder, ws: Workspace, x: Tensor, y: Tensor): void {
    const T = x.shape[0];
    const h = ws.get(`${this.name}.hidden`, [T, this.conv1.outChannels]); // h: [T, dim/compress]
    this.conv1.forward(rec, x, h);
    this.conv2.forward(rec, h, y, x); // y = x + conv2(elu(h))
  }

  reset(): void {
    this.conv1.reset();
    this.conv2.reset();
  }

  destroy(): void {
    this.conv1.destroy();
    this.conv2.destroy();
  }
}

type Stage = { kind: 'conv'; conv: StreamingConv1d; idx: number } | { kind: 'res'; block: SEANetResnetBlock; idx: number } | { kind: 'convtr'; convtr: StreamingConvTranspose1d; idx: number };

function resetStage(s: Stage): void {
  if (s.kind === 'conv') s.conv.reset();
  else if (s.kind === 'res') s.block.reset();
  else s.convtr.reset();
}

function destroyStage(s: Stage): void {
  if (s.kind === 'conv') s.conv.destroy();
  else if (s.kind === 'res') s.block.destroy();
  else s.convtr.destroy();
}

/** Records the stages in order; returns the final output tensor (rows [0, T) of the last buffer). */
function runStages(rec: Recorder, ws: Workspace, prefix: string, stages: Stage[], x: Tensor): Tensor {
  let h = x;
  for (const s of stages) {
    const T = h.shape[0];
    if (s.kind === 'conv') {
      const y = ws.get(`${prefix}.model.${s.idx}`, [s.conv.outLen(T), s.conv.outChannels]);
      s.conv.forward(rec, h, y);
      h = y;
    } else if (s.kind === 'res') {
      const y = ws.get(`${prefix}.model.${s.idx}`, [T, h.shape[1]]);
      s.block.forward(rec, ws, h, y);
      h = y;
    } else {
      const ext = ws.get(`${prefix}.model.${s.idx}`, [s.convtr.extLen(T), s.convtr.outChannels]);
      s.convtr.forward(rec, h, ext);
      h = rowsView(ext, 0, T * s.convtr.stride);
    }
  }
  return h;
}

/**
 * The stages of a SEANet encoder or decoder (`model.{i}` of the official `SEANetEncoder` /
 * `SEANetDecoder`, moshi/modules/seanet.py), run in order on one streaming chunk.
 */
abstract class SEANetStack {
  /** Samples per latent frame: the product of the ratios. */
  readonly hopLength: number;
  protected constructor(readonly cfg: SeanetConfig, private readonly stages: Stage[], readonly name: string) {
    this.hopLength = cfg.ratios.reduce((a, b) => a * b, 1);
  }

  /**
   * Encoder: audio f32 [T, channels] (T a multiple of hop_length) -> latent f32 [T / hop, dimension];
   * decoder: latent f32 [T, dimension] -> audio f32 [T · hop, channels]. Returns a workspace buffer (or rows of one).
   */
  forward(rec: Recorder, ws: Workspace, x: Tensor): Tensor {
    return runStages(rec, ws, this.name, this.stages, x);
  }

  /** Clears every stage's streaming state. */
  reset(): void {
    this.stages.forEach(resetStage);
  }

  destroy(): void {
    this.stages.forEach(destroyStage);
  }
}

/** SEANetEncoder: audio [T, channels] (T a multiple of hop_length) -> latent [T / hop, dimension] at the encoder frame rate. */
export class SEANetEncoder extends SEANetStack {

  /** Reads `<vb>.model.{i}...` (vb at `encoder`). */
  static load(ctx: GpuContext, vb: VarBuilder, cfg: SeanetConfig): SEANetEncoder {
    const m = vb.pp('model');
    const stages: Stage[] = [];
    let idx = 0;
    let mult = 1;
    const nf = cfg.n_filters;
    stages.push({ kind: 'conv', idx, conv: StreamingConv1d.load(ctx, m.pp(idx), { inChannels: cfg.channels, outChannels: nf, kernelSize: cfg.kernel_size }) });
    idx++;
    for (const ratio of [...cfg.ratios].reverse()) {
      for (let j = 0; j < cfg.n_residual_layers; j++) {
        stages.push({ kind: 'res', idx, block: SEANetResnetBlock.load(ctx, m.pp(idx), mult * nf, cfg, cfg.dilation_base ** j) });
        idx++;
      }
      idx++; // ELU
      stages.push({ kind: 'conv', idx, conv: StreamingConv1d.load(ctx, m.pp(idx), { inChannels: mult * nf, outChannels: mult * nf * 2, kernelSize: ratio * 2, stride: ratio, act: 'elu' }) });
      idx++;
      mult *= 2;
    }
    idx++; // ELU
    stages.push({ kind: 'conv', idx, conv: StreamingConv1d.load(ctx, m.pp(idx), { inChannels: mult * nf, outChannels: cfg.dimension, kernelSize: cfg.last_kernel_size, act: 'elu' }) });
    return new SEANetEncoder(cfg, stages, vb.prefix);
  }
}

/** SEANetDecoder: latent [T, dimension] -> audio [T · hop, channels] (no final activation, as Mimi). */
export class SEANetDecoder extends SEANetStack {

  /** Reads `<vb>.model.{i}...` (vb at `decoder`). */
  static load(ctx: GpuContext, vb: VarBuilder, cfg: SeanetConfig): SEANetDecoder {
    const m = vb.pp('model');
    const stages: Stage[] = [];
    const nf = cfg.n_filters;
    let mult = 2 ** cfg.ratios.length;
    let idx = 0;
    stages.push({ kind: 'conv', idx, conv: StreamingConv1d.load(ctx, m.pp(idx), { inChannels: cfg.dimension, outChannels: mult * nf, kernelSize: cfg.kernel_size }) });
    idx++;
    for (const ratio of cfg.ratios) {
      idx++; // ELU
      stages.push({ kind: 'convtr', idx, convtr: StreamingConvTranspose1d.load(ctx, m.pp(idx), { inChannels: mult * nf, outChannels: (mult * nf) / 2, kernelSize: ratio * 2, stride: ratio, act: 'elu' }) });
      idx++;
      for (let j = 0; j < cfg.n_residual_layers; j++) {
        stages.push({ kind: 'res', idx, block: SEANetResnetBlock.load(ctx, m.pp(idx), (mult * nf) / 2, cfg, cfg.dilation_base ** j) });
        idx++;
      }
      mult /= 2;
    }
    idx++; // ELU
    stages.push({ kind: 'conv', idx, conv: StreamingConv1d.load(ctx, m.pp(idx), { inChannels: nf, outChannels: cfg.channels, kernelSize: cfg.last_kernel_size, act: 'elu' }) });
    return new SEANetDecoder(cfg, stages, vb.prefix);
  }
}
