/**
 * Band-limited sample-rate conversion: a polyphase windowed-sinc FIR (Kaiser window).
 *
 * Method. The rate ratio is reduced to `outRate / inRate = L / M` (L = up, M = down, coprime).
 * Output sample n sits at input time t_n = n·M/L (in input samples) and is
 *
 *   y[n] = Σ_k x[k] · h(t_n − k),   h(τ) = 2c · sinc(2c·τ) · kaiser(τ / H, β),
 *
 * where c = cutoff / inRate (cycles per input sample), sinc(u) = sin(πu)/(πu), and the Kaiser window
 * spans |τ| ≤ H input samples with H = ceil(zeroCrossings / (2c)) (`zeroCrossings` sinc zero
 * crossings on each side). Only the L fractional positions t_n − floor(t_n) = p/L occur, so the
 * filter is tabulated once as L phases of K = 2H taps (`table[p·K + j]`, tap j reads input
 * floor(t_n) − H + 1 + j); each phase is normalised to unit DC gain. Input outside the signal is 0.
 *
 * Defaults: 32 zero crossings, β = 8.6 (≈ 87 dB stopband). The cutoff is placed so that the
 * Kaiser transition band (width δ·cutoff, δ = (A − 7.95) / (14.36 · zeroCrossings)) ends at the
 * lower of the two Nyquist frequencies: cutoff = min(inRate, outRate)/2 / (1 + δ/2) ≈ 0.92·Nyquist.
 * Measured for 44.1/48 kHz → 24 kHz (cutoff 11.05 kHz): 0.00 dB to 10 kHz, −0.3 dB at 10.5 kHz,
 * −5 dB at 11 kHz, −22 dB at 11.5 kHz, ≥ 90 dB down from 12.5 kHz on; 128 (44.1 kHz) or 140
 * (48 kHz) taps per output sample; zero phase offline, and H input samples (≈ 1.5 ms) of
 * lookahead latency when streaming.
 *
 * Two APIs share the same tables and arithmetic (same summation order), so the streaming output
 * concatenated with its flush is identical to the offline output:
 * - `resample(x, inRate, outRate)`: offline, any integer rates, zero-phase, length ceil(N·L/M).
 * - `StreamingResampler`: fixed rates, state carried across blocks, no allocation per call
 *   (buffers are made in the constructor; `process` writes into the caller's buffer), suitable
 *   for an AudioWorklet's `process()`.
 *
 * This is not a port of the official code: moshi's `modules/resample.py` is the learned
 * 25 → 12.5 Hz latent conv, and the official server resamples audio outside the model. The design
 * follows the classic bandlimited-interpolation scheme (J. O. Smith, "Digital Audio Resampling").
 */

export interface ResamplerOptions {
  /** Sinc zero crossings on each side of the centre tap. Default 32. */
  zeroCrossings?: number;
  /** Kaiser window β. Default 8.6 (≈ 87 dB stopband attenuation). */
  beta?: number;
  /**
   * Cutoff as a fraction of min(inRate, outRate)/2. Default: chosen so the transition band ends
   * at that Nyquist frequency (≈ 0.92 with the default zeroCrossings and β).
   */
  rolloff?: number;
}

/** A polyphase filter for one rate pair (see the module comment for the formula). */
export interface ResamplerDesign {
  inRate: number;
  outRate: number;
  /** outRate/inRate = up/down in lowest terms. */
  up: number;
  down: number;
  /** Cutoff frequency in Hz. */
  cutoffHz: number;
  /** Half width in input samples; each output reads K = 2·halfTaps inputs. */
  halfTaps: number;
  taps: number;
  /** [up, taps] phase-major coefficients; phase p serves outputs with (n·down) mod up = p. */
  table: Float32Array;
  /** True when inRate === outRate: samples pass through unchanged. */
  identity: boolean;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (power series; converges for the β used here). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 200; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

function checkRate(name: string, r: number): void {
  if (!Number.isInteger(r) || r < 1 || r > 1_000_000) throw new RangeError(`${name} must be an integer number of Hz in [1, 1000000], got ${r}`);
}

/**
 * Designs the polyphase table for inRate → outRate.
 * @throws RangeError for non-integer or non-positive rates, or a table over 16M coefficients
 *   (rates whose reduced ratio has a huge numerator, e.g. 24001 → 24000).
 */
export function designResampler(inRate: number, outRate: number, options: ResamplerOptions = {}): ResamplerDesign {
  checkRate('inRate', inRate);
  checkRate('outRate', outRate);
  const g = gcd(inRate, outRate);
  const up = outRate / g;
  const down = inRate / g;
  if (inRate === outRate) {
    return { inRate, outRate, up: 1, down: 1, cutoffHz: inRate / 2, halfTaps: 0, taps: 0, table: new Float32Array(0), identity: true };
  }
  const zc = options.zeroCrossings ?? 32;
  const beta = options.beta ?? 8.6;
  if (!(zc >= 1)) throw new RangeError(`zeroCrossings must be >= 1, got ${zc}`);
  const atten = beta > 4.55 ? beta / 0.1102 + 8.7 : 21;
  const delta = (atten - 7.95) / (14.36 * zc);
  const rolloff = options.rolloff ?? 1 / (1 + delta / 2);
  if (!(rolloff > 0 && rolloff <= 1)) throw new RangeError(`rolloff must be in (0, 1], got ${rolloff}`);
  const cutoffHz = (rolloff * Math.min(inRate, outRate)) / 2;
  const c = cutoffHz / inRate; // cycles per input sample
  const halfTaps = Math.ceil(zc / (2 * c));
  const taps = 2 * halfTaps;
  if (up * taps > 16_777_216) {
    throw new RangeError(`resampling ${inRate} Hz -> ${outRate} Hz needs ${up} filter phases of ${taps} taps (over 16M coefficients); resample to a rate with a simpler ratio first`);
  }
  const table = new Float32Array(up * taps);
  const i0b = besselI0(beta);
  for (let p = 0; p < up; p++) {
    const f = p / up;
    let sum = 0;
    const row = new Float64Array(taps);
    for (let j = 0; j < taps; j++) {
      const tau = f + halfTaps - 1 - j; // t_n - k, in input samples
      const r = tau / halfTaps;
      if (Math.abs(r) >= 1) continue;
      const u = 2 * c * tau;
      const sinc = u === 0 ? 1 : Math.sin(Math.PI * u) / (Math.PI * u);
      const w = besselI0(beta * Math.sqrt(1 - r * r)) / i0b;
      row[j] = 2 * c * sinc * w;
      sum += row[j];
    }
    for (let j = 0; j < taps; j++) table[p * taps + j] = row[j] / sum;
  }
  return { inRate, outRate, up, down, cutoffHz, halfTaps, taps, table, identity: false };
}

/** Number of output samples `resample` gives for n input samples: ceil(n·outRate/inRate). */
export function resampledLength(n: number, inRate: number, outRate: number): number {
  const g = gcd(inRate, outRate);
  const up = outRate / g;
  const down = inRate / g;
  return Math.ceil((n * up) / down);
}

const designCache = new Map<string, ResamplerDesign>();

function cachedDesign(inRate: number, outRate: number, options: ResamplerOptions): ResamplerDesign {
  const key = `${inRate}>${outRate}|${options.zeroCrossings ?? ''}|${options.beta ?? ''}|${options.rolloff ?? ''}`;
  let d = designCache.get(key);
  if (!d) {
    d = designResampler(inRate, outRate, options);
    designCache.set(key, d);
  }
  return d;
}

/**
 * Offline resampling of a whole signal, zero-phase (output n is centred on input time n·in/out).
 *
 * @param x mono samples at `inRate`
 * @returns ceil(N·outRate/inRate) samples at `outRate` (a copy of x when the rates are equal)
 * @throws RangeError for bad rates (see designResampler)
 */
export function resample(x: Float32Array, inRate: number, outRate: number, options: ResamplerOptions = {}): Float32Array {
  const d = cachedDesign(inRate, outRate, options);
  if (d.identity) return x.slice();
  const { up, down, halfTaps: H, taps: K, table } = d;
  const n = x.length;
  const nOut = Math.ceil((n * up) / down);
  // Zero-padded copy: padded[i] = x[i - (H - 1)], so output n reads padded[ipos .. ipos + K).
  const padded = new Float32Array(n + 2 * K);
  padded.set(x, H - 1);
  const y = new Float32Array(nOut);
  let ipos = 0;
  let phase = 0;
  for (let o = 0; o < nOut; o++) {
    const t = phase * K;
    let acc = 0;
    for (let j = 0; j < K; j++) acc += padded[ipos + j] * table[t + j];
    y[o] = acc;
    phase += down;
    while (phase >= up) {
      phase -= up;
      ipos++;
    }
  }
  return y;
}

/**
 * Streaming resampler for a fixed rate pair: feed blocks of any size up to `maxBlock`, get every
 * output sample whose filter support is complete. Outputs are the same samples, in the same
 * order, as `resample()` of the whole input (the last ones come out of `flush()`).
 *
 * Real-time use (AudioWorklet): construct outside the audio thread's hot path; `process()` and
 * `flush()` allocate nothing, take the caller's output buffer and return how many samples they
 * wrote. Size the output buffer with `maxOutput(maxBlock)` once.
 *
 * Latency: output n needs input up to floor(n·in/out) + halfTaps, i.e. `latencySeconds`.
 */
export class StreamingResampler {
  readonly design: ResamplerDesign;
  /** Largest input block `process` accepts. */
  readonly maxBlock: number;
  private readonly buf: Float32Array;
  /** Absolute input index of buf[0]. */
  private base = 0;
  /** Valid samples in buf. */
  private len = 0;
  /** Input samples received since reset. */
  private received = 0;
  /** Next output index, its input position floor(n·M/L) and phase (n·M) mod L. */
  private next = 0;
  private ipos = 0;
  private phase = 0;
  private flushed = false;

  /**
   * @param inRate input Hz, @param outRate output Hz (integers)
   * @param maxBlock largest block passed to process() (default 4096)
   * @throws RangeError for bad rates or maxBlock
   */
  constructor(inRate: number, outRate: number, maxBlock = 4096, options: ResamplerOptions = {}) {
    if (!Number.isInteger(maxBlock) || maxBlock < 1) throw new RangeError(`maxBlock must be a positive integer, got ${maxBlock}`);
    this.design = cachedDesign(inRate, outRate, options);
    this.maxBlock = maxBlock;
    this.buf = new Float32Array(this.design.taps + maxBlock + 1);
    this.reset();
  }

  /** Input-side lookahead: seconds of input needed beyond an output sample's own time. */
  get latencySeconds(): number {
    return this.design.halfTaps / this.design.inRate;
  }

  /** An upper bound on the samples one process() call of `inLen` inputs writes: ceil(inLen·L/M) + 1. */
  maxOutput(inLen = this.maxBlock): number {
    return this.design.identity ? inLen : Math.ceil((inLen * this.design.up) / this.design.down) + 1;
  }

  /** Starts a new stream (history = silence). */
  reset(): void {
    const H = this.design.halfTaps;
    this.buf.fill(0);
    this.base = -(H - 1);
    this.len = Math.max(0, H - 1);
    this.received = 0;
    this.next = 0;
    this.ipos = 0;
    this.phase = 0;
    this.flushed = false;
  }

  /** Outputs ready once `total` inputs have arrived: indices n with floor(n·M/L) + H <= total − 1. */
  private readyEnd(total: number): number {
    const { up, down, halfTaps: H } = this.design;
    const lim = total - H; // need ipos <= total - 1 - H, i.e. n·M < (total − H)·L
    return lim <= 0 ? 0 : Math.ceil((lim * up) / down);
  }

  /**
   * Consumes `inLen` samples of `input` (default all) and writes every newly complete output
   * sample to `output` from index 0.
   *
   * @returns the number of samples written
   * @throws RangeError when inLen > maxBlock, output is shorter than maxOutput(inLen), or the
   *   stream was flushed (call reset() first)
   */
  process(input: Float32Array, output: Float32Array, inLen = input.length): number {
    if (this.flushed) throw new RangeError('StreamingResampler: process() after flush(); call reset() to start a new stream');
    if (inLen > this.maxBlock || inLen > input.length) throw new RangeError(`StreamingResampler: block of ${inLen} samples (max ${this.maxBlock}, input holds ${input.length})`);
    if (output.length < this.maxOutput(inLen)) throw new RangeError(`StreamingResampler: output buffer of ${output.length} samples, need ${this.maxOutput(inLen)} for ${inLen} inputs`);
    if (this.design.identity) {
      for (let i = 0; i < inLen; i++) output[i] = input[i];
      this.received += inLen;
      return inLen;
    }
    this.append(input, inLen);
    this.received += inLen;
    return this.produce(output, this.readyEnd(this.received));
  }

  /** Samples flush() will write: the rest of ceil(received·L/M). */
  flushLength(): number {
    if (this.design.identity || this.flushed) return 0;
    return Math.ceil((this.received * this.design.up) / this.design.down) - this.next;
  }

  /**
   * Ends the stream: treats the input after the last sample as silence and writes the remaining
   * outputs (flushLength() of them) to `output`. Allocation-free. Call reset() before reuse.
   * @throws RangeError when output is shorter than flushLength()
   */
  flush(output: Float32Array): number {
    const need = this.flushLength();
    if (output.length < need) throw new RangeError(`StreamingResampler: flush needs ${need} output samples, buffer has ${output.length}`);
    if (this.design.identity || this.flushed) return 0;
    const end = this.next + need;
    let written = 0;
    const view = output;
    while (this.next < end) {
      // Make room, then pad with zeros up to the last input the remaining outputs read.
      this.compact();
      const room = this.buf.length - this.len;
      this.buf.fill(0, this.len, this.len + room);
      this.len += room;
      const avail = this.base + this.len; // inputs (real or zero) present
      const stop = Math.min(end, this.readyEnd(avail));
      written += this.produceInto(view, written, stop);
    }
    this.flushed = true;
    return written;
  }

  private compact(): void {
    const first = this.ipos - this.design.halfTaps + 1; // oldest input still needed
    const drop = first - this.base;
    if (drop > 0) {
      this.buf.copyWithin(0, drop, this.len);
      this.len -= drop;
      this.base = first;
    }
  }

  private append(input: Float32Array, inLen: number): void {
    this.compact();
    if (this.len + inLen > this.buf.length) {
      throw new RangeError(`StreamingResampler: internal buffer overflow (${this.len} + ${inLen} > ${this.buf.length})`);
    }
    const buf = this.buf;
    const at = this.len;
    for (let i = 0; i < inLen; i++) buf[at + i] = input[i]; // a loop, not set(subarray()): no view allocated
    this.len += inLen;
  }

  private produce(output: Float32Array, end: number): number {
    return this.produceInto(output, 0, end);
  }

  /** Writes outputs next..end-1 at output[at...]; same arithmetic as resample(). */
  private produceInto(output: Float32Array, at: number, end: number): number {
    const { up, down, taps: K, table } = this.design;
    const buf = this.buf;
    let w = at;
    while (this.next < end) {
      const s = this.ipos - this.design.halfTaps + 1 - this.base;
      const t = this.phase * K;
      let acc = 0;
      for (let j = 0; j < K; j++) acc += buf[s + j] * table[t + j];
      output[w++] = acc;
      this.next++;
      this.phase += down;
      while (this.phase >= up) {
        this.phase -= up;
        this.ipos++;
      }
    }
    return w - at;
  }
}
