// Seeded fuzz of the packet codec and of two Channels talking through a hostile link (loss,
// duplication, reordering, corruption, garbage, lying ACKs, detached buffers, non-binary values).
// Asserts: nothing ever throws out of decodePacket / send / receive / flush / timers, nothing
// hangs, every message handed to a channel is counted exactly once (valid by type, invalid by
// reason, matching an independent decode), memory stays bounded, and once the link is clean
// again the channels still deliver (no wedge).
// Detached buffers go to the channels always, to decodePacket directly once it classifies them.
// Cases: FUZZ_CASES (default 200 000: 10^5 codec cases and 10^5 channel operations); `npm run fuzz` runs
// 2 000 000 (10^6 of each). Seed: FUZZ_SEED (default 20261202).
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/selftest/rng.ts';
import { FakePort } from '../harness/fake_port.ts';
import {
  AUDIO_CHUNK_SAMPLES,
  Channel,
  HEADER_BYTES,
  ManualClock,
  PACKET_ERROR_REASONS,
  type Packet,
  type PacketBody,
  PacketType,
  decodePacket,
  encodePacket,
  makePacket,
  peekHeader,
} from '../../src/protocol/index.ts';

const CASES = Number(process.env.FUZZ_CASES ?? 200_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const TYPES = [PacketType.HEARTBEAT, PacketType.ACK, PacketType.AUDIO_CHUNK, PacketType.TEXT_PARTIAL, PacketType.TEXT_FINAL, PacketType.METADATA];

function randomBody(rng: Rng): PacketBody {
  switch (TYPES[rng.int(TYPES.length)]) {
    case PacketType.HEARTBEAT:
      return { type: PacketType.HEARTBEAT };
    case PacketType.ACK:
      return { type: PacketType.ACK, ackSeq: rng.next() < 0.3 ? 0xffffffff : rng.int(2 ** 32), received: rng.int(2 ** 32) };
    case PacketType.AUDIO_CHUNK: {
      // Valid audio (finite, |x| ≤ 1); corrupt samples come from the byte mutations.
      const pcm = new Float32Array(AUDIO_CHUNK_SAMPLES);
      pcm[rng.int(AUDIO_CHUNK_SAMPLES)] = Math.max(-1, Math.min(1, rng.normal() * 0.3));
      return { type: PacketType.AUDIO_CHUNK, pcm };
    }
    case PacketType.TEXT_PARTIAL:
    case PacketType.TEXT_FINAL: {
      const chars = ['a', ' ', 'ü', '日', '\u{1F600}', '\n', '\u2581'];
      const text = Array.from({ length: rng.int(40) }, () => chars[rng.int(chars.length)]).join('');
      return { type: rng.next() < 0.5 ? PacketType.TEXT_PARTIAL : PacketType.TEXT_FINAL, text };
    }
    default:
      return { type: PacketType.METADATA, meta: { k: rng.int(1000), s: 'x'.repeat(rng.int(50)), a: [1, null, true] } };
  }
}

function randomPacketBytes(rng: Rng): Uint8Array {
  const body = randomBody(rng);
  const p = makePacket(body, { seq: rng.int(2 ** 32 - 1), timestamp: rng.next() * 1e9, requiresAck: rng.next() < 0.3 });
  const r = encodePacket(p);
  if (!r.ok) throw new Error(`generator made an unencodable packet: ${r.error.detail}`);
  return new Uint8Array(r.bytes);
}

/** Mutations of a valid packet (or pure garbage): what a broken or hostile peer could send. */
function mutate(rng: Rng, u8: Uint8Array): Uint8Array {
  const k = rng.int(8);
  if (k === 0) {
    const out = u8.slice();
    for (let i = 0, n = 1 + rng.int(4); i < n; i++) out[rng.int(out.length)] ^= 1 << rng.int(8);
    return out;
  }
  if (k === 1) return u8.slice(0, rng.int(u8.length));
  if (k === 2) {
    const out = new Uint8Array(u8.length + 1 + rng.int(16));
    out.set(u8);
    return out;
  }
  if (k === 3) {
    const out = u8.slice();
    const dv = new DataView(out.buffer);
    const field = rng.int(5);
    if (field === 0) dv.setUint8(0, rng.int(256));
    else if (field === 1) dv.setUint8(1, rng.int(256));
    else if (field === 2 && out.length >= 14) dv.setFloat64(6, [NaN, Infinity, -Infinity, 1e300][rng.int(4)], true);
    else if (field === 3 && out.length >= 16) dv.setUint16(14, rng.int(65536), true);
    else if (out.length >= 17) dv.setUint8(16, rng.int(256));
    return out;
  }
  if (k === 5 && u8.length >= HEADER_BYTES + 4) {
    // A sample no microphone gives: NaN, an infinity, 1e30, just beyond ±16 (valid framing).
    const out = u8.slice();
    const at = HEADER_BYTES + 4 * rng.int((out.length - HEADER_BYTES) >> 2);
    new DataView(out.buffer).setFloat32(at, [NaN, Infinity, -Infinity, 1e30, 16.5, -17][rng.int(6)], true);
    return out;
  }
  if (k === 4) {
    const out = new Uint8Array(rng.next() < 0.5 ? rng.int(HEADER_BYTES + 8) : rng.int(9000));
    for (let i = 0; i < out.length; i++) out[i] = rng.int(256);
    return out;
  }
  return u8;
}

/** Any value a port might deliver: buffers, views at odd offsets, non-binary values. */
function asMessage(rng: Rng, u8: Uint8Array): unknown {
  const k = rng.int(10);
  if (k === 0) {
    const big = new Uint8Array(u8.length + 7);
    big.set(u8, 3);
    return big.subarray(3, 3 + u8.length);
  }
  if (k === 1) return new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  if (k === 2 && typeof SharedArrayBuffer !== 'undefined') {
    const sab = new SharedArrayBuffer(u8.length);
    new Uint8Array(sab).set(u8);
    return sab;
  }
  if (k === 3) {
    const odd = [null, undefined, 'text', 42, { type: 1 }, [1, 2, 3], new Blob([]), Symbol('x'), () => 1];
    return odd[rng.int(odd.length)];
  }
  return u8.buffer.byteLength === u8.byteLength ? u8.buffer : u8.slice().buffer;
}

function detached(rng: Rng): unknown {
  const ab = new ArrayBuffer(HEADER_BYTES + rng.int(64));
  const view = rng.next() < 0.5 ? new Uint8Array(ab, 1, 8) : null;
  structuredClone(ab, { transfer: [ab] });
  return view ?? ab;
}

/** Whether decodePacket itself classifies detached buffers (the packet codec's own hardening) instead of throwing. */
const DECODE_HANDLES_DETACHED = (() => {
  try {
    decodePacket(detached(new Rng(1)));
    return true;
  } catch {
    return false;
  }
})();

/** decodePacket, where a throw (a detached buffer) counts as invalid: what the Channel must count. */
function classify(m: unknown): 'valid' | 'invalid' {
  try {
    return decodePacket(m).ok ? 'valid' : 'invalid';
  } catch {
    return 'invalid';
  }
}

describe(`packet + channel fuzz (${CASES} cases, seed ${SEED})`, () => {
  it('decodePacket classifies every input, never throws, and what decodes re-encodes', () => {
    const rng = new Rng(SEED);
    const n = Math.floor(CASES / 2);
    const reasons = new Map<string, number>();
    let valid = 0;
    for (let i = 0; i < n; i++) {
      const m = DECODE_HANDLES_DETACHED && rng.next() < 0.01 ? detached(rng) : asMessage(rng, mutate(rng, randomPacketBytes(rng)));
      let r: ReturnType<typeof decodePacket>;
      try {
        r = decodePacket(m);
      } catch (e) {
        throw new Error(`case ${i}: decodePacket threw on ${describeMsg(m)}: ${(e as Error).message}`);
      }
      if (r.ok) {
        valid++;
        const again = encodePacket(r.packet);
        if (!again.ok) throw new Error(`case ${i}: decoded packet does not re-encode: ${again.error.detail}`);
        const back = decodePacket(again.bytes);
        if (!back.ok || back.packet.type !== r.packet.type || back.packet.seq !== r.packet.seq) throw new Error(`case ${i}: round trip changed the packet`);
      } else {
        if (!PACKET_ERROR_REASONS.includes(r.error.reason) || !r.error.detail) throw new Error(`case ${i}: unclassified ${JSON.stringify(r.error)}`);
        reasons.set(r.error.reason, (reasons.get(r.error.reason) ?? 0) + 1);
      }
    }
    expect(valid).toBeGreaterThan(n / 10);
    for (const reason of PACKET_ERROR_REASONS) expect(reasons.get(reason) ?? 0, reason).toBeGreaterThan(0);
  });

  it('two channels through a hostile link: no throw, no hang, every message counted once, bounded memory, no wedge', () => {
    const rng = new Rng(SEED ^ 0x5bd1e995);
    const clock = new ManualClock(0);
    const pa = new FakePort();
    const pb = new FakePort();
    pa.peer = pb;
    pb.peer = pa;
    const opts = { clock, schedule: 'manual' as const, tickMs: 250, ackTimeoutMs: 400, slotTimeoutMs: 1500, maxInFlight: 32, queueBudgetBytes: 64 * 1024, queueLimitBytes: 256 * 1024, maxQueuedAudio: 16 };
    const a = new Channel(pa, opts);
    const b = new Channel(pb, opts);
    let hostile = true;
    // The link: a message posted by one side is passed, lost, duplicated, corrupted, delayed
    // (reordered) or joined by garbage, and classified here as the receiver will see it.
    const expected = new Map<FakePort, { messages: number; invalid: number }>([
      [pa, { messages: 0, invalid: 0 }],
      [pb, { messages: 0, invalid: 0 }],
    ]);
    const held: { to: FakePort; m: unknown }[] = [];
    const arrive = (to: FakePort, m: unknown) => {
      const e = expected.get(to)!;
      e.messages++;
      if (classify(m) === 'invalid') e.invalid++;
      to.inbox.push(m);
    };
    /** Posts of packets that need an ACK, per sending side (seen on the wire). */
    const postsWithAck: { t: number; seq: number }[][] = [[], []];
    for (const from of [pa, pb]) {
      from.postMessage = (message: unknown) => {
        const to = from.peer;
        const h = peekHeader(message as ArrayBuffer);
        if (h && h.requiresAck === 1) postsWithAck[from === pa ? 0 : 1].push({ t: clock.now(), seq: h.seq });
        if (!hostile) return arrive(to, message);
        const u8 = new Uint8Array(message as ArrayBuffer);
        const k = rng.next();
        if (k < 0.05) return; // lost
        if (k < 0.1) {
          arrive(to, u8.slice().buffer);
          return arrive(to, message);
        }
        if (k < 0.2) return arrive(to, asMessage(rng, mutate(rng, u8)));
        if (k < 0.25) return void held.push({ to, m: message });
        if (k < 0.28) arrive(to, detached(rng));
        if (k < 0.32) arrive(to, enc({ type: PacketType.ACK, ackSeq: rng.next() < 0.5 ? 0xffffffff : rng.int(200_000), received: rng.int(2 ** 32) }));
        arrive(to, message);
      };
    }
    const channels = [a, b];
    const ports = [pa, pb];
    const sendsWithAck: number[][] = [[], []];
    let throws = 0;
    const guard = (what: string, fn: () => void) => {
      try {
        fn();
      } catch (e) {
        throws++;
        throw new Error(`${what} threw at t=${clock.now()}: ${(e as Error).stack}`);
      }
    };
    const t0 = performance.now();
    const n = CASES - Math.floor(CASES / 2);
    const check = () => {
      for (let s = 0; s < 2; s++) {
        const st = channels[s].stats();
        const e = expected.get(ports[s])!;
        const counted = Object.values(st.received).reduce((x, y) => x + y, 0);
        const invalid = Object.values(st.malformed).reduce((x, y) => x + y, 0);
        const delivered = e.messages - ports[s].waiting;
        expect(counted + invalid, `side ${s}: messages counted`).toBe(delivered);
        expect(st.queuedBytes, `side ${s}: queue`).toBeLessThanOrEqual(opts.queueLimitBytes);
        expect(st.inFlight).toBeLessThanOrEqual(opts.maxInFlight);
        // A packet awaiting its ACK is either still queued, or was posted within the last
        // (maxRetries + 1) timeouts (then it is given up): nothing waits forever.
        const horizon = clock.now() - 5 * opts.ackTimeoutMs - 1;
        postsWithAck[s] = postsWithAck[s].filter((p) => p.t > horizon);
        const recentlyPosted = new Set(postsWithAck[s].map((p) => p.seq)).size;
        expect(st.awaitingAck).toBeLessThanOrEqual(st.queuedPackets + recentlyPosted);
        expect(st.awaitingAck).toBeLessThanOrEqual(sendsWithAck[s].length);
      }
      // Timers: two housekeeping ticks plus one per packet awaiting its ACK, nothing leaked.
      expect(clock.pending).toBeLessThanOrEqual(2 + a.stats().awaitingAck + b.stats().awaitingAck);
    };
    for (let i = 0; i < n; i++) {
      const side = rng.int(2);
      const ch = channels[side];
      const op = rng.int(100);
      if (op < 40) {
        const body = rng.next() < 0.03 ? ({ type: rng.int(256), junk: true } as unknown as PacketBody) : randomBody(rng);
        const requiresAck = rng.next() < 0.2;
        guard('send', () => {
          const r = ch.send(body, { requiresAck, priority: rng.next() < 0.1 ? rng.int(6) - 1 : undefined });
          if (r.ok && requiresAck && body.type !== PacketType.ACK && body.type !== PacketType.HEARTBEAT) sendsWithAck[side].push(clock.now());
        });
      } else if (op < 60) {
        guard('flush', () => ch.flush());
      } else if (op < 85) {
        guard('receive', () => void ports[side].deliver(1 + rng.int(8)));
      } else if (op < 88 && held.length > 0) {
        const h = held.splice(rng.int(held.length), 1)[0];
        arrive(h.to, h.m);
      } else {
        guard('timers', () => clock.advance(1 + rng.int(300)));
      }
      if (i % 1000 === 999) check();
    }
    // Drain what the link still holds, then check the counts.
    for (const h of held.splice(0)) arrive(h.to, h.m);
    guard('receive', () => {
      // Answers (ACKs) cause no further answers: this settles in a few rounds.
      for (let k = 0; k < 100 && pa.waiting + pb.waiting > 0; k++) {
        pa.deliver();
        pb.deliver();
      }
    });
    check();
    // Everything delivered: each side counted as invalid exactly what an independent decode rejects.
    for (let s = 0; s < 2; s++) {
      expect(ports[s].waiting).toBe(0);
      const invalid = Object.values(channels[s].stats().malformed).reduce((x, y) => x + y, 0);
      expect(invalid, `side ${s}: invalid messages counted`).toBe(expected.get(ports[s])!.invalid);
    }
    expect(throws).toBe(0);
    expect(a.stats().badReceipts + b.stats().badReceipts).toBeGreaterThan(0);
    expect(Object.values(a.stats().malformed).reduce((x, y) => x + y, 0)).toBeGreaterThan(0);
    // A clean link again: after a few seconds, both ways deliver an acknowledged packet.
    hostile = false;
    for (const [from, to] of [[a, b], [b, a]] as const) {
      const got: Packet[] = [];
      const off = to.on('packet', (p) => got.push(p));
      clock.advance(5000);
      for (let k = 0; k < 40; k++) {
        a.flush();
        b.flush();
        pa.deliver();
        pb.deliver();
        clock.advance(100);
      }
      const before = from.stats().acksReceived;
      const r = from.sendText('after the storm', true);
      expect(r.ok).toBe(true);
      for (let k = 0; k < 40 && !got.some((p) => p.type === PacketType.TEXT_FINAL && p.text === 'after the storm'); k++) {
        a.flush();
        b.flush();
        pa.deliver();
        pb.deliver();
        clock.advance(100);
      }
      off();
      expect(got.some((p) => p.type === PacketType.TEXT_FINAL && p.text === 'after the storm')).toBe(true);
      pa.deliver();
      pb.deliver();
      expect(from.stats().acksReceived).toBeGreaterThan(before);
    }
    // No hang: the whole run is bounded (about 20 µs per case on a slow machine; generous here).
    expect(performance.now() - t0).toBeLessThan(Math.max(60_000, CASES * 0.5));
    a.close();
    b.close();
  });
});

function enc(body: PacketBody): ArrayBuffer {
  const r = encodePacket(makePacket(body));
  if (!r.ok) throw new Error(r.error.detail);
  return r.bytes;
}

function describeMsg(m: unknown): string {
  if (m instanceof ArrayBuffer) return `ArrayBuffer(${m.byteLength}) [${Array.from(new Uint8Array(m).subarray(0, 24)).join(',')}]`;
  if (ArrayBuffer.isView(m)) return `${m.constructor.name}(${m.byteLength} @ ${m.byteOffset})`;
  return typeof m;
}
