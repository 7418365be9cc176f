/**
 * Builds an Engine from model bytes: parses the configs (or takes the released presets), parses
 * the safetensors, uploads Mimi and the Moshi LM through VarBuilders (every key consumed), makes
 * the LMGen and the optional SentencePiece detokenizer. Port of the model setup in
 * moshi/moshi/server.py `main` (checkpoint_info.get_mimi / get_moshi / get_text_tokenizer).
 */
import type { GpuContext } from '../gpu/index.ts';
import { LMModel } from '../models/lm.ts';
import { parseLmConfig, MOSHI_7B_CONFIG, type LmConfig } from '../models/lm_config.ts';
import { LMGEN_DEFAULTS, LMGen } from '../models/lm_gen.ts';
import { STT_CONFIG_DEFAULTS, SttProcedure } from '../models/stt.ts';
import { MimiModel } from '../models/mimi.ts';
import { MIMI_RELEASED_CONFIG, parseMimiConfig, type MimiConfig } from '../models/mimi_config.ts';
import { TextTokenizer } from '../text/tokenizer.ts';
import { SafetensorsFile } from '../weights/safetensors.ts';
import { VarBuilder } from '../weights/var_builder.ts';
import { CHECK_BITS, Engine, type GpuLoop, type GpuStt } from './engine.ts';
import { STEP_BUDGET_MS } from './metrics.ts';
import type { ModelFiles } from '../weights/sources.ts';
import type { ModelInfo, SamplingSettings, SttModelInfo } from './worker_api.ts';

/** A Mimi and an LM that do not fit together, or a bad condition. */
export class ModelMismatchError extends Error {
  override name = 'ModelMismatchError';
}

/**
 * The Engine's GPU stages over one Mimi and one LMGen: Mimi encode (codes i32 [num_codebooks, 1];
 * the LM reads the first n_q - dep_q), one LMGen step (i32 [1 + depQ]) and Mimi decode of the dep_q
 * audio tokens through the Mimi's first dep_q codebooks (num_codebooks ≥ dep_q), each recorded into the Engine's one
 * recording per step. `gen()` is asked at every call, so the caller may swap the LMGen between
 * conversations (new sampling settings); `reset()` resets Mimi's streaming state, then calls
 * `resetLm` (which resets or swaps the LMGen).
 */
export function mimiLmLoop(ctx: GpuContext, mimi: MimiModel, depQ: number, gen: () => LMGen, resetLm: () => void, stt: GpuStt | null = null): GpuLoop {
  return {
    ...(stt ? { stt: { gen: stt.gen, procedure: stt.procedure } } : {}),
    ctx,
    codebooks: mimi.numCodebooks,
    depQ,
    prepare: () => gen().ready,
    recordEncode: (rec, pcm, codes) => mimi.recordEncode(rec, pcm, codes),
    checksInLmStep: true,
    recordLmStep: (rec, codes, out, flags) => gen().recordStep(rec, codes, out, flags && { flags, bits: { text: CHECK_BITS.textLogits, audio: CHECK_BITS.audioLogits } }),
    recordDecode: (rec, audio, pcm) => mimi.recordDecode(rec, audio, pcm, null, depQ), // the first dep_q codebooks
    reset: () => {
      mimi.reset();
      resetLm();
    },
  };
}

export interface LoadOptions {
  sampling: SamplingSettings;
  /** Conditioner values by name (`--condition description=good`), or null. */
  condition: Record<string, string> | null;
  /** Called between stages (parse, upload Mimi, upload LM, tokenizer). */
  onStage?: (message: string) => void;
  /**
   * Cancels the load: checked between stages and between the LM's tensor uploads; everything
   * uploaded so far is freed and the call rejects with the signal's AbortError.
   */
  signal?: AbortSignal;
  /** The LM's KV cache storage (LMModel.load `kvCache`; default 'auto': f16 unless the checkpoint is F32). */
  kvCache?: 'auto' | 'f32' | 'f16';
  /**
   * A speech-to-text model to run beside the LM on the same Mimi encode (the user's words beside
   * Moshi's): its config.json (model_type "stt", dep_q 0), weights and tokenizer. Its Mimi is the
   * Moshi engine's, loaded with max(num_codebooks, the STT model's n_q) codebooks.
   */
  stt?: SttModelFiles;
  /** The STT model's KV cache storage (default 'auto'). */
  sttKvCache?: 'auto' | 'f32' | 'f16';
}

/** The STT model's files for LoadOptions.stt (its Mimi is the Moshi engine's). */
export type SttModelFiles = Pick<ModelFiles, 'lmWeights' | 'lmConfig' | 'tokenizer' | 'names'>; // LmFiles (src/weights/sources.ts) is one

/** The STT model loaded beside the LM (LoadedEngine.stt). */
export interface LoadedSttBeside {
  lm: LMModel;
  gen: LMGen;
  procedure: SttProcedure;
  tokenizer: TextTokenizer | null;
  lmConfig: LmConfig;
  /** What the page needs to show its captions (as ModelInfo.stt of an STT-only load). */
  info: SttModelInfo;
}

export interface LoadedEngine {
  engine: Engine;
  mimi: MimiModel;
  lm: LMModel;
  lmGen: LMGen;
  mimiConfig: MimiConfig;
  lmConfig: LmConfig;
  info: ModelInfo;
  /** The speech-to-text model run beside the LM (LoadOptions.stt), or null. */
  stt: LoadedSttBeside | null;
  /** New LMGen sampling settings, applied at the next `engine.reset()` (the next conversation). */
  setSampling(s: SamplingSettings): void;
  /** Frees the GPU buffers of both models. */
  dispose(): void;
}

/** Parses `NAME=VALUE` items into a record. Throws an Error naming the bad item. */
export function parseCondition(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const it of items) {
    const i = it.indexOf('=');
    if (i <= 0 || i === it.length - 1) throw new Error(`condition '${it}' must look like NAME=VALUE (e.g. description=very_good)`);
    out[it.slice(0, i).trim()] = it.slice(i + 1).trim();
  }
  return out;
}

/**
 * Loads both models and the tokenizer onto `ctx` and returns a ready Engine. A failed or
 * cancelled load (opts.signal) leaves nothing on the GPU.
 * @throws ModelMismatchError, WeightError / SafetensorsError / TokenizerError naming the file, or
 *   the signal's AbortError.
 */
export async function loadEngine(ctx: GpuContext, bytes: ModelFiles, opts: LoadOptions): Promise<LoadedEngine> {
  const stage = opts.onStage ?? (() => {});
  const signal = opts.signal;
  signal?.throwIfAborted();
  stage('parsing configs');
  let mimiConfig = bytes.mimiConfig === null ? MIMI_RELEASED_CONFIG : parseMimiConfig(bytes.mimiConfig, `${(bytes.names.mimiWeights ?? 'mimi')} config`);
  const lmConfig = bytes.lmConfig === null ? MOSHI_7B_CONFIG : parseLmConfig(bytes.lmConfig, `${(bytes.names.lmWeights ?? 'lm')} config`);
  const userCodebooks = lmConfig.nQ - lmConfig.depQ;
  // Mimi encodes num_codebooks codes per frame (the LM reads the first n_q - dep_q) and decodes the
  // LM's dep_q audio tokens through its first dep_q codebooks (residual quantization: a prefix).
  const needed = Math.max(userCodebooks, lmConfig.depQ);
  if (mimiConfig.num_codebooks < needed) {
    throw new ModelMismatchError(`Mimi uses ${mimiConfig.num_codebooks} codebooks, the LM reads ${userCodebooks} user codebooks and writes ${lmConfig.depQ} audio tokens per frame (Mimi needs num_codebooks ≥ max(n_q - dep_q, dep_q) = ${needed}): the two models do not belong together`);
  }
  if (lmConfig.card !== mimiConfig.quantizer.bins) {
    throw new ModelMismatchError(`the LM's audio card is ${lmConfig.card}, Mimi's codebooks have ${mimiConfig.quantizer.bins} bins: the two models do not belong together`);
  }
  let sttConfig: LmConfig | null = null;
  if (opts.stt) {
    const sttName = opts.stt.names.lmConfig ?? 'the STT config';
    if (opts.stt.lmConfig === null) throw new ModelMismatchError(`the speech-to-text model beside the LM needs its config.json (model_type "stt", stt_config): none was given with ${opts.stt.names.lmWeights ?? 'its weights'}`);
    sttConfig = parseLmConfig(opts.stt.lmConfig, sttName);
    if (sttConfig.depQ > 0) throw new ModelMismatchError(`${sttName} has dep_q = ${sttConfig.depQ}: not a speech-to-text model (STT models have dep_q = 0)`);
    if (sttConfig.nQ > mimiConfig.quantizer.n_q) {
      throw new ModelMismatchError(`the Mimi has ${mimiConfig.quantizer.n_q} codebooks (quantizer.n_q), the STT model reads n_q = ${sttConfig.nQ}: it cannot share this Mimi`);
    }
    if (sttConfig.card !== mimiConfig.quantizer.bins) {
      throw new ModelMismatchError(`the STT model's audio card is ${sttConfig.card}, Mimi's codebooks have ${mimiConfig.quantizer.bins} bins: it cannot share this Mimi`);
    }
    if ((sttConfig.stt?.audioSilencePrefixSeconds ?? 0) !== 0) {
      throw new ModelMismatchError(`${sttName} has audio_silence_prefix_seconds = ${sttConfig.stt!.audioSilencePrefixSeconds}: beside Moshi the one Mimi encoder cannot take a silence prefix Moshi does not hear (only 0 is supported; load it alone instead)`);
    }
    // One encode for both: the Mimi emits max(Moshi's, the STT model's) codebooks (a residual prefix).
    mimiConfig = { ...mimiConfig, num_codebooks: Math.max(mimiConfig.num_codebooks, sttConfig.nQ) };
  }
  const condNames = Object.keys(lmConfig.conditioners);
  if (opts.condition) {
    for (const k of Object.keys(opts.condition)) {
      if (!condNames.includes(k)) throw new ModelMismatchError(`condition '${k}' is not a conditioner of this LM (it has: ${condNames.join(', ') || 'none'})`);
    }
  }
  stage('uploading Mimi');
  const mimiName = bytes.names.mimiWeights ?? 'mimi';
  // Mimi (a few hundred MB at most) is read whole: its convolutions are relaid out on the host.
  const mimiBytes = bytes.mimiWeights instanceof Uint8Array ? bytes.mimiWeights : new Uint8Array(await bytes.mimiWeights.arrayBuffer());
  const mimiVb = VarBuilder.fromSafetensors(ctx, [SafetensorsFile.parse(mimiBytes, mimiName)]);
  const mimi = await MimiModel.load(ctx, mimiConfig, mimiVb);
  if (signal?.aborted) {
    mimi.destroy();
    signal.throwIfAborted();
  }
  stage('uploading the LM');
  const lmName = bytes.names.lmWeights ?? 'lm';
  // The LM (15 GB for Moshi 7B in bf16) from a Blob streams to the GPU one tensor at a time.
  let lm: LMModel;
  let tokenizer: TextTokenizer | null = null;
  let lastStage = 0;
  try {
    const lmFile = bytes.lmWeights instanceof Uint8Array ? SafetensorsFile.parse(bytes.lmWeights, lmName) : await SafetensorsFile.fromBlob(bytes.lmWeights, lmName);
    const lmVb = VarBuilder.fromSafetensors(ctx, [lmFile]);
    lm = await LMModel.load(ctx, lmVb, lmConfig, {
      kvCache: opts.kvCache,
      onUploadProgress: (done, total) => {
        // Cancel between tensors: LMModel.load frees what it uploaded when this throws.
        signal?.throwIfAborted();
        const now = performance.now();
        if (now - lastStage < 250 && done < total) return;
        lastStage = now;
        stage(`uploading the LM: ${(done / 1e9).toFixed(2)} / ${(total / 1e9).toFixed(2)} GB`);
      },
    });
  } catch (e) {
    mimi.destroy(); // nothing of a failed load stays on the GPU
    throw e;
  }
  if (signal?.aborted) {
    mimi.destroy();
    lm.destroy();
    signal.throwIfAborted();
  }
  if (bytes.tokenizer) {
    stage('reading the tokenizer');
    try {
      tokenizer = await TextTokenizer.fromBytes(bytes.tokenizer, { source: bytes.names.tokenizer ?? 'tokenizer', skipIds: [lmConfig.existingTextEndPaddingId, lmConfig.existingTextPaddingId] });
    } catch (e) {
      mimi.destroy();
      lm.destroy();
      throw e;
    }
  }
  let stt: LoadedSttBeside | null = null;
  if (opts.stt && sttConfig) {
    try {
      stt = await loadSttBeside(ctx, opts.stt, sttConfig, mimi, opts, stage);
    } catch (e) {
      mimi.destroy();
      lm.destroy();
      throw e;
    }
  }
  const makeGen = (s: SamplingSettings) =>
    new LMGen(lm, { temp: s.temp, tempText: s.tempText, topK: s.topK, topKText: s.topKText, seed: s.seed, condition: opts.condition ?? undefined });
  let lmGen = makeGen(opts.sampling);
  let pending: SamplingSettings | null = null;
  // New sampling settings take effect at the next conversation (reset), never mid-stream.
  const resetLm = () => {
    if (pending) {
      lmGen.destroy();
      lmGen = makeGen(pending);
      pending = null;
    } else {
      lmGen.reset();
    }
    stt?.gen.reset();
  };
  const gpu = mimiLmLoop(ctx, mimi, lmConfig.depQ, () => lmGen, resetLm, stt);
  const engine = new Engine({ gpu }, tokenizer, {
    silentTextIds: [lmConfig.existingTextEndPaddingId, lmConfig.existingTextPaddingId],
    userCodebooks,
    depQ: lmConfig.depQ,
  });
  const info: ModelInfo = {
    summary: `Mimi (${mimiConfig.num_codebooks} codebooks) + LM dim ${lmConfig.dim} × ${lmConfig.numLayers} layers, dep_q ${lmConfig.depQ}${tokenizer ? ', tokenizer' : ', no tokenizer (text as ids)'}${stt ? ` + speech-to-text beside it (dim ${stt.lmConfig.dim} × ${stt.lmConfig.numLayers} layers, n_q ${stt.lmConfig.nQ}, text lags ${stt.info.audioDelaySeconds} s)` : ''}`,
    depQ: lmConfig.depQ,
    userCodebooks,
    hasTokenizer: tokenizer !== null,
    gpuBytes: ctx.liveBytes,
    modelDelayMs: Math.max(0, ...lmConfig.delays) * STEP_BUDGET_MS,
    ...(stt ? { captions: stt.info } : {}),
  };
  return {
    engine,
    mimi,
    lm,
    get lmGen() {
      return lmGen;
    },
    mimiConfig,
    lmConfig,
    info,
    stt,
    setSampling(s) {
      pending = { ...s };
    },
    dispose() {
      engine.destroy();
      lmGen.destroy();
      mimi.destroy();
      lm.destroy();
      stt?.gen.destroy();
      stt?.lm.destroy();
    },
  };
}

/**
 * Uploads the STT model of LoadOptions.stt (config already parsed and checked against the Mimi):
 * its LM, tokenizer, an LMGen with the config's lm_gen_config (greedy for the released models,
 * seed 0, as load_stt.ts) and the procedure's bookkeeping. A failure frees what it uploaded.
 */
async function loadSttBeside(ctx: GpuContext, files: SttModelFiles, cfg: LmConfig, mimi: MimiModel, opts: LoadOptions, stage: (m: string) => void): Promise<LoadedSttBeside> {
  const name = files.names.lmWeights ?? 'stt';
  stage('uploading the STT model');
  const file = files.lmWeights instanceof Uint8Array ? SafetensorsFile.parse(files.lmWeights, name) : await SafetensorsFile.fromBlob(files.lmWeights, name);
  let lastStage = 0;
  const lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [file]), cfg, {
    kvCache: opts.sttKvCache,
    onUploadProgress: (done, total) => {
      opts.signal?.throwIfAborted();
      const now = performance.now();
      if (now - lastStage < 250 && done < total) return;
      lastStage = now;
      stage(`uploading the STT model: ${(done / 1e9).toFixed(2)} / ${(total / 1e9).toFixed(2)} GB`);
    },
  });
  try {
    opts.signal?.throwIfAborted();
    let tokenizer: TextTokenizer | null = null;
    if (files.tokenizer) {
      stage('reading the STT tokenizer');
      tokenizer = await TextTokenizer.fromBytes(files.tokenizer, { source: files.names.tokenizer ?? 'STT tokenizer', skipIds: [cfg.existingTextEndPaddingId, cfg.existingTextPaddingId] });
      if (tokenizer.vocabSize < cfg.textCard) throw new ModelMismatchError(`the STT tokenizer ${files.names.tokenizer ?? ''} has ${tokenizer.vocabSize} pieces, fewer than the STT model's text_card ${cfg.textCard}: wrong tokenizer for this model`);
    }
    const d = cfg.lmGen;
    const gen = new LMGen(lm, { temp: d.temp ?? LMGEN_DEFAULTS.temp, tempText: d.tempText ?? LMGEN_DEFAULTS.tempText, topK: d.topK ?? LMGEN_DEFAULTS.topK, topKText: d.topKText ?? LMGEN_DEFAULTS.topKText, seed: 0 });
    const procedure = new SttProcedure(gen, mimi, { stt: cfg.stt ?? STT_CONFIG_DEFAULTS });
    const p = procedure.stt;
    const info: SttModelInfo = { numHeads: procedure.numHeads, headDim: procedure.headDim, audioDelaySeconds: p.audioDelaySeconds, audioSilencePrefixSeconds: p.audioSilencePrefixSeconds, frameSeconds: procedure.frameSeconds, endOfPaddingId: cfg.existingTextEndPaddingId };
    return { lm, gen, procedure, tokenizer, lmConfig: cfg, info };
  } catch (e) {
    lm.destroy();
    throw e;
  }
}
