/// <reference lib="webworker" />
/**
 * The engine Worker: owns the GPU device and the models, runs the 80 ms loop.
 *
 * - Control (init, connect, load, start, stop, sampling, stats) comes through comlink
 *   (src/engine/worker_api.ts); loading progress goes back as typed LoadEvents.
 * - Audio: with SharedArrayBuffer, whole 1920-sample frames are read from the input ring (filled
 *   by the capture worklet) and each step's output is written to the output ring (drained by the
 *   playback worklet). Without it, PCM arrives and leaves as AUDIO_CHUNK packets.
 * - Text (each piece as TEXT_PARTIAL, each finished segment as an acknowledged TEXT_FINAL:
 *   src/engine/transcript.ts) and metrics (METADATA every 250 ms) leave as packets over the
 *   MessageChannel (src/protocol/channel.ts), heartbeats every 5 s both ways.
 * - Backpressure: audio input is never dropped. When the loop falls behind real time (two frames
 *   or more waiting) or the channel to the page is over its budget (after dropping TEXT_PARTIAL),
 *   steps skip their Mimi decode until the loop has caught up (EngineDriver; the lag rule is off
 *   with StartOptions.catchUp false, the page's `?catchUp=0`). If the page stops
 *   reading altogether, the channel keeps at most 64 reply frames (5 s) queued and drops the
 *   oldest, counted in droppedPackets.AUDIO_CHUNK.
 * - Loading: one load at a time through a LoadSlot (src/engine/load_slot.ts); cancelLoad() aborts
 *   the downloads and uploads, and a new load disposes the previous engine first.
 * - Speech-to-text: a config with model_type "stt" (or dep_q 0) loads a Kyutai STT model instead
 *   (src/engine/load_stt.ts); start() then runs the live transcriber (src/engine/stt_loop.ts) on the
 *   same audio input, and each counted step leaves as an acknowledged 'caption' METADATA packet
 *   (token, its piece and text, frame time, extra-head probabilities); stop() feeds the right
 *   padding so the last words arrive, then a 'caption-end' packet.
 * - Beside Moshi (ModelSpec.stt) an STT model steps on Moshi's own Mimi encode; its counted steps
 *   leave as the same 'caption' packets during the conversation, and stop() flushes its padding.
 * - Recording (StartOptions.record): the conversation's frames and texts are kept
 *   (src/engine/conversation_record.ts) for recording() after Stop.
 */
import * as Comlink from 'comlink';
import { installErrorTransfer } from '../src/engine/worker_errors.ts';
import { RingBuffer } from '../src/audio/ring_buffer.ts';
import { StampQueue } from '../src/audio/frame_stamps.ts';
import { EngineDriver, type FrameSink, type FrameSource } from '../src/engine/driver.ts';
import { type LoadedEngine, loadEngine, parseCondition } from '../src/engine/load.ts';
import { LoadSlot } from '../src/engine/load_slot.ts';
import type { MetricsSnapshot } from '../src/engine/metrics.ts';
import { FRAME_SAMPLES } from '../src/engine/metrics.ts';
import { loadLmFiles, loadModelFiles } from '../src/weights/sources.ts';
import type { SttStep } from '../src/models/stt.ts';
import { ConversationRecord } from '../src/engine/conversation_record.ts';
import { RingFrameSink, RingFrameSource } from '../src/engine/ring_io.ts';
import type { AudioTransport, EngineMeta, EngineWorkerApi, LoadEvent, ModelInfo, ModelSpec, SamplingSettings } from '../src/engine/worker_api.ts';
import { GpuContext } from '../src/gpu/index.ts';
import { Channel } from '../src/protocol/channel.ts';
import { TextSegmenter } from '../src/engine/transcript.ts';
import { isSttModelConfig, type LoadedStt, loadStt } from '../src/engine/load_stt.ts';
import { SttLoop } from '../src/engine/stt_loop.ts';
import type { CaptionMeta, ConversationRecording, StartOptions } from '../src/engine/worker_api.ts';
import { TextTokenizer } from '../src/text/tokenizer.ts';
import { PacketType } from '../src/protocol/packet.ts';

/** The 'caption' METADATA packet of one counted STT step (its piece and text when there is a tokenizer). */
function captionMeta(s: SttStep, tok: TextTokenizer | null): CaptionMeta {
  const known = tok !== null && s.token < tok.vocabSize;
  return {
    kind: 'caption', step: s.step, frame: s.frame, token: s.token,
    piece: known ? tok.piece(s.token) : null,
    text: known ? tok.decodePiece(s.token) : null,
    time: s.time, heads: Array.from(s.extraHeads),
  };
}

/**
 * Runs one step of silence on a freshly loaded model (it compiles every pipeline before the
 * microphone starts), then resets its state. A failed or cancelled warm-up disposes the model.
 */
async function warmUp<T extends { dispose(): void }>(
  loaded: T,
  signal: AbortSignal,
  onStage: (message: string) => void,
  step: () => Promise<unknown>,
  reset: () => void,
): Promise<T> {
  try {
    signal.throwIfAborted();
    onStage('compiling kernels (warm-up step)');
    await step();
    reset();
    return loaded;
  } catch (e) {
    loaded.dispose();
    throw e;
  }
}

/**
 * Frames arriving as AUDIO_CHUNK packets (no SharedArrayBuffer). The engine catches up by
 * skipping decodes, so the queue stays short; the cap (60 s of audio) only bounds memory if the
 * engine cannot run at all, and frames beyond it are counted as dropped AUDIO_CHUNK packets.
 */
class PacketFrameSource implements FrameSource {
  readonly ended = false;
  private readonly frames: { pcm: Float32Array; stamp: number | null }[] = [];
  private wake: (() => void) | null = null;
  private last: number | null = null;
  dropped = 0;
  constructor(private readonly maxFrames = 750) {}
  /** A frame and its capture stamp (the AUDIO_CHUNK's version-2 trailer), null when it had none. */
  add(pcm: Float32Array, stamp: number | null): void {
    this.frames.push({ pcm, stamp });
    while (this.frames.length > this.maxFrames) {
      this.frames.shift();
      this.dropped++;
    }
    this.wake?.();
  }
  pull(out: Float32Array): boolean {
    const f = this.frames.shift();
    if (!f) return false;
    out.set(f.pcm);
    this.last = f.stamp;
    return true;
  }
  stamp(): number | null {
    return this.last;
  }
  wait(timeoutMs: number): Promise<void> {
    return new Promise((ok) => {
      const t = setTimeout(() => {
        this.wake = null;
        ok();
      }, timeoutMs);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        ok();
      };
    });
  }
  queued(): number {
    return this.frames.length * FRAME_SAMPLES;
  }
  /** Drops the frames still queued (they belong to no run). */
  clear(): void {
    this.frames.length = 0;
  }
}

/** Each step's output leaves as one AUDIO_CHUNK packet, stamped with its input frame's capture stamp when known. */
class PacketFrameSink implements FrameSink {
  constructor(private readonly channel: Channel) {}
  push(pcm: Float32Array, stamp: number | null): boolean {
    return this.channel.sendAudio(pcm.slice(), false, stamp).ok;
  }
  queued(): number {
    return this.channel.queuedPackets * FRAME_SAMPLES;
  }
}

/** The loaded model is a speech-to-text one (src/engine/load_stt.ts). */
const isStt = (m: LoadedEngine | LoadedStt): m is LoadedStt => 'kind' in m && m.kind === 'stt';

/** Input backlog (samples waiting after a frame was taken) from which steps skip their decode to catch up: 2 frames (160 ms). */
const SKIP_DECODE_BACKLOG = 2 * FRAME_SAMPLES;
/** Channel timing: heartbeat every 5 s both ways; a peer silent for 12 s is reported. */
const CHANNEL_TIMING = { heartbeatMs: 5000, silenceMs: 12000, tickMs: 250 };

class EngineWorker implements EngineWorkerApi {
  private ctx: GpuContext | null = null;
  /** The loaded model: one load at a time, the previous one disposed (src/engine/load_slot.ts). */
  private readonly slot = new LoadSlot<LoadedEngine | LoadedStt>();
  private sttLoop: SttLoop | null = null;
  /** The conversation being (or last) recorded (StartOptions.record), or null. */
  private record: ConversationRecord | null = null;
  private channel: Channel | null = null;
  private transport: AudioTransport | null = null;
  private source: FrameSource | null = null;
  private sink: FrameSink | null = null;
  private driver: EngineDriver | null = null;
  private loop: Promise<void> | null = null;
  private metricsTimer: ReturnType<typeof setInterval> | null = null;
  private segmenter = new TextSegmenter();

  private onDeviceLost: ((message: string) => void) | null = null;

  async init(onDeviceLost?: (message: string) => void) {
    if (onDeviceLost) this.onDeviceLost = onDeviceLost;
    if (!this.ctx) {
      this.ctx = await GpuContext.create();
      this.ctx.onLost((e) => {
        this.driver?.stop();
        if (this.onDeviceLost) void Promise.resolve(this.onDeviceLost(e.message)).catch(() => undefined);
        else this.meta({ kind: 'device-lost', message: e.message });
      });
    }
    return this.ctx.adapter;
  }

  async connect(port: MessagePort, transport: AudioTransport) {
    this.channel?.close();
    const channel = new Channel(port, CHANNEL_TIMING);
    this.channel = channel;
    channel.on('pressure', (on) => {
      if (this.driver) this.driver.pressure = on;
    });
    channel.on('peer-silent', ({ silentForMs }) => this.meta({ kind: 'peer', state: 'silent', silentForMs }));
    channel.on('peer-alive', ({ silentForMs }) => this.meta({ kind: 'peer', state: 'alive', silentForMs }));
    this.transport = transport;
    if (transport.kind === 'shared') {
      this.source = new RingFrameSource(new RingBuffer(transport.input));
      this.sink = new RingFrameSink(new RingBuffer(transport.output), transport.stamps ? new StampQueue(transport.stamps) : null);
    } else {
      const src = new PacketFrameSource();
      this.source = src;
      this.sink = new PacketFrameSink(this.channel);
      this.channel.on('packet', (p) => {
        if (p.type === PacketType.AUDIO_CHUNK) src.add(p.pcm, p.stamp ?? null);
      });
    }
  }

  async load(spec: ModelSpec, sampling: SamplingSettings, onProgress: (e: LoadEvent) => void): Promise<ModelInfo> {
    if (!this.ctx) await this.init();
    const ctx = this.ctx!;
    await this.stop();
    const { condition: _c, stt: sttSource, ...source } = spec;
    const condition = spec.condition ? parseCondition(spec.condition.split(/[,;]\s*/).filter(Boolean)) : null;
    // The slot cancels a load still running, disposes the previous engine, and disposes this one
    // if it is cancelled before it is done.
    const loaded = await this.slot.run(async (signal) => {
      const bytes = await loadModelFiles(source, {
        signal,
        onProgress: (e) => onProgress({ type: 'progress', ...e }),
        probeSizes: true, // one 'plan' event: the page shows progress over the whole load
        // The tokenizer is parsed by the real SentencePiece loader before it is cached.
        verifyTokenizer: (b, name) => TextTokenizer.fromBytes(b, { source: name }),
      });
      const onStage = (message: string) => onProgress({ type: 'stage', message });
      if (isSttModelConfig(bytes.lmConfig)) {
        if (sttSource) throw new Error(`${bytes.names.lmConfig ?? 'the model config'} is a speech-to-text model: a second speech-to-text model runs only beside Moshi`);
        const s = await loadStt(ctx, bytes, { signal, onStage });
        // One frame of silence compiles every pipeline before the microphone starts; then a fresh state.
        return warmUp(s, signal, onStage, () => s.stream.push(new Float32Array(FRAME_SAMPLES)), () => s.stream.reset());
      }
      // The user's words beside Moshi's: the STT model's own files (its Mimi is Moshi's).
      let stt;
      if (sttSource) {
        onStage('speech-to-text model files');
        stt = await loadLmFiles(sttSource, {
          signal,
          onProgress: (e) => onProgress({ type: 'progress', ...e }),
          probeSizes: true,
          verifyTokenizer: (b, name) => TextTokenizer.fromBytes(b, { source: name }),
        });
      }
      const l = await loadEngine(ctx, bytes, { sampling, condition, signal, onStage, ...(stt ? { stt } : {}) });
      // One step of silence compiles every pipeline before the microphone starts; then a fresh state.
      return warmUp(l, signal, onStage, () => l.engine.step(new Float32Array(FRAME_SAMPLES)), () => l.engine.reset());
    });
    return { ...loaded.info, gpuBytes: ctx.liveBytes };
  }

  async cancelLoad() {
    return this.slot.cancel();
  }

  async start(opts: StartOptions = {}) {
    const loaded = this.slot.current;
    if (!loaded) throw new Error(this.slot.loading ? 'the model is still loading: wait for it before starting the microphone' : 'no model is loaded: load one before starting the microphone');
    if (!this.source || !this.sink || !this.channel) throw new Error('the engine worker is not connected to the page (connect() first)');
    if (isStt(loaded)) return this.startStt(loaded, opts);
    if (this.driver?.isRunning) return;
    loaded.engine.reset();
    this.segmenter = new TextSegmenter();
    // Input captured before start belongs to no conversation: discard it (not a drop).
    if (this.source instanceof RingFrameSource) this.source.ring.skip(this.source.ring.availableRead());
    if (this.source instanceof PacketFrameSource) this.source.clear();
    const channel = this.channel;
    const engine = loaded.engine;
    const segmenter = this.segmenter;
    const sttTok = loaded.stt?.tokenizer ?? null;
    const record = opts.record ? new ConversationRecord() : null;
    this.record = record;
    const warned = new Set<string>(); // first fault of each kind per conversation goes to the page
    this.driver = new EngineDriver(engine, this.source, this.sink, {
      onStep: (r, input) => {
        const caption = r.stt ? captionMeta(r.stt, sttTok) : null;
        if (record) {
          record.addFrame(input, r.pcm);
          if (r.text) record.addMoshiText(r.index, r.text);
          if (caption) record.addUserText(caption.time, caption.text ?? '');
        }
        for (const f of r.faults) {
          if (warned.has(f.kind)) continue;
          warned.add(f.kind);
          this.meta({ kind: 'warning', message: `${f.message} (further ones are counted in the metrics)` });
        }
        const t = segmenter.step(r.text);
        if (t.final !== null) channel.sendText(t.final, true);
        if (t.partial !== null) channel.sendText(t.partial, false);
        // The user's words (an STT model beside Moshi), acknowledged like the STT-only captions.
        if (caption) channel.sendMetadata(caption, true);
      },
      onError: (e) => {
        const err = e instanceof Error ? e : new Error(String(e));
        this.meta({ kind: 'error', name: err.name, message: err.message });
      },
    }, 10, opts.catchUp === false ? {} : { skipDecodeBacklog: SKIP_DECODE_BACKLOG });
    this.driver.pressure = channel.stats().pressure;
    this.loop = this.driver.run().catch(() => undefined);
    this.metricsTimer = setInterval(() => this.meta({ kind: 'metrics', ...this.snapshot() }), 250);
    this.meta({ kind: 'state', state: 'running' });
  }

  /** The live transcriber on the connected input; captions as acknowledged METADATA packets. */
  private startStt(loaded: LoadedStt, opts: StartOptions) {
    if (this.sttLoop?.isRunning) return;
    const channel = this.channel!;
    const source = this.source!;
    // Input captured before start belongs to no transcription: discard it (not a drop).
    if (source instanceof RingFrameSource) source.ring.skip(source.ring.availableRead());
    if (source instanceof PacketFrameSource) source.clear();
    const tok = loaded.tokenizer;
    let warnedInput = false;
    let warnedLogits = false;
    const loop = new SttLoop(loaded.stream, source, loaded.metrics, {
      onStep: (s) => channel.sendMetadata(captionMeta(s, tok), true),
      onEnd: (reason, steps) => {
        channel.sendMetadata({ kind: 'caption-end', reason, steps }, true);
        this.meta({ kind: 'state', state: 'stopped' });
      },
      onBadLogits: (s) => {
        if (warnedLogits) return;
        warnedLogits = true;
        this.meta({ kind: 'warning', message: `step ${s.step}: the speech-to-text model's text logits or extra heads hold NaN or infinite values (that word is not trustworthy; further ones are counted in the metrics)` });
      },
      onBadInput: (n) => {
        if (warnedInput) return;
        warnedInput = true;
        this.meta({ kind: 'warning', message: `${n} input samples were NaN, infinite or beyond ±16 and were replaced by 0 (further ones are counted in the metrics)` });
      },
      onError: (e) => {
        const err = e instanceof Error ? e : new Error(String(e));
        this.meta({ kind: 'error', name: err.name, message: err.message });
      },
    }, [loaded.lmConfig.existingTextEndPaddingId, loaded.lmConfig.existingTextPaddingId]);
    this.sttLoop = loop;
    if (this.metricsTimer !== null) clearInterval(this.metricsTimer); // a file that ended by itself left it
    this.loop = loop.run(opts.endAfterSamples).catch(() => undefined);
    this.metricsTimer = setInterval(() => this.meta({ kind: 'metrics', ...this.snapshot() }), 250);
    this.meta({ kind: 'state', state: 'running' });
  }

  async stop() {
    if (this.sttLoop) {
      this.sttLoop.stop();
      await this.loop;
      this.loop = null;
      this.sttLoop = null;
      if (this.metricsTimer !== null) clearInterval(this.metricsTimer);
      this.metricsTimer = null;
      return;
    }
    this.driver?.stop();
    await this.loop;
    this.loop = null;
    const rest = this.segmenter.flush();
    if (rest !== null) this.channel?.sendText(rest, true);
    await this.flushCaptions();
    if (this.metricsTimer !== null) clearInterval(this.metricsTimer);
    this.metricsTimer = null;
    if (this.driver) this.meta({ kind: 'state', state: 'stopped' });
  }

  /**
   * After a conversation with an STT model beside Moshi: feeds the right padding through the
   * shared encoder and the STT model (Engine.flushStt) so the user's last words arrive, then
   * 'caption-end'. Nothing when no STT model runs beside Moshi or the conversation never started.
   */
  private async flushCaptions(): Promise<void> {
    const cur = this.slot.current;
    const channel = this.channel;
    if (!cur || isStt(cur) || !cur.stt || !channel || !this.driver) return;
    try {
      const rest = await cur.engine.flushStt();
      for (const s of rest) {
        const meta = captionMeta(s, cur.stt.tokenizer);
        this.record?.addUserText(s.time, meta.text ?? '');
        channel.sendMetadata(meta, true);
      }
      channel.sendMetadata({ kind: 'caption-end', reason: 'stopped', steps: cur.engine.sttProcedure?.stepsOut ?? rest.length }, true);
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      this.meta({ kind: 'error', name: err.name, message: err.message });
    }
  }

  async recording(): Promise<ConversationRecording | null> {
    const r = this.record;
    if (!r) return null;
    if (this.driver?.isRunning) throw new Error('the conversation is still running: stop it before downloading its recording');
    const wav = r.wav();
    return Comlink.transfer({ wav, transcript: r.transcript(), seconds: r.seconds, droppedFrames: r.droppedFrames }, [wav.buffer]);
  }

  async setSampling(s: SamplingSettings) {
    const cur = this.slot.current;
    // An STT model samples as its config's lm_gen_config says (greedy for the released ones).
    if (cur && !(isStt(cur))) cur.setSampling(s);
  }

  private snapshot(): MetricsSnapshot {
    const cur = this.slot.current;
    if (!cur) throw new Error('no model is loaded');
    const engine = isStt(cur) ? { metrics: cur.metrics } : cur.engine;
    const cs = this.channel?.stats();
    const dropped: Record<string, number> = {};
    if (cs) for (const [k, v] of Object.entries(cs.dropped)) if (v > 0) dropped[k] = v;
    const srcDrops = this.source instanceof PacketFrameSource ? this.source.dropped : 0;
    if (srcDrops) dropped.AUDIO_CHUNK = (dropped.AUDIO_CHUNK ?? 0) + srcDrops;
    // Protocol errors: malformed messages, packets given up on, and lying receipts.
    const malformed = cs ? Object.values(cs.malformed).reduce((a, b) => a + b, 0) + cs.lost + cs.badReceipts : 0;
    engine.metrics.setTransport({
      overruns: this.driver?.sinkDrops ?? 0,
      droppedPackets: dropped,
      protocolErrors: malformed,
    });
    return { ...engine.metrics.snapshot(), gpuBytes: this.ctx?.liveBytes, modelDelayMs: this.slot.current?.info.modelDelayMs };
  }

  async stats() {
    return this.snapshot();
  }

  private meta(m: EngineMeta): void {
    this.channel?.sendMetadata(m);
  }
}

installErrorTransfer(); // errors reach the page with their fields (ModelSourceError's code, status, file)
Comlink.expose(new EngineWorker());
