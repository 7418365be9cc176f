/**
 * AudioWorklet module: the 'solace-capture' processor. Microphone (device rate) → mono → 24 kHz →
 * input RingBuffer (processorOptions.ring, a SharedArrayBuffer) or, without one, 1920-sample
 * frames posted on the node's port ({ type: 'frame', pcm }, buffer transferred; send
 * { type: 'recycle', pcm } back to reuse it). Counters: processorOptions.stats (STAT slots).
 * All logic is in src/audio/worklet_shared.ts (CaptureCore); this file only registers it (workers/worklet_processor.ts).
 *
 * Create with numberOfInputs 1, numberOfOutputs 0 (see src/ui/worklet_loader.ts).
 */
import { CAPTURE_PROCESSOR, CaptureCore, type CaptureOptions } from '../src/audio/worklet_shared.ts';
import { registerCoreProcessor } from './worklet_processor.ts';

export const SolaceCaptureProcessor = registerCoreProcessor(CAPTURE_PROCESSOR, 'input', (options: CaptureOptions, port) => new CaptureCore(options, port));
