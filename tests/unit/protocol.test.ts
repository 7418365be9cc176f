import { describe, expect, it } from 'vitest';
import {
  ACK_BYTES,
  Channel,
  ManualClock,
  AUDIO_CHUNK_BYTES,
  AUDIO_CHUNK_SAMPLES,
  AUDIO_STAMP_BYTES,
  AUDIO_STAMP_VERSION,
  FramePool,
  HEADER_BYTES,
  NO_SEQ,
  PACKET_ERROR_REASONS,
  type Packet,
  type PacketErrorReason,
  PacketType,
  PcmFramer,
  TEXT_MAX_BYTES,
  decodePacket,
  encodePacket,
  makePacket,
  pcmToFrames,
} from '../../src/protocol/index.ts';
import { Rng } from '../../src/selftest/rng.ts';

function enc(p: Packet): ArrayBuffer {
  const r = encodePacket(p);
  if (!r.ok) throw new Error(`encode failed: ${r.error.reason}: ${r.error.detail}`);
  return r.bytes;
}

function dec(b: unknown): Packet {
  const r = decodePacket(b);
  if (!r.ok) throw new Error(`decode failed: ${r.error.reason}: ${r.error.detail}`);
  return r.packet;
}

function expectError(b: unknown, reason: PacketErrorReason, detail?: RegExp) {
  const r = decodePacket(b);
  expect(r.ok).toBe(false);
  if (!r.ok) {
    expect(r.error.reason).toBe(reason);
    if (detail) expect(r.error.detail).toMatch(detail);
  }
}

/** A raw packet with a hand-written header (to build malformed inputs). */
function raw(type: number, payload: Uint8Array, o: { priority?: number; len?: number; ack?: number; ts?: number; seq?: number } = {}): Uint8Array {
  const u8 = new Uint8Array(HEADER_BYTES + payload.length);
  const dv = new DataView(u8.buffer);
  dv.setUint8(0, type);
  dv.setUint8(1, o.priority ?? 0);
  dv.setUint32(2, o.seq ?? 7, true);
  dv.setFloat64(6, o.ts ?? 1.5, true);
  dv.setUint16(14, o.len ?? payload.length, true);
  dv.setUint8(16, o.ack ?? 0);
  u8.set(payload, HEADER_BYTES);
  return u8;
}

const pcm = new Rng(3).normals(AUDIO_CHUNK_SAMPLES, 0.3);

describe('packet codec', () => {
  it('writes the 17-byte little-endian header at the documented offsets', () => {
    const b = enc(makePacket({ type: PacketType.TEXT_FINAL, text: 'hé' }, { seq: 0x01020304, timestamp: 1234.5, requiresAck: true }));
    const dv = new DataView(b);
    expect(b.byteLength).toBe(HEADER_BYTES + 3);
    expect(dv.getUint8(0)).toBe(0x21);
    expect(dv.getUint8(1)).toBe(2); // TEXT_FINAL default priority
    expect([dv.getUint8(2), dv.getUint8(3), dv.getUint8(4), dv.getUint8(5)]).toEqual([4, 3, 2, 1]);
    expect(dv.getFloat64(6, true)).toBe(1234.5);
    expect(dv.getUint16(14, true)).toBe(3);
    expect(dv.getUint8(16)).toBe(1);
    expect(Array.from(new Uint8Array(b, 17))).toEqual([0x68, 0xc3, 0xa9]);
  });

  it('round-trips every type', () => {
    const cases: Packet[] = [
      makePacket({ type: PacketType.HEARTBEAT }, { seq: 0, timestamp: 0 }),
      makePacket({ type: PacketType.ACK, ackSeq: NO_SEQ, received: 0xfffffffe }, { seq: 0xfffffffe }),
      makePacket({ type: PacketType.AUDIO_CHUNK, pcm }, { seq: 42, timestamp: 1e12 + 0.25, requiresAck: true }),
      makePacket({ type: PacketType.TEXT_PARTIAL, text: '' }, { timestamp: -3 }),
      makePacket({ type: PacketType.TEXT_FINAL, text: 'Bonjour 👋 — ça va?' }, { priority: 0 }),
      makePacket({ type: PacketType.METADATA, meta: { kind: 'metrics', rtf: 0.93, state: ['a', null, 1], nested: { e: 'x' } } }),
    ];
    for (const p of cases) {
      const q = dec(enc(p));
      expect(q).toEqual(p);
    }
    // Also from a typed-array view at a non-zero offset.
    const b = new Uint8Array(enc(cases[2]));
    const shifted = new Uint8Array(b.length + 5);
    shifted.set(b, 5);
    expect(dec(shifted.subarray(5))).toEqual(cases[2]);
    expect(enc(cases[2]).byteLength).toBe(HEADER_BYTES + AUDIO_CHUNK_BYTES);
    expect(enc(cases[1]).byteLength).toBe(HEADER_BYTES + ACK_BYTES);
  });

  it('AUDIO_CHUNK version 2: an 8-byte stamp trailer (version 1, Int32 stamp) round-trips; version-1 chunks stay 7680 bytes without a stamp', () => {
    for (const stamp of [0, 1, -1, 123456789, -0x80000000, 0x7fffffff]) {
      const p = makePacket({ type: PacketType.AUDIO_CHUNK, pcm, stamp }, { seq: 9 });
      const b = enc(p);
      expect(b.byteLength).toBe(HEADER_BYTES + AUDIO_CHUNK_BYTES + AUDIO_STAMP_BYTES);
      const dv = new DataView(b);
      expect(dv.getUint16(14, true)).toBe(AUDIO_CHUNK_BYTES + AUDIO_STAMP_BYTES);
      expect(dv.getUint32(HEADER_BYTES + AUDIO_CHUNK_BYTES, true)).toBe(AUDIO_STAMP_VERSION);
      expect(dv.getInt32(HEADER_BYTES + AUDIO_CHUNK_BYTES + 4, true)).toBe(stamp);
      const q = dec(b) as Packet & { pcm: Float32Array; stamp?: number };
      expect(q.stamp).toBe(stamp);
      expect(Array.from(q.pcm)).toEqual(Array.from(pcm));
    }
    // Unstamped: the old size, and no stamp field after decoding (an old peer's chunks read as before).
    const plain = dec(enc(makePacket({ type: PacketType.AUDIO_CHUNK, pcm })));
    expect(enc(makePacket({ type: PacketType.AUDIO_CHUNK, pcm })).byteLength).toBe(HEADER_BYTES + AUDIO_CHUNK_BYTES);
    expect('stamp' in plain).toBe(false);
    // An unknown trailer version, or a stamp that is not an Int32, is a typed error.
    const trailer = new Uint8Array(AUDIO_CHUNK_BYTES + AUDIO_STAMP_BYTES);
    new DataView(trailer.buffer).setUint32(AUDIO_CHUNK_BYTES, 2, true);
    expectError(raw(0x10, trailer), 'bad_field', /stamp trailer version 2/);
    for (const bad of [1.5, 2 ** 31, -(2 ** 31) - 1, NaN]) {
      const r = encodePacket(makePacket({ type: PacketType.AUDIO_CHUNK, pcm, stamp: bad }));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.reason).toBe('bad_field');
    }
    // Channel.sendAudio carries the stamp to the peer.
    const got: Packet[] = [];
    const b = new Channel({ postMessage() {}, addEventListener() {}, removeEventListener() {} }, { clock: new ManualClock(0), schedule: 'manual' });
    b.on('packet', (q) => got.push(q));
    const a = new Channel({ postMessage: (m: unknown) => b.receive(m), addEventListener() {}, removeEventListener() {} }, { clock: new ManualClock(0), schedule: 'manual' });
    expect(a.sendAudio(pcm, false, -77).ok).toBe(true);
    expect(a.sendAudio(pcm).ok).toBe(true);
    a.flush();
    expect(got.map((q) => (q as { stamp?: number }).stamp)).toEqual([-77, undefined]);
    a.close();
    b.close();
  });

  it('classifies every malformed input without throwing', () => {
    expectError('hello', 'not_binary');
    expectError(null, 'not_binary');
    expectError({ byteLength: 17 }, 'not_binary');
    expectError(new Uint8Array(0), 'short_header', /0 bytes/);
    expectError(new Uint8Array(16), 'short_header', /16 bytes/);
    expectError(raw(0x20, new Uint8Array(5), { len: 6 }), 'length_mismatch', /payload 6 bytes, packet carries 5/);
    expectError(raw(0x20, new Uint8Array(5), { len: 4 }), 'length_mismatch');
    expectError(raw(0x77, new Uint8Array(0)), 'unknown_type', /0x77/);
    expectError(raw(0x00, new Uint8Array(0)), 'unknown_type');
    expectError(raw(0x20, new Uint8Array(TEXT_MAX_BYTES + 1).fill(0x61)), 'oversize_payload', /TEXT_PARTIAL maximum 4096/);
    expectError(raw(0x01, new Uint8Array(65)), 'oversize_payload', /HEARTBEAT/);
    expectError(raw(0x10, new Uint8Array(AUDIO_CHUNK_BYTES - 4)), 'bad_payload_size', /7676 bytes, expected 7680/);
    expectError(raw(0x10, new Uint8Array(AUDIO_CHUNK_BYTES + 4)), 'bad_payload_size');
    expectError(raw(0x02, new Uint8Array(4)), 'bad_payload_size', /ACK/);
    expectError(raw(0x20, new Uint8Array(1), { priority: 4 }), 'bad_field', /priority 4/);
    expectError(raw(0x20, new Uint8Array(1), { ack: 2 }), 'bad_field', /requiresAck/);
    expectError(raw(0x20, new Uint8Array(1), { ts: NaN }), 'bad_field', /timestamp/);
    expectError(raw(0x20, new Uint8Array([0xff, 0xfe])), 'bad_utf8');
    expectError(raw(0x30, new TextEncoder().encode('{"a":')), 'bad_json', /METADATA/);
    expectError(raw(0x30, new Uint8Array([0xc3])), 'bad_utf8');
  });

  it('refuses AUDIO_CHUNK payloads with NaN, infinite or absurd samples (bad_sample), both ways', () => {
    for (const [v, shown] of [[NaN, 'NaN'], [Infinity, 'Infinity'], [-Infinity, '-Infinity'], [1e30, '1[.\\d]*e\\+30'], [-17, '-17']] as const) {
      const bad = pcm.slice();
      bad[11] = v;
      bad[1900] = v;
      const r = encodePacket(makePacket({ type: PacketType.AUDIO_CHUNK, pcm: bad }));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(`${r.error.reason}: ${r.error.detail}`).toMatch(new RegExp(`^bad_sample: AUDIO_CHUNK: 2 sample\\(s\\) not finite or beyond ±16 \\(first: sample 11 = ${shown}\\)`));
      // The same bytes hand-built on the wire are refused by the decoder, with the packet's seq.
      const payload = new Uint8Array(AUDIO_CHUNK_BYTES);
      new Float32Array(payload.buffer).set(bad);
      const d = decodePacket(raw(0x10, payload, { seq: 42 }));
      expect(d.ok).toBe(false);
      if (!d.ok) {
        expect(d.error).toMatchObject({ reason: 'bad_sample', type: 0x10, seq: 42 });
        expect(d.error.detail).toMatch(/first: sample 11/);
      }
    }
    // Loud but finite audio at the limit passes.
    const loud = pcm.map((x, i) => (i % 2 ? 16 : -16));
    expect(Array.from((dec(enc(makePacket({ type: PacketType.AUDIO_CHUNK, pcm: loud }))) as { pcm: Float32Array }).pcm)).toEqual(Array.from(loud));
  });

  it('a detached buffer (transferred away) is a typed error, never a throw', () => {
    const detach = (b: ArrayBuffer) => structuredClone(b, { transfer: [b] });
    const a = enc(makePacket({ type: PacketType.TEXT_FINAL, text: 'hi' }));
    detach(a);
    expectError(a, 'detached', /detached/);
    const v = new Uint8Array(enc(makePacket({ type: PacketType.HEARTBEAT })));
    detach(v.buffer as ArrayBuffer);
    expectError(v, 'detached', /detached/);
    const f = new Float32Array(8);
    detach(f.buffer);
    expectError(f, 'detached');
    // Channel.receive goes through decodePacket: it counts both kinds, emits 'malformed' and does not throw.
    const port = { postMessage() {}, addEventListener() {}, removeEventListener() {} };
    const ch = new Channel(port, { clock: new ManualClock(0), schedule: 'manual' });
    const reasons: string[] = [];
    ch.on('malformed', (e) => reasons.push(e.reason));
    const gone = enc(makePacket({ type: PacketType.HEARTBEAT }));
    detach(gone);
    expect(() => ch.receive(gone)).not.toThrow();
    const nan = new Uint8Array(AUDIO_CHUNK_BYTES);
    new Float32Array(nan.buffer).fill(NaN);
    const delivered: Packet[] = [];
    ch.on('packet', (p) => delivered.push(p));
    expect(() => ch.receive(raw(0x10, nan))).not.toThrow();
    expect(reasons).toEqual(['detached', 'bad_sample']);
    expect(ch.stats().malformed).toMatchObject({ detached: 1, bad_sample: 1 });
    expect(delivered).toEqual([]);
    ch.close();
  });

  it('refuses to encode invalid packets with a typed error', () => {
    const bad = (p: unknown, reason: PacketErrorReason, detail: RegExp) => {
      const r = encodePacket(p as Packet);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.reason).toBe(reason);
        expect(r.error.detail).toMatch(detail);
      }
    };
    bad(makePacket({ type: PacketType.AUDIO_CHUNK, pcm: new Float32Array(1919) }), 'bad_payload_size', /1920 samples, got 1919/);
    bad(makePacket({ type: PacketType.TEXT_FINAL, text: 'x'.repeat(TEXT_MAX_BYTES + 1) }), 'oversize_payload', /TEXT_FINAL maximum/);
    bad(makePacket({ type: PacketType.METADATA, meta: { s: 'x'.repeat(70000) } }), 'oversize_payload', /u16 limit 65535/);
    const circ: Record<string, unknown> = {};
    circ.self = circ;
    bad(makePacket({ type: PacketType.METADATA, meta: circ }), 'bad_json', /not JSON-serialisable/);
    bad(makePacket({ type: PacketType.METADATA, meta: 10n }), 'bad_json', /not JSON-serialisable/);
    bad(makePacket({ type: PacketType.METADATA, meta: undefined }), 'bad_json', /no JSON form/);
    bad(makePacket({ type: PacketType.HEARTBEAT }, { priority: 9 }), 'bad_field', /priority 9/);
    bad(makePacket({ type: PacketType.HEARTBEAT }, { seq: -1 }), 'bad_field', /seq -1/);
    bad(makePacket({ type: PacketType.HEARTBEAT }, { timestamp: Infinity }), 'bad_field', /timestamp/);
    bad(makePacket({ type: PacketType.ACK, ackSeq: 2 ** 32, received: 0 }), 'bad_field', /ackSeq/);
    bad({ type: 0x55, priority: 0, seq: 0, timestamp: 0, requiresAck: false }, 'unknown_type', /0x55|85/);
  });

  it('fuzz: random bytes and mutated valid packets are always classified, never thrown', () => {
    const rng = new Rng(12345);
    const valid = [
      enc(makePacket({ type: PacketType.HEARTBEAT })),
      enc(makePacket({ type: PacketType.ACK, ackSeq: 5, received: 9 })),
      enc(makePacket({ type: PacketType.AUDIO_CHUNK, pcm })),
      enc(makePacket({ type: PacketType.TEXT_PARTIAL, text: 'partial text' })),
      enc(makePacket({ type: PacketType.TEXT_FINAL, text: 'final ü' })),
      enc(makePacket({ type: PacketType.METADATA, meta: { a: [1, 2, { b: 'c' }] } })),
    ].map((b) => new Uint8Array(b));
    const seen = new Map<string, number>();
    let ok = 0;
    const check = (u8: Uint8Array) => {
      let r;
      try {
        r = decodePacket(u8);
      } catch (e) {
        throw new Error(`decodePacket threw on [${Array.from(u8.subarray(0, 24)).join(',')}...] (${u8.length} bytes): ${(e as Error).message}`);
      }
      if (r.ok) {
        ok++;
        // Whatever decodes must re-encode and decode to the same packet.
        const again = encodePacket(r.packet);
        if (!again.ok) throw new Error(`decoded packet does not re-encode: ${again.error.detail}`);
        const back = dec(again.bytes);
        if (back.type !== r.packet.type || back.seq !== r.packet.seq || new Uint8Array(again.bytes).length !== u8.length) {
          expect(back).toEqual(r.packet);
        }
        if (ok % 50 === 0) expect(back).toEqual(r.packet); // full structural check on a sample
      } else {
        if (!PACKET_ERROR_REASONS.includes(r.error.reason) || !r.error.detail) throw new Error(`unclassified error ${JSON.stringify(r.error)}`);
        seen.set(r.error.reason, (seen.get(r.error.reason) ?? 0) + 1);
      }
    };
    for (let i = 0; i < 20000; i++) {
      const len = rng.next() < 0.5 ? rng.int(40) : rng.int(9000);
      const u8 = new Uint8Array(len);
      for (let k = 0; k < len; k++) u8[k] = rng.int(256);
      if (len >= HEADER_BYTES && rng.next() < 0.5) {
        // Plausible header: known type and consistent length, random rest.
        const dv = new DataView(u8.buffer);
        u8[0] = [0x01, 0x02, 0x10, 0x20, 0x21, 0x30][rng.int(6)];
        dv.setUint16(14, Math.min(len - HEADER_BYTES, 0xffff), true);
        if (rng.next() < 0.7) {
          u8[1] = rng.int(4);
          u8[16] = rng.int(2);
          dv.setFloat64(6, rng.next() * 1e6, true);
        }
      }
      check(u8);
    }
    for (let i = 0; i < 20000; i++) {
      const base = valid[rng.int(valid.length)];
      let u8 = base.slice();
      const kind = rng.int(4);
      if (kind === 0) {
        for (let m = 1 + rng.int(4); m > 0; m--) u8[rng.int(u8.length)] = rng.int(256);
      } else if (kind === 1) {
        u8 = u8.slice(0, rng.int(u8.length));
      } else if (kind === 2) {
        const ext = new Uint8Array(u8.length + 1 + rng.int(8));
        ext.set(u8);
        u8 = ext;
      } else {
        u8[rng.int(Math.min(u8.length, HEADER_BYTES))] ^= 1 << rng.int(8);
      }
      check(u8);
    }
    // The fuzz reached every reason a byte string can produce (not_binary needs a non-buffer).
    // (not_binary and detached need a non-buffer or a transferred one; bad_sample has its own test.)
    for (const r of PACKET_ERROR_REASONS.filter((r) => r !== 'not_binary' && r !== 'detached' && r !== 'bad_sample')) expect(seen.get(r) ?? 0, r).toBeGreaterThan(0);
    expect(ok).toBeGreaterThan(100);
  });
});

describe('PCM frame helpers', () => {
  it('PcmFramer batches 128-sample quanta into 1920-sample frames with no gaps', () => {
    const frames: number[][] = [];
    const framer = new PcmFramer((f) => frames.push(Array.from(f)));
    const block = new Float32Array(128);
    let t = 0;
    for (let b = 0; b < 31; b++) {
      for (let i = 0; i < 128; i++) block[i] = t++;
      framer.push(block);
    }
    expect(frames.length).toBe(2); // 3968 samples = 2 frames + 128
    expect(framer.buffered).toBe(128);
    expect(frames[1][0]).toBe(1920);
    expect(frames[1][1919]).toBe(3839);
    expect(framer.flushPadded()).toBe(true);
    expect(frames[2].slice(0, 129)).toEqual([...Array.from({ length: 128 }, (_, i) => 3840 + i), 0]);
    expect(framer.flushPadded()).toBe(false);
  });

  it('FramePool hands out preallocated frames and counts misses; pcmToFrames pads', () => {
    const pool = new FramePool(2);
    const a = pool.take();
    pool.take();
    expect(pool.misses).toBe(0);
    pool.take();
    expect(pool.misses).toBe(1);
    pool.give(a);
    pool.give(new Float32Array(5));
    expect(pool.available).toBe(1);
    const frames = pcmToFrames(Float32Array.from({ length: 4000 }, (_, i) => i + 1));
    expect(frames.length).toBe(3);
    expect(frames[2][159]).toBe(4000);
    expect(frames[2][160]).toBe(0);
    expect(pcmToFrames(new Float32Array(0)).length).toBe(0);
  });
});
