/**
 * AudioWorklet module: the 'solace-playback' processor. Output RingBuffer at 24 kHz
 * (processorOptions.ring, a SharedArrayBuffer) or, without one, a local ring fed by
 * { type: 'frame', pcm } port messages (the buffer comes back as { type: 'recycle', pcm }) →
 * jitter buffer (grows on underrun) → device rate → every output channel.
 * { type: 'flush' } drops everything buffered. Counters: processorOptions.stats (STAT slots).
 * All logic is in src/audio/worklet_shared.ts (PlaybackCore); this file only registers it (workers/worklet_processor.ts).
 *
 * Create with numberOfInputs 0, numberOfOutputs 1 (see src/ui/worklet_loader.ts).
 */
import { PLAYBACK_PROCESSOR, PlaybackCore, type PlaybackOptions } from '../src/audio/worklet_shared.ts';
import { registerCoreProcessor } from './worklet_processor.ts';

export const SolacePlaybackProcessor = registerCoreProcessor(PLAYBACK_PROCESSOR, 'output', (options: PlaybackOptions, port) => new PlaybackCore(options, port));
