/**
 * Builds a live speech-to-text model (Kyutai STT: kyutai/stt-1b-en_fr, kyutai/stt-2.6b-en) from
 * model bytes, as loadEngine does for Moshi: the STT repository's config.json (LM kwargs +
 * `model_type: "stt"`, `stt_config`, `lm_gen_config`), the LM weights, the Mimi set to the LM's
 * n_q codebooks (loaders.py `CheckpointInfo.get_mimi`: max(dep_q, n_q − dep_q) = n_q = 32 for the
 * released models), the SentencePiece tokenizer, an LMGen with the config's sampling (greedy for the
 * released models, seed 0) and the SttStream that runs the official procedure
 * (moshi/run_inference.py, src/models/stt.ts).
 */
import type { GpuContext } from '../gpu/index.ts';
import { LMModel } from '../models/lm.ts';
import { type LmConfig, parseLmConfig } from '../models/lm_config.ts';
import { LMGEN_DEFAULTS, LMGen } from '../models/lm_gen.ts';
import { MimiModel } from '../models/mimi.ts';
import { MIMI_RELEASED_CONFIG, type MimiConfig, parseMimiConfig } from '../models/mimi_config.ts';
import { STT_CONFIG_DEFAULTS, SttStream } from '../models/stt.ts';
import { TextTokenizer } from '../text/tokenizer.ts';
import { SafetensorsFile } from '../weights/safetensors.ts';
import type { ModelFiles } from '../weights/sources.ts';
import { VarBuilder } from '../weights/var_builder.ts';
import { ModelMismatchError } from './load.ts';
import { LoopMetrics } from './metrics.ts';
import type { ModelInfo } from './worker_api.ts';

/**
 * True when `lmConfig` (a parsed config.json, or null for the built-in Moshi 7B) describes a
 * speech-to-text model: `model_type` "stt", or `dep_q` 0 (no depformer: nothing to say aloud).
 */
export function isSttModelConfig(lmConfig: unknown): boolean {
  if (!lmConfig || typeof lmConfig !== 'object') return false;
  const c = lmConfig as Record<string, unknown>;
  return c.model_type === 'stt' || c.dep_q === 0;
}

/** A loaded STT model: the stream and what it runs on. */
export interface LoadedStt {
  readonly kind: 'stt';
  stream: SttStream;
  mimi: MimiModel;
  lm: LMModel;
  gen: LMGen;
  tokenizer: TextTokenizer | null;
  lmConfig: LmConfig;
  mimiConfig: MimiConfig;
  /** Step timings and counters of the live loop (src/engine/stt_loop.ts records into it). */
  metrics: LoopMetrics;
  info: ModelInfo;
  dispose(): void;
}

export interface SttLoadOptions {
  onStage?: (message: string) => void;
  /** Cancels the load between stages and between the LM's tensor uploads; nothing stays on the GPU. */
  signal?: AbortSignal;
}

/**
 * Loads an STT model onto `ctx`. `bytes.lmConfig` must be the model's config.json (there is no
 * built-in STT config); `bytes.mimiConfig` null means the released Mimi (loaders.py `_mimi_config`).
 * @throws ModelMismatchError (not an STT config, a Mimi with too few codebooks or another card, a
 *   tokenizer smaller than text_card), LmConfigError / WeightError / SafetensorsError /
 *   TokenizerError naming the file, or the signal's AbortError
 */
export async function loadStt(ctx: GpuContext, bytes: ModelFiles, opts: SttLoadOptions = {}): Promise<LoadedStt> {
  const stage = opts.onStage ?? (() => {});
  const signal = opts.signal;
  signal?.throwIfAborted();
  stage('parsing configs');
  const lmName = bytes.names.lmWeights ?? 'lm';
  if (bytes.lmConfig === null) throw new ModelMismatchError(`a speech-to-text model needs its config.json (model_type "stt", stt_config): none was given with ${lmName}`);
  const lmConfig = parseLmConfig(bytes.lmConfig, `${bytes.names.lmConfig ?? 'LM config'}`);
  if (lmConfig.depQ > 0) throw new ModelMismatchError(`${bytes.names.lmConfig ?? 'the LM config'} has dep_q = ${lmConfig.depQ}${lmConfig.modelType ? ` (model_type '${lmConfig.modelType}')` : ''}: not a speech-to-text model (STT models have dep_q = 0)`);
  const mimiBase = bytes.mimiConfig === null ? MIMI_RELEASED_CONFIG : parseMimiConfig(bytes.mimiConfig, `${bytes.names.mimiConfig ?? 'Mimi config'}`);
  if (mimiBase.quantizer.n_q < lmConfig.nQ) {
    throw new ModelMismatchError(`the Mimi has ${mimiBase.quantizer.n_q} codebooks (quantizer.n_q), the STT model reads n_q = ${lmConfig.nQ}: the two models do not belong together`);
  }
  if (lmConfig.card !== mimiBase.quantizer.bins) {
    throw new ModelMismatchError(`the STT model's audio card is ${lmConfig.card}, the Mimi's codebooks have ${mimiBase.quantizer.bins} bins: the two models do not belong together`);
  }
  const mimiConfig: MimiConfig = { ...mimiBase, num_codebooks: lmConfig.nQ };
  stage('uploading Mimi');
  const mimiBytes = bytes.mimiWeights instanceof Uint8Array ? bytes.mimiWeights : new Uint8Array(await bytes.mimiWeights.arrayBuffer());
  const mimi = await MimiModel.load(ctx, mimiConfig, VarBuilder.fromSafetensors(ctx, [SafetensorsFile.parse(mimiBytes, bytes.names.mimiWeights ?? 'mimi')]));
  let lm: LMModel | null = null;
  try {
    signal?.throwIfAborted();
    stage('uploading the STT model');
    const lmFile = bytes.lmWeights instanceof Uint8Array ? SafetensorsFile.parse(bytes.lmWeights, lmName) : await SafetensorsFile.fromBlob(bytes.lmWeights, lmName);
    let lastStage = 0;
    lm = await LMModel.load(ctx, VarBuilder.fromSafetensors(ctx, [lmFile]), lmConfig, {
      onUploadProgress: (done, total) => {
        signal?.throwIfAborted();
        const now = performance.now();
        if (now - lastStage < 250 && done < total) return;
        lastStage = now;
        stage(`uploading the STT model: ${(done / 1e9).toFixed(2)} / ${(total / 1e9).toFixed(2)} GB`);
      },
    });
    signal?.throwIfAborted();
    let tokenizer: TextTokenizer | null = null;
    if (bytes.tokenizer) {
      stage('reading the tokenizer');
      tokenizer = await TextTokenizer.fromBytes(bytes.tokenizer, { source: bytes.names.tokenizer ?? 'tokenizer', skipIds: [lmConfig.existingTextEndPaddingId, lmConfig.existingTextPaddingId] });
      if (tokenizer.vocabSize < lmConfig.textCard) {
        throw new ModelMismatchError(`the tokenizer ${bytes.names.tokenizer ?? ''} has ${tokenizer.vocabSize} pieces, fewer than the STT model's text_card ${lmConfig.textCard}: wrong tokenizer for this model`);
      }
    }
    const d = lmConfig.lmGen;
    const gen = new LMGen(lm, { temp: d.temp ?? LMGEN_DEFAULTS.temp, tempText: d.tempText ?? LMGEN_DEFAULTS.tempText, topK: d.topK ?? LMGEN_DEFAULTS.topK, topKText: d.topKText ?? LMGEN_DEFAULTS.topKText, seed: 0 });
    const stream = new SttStream(mimi, gen, { stt: lmConfig.stt ?? STT_CONFIG_DEFAULTS });
    const stt = stream.procedure.stt;
    const info: ModelInfo = {
      summary: `speech-to-text: Mimi (${mimi.numCodebooks} codebooks) + STT model dim ${lmConfig.dim} × ${lmConfig.numLayers} layers, text lags ${stt.audioDelaySeconds} s${stream.procedure.numHeads ? `, ${stream.procedure.numHeads} extra heads` : ''}${tokenizer ? ', tokenizer' : ', no tokenizer (text as ids)'}; ${gen.tempText === 0 ? 'greedy' : `text temp ${gen.tempText}`}`,
      depQ: 0,
      userCodebooks: lmConfig.nQ,
      hasTokenizer: tokenizer !== null,
      gpuBytes: ctx.liveBytes,
      // The captions trail the speech by audio_delay_seconds (the STT model's inherent delay).
      modelDelayMs: stt.audioDelaySeconds * 1000,
      stt: { numHeads: stream.procedure.numHeads, headDim: stream.procedure.headDim, audioDelaySeconds: stt.audioDelaySeconds, audioSilencePrefixSeconds: stt.audioSilencePrefixSeconds, frameSeconds: stream.procedure.frameSeconds, endOfPaddingId: lmConfig.existingTextEndPaddingId },
    };
    const model = lm;
    return {
      kind: 'stt', stream, mimi, lm: model, gen, tokenizer, lmConfig, mimiConfig, metrics: new LoopMetrics(), info,
      dispose() {
        gen.destroy();
        model.destroy();
        mimi.destroy();
      },
    };
  } catch (e) {
    lm?.destroy();
    mimi.destroy(); // nothing of a failed load stays on the GPU
    throw e;
  }
}
