/**
 * Ring-buffer endpoints of the driver (browser engine Worker): the input ring is filled by the
 * capture worklet (24 kHz mono), the output ring is drained by the playback worklet. The engine
 * is the input ring's only consumer and the output ring's only producer (SPSC rings,
 * src/audio/ring_buffer.ts).
 */
import type { RingBuffer } from '../audio/ring_buffer.ts';
import type { FrameSink, FrameSource } from './driver.ts';
import { FRAME_SAMPLES } from './metrics.ts';

/** Reads whole 1920-sample frames from the capture ring; never a partial frame. */
export class RingFrameSource implements FrameSource {
  readonly ended = false;
  constructor(readonly ring: RingBuffer) {}
  pull(out: Float32Array): boolean {
    if (this.ring.availableRead() < FRAME_SAMPLES) return false;
    this.ring.pop(out, 0, FRAME_SAMPLES);
    return true;
  }
  /** Resolves when a whole frame is readable or after timeoutMs; keeps a Node worker alive while it waits (RingBuffer.waitForReadAsync). */
  async wait(timeoutMs: number): Promise<void> {
    await this.ring.waitForReadAsync(FRAME_SAMPLES, timeoutMs);
  }
  queued(): number {
    return this.ring.availableRead();
  }
}

/** Writes whole output frames to the playback ring; a frame that does not fit is dropped whole. */
export class RingFrameSink implements FrameSink {
  constructor(readonly ring: RingBuffer) {}
  push(pcm: Float32Array): boolean {
    if (this.ring.availableWrite() < pcm.length) return false;
    this.ring.push(pcm);
    return true;
  }
  queued(): number {
    return this.ring.availableRead();
  }
}
