/**
 * MimiModel: Kyutai's streaming neural audio codec, a port of moshi/models/compression.py
 * `MimiModel` as built by moshi/models/loaders.py `get_mimi` (causal, resample_method "conv",
 * upsample_channel_wise_bug=True, encoder frame rate sample_rate / hop = 25 Hz).
 *
 *   encode: pcm [1920·F] (24 kHz) -> SEANetEncoder -> encoder_transformer -> ConvDownsample1d
 *           (25 -> 12.5 Hz) -> SplitResidualVectorQuantizer.encode -> codes [K, F]
 *   decode: codes [K, F] -> SplitResidualVectorQuantizer.decode -> ConvTrUpsample1d (channel-wise)
 *           -> decoder_transformer -> SEANetDecoder -> pcm [1920·F]
 *
 * Everything runs in time-major layout ([T, C]) on WebGPU; each call records one Recorder (one
 * submit) with a single readback. Streaming state lives in named per-module GPU buffers
 * (`<module>.previous` conv left context, `<module>.partial` transposed-conv overlap carried
 * without bias, the transformers' ring KV caches); reset() clears it. Weights load by checkpoint
 * key (layout of ../shared/fixtures/ref/mimi_keys_full.json), F32/F16/BF16.
 */
import { type GpuContext, type Recorder, ShapeError, Tensor, expectShape } from '../gpu/index.ts';
import { StreamingTransformer, type TransformerConfig } from '../modules/transformer.ts';
import { Workspace } from '../modules/conv.ts';
import { ConvDownsample1d, ConvTrUpsample1d } from '../modules/resample.ts';
import { SEANetDecoder, SEANetEncoder } from '../modules/seanet.ts';
import { SplitResidualVectorQuantizer } from '../quantization/vq.ts';
import type { StoragePolicy, VarBuilder } from '../weights/var_builder.ts';
import { type MimiConfig, type MimiDerived, mimiDerived } from './mimi_config.ts';

/** Audio or codes handed to MimiModel do not fit (length, shape, code range). */
export class MimiInputError extends Error {
  override name = 'MimiInputError';
}

export interface MimiLoadOptions {
  /** Transformer weight storage: 'f32' (default) or 'native' (F16/BF16 kept packed). Convolutions and codebooks are always f32. */
  policy?: StoragePolicy;
  /**
   * Frames recorded per chunk by encodeAll/decodeAll (and by long streaming calls). Activation
   * buffers scale with it; the default (defaultChunkFrames) keeps them near 128 MiB.
   */
  maxChunkFrames?: number;
}

/** Called during recording with intermediate tensors (time-major) so tests can read them back. */
export type MimiTap = (rec: Recorder, name: MimiIntermediate, t: Tensor, chunk: number) => void;

/** Names of the intermediates a MimiTap sees (the golden fixtures' `ns_*` names without prefix). */
export type MimiIntermediate =
  | 'encoder_seanet_out' // [2F, D] 25 Hz
  | 'encoder_transformer_out' // [2F, D]
  | 'latent_prequant' // [F, D] 12.5 Hz
  | 'rvq_first_input_proj' // [F, Dq]
  | 'rvq_rest_input_proj' // [F, Dq]
  | 'latent_quantized' // [F, D]
  | 'upsampled' // [2F, D]
  | 'decoder_transformer_out'; // [2F, D]

/** A 1-D window [start, start + n) of an f32 tensor (for copies). */
function window(t: Tensor, start: number, n: number, label: string): Tensor {
  return new Tensor(t.buffer, [n], 'f32', label, t.byteOffset + start * 4, false);
}

/**
 * Frames per recorded chunk when the caller does not choose: activation buffers take roughly
 * 70 kB per code frame per SEANet filter (encoder + decoder, all rates), kept under ~128 MiB
 * (real Mimi, 64 filters: 29 frames; the tiny fixture models: 200+), at most 256.
 */
export function defaultChunkFrames(cfg: MimiConfig): number {
  const perFrame = 70_000 * cfg.seanet.n_filters * (cfg.frame_rate === 12.5 ? 1 : 12.5 / cfg.frame_rate);
  return Math.max(1, Math.min(256, Math.floor((128 * 2 ** 20) / perFrame)));
}

/** The Mimi transformer config (`_transformer_kwargs`) in StreamingTransformer's terms. */
export function mimiTransformerConfig(cfg: MimiConfig): TransformerConfig {
  const t = cfg.transformer;
  return {
    dModel: t.d_model,
    numHeads: t.num_heads,
    numLayers: t.num_layers,
    dimFeedforward: t.dim_feedforward,
    causal: t.causal,
    context: t.context,
    maxPeriod: t.max_period,
    positionalEmbedding: t.positional_embedding,
    norm: t.norm,
    gating: t.gating,
    layerScale: t.layer_scale,
    // Two steps per frame through matrices of d_model 512: dispatches, not bytes, bound them.
    layerBlocks: true,
  } as TransformerConfig;
}

export class MimiModel {
  readonly numCodebooks: number;
  /** Samples per code frame (1920 at 24 kHz / 12.5 Hz). */
  readonly frameSize: number;
  readonly derived: MimiDerived;
  /** Entries per codebook. */
  readonly cardinality: number;
  readonly maxChunkFrames: number;
  private readonly encWs: Workspace;
  private readonly decWs: Workspace;
  private destroyed = false;

  private constructor(
    readonly ctx: GpuContext,
    readonly config: MimiConfig,
    readonly encoder: SEANetEncoder,
    readonly encoderTransformer: StreamingTransformer,
    readonly downsample: ConvDownsample1d,
    readonly quantizer: SplitResidualVectorQuantizer,
    readonly upsample: ConvTrUpsample1d,
    readonly decoderTransformer: StreamingTransformer,
    readonly decoder: SEANetDecoder,
    opts: MimiLoadOptions,
  ) {
    this.derived = mimiDerived(config);
    this.frameSize = this.derived.frameSize;
    this.numCodebooks = config.num_codebooks;
    this.cardinality = config.quantizer.bins;
    // A transformer forward takes at most `context` steps (its KV cache capacity): 2 per frame.
    const capFrames = Math.max(1, Math.floor(config.transformer.context / this.derived.downsampleStride));
    this.maxChunkFrames = Math.min(opts.maxChunkFrames ?? defaultChunkFrames(config), capFrames);
    this.encWs = new Workspace(ctx, 'mimi.enc');
    this.decWs = new Workspace(ctx, 'mimi.dec');
  }

  /**
   * Builds the model from a validated config (parseMimiConfig / MIMI_RELEASED_CONFIG) and weights
   * in the official checkpoint layout (`encoder.*`, `encoder_transformer.transformer.*`,
   * `downsample.*`, `quantizer.*`, `upsample.*`, `decoder_transformer.transformer.*`, `decoder.*`).
   * Codebook centroids = embedding_sum / clamp(cluster_usage, 1e-5), computed once here.
   * Throws WeightError naming a missing, misshapen or unused key (vb.finish()).
   */
  static async load(ctx: GpuContext, config: MimiConfig, vb: VarBuilder, opts: MimiLoadOptions = {}): Promise<MimiModel> {
    const d = mimiDerived(config);
    const D = config.seanet.dimension;
    if (opts.maxChunkFrames !== undefined && !(Number.isInteger(opts.maxChunkFrames) && opts.maxChunkFrames >= 1)) {
      throw new MimiInputError(`maxChunkFrames must be a positive integer, got ${opts.maxChunkFrames}`);
    }
    const policy = opts.policy ?? 'f32';
    // Modules loaded so far, destroyed if a later key is missing or misshapen.
    const loaded: { destroy(): void }[] = [];
    const keep = <T extends { destroy(): void }>(m: T): T => {
      loaded.push(m);
      return m;
    };
    let parts;
    try {
      const encoder = keep(SEANetEncoder.load(ctx, vb.pp('encoder'), config.seanet));
      const decoder = keep(SEANetDecoder.load(ctx, vb.pp('decoder'), config.seanet));
      const tcfg = mimiTransformerConfig(config);
      const encoderTransformer = keep(await StreamingTransformer.load(ctx, vb.pp('encoder_transformer').pp('transformer'), tcfg, policy));
      const decoderTransformer = keep(await StreamingTransformer.load(ctx, vb.pp('decoder_transformer').pp('transformer'), tcfg, policy));
      const downsample = keep(ConvDownsample1d.load(ctx, vb.pp('downsample'), d.downsampleStride, D));
      const upsample = keep(ConvTrUpsample1d.load(ctx, vb.pp('upsample'), d.downsampleStride, D, true));
      const quantizer = keep(SplitResidualVectorQuantizer.load(ctx, vb.pp('quantizer'), config.quantizer, config.num_codebooks));
      vb.finish();
      await vb.uploadPending(); // Blob-backed weights (a no-op for files in memory)
      parts = { encoder, decoder, encoderTransformer, decoderTransformer, downsample, upsample, quantizer };
    } catch (e) {
      for (const m of loaded) m.destroy();
      vb.destroyLoaded(); // tensors of a module that failed half-way
      throw e;
    }
    const { encoder, decoder, encoderTransformer, decoderTransformer, downsample, upsample, quantizer } = parts;
    return new MimiModel(ctx, config, encoder, encoderTransformer, downsample, quantizer, upsample, decoderTransformer, decoder, opts);
  }

  /** Encoder-side latent frames (25 Hz) per code frame (2). */
  private get stride(): number {
    return this.derived.downsampleStride;
  }

  private checkAlive(): void {
    if (this.destroyed) throw new MimiInputError('this MimiModel was destroyed');
  }

  /** Records one chunk: pcm samples [start, start + 1920·F) of `pcm` -> codes columns [col0, col0 + F). */
  private recordEncodeChunk(rec: Recorder, pcm: Tensor, codes: Tensor, col0: number, F: number, tap: MimiTap | null, chunk: number): void {
    const ws = this.encWs;
    const D = this.config.seanet.dimension;
    const n = F * this.frameSize;
    const x = ws.get('pcm_in', [n, 1]); // x: [1920F, 1]
    rec.copy(window(pcm, col0 * this.frameSize, n, 'pcm chunk'), x, n * 4);
    const emb = this.encoder.forward(rec, ws, x); // emb: [2F, D]
    tap?.(rec, 'encoder_seanet_out', emb, chunk);
    const tr = ws.get('encoder_transformer.out', [F * this.stride, D]); // tr: [2F, D]
    this.encoderTransformer.forward(rec, emb, tr);
    tap?.(rec, 'encoder_transformer_out', tr, chunk);
    const lat = this.downsample.forward(rec, ws, tr); // lat: [F, D]
    tap?.(rec, 'latent_prequant', lat, chunk);
    const proj = this.quantizer.encode(rec, ws, lat, codes, col0);
    tap?.(rec, 'rvq_first_input_proj', proj.first, chunk);
    if (proj.rest) tap?.(rec, 'rvq_rest_input_proj', proj.rest, chunk);
  }

  /** Records one chunk: codes columns [col0, col0 + F) -> pcm samples [1920·col0, 1920·(col0 + F)). */
  private recordDecodeChunk(rec: Recorder, codes: Tensor, pcm: Tensor, col0: number, F: number, tap: MimiTap | null, chunk: number, K: number): void {
    const ws = this.decWs;
    const D = this.config.seanet.dimension;
    const q = this.quantizer.decode(rec, ws, codes, F, col0, K); // q: [F, D]
    tap?.(rec, 'latent_quantized', q, chunk);
    const up = this.upsample.forward(rec, ws, q); // up: [2F, D]
    tap?.(rec, 'upsampled', up, chunk);
    const tr = ws.get('decoder_transformer.out', [F * this.stride, D]); // tr: [2F, D]
    this.decoderTransformer.forward(rec, up, tr);
    tap?.(rec, 'decoder_transformer_out', tr, chunk);
    const audio = this.decoder.forward(rec, ws, tr); // audio: [1920F, 1]
    const n = F * this.frameSize;
    rec.copy(audio, window(pcm, col0 * this.frameSize, n, 'pcm out chunk'), n * 4);
  }

  private forChunks(frames: number, fn: (col0: number, f: number, chunk: number) => void): void {
    let chunk = 0;
    for (let col0 = 0; col0 < frames; col0 += this.maxChunkFrames) fn(col0, Math.min(this.maxChunkFrames, frames - col0), chunk++);
  }

  /**
   * Streaming encode at the recording level (no readback): pcm f32 [1920·F] (or [1920·F, 1]) ->
   * codes i32 [numCodebooks, F] (or a wider [rows ≥ numCodebooks, F] tensor; rows [0, K) written).
   * Advances the encoder-side streaming state. Throws ShapeError / MimiInputError on bad shapes.
   */
  recordEncode(rec: Recorder, pcm: Tensor, codes: Tensor, tap: MimiTap | null = null): void {
    this.checkAlive();
    expectShape('Mimi encode input', pcm, pcm.rank === 2 ? [-1, 1] : [-1], ['f32']);
    const n = pcm.numel;
    if (n === 0 || n % this.frameSize !== 0) throw this.lengthError(n);
    const F = n / this.frameSize;
    expectShape('Mimi encode codes', codes, [-1, F], ['i32']);
    if (codes.shape[0] < this.numCodebooks) throw new ShapeError(`Mimi encode codes '${codes.label}' has ${codes.shape[0]} rows, needs ${this.numCodebooks}`);
    this.forChunks(F, (col0, f, chunk) => this.recordEncodeChunk(rec, pcm, codes, col0, f, tap, chunk));
  }

  /**
   * Streaming decode at the recording level (no readback): codes i32 [rows ≥ K, F] (values in
   * [0, cardinality); out-of-range values are clamped on the GPU) -> pcm f32 [1920·F], from the
   * first K = `codebooks` rows (default numCodebooks; 1 ≤ K ≤ numCodebooks). As the official
   * `MimiModel.decode`, the codes given decide the codebooks summed, so a Mimi loaded with 32 (or 8)
   * codebooks decodes Moshi's dep_q audio tokens (moshi/quantization/vq.py
   * SplitResidualVectorQuantizer.decode). Advances the decoder-side streaming state.
   * Throws ShapeError for too few rows, K outside [1, numCodebooks] or a wrong pcm shape.
   */
  recordDecode(rec: Recorder, codes: Tensor, pcm: Tensor, tap: MimiTap | null = null, codebooks = this.numCodebooks): void {
    this.checkAlive();
    this.checkDecodeCodebooks(codebooks);
    expectShape('Mimi decode codes', codes, [-1, -1], ['i32']);
    const F = codes.shape[1];
    if (codes.shape[0] < codebooks || F < 1) throw new ShapeError(`Mimi decode codes '${codes.label}' is [${codes.shape.join(', ')}], expected [${codebooks}, frames ≥ 1]`);
    expectShape('Mimi decode output', pcm, pcm.rank === 2 ? [F * this.frameSize, 1] : [F * this.frameSize], ['f32']);
    this.forChunks(F, (col0, f, chunk) => this.recordDecodeChunk(rec, codes, pcm, col0, f, tap, chunk, codebooks));
  }

  private checkDecodeCodebooks(k: number): void {
    if (!Number.isInteger(k) || k < 1 || k > this.numCodebooks) {
      throw new MimiInputError(`decode: ${k} codebooks asked, this Mimi was loaded with num_codebooks = ${this.numCodebooks} (decode takes 1 to ${this.numCodebooks})`);
    }
  }

  private lengthError(n: number): MimiInputError {
    return new MimiInputError(
      `Invalid input x of length ${n}. The length must be a positive multiple of the frame size ${this.frameSize}. You are responsible for buffering accordingly before feeding audio to Mimi.`,
    );
  }

  /** Host codes -> a codes tensor in the decode workspace, after checking shape and range. */
  private uploadCodes(codes: Int32Array, frames: number, K: number): Tensor {
    this.checkDecodeCodebooks(K);
    if (!Number.isInteger(frames) || frames < 1) throw new MimiInputError(`decode: frames must be a positive integer, got ${frames}`);
    if (codes.length !== K * frames) throw new MimiInputError(`decode: codes has ${codes.length} values, expected codebooks × frames = ${K} × ${frames} = ${K * frames} (row-major [${K}, ${frames}])`);
    const card = this.cardinality;
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (!(c >= 0 && c < card)) {
        throw new MimiInputError(`decode: code ${c} at [codebook ${Math.floor(i / frames)}, frame ${i % frames}] is outside [0, ${card})`);
      }
    }
    const t = this.decWs.get('codes_in', [K, frames], 'i32');
    this.ctx.write(t, codes);
    return t;
  }

  /**
   * Streaming encode (MimiModel.encode inside `streaming(1)`): any positive multiple of 1920
   * samples at 24 kHz -> codes [numCodebooks, frames] row-major; the first 1920-sample call
   * returns one frame. Throws MimiInputError otherwise (official: "Invalid input x of length N.
   * The length must be a positive multiple of the frame size 1920.").
   */
  async encode(pcm: Float32Array): Promise<Int32Array> {
    this.checkAlive();
    const n = pcm.length;
    if (n === 0 || n % this.frameSize !== 0) throw this.lengthError(n);
    const F = n / this.frameSize;
    const x = this.encWs.get('pcm_host', [n]);
    this.ctx.write(x, pcm);
    const codes = this.encWs.get('codes_out', [this.numCodebooks, F], 'i32');
    const rec = this.ctx.record('mimi.encode');
    this.recordEncode(rec, x, codes);
    const out = rec.readback(codes);
    await rec.submit();
    return (await out) as Int32Array;
  }

  /**
   * Streaming decode (MimiModel.decode inside `streaming(1)`): codes [K, frames] row-major ->
   * 1920·frames samples, from the first call; K = `codebooks` (default numCodebooks, at most that:
   * fewer codes decode through the first K codebooks, as the official decode of codes [B, K, T]).
   * Throws MimiInputError for a wrong length, K outside [1, numCodebooks] or a code outside
   * [0, cardinality).
   */
  async decode(codes: Int32Array, frames: number, codebooks = this.numCodebooks): Promise<Float32Array> {
    this.checkAlive();
    const c = this.uploadCodes(codes, frames, codebooks);
    const pcm = this.decWs.get('pcm_out', [frames * this.frameSize]);
    const rec = this.ctx.record('mimi.decode');
    this.recordDecode(rec, c, pcm, null, codebooks);
    const out = rec.readback(pcm);
    await rec.submit();
    return (await out) as Float32Array;
  }

  /**
   * Non-streaming encode of a whole clip (MimiModel.encode without a streaming context): the clip
   * is zero-padded on the right to a multiple of 1920 (`pad_for_conv1d`), then encoded from a
   * fresh state. Resets the encoder-side streaming state before and after. Throws MimiInputError
   * for an empty clip.
   */
  async encodeAll(pcm: Float32Array, tap: MimiTap | null = null): Promise<Int32Array> {
    this.checkAlive();
    if (pcm.length === 0) throw new MimiInputError('encodeAll: the clip is empty');
    const F = Math.ceil(pcm.length / this.frameSize);
    const n = F * this.frameSize;
    const x = this.encWs.get('pcm_host', [n]);
    if (n !== pcm.length) {
      const padded = new Float32Array(n);
      padded.set(pcm);
      this.ctx.write(x, padded);
    } else this.ctx.write(x, pcm);
    const codes = this.encWs.get('codes_out', [this.numCodebooks, F], 'i32');
    this.resetEncoder();
    const rec = this.ctx.record('mimi.encodeAll');
    this.recordEncode(rec, x, codes, tap);
    const out = rec.readback(codes);
    try {
      await rec.submit();
    } finally {
      this.resetEncoder();
    }
    return (await out) as Int32Array;
  }

  /**
   * Non-streaming decode of a whole code sequence (MimiModel.decode without a streaming context):
   * codes [numCodebooks, frames] -> 1920·frames samples, from a fresh state (the transposed convs'
   * final overlap is dropped, as `unpad1d`). Resets the decoder-side streaming state before and after.
   */
  async decodeAll(codes: Int32Array, frames: number, tap: MimiTap | null = null): Promise<Float32Array> {
    this.checkAlive();
    const c = this.uploadCodes(codes, frames, this.numCodebooks);
    const pcm = this.decWs.get('pcm_out', [frames * this.frameSize]);
    this.resetDecoder();
    const rec = this.ctx.record('mimi.decodeAll');
    this.recordDecode(rec, c, pcm, tap);
    const out = rec.readback(pcm);
    try {
      await rec.submit();
    } finally {
      this.resetDecoder();
    }
    return (await out) as Float32Array;
  }

  /** Clears the encoder-side streaming state (SEANet encoder, encoder transformer, downsample). */
  resetEncoder(): void {
    this.encoder.reset();
    this.encoderTransformer.reset();
    this.downsample.reset();
  }

  /** Clears the decoder-side streaming state (upsample, decoder transformer, SEANet decoder). */
  resetDecoder(): void {
    this.upsample.reset();
    this.decoderTransformer.reset();
    this.decoder.reset();
  }

  /** Clears all streaming state (MimiModel.reset_streaming). */
  reset(): void {
    this.resetEncoder();
    this.resetDecoder();
  }

  /** GPU bytes held by activation workspaces (weights and state excluded). */
  get workspaceBytes(): number {
    return this.encWs.bytes + this.decWs.bytes;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.encoder.destroy();
    this.decoder.destroy();
    this.encoderTransformer.destroy();
    this.decoderTransformer.destroy();
    this.downsample.destroy();
    this.upsample.destroy();
    this.quantizer.destroy();
    this.encWs.destroy();
    this.decWs.destroy();
  }
}
