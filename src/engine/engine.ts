/**
 * The 80 ms loop of SolaceLive, shared by the browser engine Worker and the Node CLI.
 *
 * One step takes exactly 1920 samples at 24 kHz and returns 1920 samples:
 *   Mimi encode (one code frame) -> LMGen step -> Mimi decode of the returned audio tokens,
 * or 1920 zeros while LMGen returns null (its first `max_delay` steps). The text token of a
 * returned frame leaves as text: the SentencePiece piece (U+2581 -> space) when a tokenizer is
 * loaded, `[id]` otherwise; padding ids (0 and the config's existing_text_padding_id, 3 in the
 * released models) produce no text, exactly like the official server.
 *
 * Port of moshi/moshi/server.py `ServerState.recv_loop` / `decode_and_send` (without Opus and
 * without the server's encoder reset after the first chunk: the plain streaming loop whose
 * goldens are `lm/loop_tokens` and `lm/loop_decoded_pcm`).
 *
 * GPU round trips: with recording-level models (GpuLoop) nothing leaves the GPU between the
 * stages: encode and the LM step + decode are two command buffers submitted back to back (three
 * without timestamp-query) and one readback into a reused staging buffer returns the tokens and
 * the PCM (one host wait per step). The host-array path (LoopCodec + LoopLm) waits after each stage.
 *
 * Finiteness (every step, reported in StepResult.faults and counted in metrics.nonFinite):
 * - input: samples that are NaN, infinite or beyond ±16 (src/protocol/samples.ts) are replaced by 0
 *   before Mimi encode, so they never reach the streaming state;
 * - logits (GpuLoop with checksInLmStep or recordChecks): the step's text and audio logits are
 *   checked on the GPU (LMGen: inside its sampling dispatches; otherwise kernel finite_check); the
 *   flag word travels in the step's existing token readback;
 * - decoded PCM: a frame holding a NaN / infinite / absurd sample is replaced by silence.
 */
import { countBadSamples, MAX_SAMPLE_ABS, zeroBadSamples } from '../protocol/samples.ts';
import { type GpuContext, type Recorder, Tensor } from '../gpu/index.ts';
import { FRAME_SAMPLES, LoopMetrics, type StepTimings } from './metrics.ts';
import { extraHeadProbs, type LMGen } from '../models/lm_gen.ts';
import { type SttProcedure, type SttStep, sttPadding } from '../models/stt.ts';

/** Bits of the per-step check word (GpuLoop.recordLmStep's flags, GpuLoop.recordChecks). */
export const CHECK_BITS = {
  /** The text logits held a NaN or an infinity. */
  textLogits: 1,
  /** Some depformer (audio) logits held a NaN or an infinity. */
  audioLogits: 2,
} as const;

/** The Mimi side of the loop through host arrays, as `MimiModel` (src/models/mimi.ts) provides it. */
export interface LoopCodec {
  /** Encodes whole frames of 24 kHz mono PCM; returns codes [numCodebooks, frames] (row-major). */
  encode(pcm: Float32Array): Promise<Int32Array>;
  /** Decodes codes [numCodebooks, frames] (row-major) to frames*1920 PCM samples. */
  decode(codes: Int32Array, frames: number): Promise<Float32Array>;
  /** Clears the streaming state (conv carries, KV caches). */
  reset(): void;
}

/** One LMGen output frame: the text token and dep_q audio tokens. */
export interface LmFrame {
  text: number;
  audio: Int32Array;
}

/** The LM side of the loop through host arrays, as `LMGen` (src/models/lm_gen.ts) provides it. */
export interface LoopLm {
  /** One step with the user's codes of one frame; null while the delayed outputs are not ready. */
  step(userCodes: Int32Array): Promise<LmFrame | null>;
  reset(): void;
}

/**
 * The loop at recording level: every stage records into a Recorder and reads/writes GPU tensors,
 * so a step needs no host round trip between stages (MimiModel.recordEncode/recordDecode,
 * LMGen.recordStep).
 */
export interface GpuLoop {
  readonly ctx: GpuContext;
  /** Codes per frame that encode writes (Mimi's num_codebooks). */
  readonly codebooks: number;
  /** Audio tokens per LM frame (dep_q). */
  readonly depQ: number;
  /** Resolves when the stages can be recorded (e.g. the LM's condition vector is uploaded). */
  prepare(): Promise<void>;
  /** pcm: f32 [1920] -> codes: i32 [codebooks, 1]. */
  recordEncode(rec: Recorder, pcm: Tensor, codes: Tensor): void;
  /**
   * codes -> out: i32 [1 + depQ] (text, audio...). Returns false (out untouched) while LMGen returns
   * null. `flags` (u32 [1], cleared by the engine before) is given when `checksInLmStep`: the step
   * ORs CHECK_BITS.textLogits / CHECK_BITS.audioLogits into flags[0] itself (LMGen.recordStep
   * does it in its sampling dispatches).
   */
  recordLmStep(rec: Recorder, codes: Tensor, out: Tensor, flags?: Tensor): boolean;
  /** True when recordLmStep checks the logits itself (it is then given the flag word). */
  readonly checksInLmStep?: boolean;
  /** audio: i32 [depQ, 1] -> pcm: f32 [1920]. */
  recordDecode(rec: Recorder, audio: Tensor, pcm: Tensor): void;
  /**
   * Optional (a loop whose recordLmStep does not check): records, after recordLmStep, finiteness
   * checks of the step's logits that OR CHECK_BITS.textLogits / CHECK_BITS.audioLogits into
   * `flags[0]` (u32 [1], cleared by the engine before the LM step). src/kernels/finite.ts
   * `finiteCheck` does one tensor.
   */
  recordChecks?(rec: Recorder, flags: Tensor): void;
  /**
   * Optional speech-to-text model beside the LM (one Mimi encode serves both): its LMGen reads the
   * first n_q rows of the same codes tensor (the Mimi's num_codebooks ≥ n_q) and steps after the
   * LM's token copies, in the same submit, following `procedure` (src/models/stt.ts SttProcedure:
   * the first frame stepped twice, its first result dropped). reset() must reset this LMGen too.
   */
  readonly stt?: GpuStt;
  reset(): void;
}

/** The STT model of a GpuLoop (GpuLoop.stt). */
export interface GpuStt {
  /** The STT model's generator (dep_q = 0; greedy for the released configs). */
  readonly gen: LMGen;
  /** The procedure's frame bookkeeping; reset by the engine with the conversation. */
  readonly procedure: SttProcedure;
}

/** Detokenizer (src/text/tokenizer.ts TextTokenizer). */
export interface LoopTokenizer {
  /** The text of one token (U+2581 already turned into spaces), or null for ids that show nothing. */
  decodePiece(id: number): string | null;
}

/** What a backend returns for one step; the Engine adds text, checks and metrics. */
interface BackendStep {
  frame: LmFrame | null;
  pcm: Float32Array | null;
  encodeMs: number;
  lmMs: number;
  decodeMs: number;
  /** CHECK_BITS found set this step (0 when the backend cannot check the logits). */
  checks: number;
  /** The GPU work the step recorded (recording-level backend only). */
  gpuWork?: GpuWork;
  /** The STT model's counted step of this frame (GpuLoop.stt), or null (none loaded / delays filling). */
  stt?: SttStep | null;
}

/** GPU work of one step (deltas of GpuContext.counters): deterministic on any adapter. */
export interface GpuWork {
  dispatches: number;
  submits: number;
  readbacks: number;
  /** `dispatches` by stage: Mimi encode, the LM step (with the logit checks), the STT model's step(s) (0 without one), Mimi decode. */
  stages: { encode: number; lm: number; stt: number; decode: number };
}

/** One problem found by a step's finiteness checks. */
export interface StepFault {
  /** 'input': bad input samples (zeroed); 'text_logits' / 'audio_logits': non-finite logits (the tokens of this step are not trustworthy); 'output': a decoded frame with bad samples (replaced by silence). */
  kind: 'input' | 'text_logits' | 'audio_logits' | 'output';
  /** Bad samples (input, output); 0 for logits. */
  samples: number;
  /** What was found, naming the step and the first bad sample. */
  message: string;
}

interface StepBackend {
  /** One step; with `skipDecode` the LM still runs (its state advances) but Mimi decode does not. */
  run(pcm: Float32Array, skipDecode: boolean): Promise<BackendStep>;
  reset(): void;
  /** Frees what the backend allocated (the GPU backend's per-step buffers); the models are the caller's. */
  destroy(): void;
  /** Codes per frame given to the LM (checked against EngineOptions.userCodebooks), when known up front. */
  readonly kind: 'host' | 'gpu';
}

/**
 * Host-array backend: three awaited stages (encode -> codes on the host -> LMGen.step -> tokens
 * on the host -> decode). Each stage is one submit; stage times are wall-clock.
 */
class HostBackend implements StepBackend {
  readonly kind = 'host';
  constructor(private readonly codec: LoopCodec, private readonly lm: LoopLm, private readonly now: () => number, private readonly userCodebooks?: number) {}
  async run(pcm: Float32Array, skipDecode: boolean): Promise<BackendStep> {
    const t0 = this.now();
    const codes = await this.codec.encode(pcm); // codes: [K, 1]
    const t1 = this.now();
    if (this.userCodebooks !== undefined && codes.length !== this.userCodebooks) {
      throw new EngineError(`Mimi encode returned ${codes.length} codes for one frame, the LM expects ${this.userCodebooks} user codebooks (n_q - dep_q): check that the Mimi and LM configs belong together`);
    }
    const frame = await this.lm.step(codes);
    const t2 = this.now();
    const out = frame && !skipDecode ? await this.codec.decode(frame.audio, 1) : null; // out: [1920]
    const t3 = this.now();
    return { frame, pcm: out, encodeMs: t1 - t0, lmMs: t2 - t1, decodeMs: out ? t3 - t2 : 0, checks: 0 };
  }
  reset(): void {
    this.codec.reset();
    this.lm.reset();
  }
  destroy(): void {}
}

/** Byte offsets in the step's one readback buffer (GpuBackend.stepOut): PCM, tokens, timestamps. */
const OUT_PCM = 0; // f32 [1920]
const OUT_TOKENS = FRAME_SAMPLES * 4; // i32 [1 + depQ + 1] (a multiple of 256: a binding may start here)
const OUT_TS = OUT_TOKENS + 256; // u64 [3]: GPU time at LM start, LM end = decode start, decode end
const OUT_STT = OUT_TS + 256; // i32 [3]: the STT model's dropped first text token, its text token, its check word (GpuLoop.stt)
const OUT_STT_HEADS = OUT_STT + 16; // f32 [H · Dh]: the STT model's extra-head logits (before the softmax)

/**
 * Recording-level backend: the step's input is written once; encode is one submit, the LM step
 * and decode together the second (on devices with `timestamp-query`; without it decode is a third
 * submit, to keep its time apart); nothing returns to the host between the stages (codes and
 * tokens stay on the GPU), and ONE readback, into a staging buffer reused every step, returns
 * the PCM, the tokens, the check word and the stage timestamps.
 * Stage times: encode = wall-clock completion of its submit (queue.onSubmittedWorkDone); the
 * second submit's wall-clock time is split between LM and decode in the ratio of their GPU
 * timestamps (without timestamp-query: each its own submit's completion time).
 */
class GpuBackend implements StepBackend {
  readonly kind = 'gpu';
  private readonly pcmIn: Tensor; // [1920] f32
  private readonly codes: Tensor; // [K, 1] i32
  private readonly stepOut: Tensor; // the one readback: pcm | tokens | timestamps (OUT_* offsets)
  private readonly tokens: Tensor; // view of stepOut: [1 + depQ + 1] i32: text, audio..., the check word
  private readonly pcmOut: Tensor; // view of stepOut: [1920] f32
  private readonly flags: Tensor; // [1] u32, CHECK_BITS of this step
  private readonly audio: Tensor; // [depQ, 1] i32
  private readonly staging: GPUBuffer; // MAP_READ copy of stepOut, reused every step
  private readonly ts: { set: GPUQuerySet; resolve: GPUBuffer } | null;
  private readonly stt: { gen: LMGen; procedure: SttProcedure; dropped: Tensor; text: Tensor; heads: Tensor | null; flags: Tensor; flagsOut: Tensor } | null;
  constructor(private readonly loop: GpuLoop, private readonly now: () => number) {
    const ctx = loop.ctx;
    if (4 * (loop.depQ + 2) > OUT_TS - OUT_TOKENS) throw new EngineError(`dep_q ${loop.depQ} is too large for the step's readback layout`);
    this.pcmIn = ctx.tensor([FRAME_SAMPLES], 'f32', 'engine.pcm_in');
    this.codes = ctx.tensor([loop.codebooks, 1], 'i32', 'engine.codes');
    let outBytes = OUT_TS + 24;
    this.stt = null;
    if (loop.stt) {
      const { gen, procedure } = loop.stt;
      if (gen.lm.cfg.depQ !== 0) throw new EngineError(`the STT model beside the LM has dep_q = ${gen.lm.cfg.depQ}: not a speech-to-text model`);
      if (procedure.nQ > loop.codebooks) throw new EngineError(`the STT model reads n_q = ${procedure.nQ} codebooks, the Mimi encodes ${loop.codebooks}: load the Mimi with num_codebooks ≥ ${procedure.nQ}`);
      if (procedure.stt.audioSilencePrefixSeconds !== 0) {
        throw new EngineError(`the STT model's audio_silence_prefix_seconds is ${procedure.stt.audioSilencePrefixSeconds}: beside Moshi the one Mimi encoder cannot take a silence prefix that Moshi does not hear (only 0 is supported)`);
      }
      const H = procedure.numHeads * procedure.headDim;
      outBytes = OUT_STT_HEADS + 4 * H;
      // The STT steps' own check word (CHECK_BITS.textLogits): a buffer of its own (the sampling kernel binds it), copied into the readback.
      this.stt = { gen, procedure, dropped: null!, text: null!, heads: null, flags: ctx.tensor([1], 'u32', 'engine.stt_check_flags'), flagsOut: null! };
    }
    this.stepOut = ctx.tensor([outBytes / 4], 'u32', 'engine.step_out');
    if (this.stt) {
      const H = this.stt.procedure.numHeads * this.stt.procedure.headDim;
      this.stt.dropped = new Tensor(this.stepOut.buffer, [1], 'i32', 'engine.stt_dropped', this.stepOut.byteOffset + OUT_STT, false);
      this.stt.text = new Tensor(this.stepOut.buffer, [1], 'i32', 'engine.stt_text', this.stepOut.byteOffset + OUT_STT + 4, false);
      this.stt.flagsOut = new Tensor(this.stepOut.buffer, [1], 'u32', 'engine.stt_check', this.stepOut.byteOffset + OUT_STT + 8, false);
      this.stt.heads = H ? new Tensor(this.stepOut.buffer, [H], 'f32', 'engine.stt_heads', this.stepOut.byteOffset + OUT_STT_HEADS, false) : null;
    }
    this.pcmOut = new Tensor(this.stepOut.buffer, [FRAME_SAMPLES], 'f32', 'engine.pcm_out', this.stepOut.byteOffset + OUT_PCM, false);
    this.tokens = new Tensor(this.stepOut.buffer, [1 + loop.depQ + 1], 'i32', 'engine.tokens', this.stepOut.byteOffset + OUT_TOKENS, false);
    this.flags = ctx.tensor([1], 'u32', 'engine.check_flags');
    this.audio = ctx.tensor([loop.depQ, 1], 'i32', 'engine.audio_tokens');
    this.staging = ctx.device.createBuffer({ label: 'engine.step_out staging', size: this.stepOut.byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    this.ts = ctx.hasTimestamps
      ? { set: ctx.device.createQuerySet({ label: 'engine stage timestamps', type: 'timestamp', count: 3 }), resolve: ctx.device.createBuffer({ label: 'engine stage timestamps', size: 256, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC }) }
      : null;
  }
  /** The STT model's procedure (GpuLoop.stt), or null. */
  get sttProcedure(): SttProcedure | null {
    return this.stt?.procedure ?? null;
  }

  /**
   * Records the STT model's LMGen step(s) of this frame (SttProcedure: 2 for the first frame, the
   * first into OUT_STT, the counted one into OUT_STT + 4), the finiteness of the counted step's text
   * logits (CHECK_BITS.textLogits at OUT_STT + 8) and its extra-head logits (OUT_STT_HEADS).
   * Returns whether each produced output.
   */
  private recordStt(rec: Recorder): { dropped: boolean; counted: boolean } | null {
    const stt = this.stt;
    if (!stt) return null;
    const dropped = stt.procedure.lmStepsForNextFrame === 2 ? stt.gen.recordStep(rec, this.codes, stt.dropped) : false;
    rec.clear(stt.flags);
    const counted = stt.gen.recordStep(rec, this.codes, stt.text, { flags: stt.flags, bits: { text: CHECK_BITS.textLogits, audio: CHECK_BITS.audioLogits } });
    rec.copy(stt.flags, stt.flagsOut, 4);
    if (counted && stt.heads) {
      // transformer_out of the counted step is in lm.transformerOut (step_with_extra_heads).
      stt.gen.lm.recordExtraHeads(rec);
      rec.copy(stt.gen.lm.extraHeadLogits!, stt.heads, stt.heads.byteLength);
    }
    return { dropped, counted };
  }

  /** Books the STT step(s) of this frame from the readback words (null: nothing was read back). */
  private bookStt(words: Uint32Array | null, r: { dropped: boolean; counted: boolean } | null): SttStep | null {
    const stt = this.stt;
    if (!stt || !r) return null;
    const at = (off: number) => new Int32Array(words!.buffer, words!.byteOffset + off, 1)[0];
    const p = stt.procedure;
    const heads = r.counted && stt.heads ? extraHeadProbs(new Float32Array(words!.buffer, words!.byteOffset + OUT_STT_HEADS, p.numHeads * p.headDim), p.numHeads, p.headDim) : null;
    const nonFinite = ((at(OUT_STT + 8) >>> 0) & CHECK_BITS.textLogits) !== 0;
    return p.bookFrame(r.dropped ? { text: at(OUT_STT) } : null, r.counted ? { text: at(OUT_STT + 4), extraHeads: heads, nonFinite } : null);
  }

  /**
   * The STT model alone on one frame (the right padding on Stop): Mimi encode and the STT step(s) in
   * one submit, one readback. The LM and the decoder do not run (their state does not move; the
   * encoder's does: the conversation is over).
   */
  async runSttOnly(pcm: Float32Array): Promise<SttStep | null> {
    if (!this.stt) throw new EngineError('no STT model is loaded beside the LM');
    await this.loop.prepare();
    const ctx = this.loop.ctx;
    ctx.write(this.pcmIn, pcm);
    const rec = ctx.record('engine encode + stt');
    this.loop.recordEncode(rec, this.pcmIn, this.codes);
    const r = this.recordStt(rec);
    const outP = r && (r.dropped || r.counted) ? rec.readback(this.stepOut, this.staging) : null;
    await ctx.waitFor(() => rec.submit());
    return this.bookStt(outP ? ((await outP) as Uint32Array) : null, r);
  }

  async run(pcm: Float32Array, skipDecode: boolean): Promise<BackendStep> {
    await this.loop.prepare();
    if (this.stt) await this.stt.gen.ready;
    const ctx = this.loop.ctx;
    const queue = ctx.device.queue;
    const depQ = this.loop.depQ;
    const c0 = { ...ctx.counters };
    const t0 = this.now();
    ctx.write(this.pcmIn, pcm);
    const stamp = () => queue.onSubmittedWorkDone().then(() => this.now());
    const recE = ctx.record('engine encode');
    this.loop.recordEncode(recE, this.pcmIn, this.codes);
    const nE = ctx.counters.dispatches;
    const pE = recE.submit();
    const dE = stamp();
    const ts = this.ts;
    const recL = ctx.record(ts ? 'engine lm + decode' : 'engine lm');
    if (ts) recL.timestamp(ts.set, 0);
    const inStep = this.loop.checksInLmStep === true;
    const checked = inStep || this.loop.recordChecks !== undefined;
    if (checked) recL.clear(this.flags);
    const produced = this.loop.recordLmStep(recL, this.codes, this.tokens, inStep ? this.flags : undefined);
    if (checked) {
      this.loop.recordChecks?.(recL, this.flags);
      recL.copy(this.flags, new Tensor(this.tokens.buffer, [1], 'i32', 'engine.tokens[check]', this.tokens.byteOffset + 4 * (1 + depQ), false), 4);
    }
    const decode = produced && !skipDecode;
    // Decode takes the audio tokens only (tokens[1:]).
    if (decode) recL.copy(new Tensor(this.tokens.buffer, [depQ], 'i32', 'engine.tokens[1:]', this.tokens.byteOffset + 4, false), this.audio, 4 * depQ);
    // The STT model reads the same encoded codes, after the LM's token copies, in the same submit.
    const nLm = ctx.counters.dispatches;
    const sttRun = this.recordStt(recL);
    const nS = ctx.counters.dispatches;
    let recD = recL;
    let pL: Promise<void> | null = null;
    let dL: Promise<number> | null = null;
    if (ts) recL.timestamp(ts.set, 1);
    else if (decode) {
      pL = recL.submit();
      dL = stamp();
      recD = ctx.record('engine decode');
    }
    const nL = ctx.counters.dispatches;
    if (decode) this.loop.recordDecode(recD, this.audio, this.pcmOut);
    const nD = ctx.counters.dispatches;
    if (ts) {
      recD.timestamp(ts.set, 2);
      recD.resolveTimestamps(ts.set, 3, ts.resolve, this.stepOut, OUT_TS);
    }
    const sttOut = sttRun !== null && (sttRun.dropped || sttRun.counted);
    const outP = produced || checked || sttOut ? recD.readback(this.stepOut, this.staging) : null;
    const pD = recD.submit();
    const dD = stamp();
    await ctx.waitFor(() => Promise.all([pE, pL, pD]));
    const [tE, tL, tD] = await Promise.all([dE, dL, dD]);
    const words = outP ? ((await outP) as Uint32Array) : null;
    const tok = words ? new Int32Array(words.buffer, words.byteOffset + OUT_TOKENS, 2 + depQ) : null;
    let frame: LmFrame | null = null;
    let out: Float32Array | null = null;
    if (produced && tok) {
      frame = { text: tok[0], audio: tok.slice(1, 1 + depQ) };
      if (decode) out = new Float32Array(words!.buffer, words!.byteOffset + OUT_PCM, FRAME_SAMPLES).slice();
    }
    const checks = checked && tok ? tok[1 + depQ] >>> 0 : 0;
    let lmMs: number;
    let decodeMs = 0;
    if (tL !== null) {
      // No timestamps: LM and decode were separate submits.
      lmMs = tL - tE;
      decodeMs = tD - tL;
    } else {
      const rest = tD - tE;
      lmMs = rest;
      if (decode && words) {
        const g = new BigUint64Array(words.buffer, words.byteOffset + OUT_TS, 3);
        const lmNs = Number(g[1] - g[0]);
        const decNs = Number(g[2] - g[1]);
        if (lmNs >= 0 && decNs >= 0 && lmNs + decNs > 0) {
          decodeMs = (rest * decNs) / (lmNs + decNs);
          lmMs = rest - decodeMs;
        }
      }
    }
    const c = ctx.counters;
    const stages = { encode: nE - c0.dispatches, lm: nLm - nE + (nL - nS), stt: nS - nLm, decode: nD - nL };
    const gpuWork = { dispatches: c.dispatches - c0.dispatches, submits: c.submits - c0.submits, readbacks: c.readbacks - c0.readbacks, stages };
    const stt = this.bookStt(sttOut ? words : null, sttRun);
    return { frame, pcm: out, encodeMs: tE - t0, lmMs, decodeMs, checks, gpuWork, stt };
  }
  reset(): void {
    this.loop.reset();
    this.stt?.procedure.reset();
  }
  destroy(): void {
    for (const t of [this.pcmIn, this.codes, this.flags, this.audio, this.stepOut]) t.destroy();
    this.staging.destroy();
    this.ts?.set.destroy();
    this.ts?.resolve.destroy();
  }
}

/** What one engine step produced. */
export interface StepResult {
  /** 0-based index of the step since the last reset. */
  index: number;
  /** 1920 output samples at 24 kHz (zeros when `frame` is null). */
  pcm: Float32Array;
  /** The LM's tokens, or null while LMGen returns null. */
  frame: LmFrame | null;
  /** Text to show for this step, or null (no frame, or a padding token). */
  text: string | null;
  /** The LM produced audio tokens but they were not decoded (StepOptions.skipDecode): `pcm` is silence. */
  decodeSkipped: boolean;
  /** What this step's finiteness checks found (empty when all is finite); also counted in metrics.nonFinite. */
  faults: StepFault[];
  timings: StepTimings;
  /** GPU work this step recorded (dispatches, submits, readbacks); null on the host-array path. */
  gpuWork: GpuWork | null;
  /** The capture stamp of the input frame (StepOptions.stamp), kept with the reply computed from it; null when none was given. */
  stamp: number | null;
  /** The STT model's counted step of this frame (the user's words; GpuLoop.stt), null without one or while its delays fill. */
  stt: SttStep | null;
}

/** Per-step choices of the caller (the driver's backpressure policy). */
export interface StepOptions {
  /**
   * Run Mimi encode and the LM step as usual (the conversation state advances, the text is
   * produced) but skip Mimi decode: the step returns 1920 zeros and takes roughly a third less
   * time. The engine's way to shed load when it falls behind real time or the page cannot take
   * its output; audio input is never dropped.
   */
  skipDecode?: boolean;
  /**
   * The capture stamp of `pcm` (src/audio/frame_stamps.ts: Int32, 24 kHz samples), returned
   * unchanged in StepResult.stamp so the reply frame carries it to playback (latency measure).
   */
  stamp?: number | null;
}

export class EngineError extends Error {
  override name = 'EngineError';
}

export interface EngineOptions {
  /** Text token ids that produce no text (official server: 0 and 3). */
  silentTextIds?: readonly number[];
  /** Expected number of user codebooks from encode (the LM's n_q - dep_q); checked per step when set. */
  userCodebooks?: number;
  /** Number of audio tokens per LM frame (dep_q); checked per step when set. */
  depQ?: number;
  /** Clock in ms (performance.now by default). */
  now?: () => number;
}

/**
 * The streaming engine: owns one Mimi (encoder and decoder states), one LMGen and optionally a
 * tokenizer. Not re-entrant: await each `step()` before the next (the driver does).
 */
export class Engine {
  readonly metrics = new LoopMetrics();
  tokenizer: LoopTokenizer | null;
  private stepIndex = 0;
  private busy = false;
  private sttFlushed = false;
  private readonly silent: Set<number>;
  private readonly now: () => number;
  private readonly backend: StepBackend;

  /**
   * `models`: either `{ codec, lm }` (host arrays: three awaited stages) or `{ gpu }` (recording
   * level: the stages stay on the GPU, one readback per step).
   */
  constructor(
    models: { codec: LoopCodec; lm: LoopLm } | { gpu: GpuLoop },
    tokenizer: LoopTokenizer | null = null,
    private readonly options: EngineOptions = {},
  ) {
    this.tokenizer = tokenizer;
    this.silent = new Set(options.silentTextIds ?? [0, 3]);
    this.now = options.now ?? (() => performance.now());
    if ('gpu' in models) {
      if (options.userCodebooks !== undefined && models.gpu.codebooks < options.userCodebooks) {
        throw new EngineError(`Mimi emits ${models.gpu.codebooks} codebooks, the LM expects ${options.userCodebooks} user codebooks (n_q - dep_q)`);
      }
      this.backend = new GpuBackend(models.gpu, this.now);
    } else {
      this.backend = new HostBackend(models.codec, models.lm, this.now, options.userCodebooks);
    }
  }

  /** 'gpu': stages recorded back to back with one readback; 'host': three awaited stages. */
  get mode(): 'host' | 'gpu' {
    return this.backend.kind;
  }

  /** Steps done since the last reset. */
  get steps(): number {
    return this.stepIndex;
  }

  /**
   * Runs one 80 ms step. `pcm`: exactly 1920 float samples at 24 kHz in [-1, 1]; samples that are
   * NaN, infinite or beyond ±16 are replaced by 0 (the caller's array is not modified) and
   * reported in `faults`. Returns 1920 output samples (zeros while LMGen returns null, when
   * `opts.skipDecode` skipped the decode of a produced frame, or when the decoded frame was not
   * finite), the LM frame, its text and the step's faults (non-finite input, logits or output).
   * Throws EngineError on a wrong frame length, a concurrent call or mismatched model outputs;
   * model and GPU errors (GpuDeviceLostError, ShapeError, ...) propagate unchanged.
   */
  async step(pcm: Float32Array, opts: StepOptions = {}): Promise<StepResult> {
    if (pcm.length !== FRAME_SAMPLES) {
      throw new EngineError(`Engine.step takes exactly ${FRAME_SAMPLES} samples (80 ms at 24 kHz), got ${pcm.length}`);
    }
    if (this.busy) throw new EngineError('Engine.step called while the previous step is still running; await each step');
    this.busy = true;
    try {
      const t0 = this.now();
      const index = this.stepIndex;
      const faults: StepFault[] = [];
      const badIn = countBadSamples(pcm);
      if (badIn.count) {
        pcm = pcm.slice();
        zeroBadSamples(pcm);
        faults.push({ kind: 'input', samples: badIn.count, message: `step ${index}: ${badIn.count} input sample(s) NaN, infinite or beyond ±${MAX_SAMPLE_ABS} (first: sample ${badIn.first} = ${badIn.value}) replaced by 0` });
      }
      const r = await this.backend.run(pcm, opts.skipDecode === true);
      if (r.checks & CHECK_BITS.textLogits) faults.push({ kind: 'text_logits', samples: 0, message: `step ${index}: the text logits hold NaN or infinite values (the text token is not trustworthy)` });
      if (r.checks & CHECK_BITS.audioLogits) faults.push({ kind: 'audio_logits', samples: 0, message: `step ${index}: the audio (depformer) logits hold NaN or infinite values (the audio tokens are not trustworthy)` });
      if (r.stt?.nonFinite) faults.push({ kind: 'text_logits', samples: 0, message: `step ${index}: the speech-to-text model's text logits or extra heads hold NaN or infinite values (the user's word of caption step ${r.stt.step} is not trustworthy)` });
      let out: Float32Array;
      let text: string | null = null;
      const decodeSkipped = r.frame !== null && opts.skipDecode === true;
      if (r.frame && decodeSkipped) {
        out = new Float32Array(FRAME_SAMPLES);
        text = this.textOf(r.frame.text);
      } else if (r.frame) {
        if (this.options.depQ !== undefined && r.frame.audio.length !== this.options.depQ) {
          throw new EngineError(`LMGen returned ${r.frame.audio.length} audio tokens, expected dep_q = ${this.options.depQ}`);
        }
        if (!r.pcm || r.pcm.length !== FRAME_SAMPLES) throw new EngineError(`Mimi decode of one frame returned ${r.pcm?.length ?? 0} samples, expected ${FRAME_SAMPLES}`);
        out = r.pcm;
        const badOut = countBadSamples(out);
        if (badOut.count) {
          out = new Float32Array(FRAME_SAMPLES);
          faults.push({ kind: 'output', samples: badOut.count, message: `step ${index}: Mimi decode returned ${badOut.count} sample(s) NaN, infinite or beyond ±${MAX_SAMPLE_ABS} (first: sample ${badOut.first} = ${badOut.value}); the frame was replaced by silence` });
        }
        text = this.textOf(r.frame.text);
      } else {
        out = new Float32Array(FRAME_SAMPLES);
      }
      const timings: StepTimings = { encodeMs: r.encodeMs, lmMs: r.lmMs, decodeMs: r.decodeMs, totalMs: this.now() - t0 };
      this.metrics.record(timings, r.frame !== null, text === null ? 0 : 1, decodeSkipped);
      for (const f of faults) this.metrics.recordFault(f.kind, f.samples);
      return { index: this.stepIndex++, pcm: out, frame: r.frame, text, decodeSkipped, faults, timings, gpuWork: r.gpuWork ?? null, stamp: opts.stamp ?? null, stt: r.stt ?? null };
    } finally {
      this.busy = false;
    }
  }

  /** The text of a token: the tokenizer's piece (U+2581 as a space), `[id]` without one; null for padding ids. */
  textOf(id: number): string | null {
    if (this.silent.has(id)) return null;
    if (!this.tokenizer) return `[${id}]`;
    const t = this.tokenizer.decodePiece(id);
    return t === null ? null : t.replace(/\u2581/g, ' ');
  }

  /** The STT model's procedure when one runs beside the LM (GpuLoop.stt), else null. */
  get sttProcedure(): SttProcedure | null {
    return this.backend instanceof GpuBackend ? this.backend.sttProcedure : null;
  }

  /**
   * Ends the STT model's input on Stop (SttStream.flush): the right padding, int((audio_delay_seconds
   * + 1) · 24000) samples of zeros in whole frames, goes through the shared Mimi encoder and the STT
   * model only (the LM and the decoder do not step), which brings out the user's last words.
   * Call once per conversation, after the last step; reset() starts the next one.
   * @returns the counted STT steps of the padding frames
   * @throws EngineError without an STT model, during a step, or when called twice
   */
  async flushStt(): Promise<SttStep[]> {
    const p = this.sttProcedure;
    if (!p || !(this.backend instanceof GpuBackend)) throw new EngineError('Engine.flushStt: no STT model is loaded beside the LM');
    if (this.busy) throw new EngineError('Engine.flushStt called while a step is still running; await each step');
    if (this.sttFlushed) throw new EngineError('Engine.flushStt called twice: the STT input has ended; reset() to start a new conversation');
    this.busy = true;
    try {
      this.sttFlushed = true;
      const frames = Math.floor(sttPadding(p.stt, p.sampleRate).right / FRAME_SAMPLES);
      const zeros = new Float32Array(FRAME_SAMPLES);
      const out: SttStep[] = [];
      for (let i = 0; i < frames; i++) {
        const s = await this.backend.runSttOnly(zeros);
        if (s) out.push(s);
      }
      return out;
    } finally {
      this.busy = false;
    }
  }

  /** Clears Mimi and LMGen streaming state and the metrics: the next step is step 0 of a new conversation. */
  reset(): void {
    this.backend.reset();
    this.sttFlushed = false;
    this.metrics.reset();
    this.stepIndex = 0;
  }

  /** Frees the engine's own GPU buffers (per-step input, codes, tokens, output); not the models. */
  destroy(): void {
    this.backend.destroy();
  }
}
