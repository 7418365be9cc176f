/**
 * Moshi LM configuration: the official `lm_kwargs` (moshi/models/loaders.py `_lm_kwargs`,
 * configs/*.json) parsed and validated into a typed object, plus the 7B preset.
 *
 * Port of the constructor arguments of `LMModel.__init__` (moshi/models/lm.py) and of the key
 * handling in `loaders.get_moshi_lm` / `CheckpointInfo.from_hf_repo` (which pop the non-LM keys
 * `moshi_name`, `mimi_name`, `tokenizer_name`, `lm_gen_config`, ... before building the model).
 */
import type { LutConditionerConfig } from '../conditioners/text.ts';
import { type LmGenDefaults, parseLmGenConfig } from './lm_gen_config.ts';

export type { LmGenDefaults, LutConditionerConfig };

/** A configuration that cannot be used: the message names the source, the field and what is wrong. */
export class LmConfigError extends Error {
  override name = 'LmConfigError';
}

export type LmNorm = 'layer_norm' | 'rms_norm' | 'rms_norm_f32';
export type LmGating = 'none' | 'silu';
export type LmPosEmb = 'rope' | 'none';


/** Typed Moshi LM configuration (field names in camelCase; official key in the doc comment). */
export interface LmConfig {
  /** `dim`: temporal transformer width D. */
  dim: number;
  /** `num_heads`. */
  numHeads: number;
  /** `num_layers`. */
  numLayers: number;
  /** `hidden_scale`: FFN width = int(hidden_scale * dim) before the gating's 2/3 rule. */
  hiddenScale: number;
  /** `gating`. */
  gating: LmGating;
  /** `norm` (also used by out_norm and by the depformer layers). */
  norm: LmNorm;
  /** `positional_embedding` of the temporal transformer. */
  positionalEmbedding: LmPosEmb;
  /** `max_period` of RoPE. */
  maxPeriod: number;
  /** `context`: attention window (KV cache capacity) in steps. */
  context: number;
  /** `causal`. */
  causal: boolean;
  /** `layer_scale` init (null: no layer scale). */
  layerScale: number | null;
  /** `text_card`: text vocabulary; the text initial token is text_card. */
  textCard: number;
  /** `text_card_out` (default text_card): rows of text_linear. */
  textCardOut: number;
  /** `existing_text_padding_id`. */
  existingTextPaddingId: number;
  /** `existing_text_end_padding_id`. */
  existingTextEndPaddingId: number;
  /** `n_q`: audio streams fed to the temporal transformer (dep_q of Moshi + the user's). */
  nQ: number;
  /** `dep_q`: audio streams Moshi generates with the depformer. */
  depQ: number;
  /** `card`: audio vocabulary; the audio initial token is card. */
  card: number;
  /** `delays`: n_q + 1 entries (text first). */
  delays: number[];
  /** `bias_proj`: text_linear and linears.{k} have biases. */
  biasProj: boolean;
  /**
   * The depformer's arguments. Always present. With dep_q = 0 (official LMModel builds no depformer:
   * text-only / STT models) only `dim` and `multiLinear` matter (they size `depformer_in`, which the
   * official model keeps); the other fields then hold the given or default values, unchecked against
   * what a depformer needs, and `posEmb` is 'none' when the key is absent or 'sin'.
   */
  depformer: {
    /** `depformer_dim`. */
    dim: number;
    /** `depformer_dim_feedforward` (default int(hidden_scale * depformer_dim)). */
    dimFeedforward: number;
    /** `depformer_num_heads` (official default 8 when absent). */
    numHeads: number;
    /** `depformer_num_layers` (default num_layers). */
    numLayers: number;
    /** `depformer_layer_scale` (default layer_scale). */
    layerScale: number | null;
    /** `depformer_multi_linear`: one depformer_in linear per step. */
    multiLinear: boolean;
    /** `depformer_weights_per_step`: per-step attention/FFN weights in every layer. */
    weightsPerStep: boolean;
    /**
     * `depformer_weights_per_step_schedule` (Hibiki): codebook step k uses weight set schedule[k]
     * for depformer_in (multi-linear) and every per-step layer weight; max(schedule) + 1 sets are
     * stored. null: step k uses set k.
     */
    weightsPerStepSchedule: number[] | null;
    /** `depformer_max_period` (default max_period). */
    maxPeriod: number;
    /** `depformer_gating` (default gating). */
    gating: LmGating;
    /** `depformer_pos_emb`. */
    posEmb: LmPosEmb;
    /** `depformer_norm`: per-step norm before linears.{k} (null: identity). */
    norm: LmNorm | null;
  };
  /** `conditioners` (name -> LUT conditioner). Empty when the model is unconditioned. */
  conditioners: Record<string, LutConditionerConfig>;
  /** `fuser.sum`: condition names whose vectors are summed into the input embeddings. */
  fuserSum: string[];
  /** `lm_gen_config` of an official config.json, when present. */
  lmGen: LmGenDefaults;
  /** `extra_heads_num_heads`: bias-free linears `extra_heads.{h}` [extra_heads_dim, dim] on transformer_out (0: none). */
  extraHeadsNumHeads: number;
  /** `extra_heads_dim`: outputs of each extra head (official default 6). */
  extraHeadsDim: number;
  /** `stt_config` of an official STT config.json (read by run_inference.py for `model_type == "stt"`); null when absent. */
  stt: SttConfig | null;
  /** `mimi_name` of an official config.json (the Mimi file of the repository), null when absent. */
  mimiName: string | null;
  /** `tokenizer_name` of an official config.json (its SentencePiece .model), null when absent. */
  tokenizerName: string | null;
  /**
   * `model_type` of an official config.json (CheckpointInfo), e.g. 'moshi', 'hibiki', 'stt'; null
   * when absent. 'hibiki' makes the loader copy text_emb row 3 (PAD) over row 2 (EOS), as
   * loaders.py `CheckpointInfo.get_moshi` does.
   */
  modelType: string | null;
}

/**
 * `stt_config` of an official speech-to-text config.json (kyutai/stt-1b-en_fr, stt-2.6b-en), as
 * moshi/run_inference.py `InferenceState.run` reads it (`stt_config.get(key, 0.0)`): the input is
 * padded with `audioSilencePrefixSeconds` of zeros on the left and `audioDelaySeconds + 1` s on
 * the right, and the text stream lags the audio by `audioDelaySeconds`.
 */
export interface SttConfig {
  /** `audio_delay_seconds` (seconds, >= 0; default 0): how far the text lags the audio. */
  audioDelaySeconds: number;
  /** `audio_silence_prefix_seconds` (seconds, >= 0; default 0): zeros prepended to the input. */
  audioSilencePrefixSeconds: number;
}

/** Keys of an official config.json that describe the checkpoint, not the LM (popped by the loaders). */
const NON_LM_KEYS = new Set([
  'moshi_name', 'mimi_name', 'mimi_config_name', 'tokenizer_name', 'lora_name', 'model_type', 'lm_gen_config',
  'tts_config', 'stt_config', 'model_id',
]);

/** Official keys this engine accepts only at their default (anything else is an unsupported feature). */
const DEFAULT_ONLY: Record<string, unknown> = {
  demux_second_text_stream: false,
  demux_second_stream: false,
  norm_emb: false,
  depformer_low_rank_embeddings: null,
  quantize: false,
  lora: false,
  cross_attention: false,
  kv_repeat: 1,
};

/** Keys present in every complete official lm_kwargs; a file with checkpoint keys lacking some is a fragment. */
const CORE_KEYS = ['dim', 'num_heads', 'num_layers', 'n_q', 'dep_q', 'card', 'text_card', 'delays'] as const;

/** Keys read (or accepted and ignored: they do not change inference) by parseLmConfig. */
const KNOWN_KEYS = new Set([
  'dim', 'num_heads', 'num_layers', 'hidden_scale', 'gating', 'norm', 'positional_embedding', 'max_period', 'context',
  'causal', 'layer_scale', 'text_card', 'text_card_out', 'existing_text_padding_id', 'existing_text_end_padding_id',
  'n_q', 'dep_q', 'card', 'delays', 'bias_proj', 'depformer_dim', 'depformer_dim_feedforward', 'depformer_num_heads',
  'depformer_num_layers', 'depformer_layer_scale', 'depformer_multi_linear', 'depformer_weights_per_step', 'depformer_weights_per_step_schedule',
  'depformer_max_period', 'depformer_gating', 'depformer_pos_emb', 'depformer_norm', 'depformer_causal',
  'depformer_context', 'conditioners', 'fuser', 'extra_heads_num_heads', 'extra_heads_dim', 'gradient_checkpointing', 'lora_rank', 'lora_scaling',
  ...Object.keys(DEFAULT_ONLY),
]);

type Json = Record<string, unknown>;

/**
 * Parses an LM config: the bare `lm_kwargs` object (configs/*.json, an official config.json whose
 * non-LM keys are ignored) or a file with a top-level `lm_kwargs` (the fixtures' moshi_tiny_config.json,
 * moshi7b_keys_full.json). Accepts a JSON string or a parsed object. Defaults follow `LMModel.__init__`.
 * Throws LmConfigError naming `source` and the field for a missing/mistyped field, an inconsistent
 * value (delays length, dep_q > n_q, ...) or an unsupported feature (demux, low-rank embeddings, ...);
 * errors on a partial/override config (checkpoint keys but no dim, n_q, ...) say that it looks like one.
 * dep_q = 0 (no depformer, text-only / STT models) is accepted: the depformer_* keys are then optional,
 * and the checks only a depformer needs (heads | dim, per-layer FFN widths, pos_emb 'sin') are skipped.
 * The STT keys of an official config.json are read too: `extra_heads_num_heads` / `extra_heads_dim`
 * (LMModel's extra heads), `stt_config` (parseSttConfig: unknown keys refused by name), `mimi_name`,
 * `tokenizer_name` (strings). `lm_gen_config` may hold temp, temp_text, top_k, top_k_text and the other LMGen
 * arguments at their defaults only; any other key is refused, as official `LMGen(**lm_gen_config)` does.
 */
export function parseLmConfig(json: unknown, source = '<config>'): LmConfig {
  let root: unknown = json;
  if (typeof root === 'string') {
    try {
      root = JSON.parse(root);
    } catch (e) {
      throw new LmConfigError(`${source}: not valid JSON (${(e as Error).message})`);
    }
  }
  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw new LmConfigError(`${source}: expected a JSON object`);
  let o = root as Json;
  if ('lm_kwargs' in o) {
    if (typeof o.lm_kwargs !== 'object' || o.lm_kwargs === null) throw new LmConfigError(`${source}: 'lm_kwargs' is not an object`);
    o = o.lm_kwargs as Json;
  }
  // A file with checkpoint keys (model_type, stt_config, lm_gen_config, ...) but without core LM keys is
  // a partial/override config (e.g. configs/stt_2.6b_en.json): the defaults of the missing keys (n_q 8,
  // dim 128, ...) are not what such a file means, so every error on it says so.
  const missingCore = CORE_KEYS.filter((k) => o[k] === undefined);
  const checkpointKeys = Object.keys(o).filter((k) => NON_LM_KEYS.has(k));
  const partial = missingCore.length > 0 && checkpointKeys.length > 0
    ? `is this a partial/override config? it has checkpoint keys (${checkpointKeys.join(', ')}) but lacks ${missingCore.map((k) => `'${k}'`).join(', ')}, so defaults apply`
    : null;
  const fail = (key: string, msg: string): never => {
    throw new LmConfigError(`${source}: '${key}' ${msg}${partial && !msg.includes(partial) ? ` (${partial})` : ''}`);
  };
  for (const k of Object.keys(o)) {
    if (!KNOWN_KEYS.has(k) && !NON_LM_KEYS.has(k)) fail(k, 'is not an LMModel argument this engine knows (unsupported feature or typo)');
  }
  for (const [k, def] of Object.entries(DEFAULT_ONLY)) {
    if (k in o && o[k] !== def && !(def === null && o[k] === undefined)) {
      fail(k, `= ${JSON.stringify(o[k])} is not supported (only ${JSON.stringify(def)})`);
    }
  }
  const int = (key: string, def?: number, min = 1): number => {
    const v = o[key] ?? def;
    if (v === undefined) return fail(key, 'is missing');
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(key, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const num = (key: string, def?: number): number => {
    const v = o[key] ?? def;
    if (v === undefined) return fail(key, 'is missing');
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) fail(key, `must be a positive number, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const bool = (key: string, def: boolean): boolean => {
    const v = o[key] ?? def;
    if (typeof v !== 'boolean') fail(key, `must be true or false, got ${JSON.stringify(v)}`);
    return v as boolean;
  };
  const oneOf = <T extends string>(key: string, allowed: readonly T[], def?: T | null): T => {
    const v = o[key] ?? def;
    if (v === undefined || v === null) return fail(key, 'is missing');
    if (!allowed.includes(v as T)) fail(key, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(v)}`);
    return v as T;
  };
  const scale = (key: string, def: number | null): number | null => {
    const v = key in o ? o[key] : def;
    if (v === null || v === undefined) return null;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(key, `must be a number or null, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const optString = (key: string): string | null => {
    const v = o[key];
    if (v === undefined || v === null) return null;
    return typeof v === 'string' ? v : fail(key, `must be a string, got ${JSON.stringify(v)}`);
  };
  const NORMS = ['layer_norm', 'rms_norm', 'rms_norm_f32'] as const;
  const GATINGS = ['none', 'silu'] as const;
  const POS = ['rope', 'none'] as const;

  const dim = int('dim', 128);
  const numHeads = int('num_heads', 8);
  if (dim % numHeads) fail('num_heads', `(${numHeads}) must divide dim (${dim})`);
  const nQ = int('n_q', 8);
  const depQ = int('dep_q', 8, 0);
  if (depQ > nQ) fail('dep_q', `(${depQ}) must not exceed n_q (${nQ})`);
  const hiddenScale = num('hidden_scale', 4);
  const layerScale = scale('layer_scale', null);
  const gating = oneOf('gating', GATINGS, 'none');
  const norm = oneOf('norm', NORMS, 'layer_norm');
  const maxPeriod = num('max_period', 10000);
  const textCard = int('text_card', 32000);
  const card = int('card', 1024);
  const delaysRaw = o.delays ?? [0];
  if (!Array.isArray(delaysRaw) || !delaysRaw.every((d) => Number.isInteger(d) && d >= 0)) {
    fail('delays', `must be a list of non-negative integers, got ${JSON.stringify(delaysRaw)}`);
  }
  const delays = (delaysRaw as number[]).slice();
  if (delays.length !== nQ + 1) {
    const why = o.n_q === undefined ? `n_q is absent and defaults to 8${partial ? `: ${partial}` : ''}` : 'text first';
    fail('delays', `has ${delays.length} entries, expected n_q + 1 = ${nQ + 1} (${why})`);
  }
  // dep_q = 0: LMModel builds no depformer (no depformer_emb/text_emb/norms/transformer, no linears),
  // so the depformer_* keys are not needed; only depformer_dim and depformer_multi_linear still size
  // depformer_in. The checks below refuse depformers this engine cannot build, so they need dep_q > 0.
  const hasDepformer = depQ > 0;
  const depDim = int('depformer_dim', 256);
  const depHeads = int('depformer_num_heads', 8);
  if (hasDepformer && depDim % depHeads) fail('depformer_num_heads', `(${depHeads}) must divide depformer_dim (${depDim})`);
  const depFfRaw = o.depformer_dim_feedforward ?? null;
  if (hasDepformer && Array.isArray(depFfRaw)) fail('depformer_dim_feedforward', 'as a per-layer list is not supported');
  const depFf = Array.isArray(depFfRaw) ? null : depFfRaw;
  const posEmbDep = o.depformer_pos_emb ?? 'sin';
  if (hasDepformer && posEmbDep === 'sin') fail('depformer_pos_emb', "= 'sin' (the official default when absent) is not supported; official configs use 'none'");
  const depNormRaw = o.depformer_norm ?? null;
  const scheduleRaw = o.depformer_weights_per_step_schedule ?? null;
  let schedule: number[] | null = null;
  if (scheduleRaw !== null && hasDepformer) {
    if (!Array.isArray(scheduleRaw) || !scheduleRaw.every((v) => Number.isInteger(v) && v >= 0)) {
      fail('depformer_weights_per_step_schedule', `must be a list of weight indices >= 0, got ${JSON.stringify(scheduleRaw)}`);
    }
    schedule = (scheduleRaw as number[]).slice();
    if (schedule.length !== depQ) fail('depformer_weights_per_step_schedule', `has ${schedule.length} entries, expected dep_q = ${depQ} (one weight index per codebook step)`);
    if (o.depformer_weights_per_step !== true) fail('depformer_weights_per_step_schedule', 'needs depformer_weights_per_step = true (the official layers assert len(schedule) == weights_per_step)');
    const used = new Set(schedule);
    for (let i = 0; i <= Math.max(...schedule); i++) if (!used.has(i)) fail('depformer_weights_per_step_schedule', `skips weight index ${i} (indices must cover 0..max)`);
  }

  const conditioners: Record<string, LutConditionerConfig> = {};
  const condRaw = o.conditioners ?? {};
  if (typeof condRaw !== 'object' || condRaw === null || Array.isArray(condRaw)) fail('conditioners', 'must be an object');
  for (const [name, c] of Object.entries(condRaw as Json)) {
    const key = `conditioners.${name}`;
    const cc = c as Json;
    if (typeof cc !== 'object' || cc === null) fail(key, 'must be an object');
    if (cc.type !== 'lut') fail(`${key}.type`, `= ${JSON.stringify(cc.type)} is not supported (only 'lut')`);
    const lut = cc.lut as Json;
    if (typeof lut !== 'object' || lut === null) fail(`${key}.lut`, 'is missing');
    if ((lut.tokenizer ?? 'noop') !== 'noop') fail(`${key}.lut.tokenizer`, `= ${JSON.stringify(lut.tokenizer)} is not supported (only 'noop')`);
    const nBins = lut.n_bins;
    const cdim = lut.dim;
    if (!Number.isInteger(nBins) || (nBins as number) < 1) fail(`${key}.lut.n_bins`, `must be a positive integer, got ${JSON.stringify(nBins)}`);
    if (!Number.isInteger(cdim) || (cdim as number) < 1) fail(`${key}.lut.dim`, `must be a positive integer, got ${JSON.stringify(cdim)}`);
    const pv = lut.possible_values ?? null;
    if (pv !== null && (!Array.isArray(pv) || !pv.every((s) => typeof s === 'string'))) fail(`${key}.lut.possible_values`, 'must be a list of strings');
    if (pv && (pv as string[]).length > (nBins as number)) fail(`${key}.lut.possible_values`, `has ${(pv as string[]).length} values, more than n_bins ${nBins}`);
    for (const k of Object.keys(lut)) {
      if (!['n_bins', 'dim', 'tokenizer', 'possible_values', 'init_scale'].includes(k)) fail(`${key}.lut.${k}`, 'is not supported');
    }
    conditioners[name] = { type: 'lut', nBins: nBins as number, dim: cdim as number, possibleValues: pv as string[] | null };
  }
  const fuserSum: string[] = [];
  const fuserRaw = o.fuser ?? null;
  if (fuserRaw !== null) {
    if (typeof fuserRaw !== 'object' || Array.isArray(fuserRaw)) fail('fuser', 'must be an object or null');
    for (const [method, names] of Object.entries(fuserRaw as Json)) {
      if (!Array.isArray(names)) fail(`fuser.${method}`, 'must be a list of condition names');
      if (method !== 'sum') {
        if ((names as unknown[]).length) fail(`fuser.${method}`, `is not supported (only 'sum' fusing)`);
        continue;
      }
      for (const n of names as unknown[]) {
        if (typeof n !== 'string' || !(n in conditioners)) fail('fuser.sum', `names ${JSON.stringify(n)}, which is not a configured conditioner`);
        fuserSum.push(n as string);
      }
    }
  }
  if (Object.keys(conditioners).length && fuserRaw === null) fail('fuser', 'is missing although conditioners are configured');

  const lmGen = 'lm_gen_config' in o ? parseLmGenConfig(o.lm_gen_config, fail) : {};
  const stt = 'stt_config' in o ? parseSttConfig(o.stt_config, fail) : null;

  // Official StreamingTransformer defaults: num_layers is required, positional_embedding 'sin',
  // context None (an unbounded KV cache): the last two this engine does not implement.
  if (o.positional_embedding === undefined) fail('positional_embedding', "is missing: the official default 'sin' is not supported; Moshi configs use 'rope'");
  if (o.context === undefined || o.context === null) fail('context', 'is missing: the official default None (an unbounded KV cache) is not supported; Moshi configs use 3000');
  return {
    dim,
    numHeads,
    numLayers: int('num_layers'),
    hiddenScale,
    gating,
    norm,
    positionalEmbedding: oneOf('positional_embedding', POS),
    maxPeriod,
    context: int('context'),
    causal: bool('causal', true),
    layerScale,
    textCard,
    textCardOut: int('text_card_out', textCard),
    existingTextPaddingId: int('existing_text_padding_id', 3, 0),
    existingTextEndPaddingId: int('existing_text_end_padding_id', 0, 0),
    nQ,
    depQ,
    card,
    delays,
    biasProj: bool('bias_proj', false),
    depformer: {
      dim: depDim,
      dimFeedforward: depFf === null ? Math.floor(hiddenScale * depDim) : int('depformer_dim_feedforward'),
      numHeads: depHeads,
      numLayers: int('depformer_num_layers', int('num_layers', 1)),
      layerScale: scale('depformer_layer_scale', layerScale),
      multiLinear: bool('depformer_multi_linear', false),
      weightsPerStep: bool('depformer_weights_per_step', false),
      weightsPerStepSchedule: schedule,
      maxPeriod: num('depformer_max_period', maxPeriod),
      gating: oneOf('depformer_gating', GATINGS, gating),
      posEmb: !hasDepformer && posEmbDep === 'sin' ? 'none' : oneOf('depformer_pos_emb', POS),
      norm: depNormRaw === null ? null : oneOf('depformer_norm', NORMS),
    },
    conditioners,
    fuserSum,
    lmGen,
    extraHeadsNumHeads: int('extra_heads_num_heads', 0, 0),
    extraHeadsDim: int('extra_heads_dim', 6),
    stt,
    mimiName: optString('mimi_name'),
    tokenizerName: optString('tokenizer_name'),
    modelType: o.model_type === undefined || o.model_type === null ? null : typeof o.model_type === 'string' ? o.model_type : fail('model_type', `must be a string, got ${JSON.stringify(o.model_type)}`),
  };
}

/**
 * Parses `stt_config`: an object holding `audio_delay_seconds` and/or `audio_silence_prefix_seconds`
 * (finite numbers >= 0, seconds; absent = 0.0 as run_inference.py's `.get(key, 0.0)`). Any other key
 * is refused by name (no official reader uses one). `fail(key, message)` throws the caller's error.
 */
function parseSttConfig(s: unknown, fail: (key: string, msg: string) => never): SttConfig {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) return fail('stt_config', `must be an object {audio_delay_seconds, audio_silence_prefix_seconds}, got ${JSON.stringify(s)}`);
  const o = s as Json;
  for (const k of Object.keys(o)) {
    if (k !== 'audio_delay_seconds' && k !== 'audio_silence_prefix_seconds') fail(`stt_config.${k}`, 'is not an stt_config key (known: audio_delay_seconds, audio_silence_prefix_seconds)');
  }
  const sec = (k: string): number => {
    const v = o[k] ?? 0;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(`stt_config.${k}`, `must be a number of seconds >= 0, got ${JSON.stringify(v)}`);
    return v as number;
  };
  return { audioDelaySeconds: sec('audio_delay_seconds'), audioSilencePrefixSeconds: sec('audio_silence_prefix_seconds') };
}

/** FFN width handed to the transformer for the temporal transformer: int(hidden_scale * dim). */
export function mainDimFeedforward(cfg: LmConfig): number {
  return Math.floor(cfg.hiddenScale * cfg.dim);
}

/** Largest acoustic delay (LMGen.max_delay). */
export function maxDelay(cfg: LmConfig): number {
  return Math.max(...cfg.delays);
}

/** Number of user audio streams LMGen.step needs: num_codebooks - dep_q - 1 = n_q - dep_q. */
export function userStreams(cfg: LmConfig): number {
  return cfg.nQ - cfg.depQ;
}

/** Moshi 7B (moshiko/moshika): `loaders._lm_kwargs` = configs/moshi_7b_202409.json, verbatim. */
export const MOSHI_7B_LM_KWARGS = {
  dim: 4096,
  text_card: 32000,
  existing_text_padding_id: 3,
  n_q: 16,
  dep_q: 8,
  card: 2048,
  num_heads: 32,
  num_layers: 32,
  hidden_scale: 4.125,
  causal: true,
  layer_scale: null,
  context: 3000,
  max_period: 10000,
  gating: 'silu',
  norm: 'rms_norm_f32',
  positional_embedding: 'rope',
  depformer_dim: 1024,
  depformer_dim_feedforward: 4224,
  depformer_num_heads: 16,
  depformer_num_layers: 6,
  depformer_layer_scale: null,
  depformer_multi_linear: true,
  depformer_context: 8,
  depformer_max_period: 10000,
  depformer_gating: 'silu',
  depformer_pos_emb: 'none',
  depformer_weights_per_step: true,
  delays: [0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1],
} as const;

/** The parsed 7B preset. */
export const MOSHI_7B_CONFIG: LmConfig = parseLmConfig(MOSHI_7B_LM_KWARGS, 'MOSHI_7B_LM_KWARGS');
