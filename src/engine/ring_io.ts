/**
 * Ring-buffer endpoints of the driver (browser engine Worker): the input ring is filled by the
 * capture worklet (24 kHz mono), the output ring is drained by the playback worklet. The engine
 * is the input ring's only consumer and the output ring's only producer (SPSC rings,
 * src/audio/ring_buffer.ts).
 *
 * Stamps (src/audio/frame_stamps.ts): the capture worklet publishes an anchor (write index,
 * clock) in the input ring's header after every push; RingFrameSource dates the first sample of
 * each frame it pops from it. RingFrameSink puts (output-ring index, stamp) of each reply frame
 * into the playback worklet's StampQueue before it writes the frame's samples.
 */
import type { RingBuffer } from '../audio/ring_buffer.ts';
import type { StampQueue } from '../audio/frame_stamps.ts';
import type { FrameSink, FrameSource } from './driver.ts';
import { FRAME_SAMPLES } from './metrics.ts';

/** Reads whole 1920-sample frames from the capture ring; never a partial frame. */
export class RingFrameSource implements FrameSource {
  readonly ended = false;
  private last: number | null = null;
  constructor(readonly ring: RingBuffer) {}
  pull(out: Float32Array): boolean {
    if (this.ring.availableRead() < FRAME_SAMPLES) return false;
    const first = this.ring.readIndex();
    this.ring.pop(out, 0, FRAME_SAMPLES);
    // The producer's anchor dates the sample at its index; the capture is gapless between the two
    // (samples the capture drops on a full ring would make this frame look younger than it is).
    const a = this.ring.readStamp();
    this.last = a ? (a.stamp - ((a.index - first) | 0)) | 0 : null;
    return true;
  }
  /** The capture clock of the first sample of the frame the last pull returned (null before the producer published an anchor). */
  stamp(): number | null {
    return this.last;
  }
  /** Resolves when a whole frame is readable or after timeoutMs; keeps a Node worker alive while it waits (RingBuffer.waitForReadAsync). */
  async wait(timeoutMs: number): Promise<void> {
    await this.ring.waitForReadAsync(FRAME_SAMPLES, timeoutMs);
  }
  queued(): number {
    return this.ring.availableRead();
  }
}

/**
 * Writes whole output frames to the playback ring; a frame that does not fit is dropped whole.
 * With `stamps` (the playback worklet's StampQueue), a frame pushed with a stamp is announced as
 * (output-ring index of its first sample, stamp) first, so the worklet knows it before it can
 * play it; a full stamp queue only loses the measure (counted in `stampsLost`), never audio.
 */
export class RingFrameSink implements FrameSink {
  stampsLost = 0;
  constructor(readonly ring: RingBuffer, readonly stamps: StampQueue | null = null) {}
  push(pcm: Float32Array, stamp: number | null = null): boolean {
    if (this.ring.availableWrite() < pcm.length) return false;
    if (stamp !== null && this.stamps && !this.stamps.push(this.ring.writeIndex(), stamp)) this.stampsLost++;
    this.ring.push(pcm);
    return true;
  }
  queued(): number {
    return this.ring.availableRead();
  }
}
