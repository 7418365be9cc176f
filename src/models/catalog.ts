/**
 * The Moshi models Kyutai publishes, by repository, with their files and what they take: the
 * download size of the LM file (as published, rounded) and the GPU memory this engine needs for
 * them (weights as stored, KV cache over the context, activations; src/models/lm_memory.ts). Every
 * repository also holds the Mimi (`tokenizer-e351c8d8-checkpoint125.safetensors`) and the text
 * tokenizer (`tokenizer_spm_32k_3.model`). Sources: the hub repositories named in
 * moshi/models/loaders.py and moshi_mlx (`model.q4.safetensors` / `model.q8.safetensors`).
 */
import { type LmConfig, MOSHI_7B_CONFIG, parseLmConfig } from './lm_config.ts';
import { type LmStorage, formatBytes, lmMemory } from './lm_memory.ts';

export const MIMI_FILE = 'tokenizer-e351c8d8-checkpoint125.safetensors';
export const TEXT_TOKENIZER_FILE = 'tokenizer_spm_32k_3.model';

export interface ReleasedModel {
  /** Hub repository, e.g. 'kyutai/moshiko-mlx-q4'. */
  repo: string;
  /** 'moshiko' (male voice) or 'moshika' (female voice). */
  voice: 'moshiko' | 'moshika';
  /** Format name as the engine reports it. */
  format: 'bf16' | 'q8' | 'mlx-q8' | 'mlx-q4';
  /** The LM file in the repository. */
  lmFile: string;
  mimiFile: string;
  tokenizerFile: string;
  /** How the engine stores the weights (for the GPU memory estimate). */
  storage: LmStorage;
  /** Approximate download size of the LM file in bytes (as published). */
  downloadBytes: number;
}

const VARIANTS = [
  { suffix: 'pytorch-bf16', format: 'bf16', lmFile: 'model.safetensors', storage: { kind: 'bf16' }, downloadBytes: 15.4e9 },
  { suffix: 'pytorch-q8', format: 'q8', lmFile: 'model.q8.safetensors', storage: { kind: 'q8' }, downloadBytes: 8.2e9 },
  { suffix: 'mlx-q8', format: 'mlx-q8', lmFile: 'model.q8.safetensors', storage: { kind: 'affine', bits: 8, groupSize: 64 }, downloadBytes: 8.2e9 },
  { suffix: 'mlx-q4', format: 'mlx-q4', lmFile: 'model.q4.safetensors', storage: { kind: 'affine', bits: 4, groupSize: 32 }, downloadBytes: 4.3e9 },
] as const;

/** Every released Moshi repository, largest format first within each voice. */
export const RELEASED_MODELS: readonly ReleasedModel[] = (['moshiko', 'moshika'] as const).flatMap((voice) =>
  VARIANTS.map((v) => ({ repo: `kyutai/${voice}-${v.suffix}`, voice, format: v.format, lmFile: v.lmFile, mimiFile: MIMI_FILE, tokenizerFile: TEXT_TOKENIZER_FILE, storage: v.storage as LmStorage, downloadBytes: v.downloadBytes })),
);

/** The released model for `repo` (a full 'kyutai/…' name, or the name after 'kyutai/'), or null. */
export function releasedModel(repo: string): ReleasedModel | null {
  const full = repo.includes('/') ? repo : `kyutai/${repo}`;
  return RELEASED_MODELS.find((m) => m.repo === full) ?? null;
}

/** GPU bytes the engine needs for `m` with a KV cache over `context` steps (f16 cache, the default for these files). */
export function releasedModelGpuBytes(m: ReleasedModel, context = MOSHI_7B_CONFIG.context): number {
  return lmMemory(MOSHI_7B_CONFIG, m.storage, 'f16', context).total;
}

/** What a device allows: the largest single buffer (and binding) and, when known, a total memory budget. */
export interface DeviceBudget {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Bytes the model may use in all; null when unknown (WebGPU does not report GPU memory). */
  totalBytes: number | null;
}

/** Why `m` does not fit `budget`, or null when it fits. */
export function whyNotFit(m: ReleasedModel, budget: DeviceBudget, context = MOSHI_7B_CONFIG.context): string | null {
  const mem = lmMemory(MOSHI_7B_CONFIG, m.storage, 'f16', context);
  // Larger weights than one binding are bound in row ranges: each must fit one buffer.
  if (mem.largestTensor.bytes > budget.maxBufferSize) return `its largest tensor ${mem.largestTensor.name} needs ${formatBytes(mem.largestTensor.bytes)}, the adapter's buffers hold at most ${formatBytes(budget.maxBufferSize)}`;
  if (budget.totalBytes !== null && mem.total > budget.totalBytes) return `it needs ${formatBytes(mem.total)} of GPU memory, the budget is ${formatBytes(budget.totalBytes)}`;
  return null;
}

/**
 * The released model to preselect for `voice`: the largest format that fits `budget` (the list is
 * ordered largest first), else the smallest (q4) so that the user still gets a choice to try.
 */
export function bestFittingModel(voice: 'moshiko' | 'moshika', budget: DeviceBudget, context?: number): ReleasedModel {
  const list = RELEASED_MODELS.filter((m) => m.voice === voice);
  return list.find((m) => whyNotFit(m, budget, context) === null) ?? list[list.length - 1];
}

/**
 * A Kyutai speech-to-text repository (an LMModel with dep_q = 0 reading the Mimi's 32 codebooks,
 * one text token per 80 ms, moshi/run_inference.py for `model_type == "stt"`): its files and the
 * sizes of its LM, from which the download and GPU memory shown in the picker are computed. The
 * engine loads the model by the repository's own `config.json`; `config` here only sizes the
 * estimates (src/models/lm_memory.ts) and is checked against the loaded config in no way.
 */
export interface ReleasedSttModel {
  /** Hub repository, e.g. 'kyutai/stt-1b-en_fr'. */
  repo: string;
  /** Languages it transcribes, for the label. */
  languages: string;
  /** The repository's config.json (LM kwargs + model_type "stt", stt_config, lm_gen_config). */
  configFile: string;
  /** The LM file (bf16). */
  lmFile: string;
  /** The Mimi of the repository (config.json `mimi_name`), run with n_q = 32 codebooks. */
  mimiFile: string;
  /** The SentencePiece model (config.json `tokenizer_name`). */
  tokenizerFile: string;
  storage: LmStorage;
  /** The LM's sizes (for the estimates), as parseLmConfig reads the official kwargs. */
  config: LmConfig;
  /** Download size of the LM file in bytes: its bf16 weights (lm_memory.ts `lmWeightBytes` of `config`). */
  downloadBytes: number;
}

/** The Mimi file name the STT repositories use (config.json `mimi_name`). */
export const STT_MIMI_FILE = 'mimi-pytorch-e351c8d8@125.safetensors';

/**
 * The LM kwargs of the two STT releases that size them: n_q 32 (dep_q 0: no depformer), card 2048,
 * the SiLU gating with hidden_scale 4.125 (dim_feedforward 2 × 5632 = 11264 for dim 2048, the
 * `ffn_dim` of transformers' KyutaiSpeechToTextConfig, which describes stt-2.6b-en), RMS norms,
 * RoPE; stt-1b-en_fr: 16 layers × 16 heads, context 750, text_card 8000, 4 extra heads of 6 (its
 * semantic voice-activity heads), audio delay 0.5 s; stt-2.6b-en: 48 layers × 32 heads, context 375,
 * text_card 4000, no extra heads, delay 2.5 s after a 1 s silence prefix (its config.json stt_config,
 * tests/fixtures/official_configs/stt_2.6b_en.json).
 */
function sttKwargs(o: { numLayers: number; numHeads: number; context: number; textCard: number; extraHeads: number; delay: number; prefix: number; tokenizer: string }): Record<string, unknown> {
  return {
    dim: 2048, text_card: o.textCard, existing_text_padding_id: 3, n_q: 32, dep_q: 0, card: 2048, num_heads: o.numHeads, num_layers: o.numLayers,
    hidden_scale: 4.125, causal: true, layer_scale: null, context: o.context, max_period: 100000, gating: 'silu', norm: 'rms_norm_f32', positional_embedding: 'rope',
    delays: new Array(33).fill(0), extra_heads_num_heads: o.extraHeads, extra_heads_dim: 6,
    model_type: 'stt', stt_config: { audio_delay_seconds: o.delay, audio_silence_prefix_seconds: o.prefix },
    lm_gen_config: { temp: 0, temp_text: 0, top_k: 250, top_k_text: 50 }, mimi_name: STT_MIMI_FILE, tokenizer_name: o.tokenizer,
  };
}

function sttEntry(repo: string, languages: string, tokenizerFile: string, k: Parameters<typeof sttKwargs>[0]): ReleasedSttModel {
  const config = parseLmConfig(sttKwargs(k), `${repo} preset`);
  const storage: LmStorage = { kind: 'bf16' };
  return { repo, languages, configFile: 'config.json', lmFile: 'model.safetensors', mimiFile: STT_MIMI_FILE, tokenizerFile, storage, config, downloadBytes: lmMemory(config, storage, 'f16').weights };
}

/** The released Kyutai STT repositories, smallest first. */
export const STT_MODELS: readonly ReleasedSttModel[] = [
  sttEntry('kyutai/stt-1b-en_fr', 'English, French', 'tokenizer_en_fr_audio_8000.model', { numLayers: 16, numHeads: 16, context: 750, textCard: 8000, extraHeads: 4, delay: 0.5, prefix: 0, tokenizer: 'tokenizer_en_fr_audio_8000.model' }),
  sttEntry('kyutai/stt-2.6b-en', 'English', 'tokenizer_en_audio_4000.model', { numLayers: 48, numHeads: 32, context: 375, textCard: 4000, extraHeads: 0, delay: 2.5, prefix: 1, tokenizer: 'tokenizer_en_audio_4000.model' }),
];

/** The STT repository `repo` (a full 'kyutai/…' name or the name after 'kyutai/'), or null. */
export function sttModel(repo: string): ReleasedSttModel | null {
  const full = repo.includes('/') ? repo : `kyutai/${repo}`;
  return STT_MODELS.find((m) => m.repo === full) ?? null;
}

/** GPU bytes the engine needs for an STT model: weights as stored (bf16), an f16 KV cache over its context, activations (Mimi excluded, as for Moshi). */
export function sttModelGpuBytes(m: ReleasedSttModel): number {
  return lmMemory(m.config, m.storage, 'f16', m.config.context).total;
}

/** Why the STT model `m` does not fit `budget`, or null when it fits (the same rules as {@link whyNotFit}). */
export function whyNotFitStt(m: ReleasedSttModel, budget: DeviceBudget): string | null {
  const mem = lmMemory(m.config, m.storage, 'f16', m.config.context);
  if (mem.largestTensor.bytes > budget.maxBufferSize) return `its largest tensor ${mem.largestTensor.name} needs ${formatBytes(mem.largestTensor.bytes)}, the adapter's buffers hold at most ${formatBytes(budget.maxBufferSize)}`;
  if (budget.totalBytes !== null && mem.total > budget.totalBytes) return `it needs ${formatBytes(mem.total)} of GPU memory, the budget is ${formatBytes(budget.totalBytes)}`;
  return null;
}
