/**
 * Page-side wiring of the capture and playback AudioWorklets.
 *
 * The worklet modules are imported with Vite's `?worker&url`: in `vite build` each becomes one
 * self-contained ES module (its imports bundled in; `new URL('x.ts', import.meta.url)` would
 * instead inline the raw TypeScript as a data: URL and fail); in `vite dev` it is served as a
 * module whose imports the AudioWorkletGlobalScope resolves.
 *
 * Two transport modes, chosen by `createAudioIO`:
 * - 'shared' (page cross-origin isolated, SharedArrayBuffer present): the worklets read/write
 *   RingBuffers that the engine Worker also wraps (post `io.inputRing.buffer` and
 *   `io.outputRing.buffer` to it). No messages on the audio path.
 * - 'message': capture posts 1920-sample frames (→ `onCaptureFrame`, e.g. `channel.sendAudio`),
 *   and `io.playFrame(pcm)` posts frames to playback; the buffers are recycled both ways.
 */
import captureUrl from '../../workers/audio_capture_worklet.ts?worker&url';
import playbackUrl from '../../workers/audio_playback_worklet.ts?worker&url';
import { RingBuffer } from '../audio/ring_buffer.ts';
import {
  CAPTURE_PROCESSOR,
  type CaptureOptions,
  type JitterOptions,
  MODEL_RATE,
  PLAYBACK_PROCESSOR,
  type PlaybackOptions,
  type WorkletMessage,
  createAudioStats,
} from '../audio/worklet_shared.ts';
import { StampQueue } from '../audio/frame_stamps.ts';
import { FramePool } from '../protocol/audio_frames.ts';
import { AUDIO_CHUNK_SAMPLES } from '../protocol/packet.ts';

export { captureUrl, playbackUrl };

/** Thrown when the browser lacks AudioWorklet or the modules fail to load. */
export class AudioSetupError extends Error {
  override name = 'AudioSetupError';
}

const loaded = new WeakMap<BaseAudioContext, Promise<void>>();

/**
 * Adds both worklet modules to `ctx` (once per context).
 * @throws AudioSetupError when AudioWorklet is missing or a module fails to load.
 */
export function loadAudioWorklets(ctx: BaseAudioContext): Promise<void> {
  let p = loaded.get(ctx);
  if (!p) {
    if (!ctx.audioWorklet) {
      return Promise.reject(new AudioSetupError('AudioWorklet is unavailable (needs a secure context: https or http://127.0.0.1 / localhost)'));
    }
    p = Promise.all([ctx.audioWorklet.addModule(captureUrl), ctx.audioWorklet.addModule(playbackUrl)]).then(
      () => undefined,
      (e: unknown) => {
        loaded.delete(ctx);
        throw new AudioSetupError(`loading the audio worklets (${captureUrl}, ${playbackUrl}) failed: ${(e as Error)?.message ?? e}`);
      },
    );
    loaded.set(ctx, p);
  }
  return p;
}

/** A capture node (1 input, 0 outputs); the modules must be loaded. */
export function createCaptureNode(ctx: BaseAudioContext, opts: CaptureOptions): AudioWorkletNode {
  return new AudioWorkletNode(ctx, CAPTURE_PROCESSOR, {
    numberOfInputs: 1,
    numberOfOutputs: 0,
    channelCount: 1,
    channelCountMode: 'explicit',
    channelInterpretation: 'speakers',
    processorOptions: opts,
  });
}

/** A playback node (0 inputs, 1 mono output, up-mixed by the destination); the modules must be loaded. */
export function createPlaybackNode(ctx: BaseAudioContext, opts: PlaybackOptions): AudioWorkletNode {
  return new AudioWorkletNode(ctx, PLAYBACK_PROCESSOR, {
    numberOfInputs: 0,
    numberOfOutputs: 1,
    outputChannelCount: [1],
    processorOptions: opts,
  });
}

/**
 * getUserMedia for full duplex: echo cancellation on by default (so the model does not hear
 * itself), mono. @throws AudioSetupError naming the cause (permission denied, no device, insecure page).
 */
export async function openMicrophone(
  opts: { echoCancellation?: boolean; noiseSuppression?: boolean; autoGainControl?: boolean; deviceId?: string } = {},
): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getUserMedia) throw new AudioSetupError('getUserMedia is unavailable (needs a secure context: https or http://127.0.0.1)');
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: {
        echoCancellation: opts.echoCancellation ?? true,
        noiseSuppression: opts.noiseSuppression ?? true,
        autoGainControl: opts.autoGainControl ?? true,
        channelCount: 1,
        ...(opts.deviceId ? { deviceId: { exact: opts.deviceId } } : {}),
      },
    });
  } catch (e) {
    const err = e as DOMException;
    throw new AudioSetupError(`microphone unavailable (${err?.name ?? 'Error'}: ${err?.message ?? e}); allow microphone access or pick another device`);
  }
}

export interface AudioIOOptions {
  /** Microphone or any audio stream; omit for playback only (e.g. file-input mode). */
  stream?: MediaStream;
  /** Force the message path even where SharedArrayBuffer exists (tests, debugging). */
  forceMessageMode?: boolean;
  /** Ring capacities in 24 kHz samples (rounded up to powers of two; default 32768 ≈ 1.37 s each). */
  inputCapacity?: number;
  outputCapacity?: number;
  jitter?: JitterOptions;
  /**
   * Message mode: called with each captured 24 kHz frame (1920 samples; copy it before returning)
   * and the capture stamp of its first sample (src/audio/frame_stamps.ts).
   */
  onCaptureFrame?: (pcm: Float32Array, stamp: number | null) => void;
  /** Connect playback to ctx.destination (default true). */
  connectOutput?: boolean;
}

export interface AudioIO {
  mode: 'shared' | 'message';
  context: BaseAudioContext;
  capture: AudioWorkletNode | null;
  playback: AudioWorkletNode;
  source: MediaStreamAudioSourceNode | null;
  /** Shared mode: 24 kHz microphone samples (engine = consumer). */
  inputRing: RingBuffer | null;
  /** Shared mode: 24 kHz samples to play (engine = producer). */
  outputRing: RingBuffer | null;
  /** STAT counters of both processors (SharedArrayBuffer-backed when available). */
  stats: Int32Array;
  /** Shared mode: the playback worklet's StampQueue of (output-ring index, capture stamp) that the engine fills. */
  stampQueue: StampQueue | null;
  /** Shared mode: the playback worklet's reports (latency, play stamp) of played reply frames (page = consumer). */
  reportQueue: StampQueue | null;
  /** Message mode: queue one 1920-sample 24 kHz frame for playback (copied), with the capture stamp it answers. No-op in shared mode. */
  playFrame(pcm: Float32Array, stamp?: number | null): void;
  /** Drops buffered playback (barge-in). */
  flushPlayback(): void;
  /** Disconnects the nodes (the context stays open). */
  close(): void;
}

/**
 * Loads the worklets and builds the capture/playback graph on `ctx`.
 * @throws AudioSetupError (see loadAudioWorklets)
 */
export async function createAudioIO(ctx: AudioContext, opts: AudioIOOptions = {}): Promise<AudioIO> {
  await loadAudioWorklets(ctx);
  const shared = !opts.forceMessageMode && typeof SharedArrayBuffer !== 'undefined' && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== false;
  const stats = createAudioStats(shared);
  const statsBuf = shared ? (stats.buffer as SharedArrayBuffer) : undefined;
  const inputRing = shared ? RingBuffer.create(opts.inputCapacity ?? 32768) : null;
  const outputRing = shared ? RingBuffer.create(opts.outputCapacity ?? 32768) : null;
  // 256 reply frames (20 s) of stamps and reports: the engine and the page drain them every step / 250 ms.
  const stampQueue = shared ? StampQueue.create(256, true) : null;
  const reportQueue = shared ? StampQueue.create(256, true) : null;
  const playback = createPlaybackNode(ctx, {
    ring: outputRing?.buffer as SharedArrayBuffer | undefined,
    stamps: stampQueue?.buffer as SharedArrayBuffer | undefined,
    reports: reportQueue?.buffer as SharedArrayBuffer | undefined,
    stats: statsBuf,
    jitter: opts.jitter,
    localCapacity: opts.outputCapacity,
  });
  if (opts.connectOutput ?? true) playback.connect(ctx.destination);
  let capture: AudioWorkletNode | null = null;
  let source: MediaStreamAudioSourceNode | null = null;
  if (opts.stream) {
    capture = createCaptureNode(ctx, { ring: inputRing?.buffer as SharedArrayBuffer | undefined, stats: statsBuf });
    source = ctx.createMediaStreamSource(opts.stream);
    source.connect(capture);
    if (!shared) {
      const node = capture;
      node.port.onmessage = (ev: MessageEvent<WorkletMessage>) => {
        const m = ev.data;
        if (m.type !== 'frame') return;
        try {
          opts.onCaptureFrame?.(m.pcm, typeof m.stamp === 'number' ? m.stamp : null);
        } finally {
          node.port.postMessage({ type: 'recycle', pcm: m.pcm }, [m.pcm.buffer]);
        }
      };
    }
  }
  const pool = new FramePool(8);
  if (!shared) {
    playback.port.onmessage = (ev: MessageEvent<WorkletMessage>) => {
      if (ev.data.type === 'recycle') pool.give(ev.data.pcm);
    };
  }
  return {
    mode: shared ? 'shared' : 'message',
    context: ctx,
    capture,
    playback,
    source,
    inputRing,
    outputRing,
    stats,
    stampQueue,
    reportQueue,
    playFrame(pcm: Float32Array, stamp: number | null = null) {
      if (shared) return;
      if (pcm.length !== AUDIO_CHUNK_SAMPLES) throw new RangeError(`playFrame: expected ${AUDIO_CHUNK_SAMPLES} samples at ${MODEL_RATE} Hz, got ${pcm.length}`);
      const f = pool.take();
      f.set(pcm);
      playback.port.postMessage(stamp === null ? { type: 'frame', pcm: f } : { type: 'frame', pcm: f, stamp }, [f.buffer]);
    },
    flushPlayback() {
      playback.port.postMessage({ type: 'flush' });
    },
    close() {
      source?.disconnect();
      capture?.disconnect();
      playback.disconnect();
      if (capture) capture.port.onmessage = null;
      playback.port.onmessage = null;
    },
  };
}

export { MODEL_RATE, STAT, createAudioStats, readAudioStats } from '../audio/worklet_shared.ts';
