/**
 * The live speech-to-text loop of the engine Worker: pulls whole 1920-sample frames from a
 * FrameSource (the microphone's input ring, or AUDIO_CHUNK packets of a played file), gives each
 * to the SttStream (src/models/stt.ts: the official run_inference.py procedure as a stream) and
 * hands every counted step (text token + extra-head probabilities) to `onStep` as soon as it is
 * computed. On `stop()` — or once a played file's `endAfterSamples` were read — it feeds the right
 * padding (`SttStream.flush`: audio_delay_seconds + 1 s of zeros), so the words still in the
 * model's delay come out, then calls `onEnd`. No audio goes out: an STT model only writes text.
 *
 * Input samples that are NaN, infinite or beyond ±16 are replaced by 0 before the Mimi (counted
 * in metrics.nonFinite, as Engine.step does for Moshi).
 */
import type { SttStep, SttStream } from '../models/stt.ts';
import { zeroBadSamples } from '../protocol/samples.ts';
import { FrameLoop, type FrameSource, nextFrame } from './driver.ts';
import { FRAME_SAMPLES, type LoopMetrics } from './metrics.ts';

export interface SttLoopCallbacks {
  /** Each counted step, in order, as soon as it is computed (also those of the final padding). */
  onStep?: (s: SttStep) => void;
  /** The run is over: 'stopped' (stop()) or 'file-ended' (endAfterSamples were read); `steps` in all. */
  onEnd?: (reason: 'stopped' | 'file-ended', steps: number) => void;
  /** The loop stopped because of an error (it does not continue after one). */
  onError?: (e: unknown) => void;
  /** A frame held bad samples (zeroed). */
  /** A counted step's text logits or extra heads held NaN / infinite values (counted as metrics text_logits; its caption still goes out, marked by SttStep.nonFinite). */
  onBadLogits?: (step: SttStep) => void;
  onBadInput?: (samples: number) => void;
}

export class SttLoop extends FrameLoop {

  constructor(
    readonly stream: SttStream,
    readonly source: FrameSource,
    readonly metrics: LoopMetrics,
    private readonly callbacks: SttLoopCallbacks = {},
    /** Text ids that print nothing (existing_text_end_padding_id, existing_text_padding_id): not counted in metrics.textTokens. */
    private readonly silentIds: readonly number[] = [0, 3],
    /** Longest wait for input before checking `stop()` again, ms. */
    private readonly pollMs = 10,
  ) {
    super();
    if (stream.procedure.frameSize !== FRAME_SAMPLES) throw new RangeError(`SttLoop: the Mimi's frames are ${stream.procedure.frameSize} samples, the audio transport carries ${FRAME_SAMPLES}`);
  }

  /**
   * Runs one transcription from a fresh stream (SttStream.reset, metrics reset) until `stop()`, the
   * source's end, or `endAfterSamples` input samples (a played file: the rest of its last frame is
   * not part of it); then flushes. Resolves after `onEnd`; rejects (after onError) when a step throws.
   * @throws RangeError for an endAfterSamples that is not an integer >= 0
   */
  async run(endAfterSamples?: number): Promise<void> {
    if (endAfterSamples !== undefined && !(Number.isSafeInteger(endAfterSamples) && endAfterSamples >= 0)) {
      throw new RangeError(`SttLoop: endAfterSamples must be an integer >= 0 (samples of the played file), got ${endAfterSamples}`);
    }
    await this.runOnce('SttLoop', this.callbacks.onError, async () => {
      const { stream, metrics } = this;
      stream.reset();
      metrics.reset();
      let remaining = endAfterSamples ?? Infinity;
      const emit = (steps: SttStep[], t0: number) => {
        const total = performance.now() - t0;
        for (const s of steps) {
          metrics.record({ encodeMs: stream.lastTimings.encodeMs, lmMs: stream.lastTimings.lmMs, decodeMs: 0, totalMs: total / Math.max(1, steps.length) }, true, this.silentIds.includes(s.token) ? 0 : 1);
          if (s.nonFinite) {
            metrics.recordFault('text_logits');
            this.callbacks.onBadLogits?.(s);
          }
          this.callbacks.onStep?.(s);
        }
      };
      while (remaining > 0 && (await nextFrame(this.source, this.frame, this.pollMs, () => this.stopRequested))) {
        const bad = zeroBadSamples(this.frame);
        if (bad) {
          metrics.recordFault('input', bad);
          this.callbacks.onBadInput?.(bad);
        }
        const n = Math.min(FRAME_SAMPLES, remaining);
        remaining -= n;
        const t0 = performance.now();
        emit(await stream.push(this.frame.subarray(0, n)), t0);
        metrics.setTransport({ inputQueueSamples: this.source.queued() });
      }
      const t0 = performance.now();
      emit(await stream.flush(), t0);
      this.callbacks.onEnd?.(remaining <= 0 && endAfterSamples !== undefined ? 'file-ended' : 'stopped', stream.stepsOut);
    });
  }
}
