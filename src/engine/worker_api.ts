/**
 * The typed control surface of the engine Worker (workers/engine_worker.ts), called from the
 * page through comlink. Data (text, metrics, and PCM when SharedArrayBuffer is missing) travels
 * separately as packets over a MessageChannel (src/protocol/channel.ts).
 */
import type { AdapterSummary } from '../gpu/context.ts';
import type { LmSource, ModelSource, ProgressInfo } from '../weights/sources.ts';
import type { MetricsSnapshot } from './metrics.ts';

/**
 * Where the models come from (src/weights/sources.ts: hub, URLs or picked files; config JSONs
 * are optional, the released Mimi / Moshi 7B configs are used without them) and the
 * conditioner values (`NAME=VALUE[,NAME=VALUE]`) for conditioned LMs. `stt`: a Kyutai
 * speech-to-text model to run beside Moshi on the same Mimi encode (the user's words as 'caption'
 * packets during the conversation): its config.json (model_type "stt"), weights and tokenizer,
 * from the hub, URLs or picked files (src/weights/sources.ts LmSource; no Mimi of its own).
 */
export type ModelSpec = ModelSource & { condition: string | null; stt?: LmSource | null };

/** LMGen sampling settings (moshi/models/lm.py LMGen defaults: temp 0.8, temp_text 0.7, top_k 250, top_k_text 25). */
export interface SamplingSettings {
  temp: number;
  tempText: number;
  topK: number;
  topKText: number;
  seed: number;
}

export const DEFAULT_SAMPLING: SamplingSettings = { temp: 0.8, tempText: 0.7, topK: 250, topKText: 25, seed: 0 };

/** Typed loading events: per-file download progress (transformers.js style, from src/weights/sources.ts), then load stages. */
export type LoadEvent = ({ type: 'progress' } & ProgressInfo) | { type: 'stage'; message: string };

/** What a successful load reports. */
export interface ModelInfo {
  summary: string;
  depQ: number;
  userCodebooks: number;
  hasTokenizer: boolean;
  gpuBytes: number;
  /** The model's inherent delay in ms: max(LM config delays) × 80 ms (separate from the pipeline latency). */
  modelDelayMs: number;
  /** Present when a speech-to-text model was loaded (config model_type "stt" / dep_q 0): no audio output, captions instead. */
  stt?: SttModelInfo;
  /**
   * Present when a speech-to-text model runs beside Moshi (ModelSpec.stt): the user's words
   * arrive as 'caption' packets during the conversation, the last ones after Stop, then 'caption-end'.
   */
  captions?: SttModelInfo;
}

/** What the page needs to show an STT model's captions (src/models/stt.ts SttStream). */
export interface SttModelInfo {
  /** Extra heads H and outputs per head Dh of each caption's `heads` (0, 0 without extra heads). */
  numHeads: number;
  headDim: number;
  /** `stt_config`: the text lags the audio by audioDelaySeconds; audioSilencePrefixSeconds of zeros come first. */
  audioDelaySeconds: number;
  audioSilencePrefixSeconds: number;
  /** Seconds per frame (0.08). */
  frameSeconds: number;
  /** `existing_text_end_padding_id` (0): the token that ends a word. */
  endOfPaddingId: number;
}

/**
 * One counted step of the live STT model (SttStream step), a METADATA packet `kind: 'caption'`
 * sent with requiresAck (resent until received, so the page's transcript is complete).
 */
export interface CaptionMeta {
  kind: 'caption';
  /** Counted step index since start (0, 1, …): the page orders captions by it. */
  step: number;
  /** Frame the token stands at (80 ms frames of the padded input, src/models/stt.ts). */
  frame: number;
  /** Text token id. */
  token: number;
  /** The SentencePiece piece (with its U+2581 word mark), null without a tokenizer. */
  piece: string | null;
  /** What the token prints (U+2581 as a space), null for the padding ids (0, 3) or without a tokenizer. */
  text: string | null;
  /** Seconds from the start of the input: frame × 0.08 − prefix − delay, clamped at 0. */
  time: number;
  /** Extra-head probabilities f32 [H · Dh] as numbers (head-major; [] without extra heads). */
  heads: number[];
}

/** The end of an STT run: after Stop (the right padding was fed) or when a played file ran out ('file-ended'). */
export interface CaptionEndMeta {
  kind: 'caption-end';
  reason: 'stopped' | 'file-ended';
  /** Counted steps sent in all. */
  steps: number;
}

/** How audio travels between the page's worklets and the engine. */
export type AudioTransport =
  /**
   * `stamps`: the playback worklet's StampQueue (src/audio/frame_stamps.ts) where the engine
   * announces each reply frame's (output-ring index, capture stamp) for the latency measure.
   */
  | { kind: 'shared'; input: SharedArrayBuffer; output: SharedArrayBuffer; stamps?: SharedArrayBuffer }
  | { kind: 'packets' };

/** METADATA packets the engine sends to the page. */
export type EngineMeta =
  | ({ kind: 'metrics' } & MetricsSnapshot)
  | { kind: 'error'; name: string; message: string }
  /** A finiteness fault of a step (Engine.step faults: NaN input zeroed, NaN logits, a silenced output frame); the first of each kind per conversation, the rest only counted in metrics.nonFinite. */
  | { kind: 'warning'; message: string }
  | { kind: 'device-lost'; message: string }
  | { kind: 'state'; state: 'running' | 'stopped' }
  /** The worker's channel stopped (or resumed) hearing the page's heartbeats. */
  | { kind: 'peer'; state: 'silent' | 'alive'; silentForMs: number }
  | CaptionMeta
  | CaptionEndMeta;

/** Options of EngineWorkerApi.start. */
export interface StartOptions {
  /**
   * A played file of this many samples: an STT model reads exactly that many, then feeds its right
   * padding and ends by itself (a 'caption-end' 'file-ended'). Ignored by Moshi (it keeps talking).
   */
  endAfterSamples?: number;
  /**
   * Moshi: keep this conversation as a record (src/engine/conversation_record.ts: both voices in
   * the model's time, both transcripts as turns; at most 10 minutes), for `recording()` after Stop.
   */
  record?: boolean;
  /**
   * Moshi: while the loop is behind real time (2 or more 80 ms input frames waiting), steps skip
   * their Mimi decode (silence out, counted in metrics.skippedDecodes) until fewer than 1 frame
   * waits. Default true. false: every produced frame is decoded and the reply falls behind
   * instead (its latency grows; once the input ring is full the capture worklet drops input).
   * Backpressure from the page's channel skips decodes either way.
   */
  catchUp?: boolean;
}

/** A recorded conversation (EngineWorkerApi.recording). */
export interface ConversationRecording {
  /** 24 kHz 16-bit stereo WAV: the user left, Moshi right, aligned step by step. */
  wav: Uint8Array;
  /** One line per turn: `[m:ss.s] You: …` / `[m:ss.s] Moshi: …`. */
  transcript: string;
  /** Seconds of audio in `wav`, and 80 ms frames past the 10-minute limit that were not kept. */
  seconds: number;
  droppedFrames: number;
}

/** The Worker's API (comlink). Every method rejects with a named Error the page can show. */
export interface EngineWorkerApi {
  /**
   * Creates the GPU device; returns the adapter. Throws WebGPUUnavailableError without WebGPU.
   * `onDeviceLost` (a comlink proxy) hears a device loss at any time, also before the packet
   * channel exists; without it the loss goes out as a 'device-lost' METADATA packet.
   */
  init(onDeviceLost?: (message: string) => void): Promise<AdapterSummary>;
  /** Attaches the packet channel port and the audio transport (rings or packets). */
  connect(port: MessagePort, transport: AudioTransport): Promise<void>;
  /**
   * Downloads/reads, parses and uploads the models; progress goes to `onProgress`. One load at a
   * time: a load already running is cancelled first, and the previous model is disposed (its GPU
   * memory freed) before the new one is uploaded. Rejects with an AbortError when cancelled.
   */
  load(spec: ModelSpec, sampling: SamplingSettings, onProgress: (e: LoadEvent) => void): Promise<ModelInfo>;
  /** Cancels the running load (its fetches and uploads are aborted, nothing is cached); resolves true when one was running. */
  cancelLoad(): Promise<boolean>;
  /**
   * Starts the loop from a fresh conversation (streaming state reset): Moshi's 80 ms loop, or for an
   * STT model the live transcriber (captions as 'caption' METADATA packets).
   */
  start(opts?: StartOptions): Promise<void>;
  /** Stops the loop after the current step (an STT model then feeds its right padding: the last words arrive). */
  stop(): Promise<void>;
  setSampling(s: SamplingSettings): Promise<void>;
  stats(): Promise<MetricsSnapshot>;
  /** The last conversation started with `record: true` (the WAV's buffer is transferred), or null. */
  recording(): Promise<ConversationRecording | null>;
}
