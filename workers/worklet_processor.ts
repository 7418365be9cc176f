/**
 * The one piece both AudioWorklet modules share: an AudioWorkletProcessor subclass whose
 * `process()` hands one side's channels (the first input's, or the first output's) to a core
 * from src/audio/worklet_shared.ts, registered under the core's processor name.
 */
import type { WorkletPort } from '../src/audio/worklet_shared.ts';

// AudioWorkletGlobalScope declarations (not in TypeScript's DOM lib).
declare const AudioWorkletProcessor: new (options?: unknown) => { readonly port: MessagePort };
declare function registerProcessor(name: string, ctor: unknown): void;

/** What a processor delegates its render quantum to (CaptureCore, PlaybackCore). */
export interface ProcessorCore {
  /** One render quantum's channels (128 frames each, device rate); false ends the processor. */
  process(channels: Float32Array[]): boolean;
}

const NO_CHANNELS: Float32Array[] = [];

/**
 * Registers processor `name`: each instance builds `makeCore(processorOptions ?? {}, port)` and
 * forwards `inputs[0]` (side 'input') or `outputs[0]` (side 'output') to it, an empty list when
 * the node has no such connection. Returns the registered class.
 */
export function registerCoreProcessor<O extends object, C extends ProcessorCore>(
  name: string,
  side: 'input' | 'output',
  makeCore: (options: O, port: WorkletPort) => C,
): new (options?: { processorOptions?: O }) => { readonly core: C } {
  class CoreProcessor extends AudioWorkletProcessor {
    readonly core: C;

    constructor(options?: { processorOptions?: O }) {
      super(options);
      this.core = makeCore(options?.processorOptions ?? ({} as O), this.port);
    }

    process(inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
      return this.core.process((side === 'input' ? inputs[0] : outputs[0]) ?? NO_CHANNELS);
    }
  }
  registerProcessor(name, CoreProcessor);
  return CoreProcessor;
}
