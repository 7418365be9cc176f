// The Channel under a stalled, closed, lossy, flooding or lying peer, on simulated time: memory
// stays bounded, losses are reported, the window never wedges, and nothing throws.
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/selftest/rng.ts';
import { FakePort, channelPair } from '../harness/fake_port.ts';
import { AUDIO_CHUNK_SAMPLES, HEADER_BYTES, type Packet, PacketType, encodePacket, makePacket } from '../../src/protocol/packet.ts';
import { Channel, ManualClock } from '../../src/protocol/index.ts';

/** A frame marked with `v` (an integer below 2^20), kept in the audio range (|x| ≤ 16) and exact in f32. */
const frame = (v: number) => new Float32Array(AUDIO_CHUNK_SAMPLES).fill(v / 65536);
const markOf = (p: Packet) => (p as Packet & { pcm: Float32Array }).pcm[0] * 65536;
const AUDIO_BYTES = HEADER_BYTES + 4 * AUDIO_CHUNK_SAMPLES;
const enc = (p: Packet) => {
  const r = encodePacket(p);
  if (!r.ok) throw new Error(r.error.detail);
  return r.bytes;
};

/** The engine's traffic: audio every 80 ms, a partial every 80 ms, metrics every 250 ms, a final every 2 s. */
function engineTraffic(a: Channel, t: number, finals: number[]) {
  if (t % 80 === 0) {
    a.sendAudio(frame(t));
    a.sendText(`partial ${t}`, false);
  }
  if (t % 250 === 0) a.sendMetadata({ kind: 'metrics', t, pad: 'x'.repeat(200) });
  if (t % 2000 === 0) {
    const r = a.sendText(`final ${t}`, true);
    if (r.ok) finals.push(r.seq);
  }
}

describe('Channel under a hostile or broken peer', () => {
  it('a closed peer: every packet that needs an ACK is reported lost, even beyond the window', () => {
    const { a, pa, clock } = pair0({ ackTimeoutMs: 1000, maxRetries: 3, maxInFlight: 64 });
    pa.closed = true;
    const lost: { seq: number; attempts: number; reason: string }[] = [];
    a.on('lost', (e) => lost.push(e));
    for (let i = 0; i < 100; i++) a.sendText(`final ${i}`, true);
    a.flush();
    // The first 64 went out: lost after 4 timeouts. The other 36 wait behind the full window:
    // they count attempts once the peer is found silent (15 s), then are lost as well.
    for (let t = 0; t < 6000; t += 100) {
      clock.advance(100);
      a.flush();
    }
    expect(lost.length).toBe(64);
    for (let t = 0; t < 15_000; t += 100) {
      clock.advance(100);
      a.flush();
    }
    expect(a.peerSilent).toBe(true);
    expect(lost.length).toBe(100);
    expect(new Set(lost.map((e) => e.seq)).size).toBe(100);
    expect(lost.every((e) => e.reason === 'no-ack')).toBe(true);
    // The window (64) let the first 64 out once; nothing ever came back, so no slot was freed.
    expect(lost.filter((e) => e.attempts === 1).length).toBe(64);
    expect(lost.filter((e) => e.attempts === 0).length).toBe(36);
    expect(a.stats().awaitingAck).toBe(0);
    expect(clock.pending).toBe(2); // only the two housekeeping ticks are left: no timer leaks
  });

  it('a stalled peer for 10 minutes: bounded queue and port, oldest audio dropped and counted, losses reported, recovery after', () => {
    const { a, b, pa, pb, clock, got } = channelPair({ tickMs: 250, heartbeatMs: 5000, silenceMs: 12000 });
    const dropped: string[] = [];
    const lost: number[] = [];
    a.on('dropped', (e) => dropped.push(e.type));
    a.on('lost', (e) => lost.push(e.seq));
    const silent: string[] = [];
    a.on('peer-silent', () => silent.push('silent'));
    a.on('peer-alive', () => silent.push('alive'));
    const finals: number[] = [];
    let maxQueued = 0;
    let maxWaiting = 0;
    // 10 minutes: a keeps producing, b never reads (its thread is blocked).
    for (let t = 10; t <= 600_000; t += 10) {
      clock.advance(10);
      engineTraffic(a, t, finals);
      a.flush();
      maxQueued = Math.max(maxQueued, a.stats().queuedBytes);
      maxWaiting = Math.max(maxWaiting, pb.waiting);
    }
    const s = a.stats();
    // Bounded: the queue by its hard limit (1 MiB), the port by the window (64 data packets)
    // plus control packets (a heartbeat every 5 s, and probes until the peer was found silent).
    expect(maxQueued).toBeLessThanOrEqual(1024 * 1024);
    expect(s.queuedBytes).toBeLessThanOrEqual(1024 * 1024);
    expect(s.queuedPackets).toBeLessThan((1024 * 1024) / HEADER_BYTES);
    expect(maxWaiting).toBeLessThanOrEqual(64 + 600_000 / 5000 + 12_000 / 1500 + 1);
    expect(s.sent.AUDIO_CHUNK + s.sent.TEXT_PARTIAL + s.sent.TEXT_FINAL + s.sent.METADATA).toBe(64);
    // 7500 frames produced; at most the 64-frame audio cap waits, the rest was dropped, oldest first.
    expect(s.dropped.AUDIO_CHUNK).toBeGreaterThan(7500 - 64 - 64);
    expect(dropped.filter((d) => d === 'AUDIO_CHUNK').length).toBe(s.dropped.AUDIO_CHUNK);
    expect(s.dropped.TEXT_PARTIAL).toBeGreaterThan(7000);
    expect(s.pressure).toBe(true);
    // Every final is accounted for: reported lost or still awaiting its ACK (a handful).
    expect(lost.length + s.awaitingAck).toBe(finals.length);
    expect(s.awaitingAck).toBeLessThanOrEqual(4);
    expect(silent).toEqual(['silent']);
    // The peer comes back: it reads its backlog and everything flows again.
    const before = got.length;
    for (let t = 0; t < 30_000; t += 10) {
      clock.advance(10);
      engineTraffic(a, 600_000 + t, finals);
      a.flush();
      pb.deliver();
      b.flush();
      pa.deliver();
    }
    expect(silent).toEqual(['silent', 'alive']);
    const fresh = got.slice(before).filter((p) => p.type === PacketType.AUDIO_CHUNK);
    expect(fresh.length).toBeGreaterThan(30_000 / 80 - 80); // the last 30 s arrive (minus the backlog's tail)
    expect(a.stats().pressure).toBe(false);
    expect(a.stats().queuedPackets).toBeLessThan(10);
    // What reaches b: the 64 packets in the port from before the stall, then the newest of the
    // backlog; the oldest audio was dropped.
    const times = fresh.map(markOf);
    expect(times.filter((t) => t > 64 * 80 && t < 600_000 - 2 * 64 * 80)).toEqual([]);
  });

  it('a lossy link (20% of messages lost both ways, 10 minutes): the window never wedges; finals delivered or reported lost', () => {
    const rng = new Rng(7);
    const { a, b, pa, pb, clock, got } = channelPair({ tickMs: 250, maxInFlight: 16, receiptEvery: 4, slotTimeoutMs: 1000 });
    pa.lose = () => rng.next() < 0.2;
    pb.lose = () => rng.next() < 0.2;
    const lost = new Set<number>();
    a.on('lost', (e) => lost.add(e.seq));
    const finals: number[] = [];
    const perMinute: number[] = [];
    let audio = 0;
    for (let t = 10; t <= 600_000; t += 10) {
      clock.advance(10);
      if (t % 80 === 0) a.sendAudio(frame(t));
      if (t % 1000 === 0) {
        const r = a.sendText(`final ${t}`, true);
        if (r.ok) finals.push(r.seq);
      }
      a.flush();
      pb.deliver();
      b.flush();
      pa.deliver();
      if (t % 60_000 === 0) {
        const n = got.filter((p) => p.type === PacketType.AUDIO_CHUNK).length;
        perMinute.push(n - audio);
        audio = n;
      }
    }
    clock.advance(10_000); // let the last ACK timers run out
    for (let i = 0; i < 50; i++) {
      a.flush();
      pb.deliver();
      pa.deliver();
      clock.advance(100);
    }
    // Every minute nearly all of the 80% of 750 frames that survive the wire arrive: the slots of
    // lost packets come back (heartbeat answers say which), the window never wedges.
    expect(perMinute.length).toBe(10);
    for (const n of perMinute) expect(n).toBeGreaterThan(0.7 * 750);
    const s = a.stats();
    expect(s.reclaimed).toBeGreaterThan(0); // slots of lost packets came back
    const delivered = new Set(got.filter((p) => p.type === PacketType.TEXT_FINAL).map((p) => p.seq));
    for (const seq of finals) expect(delivered.has(seq) || lost.has(seq), `final ${seq}`).toBe(true);
    // Lost only when all 4 attempts failed (data or ACK lost each time: 0.36^4 ≈ 2%).
    expect(lost.size).toBeLessThan(0.05 * finals.length);
    expect(s.awaitingAck).toBe(0);
    expect(s.queuedBytes).toBeLessThan(16 * AUDIO_BYTES);
    expect(b.stats().duplicates).toBeGreaterThan(0); // resends whose first copy did arrive
  });

  it('a flooding peer: every message counted once, nothing queues up on the receiving side', () => {
    const { a, pa, pb } = channelPair();
    const rng = new Rng(3);
    let valid = 0;
    let garbage = 0;
    let data = 0;
    for (let i = 0; i < 20_000; i++) {
      if (rng.next() < 0.5) {
        const requiresAck = rng.next() < 0.3;
        pa.inbox.push(enc(makePacket({ type: PacketType.AUDIO_CHUNK, pcm: frame(i) }, { seq: i, requiresAck })));
        valid++;
        data++;
      } else {
        const junk = new Uint8Array(rng.int(64));
        for (let k = 0; k < junk.length; k++) junk[k] = rng.int(256);
        pa.inbox.push(junk.buffer);
        garbage++;
      }
    }
    let packets = 0;
    a.on('packet', () => packets++);
    pa.deliver();
    const s = a.stats();
    expect(s.received.AUDIO_CHUNK).toBe(valid);
    expect(packets).toBe(data);
    const malformed = Object.values(s.malformed).reduce((x, y) => x + y, 0);
    expect(malformed).toBe(garbage);
    // ACKs and receipts go straight to the port; nothing waits in a's own queue.
    expect(s.queuedPackets).toBe(0);
    expect(pb.waiting).toBe(s.sent.ACK);
  });

  it('garbage is no sign of life: a peer sending only garbage goes silent', () => {
    const { a, pa, pb, clock } = channelPair({ silenceMs: 5000, tickMs: 500 });
    pb.closed = true; // b's own heartbeats never arrive: a hears only the garbage
    const ev: string[] = [];
    a.on('peer-silent', () => ev.push('silent'));
    a.on('peer-alive', () => ev.push('alive'));
    for (let t = 0; t < 10_000; t += 100) {
      pa.inbox.push(new Uint8Array(30).fill(0x77).buffer, 'not a packet', null);
      pa.deliver();
      clock.advance(100);
    }
    expect(ev).toEqual(['silent']);
    // A lying receipt is no sign of life either.
    pa.inbox.push(enc(makePacket({ type: PacketType.ACK, ackSeq: 0xffffffff, received: 12345 })));
    pa.deliver();
    expect(ev).toEqual(['silent']);
    expect(a.stats().badReceipts).toBe(1);
    pa.inbox.push(enc(makePacket({ type: PacketType.HEARTBEAT })));
    pa.deliver();
    expect(ev).toEqual(['silent', 'alive']);
  });

  it('a bogus receipt is ignored and counted: flow control stays on', () => {
    const { a, pa, pb } = channelPair({ maxInFlight: 4 });
    for (let i = 0; i < 10; i++) a.sendAudio(frame(i));
    a.flush();
    expect(a.stats().inFlight).toBe(4);
    expect(pb.waiting).toBe(4);
    for (const received of [1_000_000, 5, 0xffffffff]) {
      pa.inbox.push(enc(makePacket({ type: PacketType.ACK, ackSeq: 0xffffffff, received })));
      pa.deliver();
      a.flush();
    }
    expect(a.stats().badReceipts).toBe(3);
    expect(a.stats().inFlight).toBe(4);
    expect(pb.waiting).toBe(4); // nothing more went out
    pa.inbox.push(enc(makePacket({ type: PacketType.ACK, ackSeq: 0xffffffff, received: 2 })));
    pa.deliver();
    a.flush();
    expect(pb.waiting).toBe(6); // a true receipt opens two slots
    // Going backwards is bogus too (the port is ordered).
    pa.inbox.push(enc(makePacket({ type: PacketType.ACK, ackSeq: 0xffffffff, received: 1 })));
    pa.deliver();
    expect(a.stats().badReceipts).toBe(4);
  });

  it('reclaims the slots of packets the peer never counted from its answer to a heartbeat', () => {
    const { a, b, pa, pb, clock, got } = channelPair({ maxInFlight: 2, slotTimeoutMs: 3000, tickMs: 500, receiptEvery: 1 });
    for (let i = 0; i < 4; i++) a.sendAudio(frame(i));
    a.flush();
    expect(pb.waiting).toBe(2);
    pb.inbox.length = 0; // both lost in transit
    clock.advance(1500); // in flight for slotTimeoutMs / 2: a probes
    expect(pb.types()).toEqual([PacketType.HEARTBEAT]);
    expect(a.stats().reclaimed).toBe(0);
    pb.deliver(); // b answers: "I had counted 0 when your heartbeat came"
    pa.deliver();
    expect(a.stats().reclaimed).toBe(2);
    a.flush();
    pb.deliver();
    expect(got.map(markOf)).toEqual([2, 3]);
    pa.deliver();
    expect(a.stats().inFlight).toBe(0);
    expect(b.stats().received.AUDIO_CHUNK).toBe(2);
  });

  it('without answers, the slots come back once receipts stood still for slotTimeoutMs while the peer was heard', () => {
    const { a, b, pa, pb, clock } = channelPair({ maxInFlight: 2, slotTimeoutMs: 3000, tickMs: 500 });
    for (let i = 0; i < 4; i++) a.sendAudio(frame(i));
    a.flush();
    pb.closed = true; // b's answers are lost; b's other traffic too
    pb.inbox.length = 0;
    clock.advance(10_000);
    a.flush();
    expect(a.stats().reclaimed).toBe(0); // not heard: slots kept, nothing more goes out
    expect(pb.types().filter((t) => t === PacketType.AUDIO_CHUNK)).toEqual([]);
    pb.closed = false;
    b.send({ type: PacketType.HEARTBEAT });
    pa.deliver();
    clock.advance(500);
    a.flush();
    expect(a.stats().reclaimed).toBe(2);
    expect(pb.types().filter((t) => t === PacketType.AUDIO_CHUNK).length).toBe(2);
  });

  it('a slow peer keeps flow control: it counts everything late, nothing is reclaimed, the port stays short', () => {
    const { a, b, pa, pb, clock } = channelPair({ maxInFlight: 4, slotTimeoutMs: 1000, tickMs: 250, receiptEvery: 1 });
    let maxWaiting = 0;
    for (let t = 10; t <= 60_000; t += 10) {
      clock.advance(10);
      if (t % 80 === 0) a.sendAudio(frame(t));
      a.flush();
      if (t % 300 === 0) pb.deliver(1); // b reads one message every 300 ms: 4x too slow
      b.flush();
      pa.deliver();
      maxWaiting = Math.max(maxWaiting, pb.waiting);
    }
    const s = a.stats();
    expect(s.reclaimed).toBe(0);
    expect(s.badReceipts).toBe(0);
    // The port holds the window (4) and a few probes; the rest waits here and the oldest audio goes.
    expect(maxWaiting).toBeLessThanOrEqual(4 + 4);
    expect(s.dropped.AUDIO_CHUNK).toBeGreaterThan(0);
    expect(b.stats().received.AUDIO_CHUNK).toBe(s.sent.AUDIO_CHUNK - pb.types().filter((t) => t === PacketType.AUDIO_CHUNK).length);
  });

  it('send() is O(1): as fast with 40 000 packets queued as with 10', () => {
    const clock = new ManualClock();
    const port = new FakePort();
    port.peer = new FakePort();
    const a = new Channel(port, { clock, schedule: 'manual', maxInFlight: 1, queueBudgetBytes: 1024, queueLimitBytes: 1e9, maxQueuedAudio: 1e6 });
    const time = (n: number) => {
      let best = Infinity;
      for (let r = 0; r < 5; r++) {
        const t0 = performance.now();
        for (let i = 0; i < n; i++) a.sendMetadata({ i });
        best = Math.min(best, performance.now() - t0);
      }
      return best / n;
    };
    a.sendAudio(frame(0));
    a.flush(); // the window (1) is full: everything else queues
    const small = time(200);
    for (let i = 0; i < 40_000; i++) a.sendText(`f${i}`, true); // never dropped, never sent
    expect(a.stats().queuedPackets).toBeGreaterThan(40_000);
    const large = time(200);
    expect(large).toBeLessThan(Math.max(5 * small, 0.02)); // ms per send
    a.close();
  });

  it('never throws: detached buffers, hostile bodies and a port that throws', () => {
    const clock = new ManualClock();
    const port = new FakePort();
    port.peer = new FakePort();
    const a = new Channel(port, { clock, schedule: 'manual' });
    const ab = new ArrayBuffer(64);
    structuredClone(ab, { transfer: [ab] }); // detached
    const view = new Uint8Array(new ArrayBuffer(64), 8, 32);
    structuredClone(view.buffer, { transfer: [view.buffer] });
    const bad: string[] = [];
    a.on('malformed', (e) => bad.push(e.reason));
    expect(() => {
      a.receive(ab);
      a.receive(view);
      a.receive(undefined);
      a.receive({ byteLength: 40 });
    }).not.toThrow();
    // A detached buffer is 'detached' once decodePacket names it so, 'not_binary' where the Channel catches the throw.
    expect(bad.length).toBe(4);
    for (const r of bad.slice(0, 2)) expect(['detached', 'not_binary']).toContain(r);
    expect(bad.slice(2)).toEqual(['not_binary', 'not_binary']);
    const hostile = { get type(): never { throw new Error('boom'); } };
    expect(a.send(hostile as never).ok).toBe(false);
    expect(a.send(null as never).ok).toBe(false);
    port.postMessage = () => {
      throw new Error('port closed');
    };
    expect(() => {
      a.sendAudio(frame(1));
      a.flush();
      clock.advance(20_000);
    }).not.toThrow();
    expect(a.stats().sent.AUDIO_CHUNK).toBe(0);
  });
});

function pair0(opts: ConstructorParameters<typeof Channel>[1]) {
  return channelPair(opts);
}
