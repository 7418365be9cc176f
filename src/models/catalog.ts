/**
 * The Moshi models Kyutai publishes, by repository, with their files and what they take: the
 * download size of the LM file (as published, rounded) and the GPU memory this engine needs for
 * them (weights as stored, KV cache over the context, activations; src/models/lm_memory.ts). Every
 * repository also holds the Mimi (`tokenizer-e351c8d8-checkpoint125.safetensors`) and the text
 * tokenizer (`tokenizer_spm_32k_3.model`). Sources: the hub repositories named in
 * moshi/models/loaders.py and moshi_mlx (`model.q4.safetensors` / `model.q8.safetensors`).
 */
import { MOSHI_7B_CONFIG } from './lm_config.ts';
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
