/**
 * Streaming generation with the Moshi LM: port of moshi/models/lm.py `LMGen` (`_step`,
 * `depformer_step`, `_init_streaming_state`) for batch 1, cfg_coef 1, support_out_of_sync False.
 *
 * Token bookkeeping (all on the GPU, so a whole frame is one recording):
 *   cache [CT, K] i32 (CT = max_delay + 2, K = n_q + 1), filled with -2 (ungenerated).
 *   At step t (offset = t before the step):
 *     1. user stream j (codebook k = dep_q + 1 + j) is written at row (t + delay[k]) % CT;
 *     2. the main input is row t % CT, with the initial token (text_card / card) wherever t <= delay[k];
 *     3. forward_text -> text token (temp_text, top_k_text); depformer_step -> dep_q audio tokens (temp, top_k);
 *     4. offset = t + 1; text + audio tokens are written at row (t + 1) % CT, codebooks 0..dep_q;
 *     5. for t + 1 > max_delay the output is cache[(t + 1 - max_delay + delay[k]) % CT, k], k = 0..dep_q
 *        (the acoustic delays undone); before that the step returns nothing (None).
 * Each cache move is a buffer-to-buffer copy of a run of codebooks with equal delay.
 */
import { type GpuContext, type Recorder, ShapeError, Tensor } from '../gpu/index.ts';
import { finiteCheck } from '../kernels/finite.ts';
import { sample } from '../kernels/sample.ts';
import type { LMModel } from './lm.ts';
import { maxDelay, userStreams } from './lm_config.ts';

/** The official LMGen sampling defaults (lm.py `LMGen.__init__`). */
export const LMGEN_DEFAULTS = { temp: 0.8, tempText: 0.7, topK: 250, topKText: 25 } as const;

export interface LMGenOptions {
  /** Audio temperature (depformer); 0 = greedy. Default: the checkpoint's lm_gen_config, else 0.8. */
  temp?: number;
  /** Text temperature; 0 = greedy. Default: lm_gen_config, else 0.7. */
  tempText?: number;
  /** Audio top-k (0 = no restriction). Default: lm_gen_config, else 250. */
  topK?: number;
  /** Text top-k. Default: lm_gen_config, else 25. */
  topKText?: number;
  /** RNG seed (u32) for sampling; the same seed repeats the same tokens. Default: a random seed. */
  seed?: number;
  /** Condition values for a conditioned model, e.g. { description: 'very_good' }. */
  condition?: Record<string, string>;
  /** Debug hook: called after every step with what went into and came out of the model (extra readbacks). */
  trace?: (t: LMGenTrace) => void;
}

/** Default bits of LMGen.recordStep's check word: non-finite text logits, non-finite audio (depformer) logits. */
export const LOGIT_CHECK = { text: 1, audio: 2 } as const;

/** What one LMGen step fed and computed (debug hook). */
export interface LMGenTrace {
  /** Step index since construction / reset. */
  step: number;
  /** Tokens fed to forward_text [n_q + 1] (text, Moshi's dep_q streams, the user's streams). */
  mainInput: Int32Array;
  /** forward_text output after out_norm [D]. */
  transformerOut: Float32Array;
  /** Text logits [text_card_out]. */
  textLogits: Float32Array;
  /** Previous token fed to depformer step k [dep_q]: the text token for k = 0, audio token k-1 after. */
  depformerInput: Int32Array;
  /** Depformer logits [dep_q * card], row k = step k. */
  depformerLogits: Float32Array;
  /** Tokens sampled at this step, not delay-aligned [1 + dep_q]. */
  sampled: Int32Array;
}

/**
 * The extra heads' probabilities of one step (official `LMGen.step_with_extra_heads`:
 * `F.softmax(extra_head(transformer_out), dim=-1)` per head) from their logits f32 [H · Dh]
 * (head-major, as LMModel.extraHeadLogits): H arrays f32 [Dh], softmax in float64 rounded to f32.
 * Throws RangeError when the logits are not H · Dh values.
 */
export function extraHeadProbs(logits: Float32Array, numHeads: number, headDim: number): Float32Array[] {
  if (logits.length !== numHeads * headDim) throw new RangeError(`extra head logits: ${logits.length} values, expected ${numHeads} heads × ${headDim}`);
  return Array.from({ length: numHeads }, (_, h) => softmax(logits.subarray(h * headDim, (h + 1) * headDim)));
}

/** softmax(x) over all of x (torch.nn.functional.softmax, dim=-1), in float64 with the maximum subtracted, rounded to f32. */
function softmax(x: Float32Array): Float32Array {
  let m = -Infinity;
  for (const v of x) m = Math.max(m, v);
  const e = Array.from(x, (v) => Math.exp(v - m));
  const z = e.reduce((a, b) => a + b, 0);
  return Float32Array.from(e, (v) => v / z);
}

/** Runs of consecutive indices in [from, to) on which `key` is constant. */
function runs(from: number, to: number, key: (k: number) => number): [number, number, number][] {
  const out: [number, number, number][] = [];
  let s = from;
  for (let k = from + 1; k <= to; k++) {
    if (k === to || key(k) !== key(s)) {
      out.push([s, k, key(s)]);
      s = k;
    }
  }
  return out;
}

/** A window of `count` i32 elements of `t` starting at element `at` (for copies; never bound). */
function win(t: Tensor, at: number, count: number): Tensor {
  return new Tensor(t.buffer, [count], 'i32', `${t.label}[${at}:${at + count}]`, t.byteOffset + 4 * at, false);
}

/**
 * Streaming generation (official `LMGen`, batch 1). `step()` takes one frame of user codes and
 * returns Moshi's text token and dep_q audio tokens for an earlier frame (delays undone), or null
 * while the delays fill (the first max_delay steps). Sampling: text with (tempText, topKText),
 * audio with (temp, topK); temperature 0 is greedy argmax; `seed` makes sampling repeatable.
 * One LMGen drives one LMModel's streaming state: construct it, then `step()` repeatedly; `reset()`
 * starts a new conversation.
 */
export class LMGen {
  readonly temp: number;
  readonly tempText: number;
  readonly topK: number;
  readonly topKText: number;
  readonly seed: number;
  /** Resolves when the condition vector is ready (conditioned models; already resolved otherwise); step() awaits it, recordStep() needs it. */
  readonly ready: Promise<void>;
  readonly maxDelay: number;
  /** User streams each step needs: n_q - dep_q. */
  readonly userStreams: number;
  private readonly ctx: GpuContext;
  private readonly K: number;
  private readonly CT: number;
  private readonly delays: number[];
  private readonly cache: Tensor; // [CT, K] i32
  private readonly initial: Tensor; // [K] i32
  private readonly input: Tensor; // [K] i32, main input tokens of the current step
  private readonly sampled: Tensor; // [1 + dep_q] i32, tokens sampled at the current step
  private readonly userBuf: Tensor; // [userStreams] i32
  private readonly outBuf: Tensor; // [1 + dep_q] i32
  private condSum: Tensor | null = null;
  private readonly checkFlags: Tensor; // [1] u32, LOGIT_CHECK bits of the last step()
  private checks = 0;
  private offset = 0;
  private readyDone = false;
  private readonly trace: ((t: LMGenTrace) => void) | undefined;

  constructor(readonly lm: LMModel, opts: LMGenOptions = {}) {
    const cfg = lm.cfg;
    const d = cfg.lmGen;
    this.temp = opts.temp ?? d.temp ?? LMGEN_DEFAULTS.temp;
    this.tempText = opts.tempText ?? d.tempText ?? LMGEN_DEFAULTS.tempText;
    this.topK = opts.topK ?? d.topK ?? LMGEN_DEFAULTS.topK;
    this.topKText = opts.topKText ?? d.topKText ?? LMGEN_DEFAULTS.topKText;
    for (const [name, v] of [['temp', this.temp], ['tempText', this.tempText]] as const) {
      if (!Number.isFinite(v) || v < 0) throw new RangeError(`LMGen: ${name} must be a finite number >= 0, got ${v}`);
    }
    for (const [name, v] of [['topK', this.topK], ['topKText', this.topKText]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new RangeError(`LMGen: ${name} must be an integer >= 0, got ${v}`);
    }
    if (opts.seed !== undefined && (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > 0xffffffff)) {
      throw new RangeError(`LMGen: seed must be an integer in [0, 2^32), got ${opts.seed}`);
    }
    this.seed = opts.seed ?? crypto.getRandomValues(new Uint32Array(1))[0];
    this.trace = opts.trace;
    this.ctx = lm.ctx;
    this.K = cfg.nQ + 1;
    this.maxDelay = maxDelay(cfg);
    this.CT = this.maxDelay + 2;
    this.delays = cfg.delays.slice();
    this.userStreams = userStreams(cfg);
    const initial = new Int32Array(this.K).fill(cfg.card);
    initial[0] = cfg.textCard;
    this.initial = this.ctx.upload(initial, [this.K], 'i32', 'lmgen.initial');
    this.cache = this.ctx.upload(new Int32Array(this.CT * this.K).fill(-2), [this.CT, this.K], 'i32', 'lmgen.cache');
    this.input = this.ctx.tensor([this.K], 'i32', 'lmgen.input');
    this.sampled = this.ctx.tensor([1 + cfg.depQ], 'i32', 'lmgen.sampled');
    this.userBuf = this.ctx.tensor([Math.max(1, this.userStreams)], 'i32', 'lmgen.user');
    this.outBuf = this.ctx.tensor([1 + cfg.depQ], 'i32', 'lmgen.out');
    this.checkFlags = this.ctx.tensor([1], 'u32', 'lmgen.check_flags');
    // Validate the condition now (throws synchronously for a missing condition on a conditioned model).
    if (!lm.conditions && opts.condition && Object.keys(opts.condition).length) {
      throw new Error(`LMGen: this model has no conditioners, but a condition was given (${Object.keys(opts.condition).join(', ')})`);
    }
    if (lm.conditions && !opts.condition) {
      throw new Error(`LMGen: the model is conditioned on ${[...lm.conditions.conditioners.keys()].join(', ')}; pass opts.condition (e.g. { ${[...lm.conditions.conditioners.entries()].map(([n, c]) => `${n}: '${c.cfg.possibleValues?.[0] ?? 'value'}'`).join(', ')} })`);
    }
    if (!lm.conditions) {
      // Nothing to compute: recordStep may run right away.
      this.readyDone = true;
      this.ready = Promise.resolve();
    } else {
      this.ready = lm.conditionSum(opts.condition).then((sum) => {
        if (sum) this.condSum = this.ctx.upload(sum, [1, cfg.dim], 'f32', 'lmgen.condition_sum');
        this.readyDone = true;
      });
      this.ready.catch(() => undefined); // surfaced by step() (await ready) and recordStep()
    }
    lm.reset();
  }

  /** Steps taken since construction or the last reset. */
  get stepIndex(): number {
    return this.offset;
  }

  /** What the logits checks of the last `step()` found: NaN / infinite text or audio logits (the tokens of that step are not trustworthy). */
  get lastStepChecks(): { textLogits: boolean; audioLogits: boolean } {
    return { textLogits: (this.checks & LOGIT_CHECK.text) !== 0, audioLogits: (this.checks & LOGIT_CHECK.audio) !== 0 };
  }

  /**
   * Records one LMGen step into `rec`, reading the user's codes from `userCodes` (i32, the first
   * n_q - dep_q elements, e.g. a Mimi encoder's output frame already on the GPU) and, when the step
   * produces output, writing [text, audio_0 .. audio_{dep_q-1}] (delay-aligned) to `out` (i32,
   * >= 1 + dep_q elements). Returns true when `out` was written, false while the delays fill.
   * Codes are not range-checked here (they never leave the GPU): a code outside [0, card) embeds
   * as zeros. Throws when the condition is not ready yet (await `ready`) or shapes do not fit.
   * `checks`: finiteness of this step's logits: `bits.text` (default LOGIT_CHECK.text) is OR-ed into
   * `flags[0]` (u32 or i32, not cleared here) when the text logits hold a NaN or an infinity,
   * `bits.audio` when any depformer (audio) logits do. With kernelChoice.fusion 'on' the sampling
   * dispatches do it (sample's `check`, no extra dispatch); 'off': one finite_check per logits tensor.
   */
  recordStep(rec: Recorder, userCodes: Tensor, out: Tensor, checks?: { flags: Tensor; bits?: { text: number; audio: number } }): boolean {
    if (!this.readyDone) throw new Error('LMGen.recordStep: the condition vector is not ready; await lmGen.ready first');
    if (userCodes.dtype !== 'i32' || userCodes.numel < this.userStreams) {
      throw new ShapeError(`LMGen user codes '${userCodes.label}' must be i32 with >= ${this.userStreams} elements, got ${userCodes.dtype}[${userCodes.shape.join(', ')}]`);
    }
    if (out.dtype !== 'i32' || out.numel < 1 + this.lm.cfg.depQ) {
      throw new ShapeError(`LMGen output '${out.label}' must be i32 with >= ${1 + this.lm.cfg.depQ} elements, got ${out.dtype}[${out.shape.join(', ')}]`);
    }
    const { K, CT, delays } = this;
    const depQ = this.lm.cfg.depQ;
    const t = this.offset;
    // 1. User streams into the cache, at their delayed rows.
    for (const [a, b, delay] of runs(depQ + 1, K, (k) => delays[k])) {
      const row = (t + delay) % CT;
      rec.copy(win(userCodes, a - depQ - 1, b - a), win(this.cache, row * K + a, b - a));
    }
    // 2. Main input: cache row t % CT, initial tokens where t <= delay[k].
    const row = t % CT;
    for (const [a, b, init] of runs(0, K, (k) => (t <= delays[k] ? 1 : 0))) {
      rec.copy(init ? win(this.initial, a, b - a) : win(this.cache, row * K + a, b - a), win(this.input, a, b - a));
    }
    // 3. forward_text, text sampling, depformer.
    const draw0 = t * (1 + depQ);
    const bits = checks?.bits ?? LOGIT_CHECK;
    const fused = this.ctx.kernelChoice.fusion !== 'off';
    // The finiteness check of `logits` with `bit`: in the sampling dispatch (fused) or one of its own.
    const check = (bit: number) => (checks && fused ? { flags: checks.flags, bit } : undefined);
    const checkAfter = (logits: Tensor, bit: number) => {
      if (checks && !fused) finiteCheck(rec, logits, checks.flags, bit);
    };
    this.lm.recordForwardText(rec, this.input, this.condSum);
    const textEmbed = depQ > 0 ? this.lm.fuseDepformerEmbedding(rec, 0) ?? undefined : undefined; // depformer step 0's input embedding, where the model allows it
    sample(rec, this.lm.textLogits, this.sampled, { temp: this.tempText, topK: this.topKText, seed: this.seed, draw: draw0, outOffset: 0, check: check(bits.text), embed: textEmbed });
    checkAfter(this.lm.textLogits, bits.text);
    if (depQ > 0) {
      this.lm.resetDepformer();
      for (let k = 0; k < depQ; k++) {
        const logits = this.lm.depformerLogits[k];
        this.lm.recordForwardDepformer(rec, k, this.sampled, k);
        // The next codebook's embedding of this token, in the sampling dispatch where the model allows it (else recordForwardDepformer looks it up).
        const embed = k + 1 < depQ ? this.lm.fuseDepformerEmbedding(rec, k + 1) ?? undefined : undefined;
        sample(rec, logits, this.sampled, { temp: this.temp, topK: this.topK, seed: this.seed, draw: draw0 + 1 + k, outOffset: 1 + k, check: check(bits.audio), embed });
        checkAfter(logits, bits.audio);
      }
    }
    // 4. Generated tokens into the cache at row (t + 1) % CT.
    this.offset = t + 1;
    rec.copy(win(this.sampled, 0, 1 + depQ), win(this.cache, (this.offset % CT) * K, 1 + depQ));
    // 5. Delay-aligned output.
    if (this.offset <= this.maxDelay) return false;
    for (const [a, b, delay] of runs(0, 1 + depQ, (k) => delays[k])) {
      const r = (this.offset - this.maxDelay + delay) % CT;
      rec.copy(win(this.cache, r * K + a, b - a), win(out, a, b - a));
    }
    return true;
  }

  /**
   * One step with host data (official `LMGen.step` for batch 1): `userCodes` holds the user's
   * n_q - dep_q codes of this frame (extra trailing codes are ignored, as the official step
   * truncates them). Returns null while the delays fill, then { text, audio[dep_q] }.
   * Throws RangeError for too few codes or a code outside [0, card) (-1, the zero token, is allowed).
   */
  async step(userCodes: Int32Array | readonly number[]): Promise<{ text: number; audio: Int32Array } | null> {
    const r = await this.runStep(userCodes, false);
    return r && { text: r.text, audio: r.audio };
  }

  /**
   * One step with the extra heads (official `LMGen.step_with_extra_heads`, batch 1): the same step
   * as `step()`, plus, when it produces output, `extraHeads[h]` = softmax over the extra_heads_dim
   * outputs of `extra_heads[h](transformer_out)` of this step (Float32Array [extra_heads_dim] per
   * head, h < extra_heads_num_heads; the voice-activity heads of kyutai/stt-1b-en_fr). The linears
   * run on the GPU; the softmax of their H·Dh logits is taken on the host in float64, then rounded
   * to f32 (the official takes it in the model dtype). Returns null while the delays fill, as the
   * official does. Throws when the model has no extra heads, and as `step()` does.
   */
  async stepWithExtraHeads(userCodes: Int32Array | readonly number[]): Promise<{ text: number; audio: Int32Array; extraHeads: Float32Array[] } | null> {
    if (this.lm.numExtraHeads === 0) throw new Error('LMGen.stepWithExtraHeads: this model has no extra heads (extra_heads_num_heads = 0)');
    const r = await this.runStep(userCodes, true);
    if (!r) return null;
    const Dh = this.lm.cfg.extraHeadsDim;
    const logits = r.extraLogits!;
    return { text: r.text, audio: r.audio, extraHeads: extraHeadProbs(logits, this.lm.numExtraHeads, Dh) };
  }

  private async runStep(userCodes: Int32Array | readonly number[], extra: boolean): Promise<{ text: number; audio: Int32Array; extraLogits: Float32Array | null } | null> {
    const n = this.userStreams;
    if (userCodes.length < n) throw new RangeError(`LMGen.step: expected ${n} user codes (n_q - dep_q), got ${userCodes.length}`);
    const card = this.lm.cfg.card;
    for (let j = 0; j < n; j++) {
      const c = userCodes[j];
      if (!Number.isInteger(c) || c < -1 || c >= card) throw new RangeError(`LMGen.step: user code ${j} = ${c} is outside [0, ${card}) (or -1, the zero token)`);
    }
    await this.ready;
    if (n > 0) this.ctx.write(this.userBuf, Int32Array.from({ length: n }, (_, j) => userCodes[j]));
    const step = this.offset;
    const rec = this.ctx.record(`lmgen step ${step}`);
    rec.clear(this.checkFlags);
    const produced = this.recordStep(rec, this.userBuf, this.outBuf, { flags: this.checkFlags });
    // transformer_out of this step is still in lm.transformerOut (only forward_text writes it).
    if (extra && produced) this.lm.recordExtraHeads(rec);
    const extraP = extra && produced ? rec.readback(this.lm.extraHeadLogits!) : null;
    const checksP = rec.readback(this.checkFlags);
    const outP = produced ? rec.readback(this.outBuf) : null;
    const tr = this.trace
      ? {
          input: rec.readback(this.input),
          tout: rec.readback(this.lm.transformerOut),
          text: rec.readback(this.lm.textLogits),
          sampled: rec.readback(this.sampled),
          dep: this.lm.depformerLogits.map((t) => rec.readback(t)),
        }
      : null;
    await rec.submit();
    this.checks = (await checksP)[0] >>> 0;
    if (tr && this.trace) {
      const depQ = this.lm.cfg.depQ;
      const sampled = (await tr.sampled) as Int32Array;
      const dep = await Promise.all(tr.dep);
      const depformerLogits = new Float32Array(depQ * this.lm.cfg.card);
      dep.forEach((d, k) => depformerLogits.set(d as Float32Array, k * this.lm.cfg.card));
      this.trace({
        step,
        mainInput: (await tr.input) as Int32Array,
        transformerOut: (await tr.tout) as Float32Array,
        textLogits: (await tr.text) as Float32Array,
        depformerInput: sampled.slice(0, depQ),
        depformerLogits,
        sampled,
      });
    }
    if (!outP) return null;
    const o = (await outP) as Int32Array;
    return { text: o[0], audio: o.slice(1, 1 + this.lm.cfg.depQ), extraLogits: extraP ? ((await extraP) as Float32Array) : null };
  }

  /** Starts over: clears the token cache and the LM's streaming state; the draw counter restarts (same seed, same tokens). */
  reset(): void {
    this.offset = 0;
    this.ctx.write(this.cache, new Int32Array(this.CT * this.K).fill(-2));
    this.lm.reset();
  }

  /** Frees the generator's GPU buffers (not the model's). */
  destroy(): void {
    for (const t of [this.cache, this.initial, this.input, this.sampled, this.userBuf, this.outBuf, this.checkFlags, this.condSum]) t?.destroy();
  }
}
