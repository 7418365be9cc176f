// Mic → speaker latency (issue #13) with a fake AudioContext clock: the capture worklet core
// dates its input, the rings / packets carry the stamp through the real EngineDriver and Engine,
// and the playback worklet core reports when each reply frame starts to play. Everything runs on
// simulated sample counts (no wall clock), so a known added engine delay must show up exactly.
import { describe, expect, it } from 'vitest';
import { StampQueue, StampQueueError, clockDiff, clockMs, modelClock } from '../../src/audio/frame_stamps.ts';
import { RingBuffer } from '../../src/audio/ring_buffer.ts';
import { CaptureCore, PlaybackCore, STAT, type WorkletPort } from '../../src/audio/worklet_shared.ts';
import { EngineDriver } from '../../src/engine/driver.ts';
import { Engine, type LmFrame, type LoopCodec, type LoopLm } from '../../src/engine/engine.ts';
import { FRAME_SAMPLES, LatencyWindow } from '../../src/engine/metrics.ts';
import { RingFrameSink, RingFrameSource } from '../../src/engine/ring_io.ts';
import { PacketType, decodePacket, encodePacket, makePacket, type Packet } from '../../src/protocol/packet.ts';

/** Simulated time: device samples; timers fire when the clock reaches them. */
class SimClock {
  now = 0;
  private timers: { due: number; fire: () => void }[] = [];
  /** Resolves once the clock has advanced by `frames` device samples (at once for 0). */
  sleep(frames: number): Promise<void> {
    if (frames <= 0) return Promise.resolve();
    return new Promise((fire) => this.timers.push({ due: this.now + frames, fire }));
  }
  advance(frames: number): void {
    this.now += frames;
    const due = this.timers.filter((t) => t.due <= this.now);
    this.timers = this.timers.filter((t) => t.due > this.now);
    for (const t of due) t.fire();
  }
}

/** Lets every promise chain run to its end (no timers or Atomics waits are involved). */
const settle = () => new Promise<void>((ok) => setImmediate(ok));

/** Codec double whose encode takes `delay()` device samples of simulated time; decode returns the code as a level. */
class SlowCodec implements LoopCodec {
  constructor(private readonly clock: SimClock, private readonly delay: (step: number) => number, private step = 0) {}
  async encode(pcm: Float32Array): Promise<Int32Array> {
    await this.clock.sleep(this.delay(this.step++));
    return Int32Array.of(Math.round(pcm[0] * 1000));
  }
  async decode(codes: Int32Array, frames: number): Promise<Float32Array> {
    return new Float32Array(frames * FRAME_SAMPLES).fill(0.25 + codes[0] / 1e6);
  }
  reset(): void {}
}
class EchoLm implements LoopLm {
  async step(user: Int32Array): Promise<LmFrame | null> {
    return { text: 3, audio: user.slice() };
  }
  reset(): void {}
}

/** RingFrameSource whose wait() the simulation wakes (the real one waits on Atomics, in real time). */
class SimSource extends RingFrameSource {
  private waiter: (() => void) | null = null;
  override wait(): Promise<void> {
    return new Promise((ok) => (this.waiter = ok));
  }
  wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

const port = (sink: unknown[] = []): WorkletPort => ({ postMessage: (m: unknown) => sink.push(m), onmessage: null });
/** A microphone block: a slow ramp, so every frame is distinct and finite. */
const micBlock = (len: number, start: number) => Float32Array.from({ length: len }, (_, i) => 0.1 * Math.sin((start + i) / 500));

interface SharedRun {
  latencies: number[];
  plays: number[];
  stats: Int32Array;
  steps: number;
}

/**
 * Shared mode end to end: capture → input ring (+ header anchor) → RingFrameSource → EngineDriver
 * → Engine (encode delayed by `delay(step)` device samples) → RingFrameSink (+ StampQueue) →
 * output ring → playback → reports. `quanta` render quanta of 128 device samples.
 */
async function runShared(deviceRate: number, delay: (step: number) => number, quanta: number): Promise<SharedRun> {
  const clock = new SimClock();
  const input = RingBuffer.create(32768);
  const output = RingBuffer.create(32768);
  const stamps = StampQueue.create(256);
  const reports = StampQueue.create(256);
  const stats = new Int32Array(new SharedArrayBuffer(32 * 4));
  const capture = new CaptureCore({ ring: input.buffer as SharedArrayBuffer, deviceRate, stats: stats.buffer as SharedArrayBuffer }, port(), () => clock.now);
  const playback = new PlaybackCore(
    { ring: output.buffer as SharedArrayBuffer, stamps: stamps.buffer as SharedArrayBuffer, reports: reports.buffer as SharedArrayBuffer, deviceRate, stats: stats.buffer as SharedArrayBuffer },
    port(),
    () => clock.now,
  );
  const engine = new Engine({ codec: new SlowCodec(clock, delay), lm: new EchoLm() });
  const source = new SimSource(input);
  const driver = new EngineDriver(engine, source, new RingFrameSink(output, stamps));
  const run = driver.run();
  const out = [new Float32Array(128)];
  for (let q = 0; q < quanta; q++) {
    // One render quantum: both processors see the same currentFrame, then time moves on.
    capture.process([micBlock(128, clock.now)]);
    playback.process(out);
    clock.advance(128);
    source.wake();
    await settle();
  }
  driver.stop();
  source.wake();
  clock.advance(1 << 30);
  await run;
  const latencies: number[] = [];
  const plays: number[] = [];
  reports.drain((l, p) => {
    latencies.push(l);
    plays.push(p);
  });
  return { latencies, plays, stats, steps: engine.steps };
}

describe('frame stamps: clock and queues', () => {
  it('modelClock converts device samples to 24 kHz samples and wraps mod 2^32; clockDiff is exact across the wrap', () => {
    expect(modelClock(48000, 48000)).toBe(24000);
    expect(modelClock(44100, 44100)).toBe(24000);
    expect(modelClock(2 ** 33 + 10, 24000)).toBe(10);
    expect(clockDiff(modelClock(2 ** 32 + 5, 24000), modelClock(2 ** 32 - 3, 24000))).toBe(8);
    expect(clockMs(1920)).toBe(80);
  });

  it('RingBuffer stamp anchor: null until published, then (write index, stamp) consistently; reset clears it', () => {
    const r = RingBuffer.create(16);
    expect(r.readStamp()).toBeNull();
    r.push(new Float32Array(5));
    r.publishStamp(1000);
    expect(r.readStamp()).toEqual({ index: 5, stamp: 1000 });
    r.pop(new Float32Array(3));
    expect([r.writeIndex(), r.readIndex()]).toEqual([5, 3]);
    r.publishStamp(-7);
    expect(r.readStamp()).toEqual({ index: 5, stamp: -7 });
    r.reset();
    expect(r.readStamp()).toBeNull();
  });

  it('StampQueue: FIFO of Int32 pairs, refuses when full, wraps, drains; bad sizes throw', () => {
    const q = StampQueue.create(3, false);
    expect(q.push(1, -1)).toBe(true);
    expect(q.push(2, -2)).toBe(true);
    expect(q.push(3, -3)).toBe(true);
    expect(q.push(4, -4)).toBe(false);
    expect([q.peek(0), q.peek(1)]).toEqual([1, -1]);
    q.drop();
    expect(q.push(5, -5)).toBe(true); // wraps into the freed slot
    const got: number[][] = [];
    expect(q.drain((a, b) => got.push([a, b]))).toBe(3);
    expect(got).toEqual([[2, -2], [3, -3], [5, -5]]);
    expect(q.size()).toBe(0);
    expect(() => StampQueue.create(0)).toThrow(StampQueueError);
    expect(() => new StampQueue(new ArrayBuffer(130))).toThrow(StampQueueError);
  });

  it('LatencyWindow: percentiles over the last N, total count, refuses non-finite values', () => {
    const w = new LatencyWindow(4);
    for (const v of [100, 10, 20, 30, 40]) w.add(v);
    expect(w.summary()).toMatchObject({ count: 5, max: 40, p50: 20 });
    expect(() => w.add(NaN)).toThrow(RangeError);
  });
});

describe('mic → speaker latency through the rings, the driver and the worklet cores (fake clock)', () => {
  it('24 kHz device: every reply frame plays exactly one frame (80 ms) + the engine delay after its input frame started', async () => {
    for (const delay of [0, 640, 1280]) {
      const r = await runShared(24000, () => delay, 15 * 40); // 40 frames of 1920 = 15 quanta each
      expect(r.steps).toBeGreaterThanOrEqual(38);
      expect(r.latencies.length).toBeGreaterThanOrEqual(37);
      // The 80 ms the input frame takes to fill + the step: exact, for every frame.
      expect(new Set(r.latencies)).toEqual(new Set([FRAME_SAMPLES + delay]));
      // One reply frame starts every 1920 samples, none skipped, no underrun.
      for (let i = 1; i < r.plays.length; i++) expect(clockDiff(r.plays[i], r.plays[i - 1])).toBe(FRAME_SAMPLES);
      expect(Atomics.load(r.stats, STAT.PLAY_UNDERRUNS)).toBe(0);
      expect(Atomics.load(r.stats, STAT.PLAY_STARVED_SAMPLES)).toBe(0);
      expect(Atomics.load(r.stats, STAT.PLAY_STAMPS_UNPLAYED)).toBe(0);
      expect(Atomics.load(r.stats, STAT.PLAY_ACTIVE_SAMPLES)).toBeGreaterThan(30 * FRAME_SAMPLES);
    }
  });

  it('48 kHz device (resamplers both ways): the added engine delay shows up exactly in the latency', async () => {
    const base = await runShared(48000, () => 0, 30 * 30);
    const slow = await runShared(48000, () => 1280, 30 * 30); // 1280 device samples = 640 at 24 kHz = 26.7 ms
    for (const r of [base, slow]) {
      expect(r.latencies.length).toBeGreaterThanOrEqual(27);
      // The playback resampler starts primed with its lookahead of silence, so one buffered frame
      // plays for exactly 80 ms: no underrun at the first frame boundary, and the latency is the
      // same for every frame from the first (±1 sample of rounding).
      expect(Atomics.load(r.stats, STAT.PLAY_UNDERRUNS)).toBe(0);
      expect(Atomics.load(r.stats, STAT.PLAY_STARVED_SAMPLES)).toBe(0);
      expect(Math.max(...r.latencies) - Math.min(...r.latencies)).toBeLessThanOrEqual(1);
    }
    // First frame: 80 ms + the two resamplers' lookaheads (a few ms).
    expect(base.latencies[0]).toBeGreaterThan(FRAME_SAMPLES);
    expect(base.latencies[0]).toBeLessThan(FRAME_SAMPLES + 200);
    // The engine delay adds exactly itself, first frame and steady state.
    expect(Math.abs(slow.latencies[0] - base.latencies[0] - 640)).toBeLessThanOrEqual(1);
    expect(Math.abs(slow.latencies.at(-1)! - base.latencies.at(-1)! - 640)).toBeLessThanOrEqual(1);
  });

  it('48 kHz playback: the reported play stamp is when the frame sounds (an impulse found in the output), also after a flush', () => {
    for (const flushFirst of [false, true]) {
      let now = 0;
      const ring = RingBuffer.create(32768);
      const stamps = StampQueue.create(64);
      const reports = StampQueue.create(64);
      const sink: unknown[] = [];
      const p = port(sink);
      const core = new PlaybackCore({ ring: ring.buffer as SharedArrayBuffer, stamps: stamps.buffer as SharedArrayBuffer, reports: reports.buffer as SharedArrayBuffer, deviceRate: 48000 }, p, () => now);
      const out = [new Float32Array(128)];
      const played: number[] = [];
      const render = (quanta: number) => {
        for (let q = 0; q < quanta; q++) {
          core.process(out);
          played.push(...out[0]);
          now += 128;
        }
      };
      if (flushFirst) {
        // A previous stream's audio, then Stop (flush): none of it may sound at the next start.
        ring.push(new Float32Array(1920).fill(0.5));
        render(20);
        p.onmessage!({ data: { type: 'flush' } } as MessageEvent);
      }
      const start = played.length;
      // Two frames, 80 ms apart as an on-time engine writes them; an impulse at sample 300 of the second.
      const f = new Float32Array(1920);
      stamps.push(ring.writeIndex(), 0);
      ring.push(f);
      render(30); // 3840 device samples = 80 ms
      f[300] = 1;
      stamps.push(ring.writeIndex(), 1920);
      ring.push(f);
      render(29); // not past the end of the second frame: no underrun is due
      const got: [number, number][] = [];
      reports.drain((l, play) => got.push([l, play]));
      expect(got.length, `flush first: ${flushFirst}`).toBe(2);
      const peak = start + played.slice(start).reduce((best, v, i, a) => (Math.abs(v) > Math.abs(a[best]) ? i : best), 0);
      // The impulse sounds at (play stamp of its frame + 300) 24 kHz samples = twice that in device samples.
      expect(Math.abs(peak / 2 - (got[1][1] + 300)), `flush first: ${flushFirst}`).toBeLessThanOrEqual(1);
      expect(Atomics.load(core.stats, STAT.PLAY_UNDERRUNS)).toBe(0);
      // Nothing of the flushed stream sounds after the flush.
      expect(Math.max(...played.slice(start, peak - 100).map(Math.abs))).toBeLessThan(1e-3);
    }
  });

  it('an engine slower than real time: latency grows frame by frame and the starved playback time is counted', async () => {
    // Every 5th step takes 2.5 frames: the output ring runs dry, playback re-buffers.
    const r = await runShared(24000, (step) => (step % 5 === 4 ? 4800 : 0), 15 * 60);
    expect(Atomics.load(r.stats, STAT.PLAY_UNDERRUNS)).toBeGreaterThan(0);
    const starved = Atomics.load(r.stats, STAT.PLAY_STARVED_SAMPLES);
    const active = Atomics.load(r.stats, STAT.PLAY_ACTIVE_SAMPLES);
    expect(starved).toBeGreaterThan(0);
    expect(starved).toBeLessThan(active);
    expect(Math.max(...r.latencies)).toBeGreaterThan(FRAME_SAMPLES + 4800);
    expect(Math.min(...r.latencies)).toBeGreaterThanOrEqual(FRAME_SAMPLES);
  });

  it('message mode (no SharedArrayBuffer): the stamp rides the posted frame and both AUDIO_CHUNK packets; same exact latency', async () => {
    const clock = new SimClock();
    const posted: { type: string; pcm: Float32Array; stamp?: number }[] = [];
    const capture = new CaptureCore({ deviceRate: 24000 }, port(posted), () => clock.now);
    const toPage: unknown[] = [];
    const pbPort = port(toPage);
    const playback = new PlaybackCore({ deviceRate: 24000 }, pbPort, () => clock.now);
    const engine = new Engine({ codec: new SlowCodec(clock, () => 0), lm: new EchoLm() });
    const wire = (p: Packet): Packet => {
      const e = encodePacket(p);
      if (!e.ok) throw new Error(e.error.detail);
      const d = decodePacket(e.bytes);
      if (!d.ok) throw new Error(d.error.detail);
      return d.packet;
    };
    const out = [new Float32Array(128)];
    for (let q = 0; q < 15 * 30; q++) {
      capture.process([micBlock(128, clock.now)]);
      playback.process(out);
      clock.advance(128);
      // Page → engine → page, as AUDIO_CHUNK packets (the page forwards the posted frame at once).
      for (const f of posted.splice(0)) {
        const inPkt = wire(makePacket({ type: PacketType.AUDIO_CHUNK, pcm: f.pcm, stamp: f.stamp }));
        if (inPkt.type !== PacketType.AUDIO_CHUNK) throw new Error('not audio');
        const r = await engine.step(inPkt.pcm, { stamp: inPkt.stamp ?? null });
        const back = wire(makePacket({ type: PacketType.AUDIO_CHUNK, pcm: r.pcm, ...(r.stamp !== null ? { stamp: r.stamp } : {}) }));
        if (back.type !== PacketType.AUDIO_CHUNK) throw new Error('not audio');
        pbPort.onmessage!({ data: { type: 'frame', pcm: back.pcm, stamp: back.stamp } } as MessageEvent);
      }
    }
    pbPort.onmessage!({ data: { type: 'stats' } } as MessageEvent);
    const reply = toPage.find((m) => (m as { type: string }).type === 'stats') as { latency: number[] };
    const lat = reply.latency.filter((_, i) => i % 2 === 0);
    expect(lat.length).toBeGreaterThanOrEqual(27);
    expect(new Set(lat)).toEqual(new Set([FRAME_SAMPLES]));
    // Drained: the next reply holds only what was played since.
    pbPort.onmessage!({ data: { type: 'stats' } } as MessageEvent);
    expect((toPage.filter((m) => (m as { type: string }).type === 'stats').at(-1) as { latency: number[] }).latency).toEqual([]);
  });
});
