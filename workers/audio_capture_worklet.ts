/**
 * AudioWorklet module: the 'solace-capture' processor. Microphone (device rate) → mono → 24 kHz →
 * input RingBuffer (processorOptions.ring, a SharedArrayBuffer) or, without one, 1920-sample
 * frames posted on the node's port ({ type: 'frame', pcm }, buffer transferred; send
 * { type: 'recycle', pcm } back to reuse it). Counters: processorOptions.stats (STAT slots).
 * All logic is in src/audio/worklet_shared.ts (CaptureCore); this file only registers it.
 *
 * Create with numberOfInputs 1, numberOfOutputs 0 (see src/ui/worklet_loader.ts).
 */
import { CAPTURE_PROCESSOR, CaptureCore, type CaptureOptions } from '../src/audio/worklet_shared.ts';

// AudioWorkletGlobalScope declarations (not in TypeScript's DOM lib).
declare const AudioWorkletProcessor: new (options?: unknown) => { readonly port: MessagePort };
declare function registerProcessor(name: string, ctor: unknown): void;

const NO_CHANNELS: Float32Array[] = [];

export class SolaceCaptureProcessor extends AudioWorkletProcessor {
  readonly core: CaptureCore;

  constructor(options?: { processorOptions?: CaptureOptions }) {
    super(options);
    this.core = new CaptureCore(options?.processorOptions ?? {}, this.port);
  }

  process(inputs: Float32Array[][]): boolean {
    return this.core.process(inputs[0] ?? NO_CHANNELS);
  }
}

registerProcessor(CAPTURE_PROCESSOR, SolaceCaptureProcessor);
