/**
 * Mimi configuration: the official kwargs of `moshi/models/loaders.py` (`_seanet_kwargs`,
 * `_quantizer_kwargs`, `_transformer_kwargs`, `_mimi_config`) plus the number of codebooks the
 * model emits (`get_mimi(..., num_codebooks)` -> `MimiModel.set_num_codebooks`).
 *
 * `parseMimiConfig` accepts either the bare `_mimi_config` object (optionally with a top-level
 * `num_codebooks`) or a file whose top level holds `mimi_config` and `num_codebooks` (the layout of
 * ../shared/fixtures/ref/mimi_tiny_config.json). Every error names the offending field.
 */
import type { SeanetConfig } from '../modules/seanet.ts';
import type { QuantizerConfig } from '../quantization/vq.ts';

export type { QuantizerConfig, SeanetConfig };

/** `_transformer_kwargs` (moshi/modules/transformer.py ProjectedTransformer / StreamingTransformer). */
export interface MimiTransformerConfig {
  d_model: number;
  num_heads: number;
  num_layers: number;
  causal: boolean;
  layer_scale: number | null;
  context: number;
  conv_layout: boolean;
  max_period: number;
  gating: 'none';
  norm: 'layer_norm';
  positional_embedding: 'rope';
  dim_feedforward: number;
  input_dimension: number;
  output_dimensions: number[];
}

export interface MimiConfig {
  sample_rate: number;
  channels: number;
  frame_rate: number;
  seanet: SeanetConfig;
  quantizer: QuantizerConfig;
  transformer: MimiTransformerConfig;
  /** Codebooks emitted by encode / expected by decode (1 ≤ num_codebooks ≤ quantizer.n_q). */
  num_codebooks: number;
}

/** Values derived from a MimiConfig the way `get_mimi` / `MimiModel.__init__` derive them. */
export interface MimiDerived {
  /** prod(ratios): samples per encoder frame (960). */
  hopLength: number;
  /** sample_rate / hop (25 Hz). */
  encoderFrameRate: number;
  /** encoder_frame_rate / frame_rate (2): ConvDownsample1d / ConvTrUpsample1d stride. */
  downsampleStride: number;
  /** sample_rate / frame_rate (1920): samples per code frame. */
  frameSize: number;
}

/** A config value that is missing, of the wrong type, or inconsistent. The message names the field. */
export class MimiConfigError extends Error {
  override name = 'MimiConfigError';
}

/**
 * The released Mimi (kyutai `tokenizer-e351c8d8-checkpoint125.safetensors`), verbatim from
 * moshi/models/loaders.py `_mimi_config`; Moshi uses 8 of its 32 codebooks.
 */
export const MIMI_RELEASED_CONFIG: MimiConfig = Object.freeze({
  sample_rate: 24000,
  channels: 1,
  frame_rate: 12.5,
  seanet: {
    channels: 1,
    dimension: 512,
    causal: true,
    n_filters: 64,
    n_residual_layers: 1,
    activation: 'ELU',
    compress: 2,
    dilation_base: 2,
    disable_norm_outer_blocks: 0,
    kernel_size: 7,
    residual_kernel_size: 3,
    last_kernel_size: 3,
    norm: 'none',
    pad_mode: 'constant',
    ratios: [8, 6, 5, 4],
    true_skip: true,
  },
  quantizer: { dimension: 256, n_q: 32, bins: 2048, input_dimension: 512, output_dimension: 512 },
  transformer: {
    d_model: 512,
    num_heads: 8,
    num_layers: 8,
    causal: true,
    layer_scale: 0.01,
    context: 250,
    conv_layout: true,
    max_period: 10000,
    gating: 'none',
    norm: 'layer_norm',
    positional_embedding: 'rope',
    dim_feedforward: 2048,
    input_dimension: 512,
    output_dimensions: [512],
  },
  num_codebooks: 8,
}) as MimiConfig;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Reader {
  constructor(private readonly source: string) {}
  fail(field: string, msg: string): never {
    throw new MimiConfigError(`${this.source}: field '${field}' ${msg}`);
  }
  obj(o: Obj, key: string, path: string): Obj {
    const v = o[key];
    if (!isObj(v)) this.fail(`${path}${key}`, v === undefined ? 'is missing' : `must be an object, got ${JSON.stringify(v)}`);
    return v;
  }
  num(o: Obj, key: string, path: string, opts: { int?: boolean; min?: number } = {}): number {
    const v = o[key];
    const f = `${path}${key}`;
    if (v === undefined) this.fail(f, 'is missing');
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(f, `must be a number, got ${JSON.stringify(v)}`);
    if (opts.int && !Number.isInteger(v)) this.fail(f, `must be an integer, got ${v}`);
    if (opts.min !== undefined && v < opts.min) this.fail(f, `must be ≥ ${opts.min}, got ${v}`);
    return v;
  }
  int(o: Obj, key: string, path: string, min = 1): number {
    return this.num(o, key, path, { int: true, min });
  }
  bool(o: Obj, key: string, path: string): boolean {
    const v = o[key];
    if (typeof v !== 'boolean') this.fail(`${path}${key}`, v === undefined ? 'is missing' : `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }
  oneOf<T extends string>(o: Obj, key: string, path: string, allowed: readonly T[], why: string): T {
    const v = o[key];
    if (v === undefined) this.fail(`${path}${key}`, 'is missing');
    if (!allowed.includes(v as T)) this.fail(`${path}${key}`, `must be ${allowed.map((a) => JSON.stringify(a)).join(' or ')} (${why}), got ${JSON.stringify(v)}`);
    return v as T;
  }
  ints(o: Obj, key: string, path: string): number[] {
    const v = o[key];
    const f = `${path}${key}`;
    if (!Array.isArray(v) || v.length === 0) this.fail(f, v === undefined ? 'is missing' : `must be a non-empty array of positive integers, got ${JSON.stringify(v)}`);
    v.forEach((x, i) => {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 1) this.fail(`${f}[${i}]`, `must be a positive integer, got ${JSON.stringify(x)}`);
    });
    return v as number[];
  }
}

/**
 * Validates a Mimi config. Accepts the bare official config object (fields `sample_rate`,
 * `channels`, `frame_rate`, `seanet`, `quantizer`, `transformer`, optional `num_codebooks`,
 * default 8 as `get_mimi`), or `{mimi_config: {...}, num_codebooks}` as in the fixture files.
 * `source` names the file in error messages.
 * Throws MimiConfigError naming the bad field (missing, wrong type, out of range, or a value this
 * engine does not implement, e.g. `seanet.norm: "weight_norm"`).
 */
export function parseMimiConfig(json: unknown, source = 'mimi config'): MimiConfig {
  const r = new Reader(source);
  if (!isObj(json)) throw new MimiConfigError(`${source}: a Mimi config must be a JSON object, got ${JSON.stringify(json)?.slice(0, 80)}`);
  let root: Obj = json;
  let numCb: unknown = json.num_codebooks;
  let prefix = '';
  if (json.mimi_config !== undefined) {
    root = r.obj(json, 'mimi_config', '');
    prefix = 'mimi_config.';
    if (numCb === undefined) numCb = root.num_codebooks;
  }
  const sample_rate = r.num(root, 'sample_rate', prefix, { min: 1 });
  const channels = r.int(root, 'channels', prefix);
  if (channels !== 1) r.fail(`${prefix}channels`, `must be 1 (mono Mimi), got ${channels}`);
  const frame_rate = r.num(root, 'frame_rate', prefix, { min: 1e-9 });
  if (frame_rate <= 0) r.fail(`${prefix}frame_rate`, `must be > 0, got ${frame_rate}`);

  const sp = `${prefix}seanet.`;
  const s = r.obj(root, 'seanet', prefix);
  const seanet: SeanetConfig = {
    channels: r.int(s, 'channels', sp),
    dimension: r.int(s, 'dimension', sp),
    causal: r.bool(s, 'causal', sp),
    n_filters: r.int(s, 'n_filters', sp),
    n_residual_layers: r.int(s, 'n_residual_layers', sp, 0),
    activation: r.oneOf(s, 'activation', sp, ['ELU'] as const, 'the activation of every Mimi SEANet'),
    compress: r.int(s, 'compress', sp),
    dilation_base: r.int(s, 'dilation_base', sp),
    disable_norm_outer_blocks: r.int(s, 'disable_norm_outer_blocks', sp, 0),
    kernel_size: r.int(s, 'kernel_size', sp),
    residual_kernel_size: r.int(s, 'residual_kernel_size', sp),
    last_kernel_size: r.int(s, 'last_kernel_size', sp),
    norm: r.oneOf(s, 'norm', sp, ['none'] as const, 'weights must be stored without weight_norm, as in the released checkpoint'),
    pad_mode: r.oneOf(s, 'pad_mode', sp, ['constant'] as const, 'causal streaming convolutions pad with zeros'),
    ratios: r.ints(s, 'ratios', sp),
    true_skip: r.bool(s, 'true_skip', sp),
  };
  if (!seanet.causal) r.fail(`${sp}causal`, 'must be true (StreamingConv1d asserts causal)');
  if (!seanet.true_skip) r.fail(`${sp}true_skip`, 'must be true (identity shortcut, as in the released Mimi)');
  if (seanet.channels !== channels) r.fail(`${sp}channels`, `(${seanet.channels}) must equal ${prefix}channels (${channels})`);
  if (seanet.n_filters % seanet.compress !== 0) r.fail(`${sp}compress`, `(${seanet.compress}) must divide n_filters (${seanet.n_filters})`);

  const qp = `${prefix}quantizer.`;
  const q = r.obj(root, 'quantizer', prefix);
  const quantizer: QuantizerConfig = {
    dimension: r.int(q, 'dimension', qp),
    n_q: r.int(q, 'n_q', qp),
    bins: r.int(q, 'bins', qp),
    input_dimension: q.input_dimension === undefined || q.input_dimension === null ? seanet.dimension : r.int(q, 'input_dimension', qp),
    output_dimension: q.output_dimension === undefined || q.output_dimension === null ? seanet.dimension : r.int(q, 'output_dimension', qp),
  };
  if (quantizer.n_q < 2) r.fail(`${qp}n_q`, `must be ≥ 2 (1 semantic + at least 1 acoustic codebook), got ${quantizer.n_q}`);
  if (quantizer.input_dimension !== seanet.dimension) r.fail(`${qp}input_dimension`, `(${quantizer.input_dimension}) must equal seanet.dimension (${seanet.dimension})`);
  if (quantizer.output_dimension !== seanet.dimension) r.fail(`${qp}output_dimension`, `(${quantizer.output_dimension}) must equal seanet.dimension (${seanet.dimension})`);

  const tp = `${prefix}transformer.`;
  const t = r.obj(root, 'transformer', prefix);
  const layerScale = t.layer_scale;
  if (layerScale !== null && layerScale !== undefined && (typeof layerScale !== 'number' || !Number.isFinite(layerScale))) {
    r.fail(`${tp}layer_scale`, `must be a number or null, got ${JSON.stringify(layerScale)}`);
  }
  const transformer: MimiTransformerConfig = {
    d_model: r.int(t, 'd_model', tp),
    num_heads: r.int(t, 'num_heads', tp),
    num_layers: r.int(t, 'num_layers', tp, 0),
    causal: r.bool(t, 'causal', tp),
    layer_scale: (layerScale ?? null) as number | null,
    context: r.int(t, 'context', tp),
    conv_layout: r.bool(t, 'conv_layout', tp),
    max_period: r.num(t, 'max_period', tp, { min: 1 }),
    gating: r.oneOf(t, 'gating', tp, ['none'] as const, 'the Mimi transformer uses a plain GELU FFN'),
    norm: r.oneOf(t, 'norm', tp, ['layer_norm'] as const, 'the Mimi transformer uses LayerNorm'),
    positional_embedding: r.oneOf(t, 'positional_embedding', tp, ['rope'] as const, 'the Mimi transformer uses RoPE'),
    dim_feedforward: r.int(t, 'dim_feedforward', tp),
    input_dimension: r.int(t, 'input_dimension', tp),
    output_dimensions: r.ints(t, 'output_dimensions', tp),
  };
  if (!transformer.causal) r.fail(`${tp}causal`, 'must be true (streaming Mimi)');
  if (transformer.d_model % transformer.num_heads !== 0) r.fail(`${tp}num_heads`, `(${transformer.num_heads}) must divide d_model (${transformer.d_model})`);
  if (transformer.input_dimension !== seanet.dimension) r.fail(`${tp}input_dimension`, `(${transformer.input_dimension}) must equal seanet.dimension (${seanet.dimension})`);
  if (transformer.output_dimensions.length !== 1 || transformer.output_dimensions[0] !== seanet.dimension) {
    r.fail(`${tp}output_dimensions`, `must be [${seanet.dimension}] (one output of seanet.dimension), got ${JSON.stringify(transformer.output_dimensions)}`);
  }
  if (transformer.d_model !== seanet.dimension) {
    r.fail(`${tp}d_model`, `(${transformer.d_model}) must equal seanet.dimension (${seanet.dimension}): input/output projections of ProjectedTransformer are not implemented`);
  }

  let num_codebooks = 8;
  if (numCb !== undefined) {
    if (typeof numCb !== 'number' || !Number.isInteger(numCb)) throw new MimiConfigError(`${source}: field 'num_codebooks' must be an integer, got ${JSON.stringify(numCb)}`);
    num_codebooks = numCb;
  }
  if (num_codebooks < 1 || num_codebooks > quantizer.n_q) {
    throw new MimiConfigError(`${source}: field 'num_codebooks' must be between 1 and quantizer.n_q (${quantizer.n_q}), got ${num_codebooks}`);
  }
  const cfg: MimiConfig = { sample_rate, channels, frame_rate, seanet, quantizer, transformer, num_codebooks };
  mimiDerived(cfg, source);
  return cfg;
}

/**
 * Derived sizes (`get_mimi`: encoder_frame_rate = sample_rate / hop_length; `MimiModel.__init__`:
 * downsample stride = encoder_frame_rate / frame_rate, which must be an integer > 1 for the conv
 * resampling; `frame_size` = sample_rate / frame_rate). Throws MimiConfigError naming the field.
 */
export function mimiDerived(cfg: MimiConfig, source = 'mimi config'): MimiDerived {
  const hopLength = cfg.seanet.ratios.reduce((a, b) => a * b, 1);
  const encoderFrameRate = cfg.sample_rate / hopLength;
  const stride = encoderFrameRate / cfg.frame_rate;
  if (!(Number.isInteger(stride) && stride >= 2)) {
    throw new MimiConfigError(`${source}: field 'frame_rate' (${cfg.frame_rate}) must divide the encoder frame rate sample_rate/prod(seanet.ratios) = ${encoderFrameRate} by an integer ≥ 2 (conv resampling), got ratio ${stride}`);
  }
  const frameSize = cfg.sample_rate / cfg.frame_rate;
  if (!Number.isInteger(frameSize)) throw new MimiConfigError(`${source}: field 'frame_rate': sample_rate / frame_rate = ${frameSize} is not an integer`);
  return { hopLength, encoderFrameRate, downsampleStride: stride, frameSize };
}
