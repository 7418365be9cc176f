/**
 * AudioWorklet module: the 'solace-playback' processor. Output RingBuffer at 24 kHz
 * (processorOptions.ring, a SharedArrayBuffer) or, without one, a local ring fed by
 * { type: 'frame', pcm } port messages (the buffer comes back as { type: 'recycle', pcm }) →
 * jitter buffer (grows on underrun) → device rate → every output channel.
 * { type: 'flush' } drops everything buffered. Counters: processorOptions.stats (STAT slots).
 * All logic is in src/audio/worklet_shared.ts (PlaybackCore); this file only registers it.
 *
 * Create with numberOfInputs 0, numberOfOutputs 1 (see src/ui/worklet_loader.ts).
 */
import { PLAYBACK_PROCESSOR, PlaybackCore, type PlaybackOptions } from '../src/audio/worklet_shared.ts';

declare const AudioWorkletProcessor: new (options?: unknown) => { readonly port: MessagePort };
declare function registerProcessor(name: string, ctor: unknown): void;

const NO_CHANNELS: Float32Array[] = [];

export class SolacePlaybackProcessor extends AudioWorkletProcessor {
  readonly core: PlaybackCore;

  constructor(options?: { processorOptions?: PlaybackOptions }) {
    super(options);
    this.core = new PlaybackCore(options?.processorOptions ?? {}, this.port);
  }

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    return this.core.process(outputs[0] ?? NO_CHANNELS);
  }
}

registerProcessor(PLAYBACK_PROCESSOR, SolacePlaybackProcessor);
