/**
 * Learnt conv resampling of the latent between the encoder frame rate (25 Hz) and the codec
 * frame rate (12.5 Hz): ports of moshi/modules/resample.py `ConvDownsample1d` and
 * `ConvTrUpsample1d` with learnt = True (MimiModel resample_method "conv"). Time-major [T, D].
 */
import type { GpuContext, Recorder, Tensor } from '../gpu/index.ts';
import type { VarBuilder } from '../weights/var_builder.ts';
import { StreamingConv1d, StreamingConvTranspose1d, type Workspace, rowsView } from './conv.ts';

/**
 * ConvDownsample1d(stride, dimension, learnt=True, causal=True): a StreamingConv1d D->D, kernel
 * 2·stride, no bias, pad mode 'replicate' (the first call pads with copies of its first frame).
 * Weight `<vb>.conv.conv.conv.weight` [D, D, 2·stride] (vb at `downsample`).
 */
export class ConvDownsample1d {
  private constructor(readonly conv: StreamingConv1d) {}

  static load(ctx: GpuContext, vb: VarBuilder, stride: number, dimension: number): ConvDownsample1d {
    return new ConvDownsample1d(StreamingConv1d.load(ctx, vb.pp('conv'), { inChannels: dimension, outChannels: dimension, kernelSize: 2 * stride, stride, bias: false, padMode: 'replicate' }));
  }

  /** x: [T, D] (T a multiple of stride) -> returns [T / stride, D] (a workspace buffer). */
  forward(rec: Recorder, ws: Workspace, x: Tensor): Tensor {
    const y = ws.get('downsample', [this.conv.outLen(x.shape[0]), this.conv.outChannels]);
    this.conv.forward(rec, x, y);
    return y;
  }

  reset(): void {
    this.conv.reset();
  }

  destroy(): void {
    this.conv.destroy();
  }
}

/**
 * ConvTrUpsample1d(stride, dimension, learnt=True, causal=True, channel_wise): a
 * StreamingConvTranspose1d D->D, kernel 2·stride, no bias, groups = D when channel_wise (Mimi's
 * `upsample_channel_wise_bug=True`, one group per channel). Weight `<vb>.convtr.convtr.convtr.weight`
 * [D, D/groups, 2·stride] (vb at `upsample`).
 */
export class ConvTrUpsample1d {
  private constructor(readonly convtr: StreamingConvTranspose1d) {}

  static load(ctx: GpuContext, vb: VarBuilder, stride: number, dimension: number, channelWise = true): ConvTrUpsample1d {
    return new ConvTrUpsample1d(StreamingConvTranspose1d.load(ctx, vb.pp('convtr'), { inChannels: dimension, outChannels: dimension, kernelSize: 2 * stride, stride, groups: channelWise ? dimension : 1, bias: false }));
  }

  /** x: [T, D] -> returns [T · stride, D] (rows of a workspace buffer). */
  forward(rec: Recorder, ws: Workspace, x: Tensor): Tensor {
    const T = x.shape[0];
    const ext = ws.get('upsample', [this.convtr.extLen(T), this.convtr.outChannels]);
    this.convtr.forward(rec, x, ext);
    return rowsView(ext, 0, T * this.convtr.stride);
  }

  reset(): void {
    this.convtr.reset();
  }

  destroy(): void {
    this.convtr.destroy();
  }
}
