/**
 * Binary packet codec between the page and the engine Worker (and any other peer of a Channel).
 *
 * Wire format, little-endian, a fixed 17-byte header then the payload:
 *   offset 0   type         u8   (PacketType)
 *   offset 1   priority     u8   (0..3, higher is sent first; see DEFAULT_PRIORITY)
 *   offset 2   seq          u32  (per-sender sequence number, wraps; 0xFFFFFFFF is reserved = "none")
 *   offset 6   timestamp    f64  (milliseconds, sender's clock; must be finite)
 *   offset 14  payloadLength u16 (bytes after the header; must equal the bytes present)
 *   offset 16  requiresAck  u8   (0 or 1)
 *   offset 17  payload
 * Payloads by type:
 *   HEARTBEAT    0x01  empty (0..HEARTBEAT_MAX_BYTES bytes allowed, ignored)
 *   ACK          0x02  8 bytes: ackSeq u32 (the seq acknowledged, or NO_SEQ for a pure receipt),
 *                      received u32 (how many packets the acknowledging side has taken in so far,
 *                      mod 2^32; the sender's flow-control window)
 *   AUDIO_CHUNK  0x10  exactly 1920 Float32 samples = 7680 bytes (80 ms of 24 kHz mono PCM), every
 *                      one finite and within ±MAX_SAMPLE_ABS (16): a NaN, an infinity or 1e30 would
 *                      poison the codec's streaming state, so such a chunk is refused ('bad_sample').
 *                      Version 2 (stamped) appends an 8-byte trailer = 7688 bytes in all:
 *                        +7680 trailer version u32 (AUDIO_STAMP_VERSION = 1; any other value is
 *                              refused as 'bad_field'), +7684 stamp i32 (capture clock of the
 *                              frame's first sample, 24 kHz samples mod 2^32: src/audio/frame_stamps.ts).
 *                      A 7680-byte chunk (version 1) decodes as before, without a stamp.
 *   TEXT_PARTIAL 0x20  UTF-8 text, at most TEXT_MAX_BYTES
 *   TEXT_FINAL   0x21  UTF-8 text, at most TEXT_MAX_BYTES
 *   METADATA     0x30  UTF-8 JSON (metrics, state, errors), at most 65535 bytes
 *
 * `encodePacket`/`decodePacket` never throw: every malformed input yields a typed
 * `{ ok: false, error: { reason, detail } }` that the Channel counts and reports; that includes
 * an ArrayBuffer (or a view of one) that was transferred away and is detached ('detached').
 */
import { countBadSamples, MAX_SAMPLE_ABS } from './samples.ts';


export const PacketType = {
  HEARTBEAT: 0x01,
  ACK: 0x02,
  AUDIO_CHUNK: 0x10,
  TEXT_PARTIAL: 0x20,
  TEXT_FINAL: 0x21,
  METADATA: 0x30,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

/** Names for logs and counters, keyed by type code. */
export const PACKET_TYPE_NAME: Record<PacketType, PacketTypeName> = {
  [PacketType.HEARTBEAT]: 'HEARTBEAT',
  [PacketType.ACK]: 'ACK',
  [PacketType.AUDIO_CHUNK]: 'AUDIO_CHUNK',
  [PacketType.TEXT_PARTIAL]: 'TEXT_PARTIAL',
  [PacketType.TEXT_FINAL]: 'TEXT_FINAL',
  [PacketType.METADATA]: 'METADATA',
};
export type PacketTypeName = keyof typeof PacketType;
export const PACKET_TYPE_NAMES = Object.keys(PacketType) as PacketTypeName[];

export const HEADER_BYTES = 17;
/** Samples per AUDIO_CHUNK: one 80 ms Mimi frame at 24 kHz. */
export const AUDIO_CHUNK_SAMPLES = 1920;
export const AUDIO_CHUNK_BYTES = AUDIO_CHUNK_SAMPLES * 4;
/** Bytes of the stamp trailer of a stamped AUDIO_CHUNK (version u32 + stamp i32). */
export const AUDIO_STAMP_BYTES = 8;
/** The only stamp trailer version this codec writes and reads. */
export const AUDIO_STAMP_VERSION = 1;
export const ACK_BYTES = 8;
export const HEARTBEAT_MAX_BYTES = 64;
export const TEXT_MAX_BYTES = 4096;
export const MAX_PAYLOAD_BYTES = 0xffff;
/** Reserved seq value meaning "no packet" (ACK that is only a receipt). Never used as a real seq. */
export const NO_SEQ = 0xffffffff;
export const MAX_PRIORITY = 3;

/** Default priority per type: AUDIO_CHUNK (and ACK, a tiny control packet) > TEXT_FINAL > TEXT_PARTIAL > METADATA/HEARTBEAT. */
export const DEFAULT_PRIORITY: Record<PacketType, number> = {
  [PacketType.AUDIO_CHUNK]: 3,
  [PacketType.ACK]: 3,
  [PacketType.TEXT_FINAL]: 2,
  [PacketType.TEXT_PARTIAL]: 1,
  [PacketType.METADATA]: 0,
  [PacketType.HEARTBEAT]: 0,
};

/** Largest payload each type may carry (AUDIO_CHUNK and ACK must match exactly). */
export const MAX_PAYLOAD: Record<PacketType, number> = {
  [PacketType.HEARTBEAT]: HEARTBEAT_MAX_BYTES,
  [PacketType.ACK]: ACK_BYTES,
  [PacketType.AUDIO_CHUNK]: AUDIO_CHUNK_BYTES + AUDIO_STAMP_BYTES,
  [PacketType.TEXT_PARTIAL]: TEXT_MAX_BYTES,
  [PacketType.TEXT_FINAL]: TEXT_MAX_BYTES,
  [PacketType.METADATA]: MAX_PAYLOAD_BYTES,
};

/** Fields every packet has (the header, minus the payload length which the codec derives). */
export interface PacketHeader {
  /** 0..3; defaults to DEFAULT_PRIORITY[type] when built with `makePacket`. */
  priority: number;
  /** u32 sequence number (assigned by the Channel). */
  seq: number;
  /** Sender time in milliseconds. */
  timestamp: number;
  requiresAck: boolean;
}

export type PacketBody =
  | { type: typeof PacketType.HEARTBEAT }
  | { type: typeof PacketType.ACK; ackSeq: number; received: number }
  /** `stamp` (Int32): the capture clock of the frame's first sample; absent on an unstamped chunk. */
  | { type: typeof PacketType.AUDIO_CHUNK; pcm: Float32Array; stamp?: number }
  | { type: typeof PacketType.TEXT_PARTIAL; text: string }
  | { type: typeof PacketType.TEXT_FINAL; text: string }
  | { type: typeof PacketType.METADATA; meta: unknown };

export type Packet = PacketBody & PacketHeader;

export type PacketErrorReason =
  | 'not_binary' // the message is not an ArrayBuffer / typed array
  | 'short_header' // fewer than 17 bytes
  | 'length_mismatch' // header payloadLength differs from the bytes present
  | 'unknown_type'
  | 'oversize_payload' // over u16 or over the type's maximum
  | 'detached' // the ArrayBuffer was transferred away (detached): no bytes to read
  | 'bad_payload_size' // AUDIO_CHUNK not 7680 / 7688 bytes / ACK not 8 bytes / PCM not 1920 samples
  | 'bad_sample' // AUDIO_CHUNK with a NaN, infinite or out-of-range (|x| > 16) sample
  | 'bad_field' // priority > 3, requiresAck not 0/1, seq not u32, timestamp not finite, AUDIO_CHUNK stamp not an Int32 or unknown stamp version
  | 'bad_utf8'
  | 'bad_json';

export const PACKET_ERROR_REASONS: readonly PacketErrorReason[] = [
  'not_binary',
  'short_header',
  'length_mismatch',
  'unknown_type',
  'oversize_payload',
  'detached',
  'bad_payload_size',
  'bad_sample',
  'bad_field',
  'bad_utf8',
  'bad_json',
];

export interface PacketError {
  reason: PacketErrorReason;
  /** Human-readable explanation naming the field and the values seen. */
  detail: string;
  /** Type code when the header was readable. */
  type?: number;
  seq?: number;
}

export type DecodeResult = { ok: true; packet: Packet } | { ok: false; error: PacketError };
export type EncodeResult = { ok: true; bytes: ArrayBuffer } | { ok: false; error: PacketError };

// Created on first use: the AudioWorklet modules import constants from this file, and
// AudioWorkletGlobalScope has no TextEncoder/TextDecoder (a top-level `new TextEncoder()` would
// abort the worklet module's evaluation).
let encoder: TextEncoder | null = null;
let decoder: TextDecoder | null = null;
const utf8Encode = (s: string): Uint8Array => (encoder ??= new TextEncoder()).encode(s);
const utf8Decode = (b: Uint8Array): string => (decoder ??= new TextDecoder('utf-8', { fatal: true })).decode(b);

export function isPacketType(t: number): t is PacketType {
  return t in PACKET_TYPE_NAME;
}

/**
 * Builds a packet with the type's default priority, `seq` 0 and `timestamp` 0 (the Channel fills
 * both when sending), and `requiresAck` false unless given.
 */
export function makePacket(body: PacketBody, opts: Partial<PacketHeader> = {}): Packet {
  return {
    priority: DEFAULT_PRIORITY[body.type],
    seq: 0,
    timestamp: 0,
    requiresAck: false,
    ...opts,
    ...body,
  } as Packet;
}

function badSampleDetail(bad: { count: number; first: number; value: number }): string {
  return `AUDIO_CHUNK: ${bad.count} sample(s) not finite or beyond ±${MAX_SAMPLE_ABS} (first: sample ${bad.first} = ${bad.value})`;
}

/** A Uint8Array over `data`, or null when it is not binary; throws TypeError when its buffer is detached. */
function bytesOf(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (typeof SharedArrayBuffer !== 'undefined' && data instanceof SharedArrayBuffer) return new Uint8Array(data);
  return null;
}

function fail(reason: PacketErrorReason, detail: string, type?: number, seq?: number): { ok: false; error: PacketError } {
  return { ok: false, error: { reason, detail, type, seq } };
}

/**
 * Serialises a packet into a fresh ArrayBuffer (ready to transfer). Never throws.
 * Errors: bad_field (priority/seq/timestamp/ack fields), bad_payload_size (PCM not 1920 samples),
 * bad_sample (a PCM sample NaN, infinite or beyond ±MAX_SAMPLE_ABS), oversize_payload (text or JSON over the type maximum), bad_json (metadata not serialisable),
 * unknown_type.
 */
export function encodePacket(p: Packet): EncodeResult {
  const type = (p as { type: number }).type;
  if (!isPacketType(type)) return fail('unknown_type', `cannot encode unknown packet type ${type}`, type);
  const name = PACKET_TYPE_NAME[type];
  if (!Number.isInteger(p.priority) || p.priority < 0 || p.priority > MAX_PRIORITY) {
    return fail('bad_field', `${name}: priority ${p.priority} is not an integer in [0, ${MAX_PRIORITY}]`, type, p.seq);
  }
  if (!Number.isInteger(p.seq) || p.seq < 0 || p.seq > 0xffffffff) return fail('bad_field', `${name}: seq ${p.seq} is not a u32`, type);
  if (!Number.isFinite(p.timestamp)) return fail('bad_field', `${name}: timestamp ${p.timestamp} is not finite`, type, p.seq);
  let payload: Uint8Array | null = null;
  let pcm: Float32Array | null = null;
  let stamp: number | null = null;
  let ack: { ackSeq: number; received: number } | null = null;
  switch (p.type) {
    case PacketType.HEARTBEAT:
      payload = new Uint8Array(0);
      break;
    case PacketType.ACK:
      for (const f of ['ackSeq', 'received'] as const) {
        const v = p[f];
        if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) return fail('bad_field', `ACK: ${f} ${v} is not a u32`, type, p.seq);
      }
      ack = p;
      break;
    case PacketType.AUDIO_CHUNK:
      if (!(p.pcm instanceof Float32Array) || p.pcm.length !== AUDIO_CHUNK_SAMPLES) {
        const got = p.pcm instanceof Float32Array ? `${p.pcm.length} samples` : typeof p.pcm;
        return fail('bad_payload_size', `AUDIO_CHUNK: pcm must be a Float32Array of ${AUDIO_CHUNK_SAMPLES} samples, got ${got}`, type, p.seq);
      }
      {
        const bad = countBadSamples(p.pcm);
        if (bad.count) return fail('bad_sample', badSampleDetail(bad), type, p.seq);
      }
      if (p.stamp !== undefined) {
        if (!Number.isInteger(p.stamp) || p.stamp < -0x80000000 || p.stamp > 0x7fffffff) return fail('bad_field', `AUDIO_CHUNK: stamp ${p.stamp} is not an Int32`, type, p.seq);
        stamp = p.stamp;
      }
      pcm = p.pcm;
      break;
    case PacketType.TEXT_PARTIAL:
    case PacketType.TEXT_FINAL:
      if (typeof p.text !== 'string') return fail('bad_field', `${name}: text is ${typeof p.text}, expected a string`, type, p.seq);
      payload = utf8Encode(p.text);
      break;
    case PacketType.METADATA: {
      let json: string | undefined;
      try {
        json = JSON.stringify(p.meta);
      } catch (e) {
        return fail('bad_json', `METADATA: value is not JSON-serialisable (${(e as Error).message})`, type, p.seq);
      }
      if (json === undefined) return fail('bad_json', `METADATA: value of type ${typeof p.meta} has no JSON form`, type, p.seq);
      payload = utf8Encode(json);
      break;
    }
  }
  const len = pcm ? AUDIO_CHUNK_BYTES + (stamp !== null ? AUDIO_STAMP_BYTES : 0) : ack ? ACK_BYTES : payload!.byteLength;
  if (len > MAX_PAYLOAD_BYTES) return fail('oversize_payload', `${name}: payload ${len} bytes exceeds the u16 limit ${MAX_PAYLOAD_BYTES}`, type, p.seq);
  if (len > MAX_PAYLOAD[type]) return fail('oversize_payload', `${name}: payload ${len} bytes exceeds the ${name} maximum ${MAX_PAYLOAD[type]}`, type, p.seq);
  const buf = new ArrayBuffer(HEADER_BYTES + len);
  const dv = new DataView(buf);
  dv.setUint8(0, type);
  dv.setUint8(1, p.priority);
  dv.setUint32(2, p.seq, true);
  dv.setFloat64(6, p.timestamp, true);
  dv.setUint16(14, len, true);
  dv.setUint8(16, p.requiresAck ? 1 : 0);
  if (pcm) {
    for (let i = 0; i < AUDIO_CHUNK_SAMPLES; i++) dv.setFloat32(HEADER_BYTES + 4 * i, pcm[i], true);
    if (stamp !== null) {
      dv.setUint32(HEADER_BYTES + AUDIO_CHUNK_BYTES, AUDIO_STAMP_VERSION, true);
      dv.setInt32(HEADER_BYTES + AUDIO_CHUNK_BYTES + 4, stamp, true);
    }
  } else if (ack) {
    dv.setUint32(HEADER_BYTES, ack.ackSeq, true);
    dv.setUint32(HEADER_BYTES + 4, ack.received, true);
  } else {
    new Uint8Array(buf, HEADER_BYTES).set(payload!);
  }
  return { ok: true, bytes: buf };
}

/**
 * Reads the 17-byte header only (no payload checks); null when shorter than a header or when the
 * buffer is detached (transferred away).
 */
export function peekHeader(data: ArrayBuffer | ArrayBufferView): { type: number; priority: number; seq: number; timestamp: number; payloadLength: number; requiresAck: number } | null {
  let u8: Uint8Array | null;
  try {
    u8 = bytesOf(data);
  } catch {
    return null; // detached
  }
  if (!u8 || u8.byteLength < HEADER_BYTES) return null;
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  return {
    type: dv.getUint8(0),
    priority: dv.getUint8(1),
    seq: dv.getUint32(2, true),
    timestamp: dv.getFloat64(6, true),
    payloadLength: dv.getUint16(14, true),
    requiresAck: dv.getUint8(16),
  };
}

/**
 * Parses one packet. Never throws: any malformed input gives `{ ok: false, error }` with one of
 * PACKET_ERROR_REASONS ('detached' for a buffer that was transferred away; 'bad_sample' for an
 * AUDIO_CHUNK holding a NaN, infinite or out-of-range sample). PCM is copied out into a new
 * Float32Array (the input may be reused).
 */
export function decodePacket(data: unknown): DecodeResult {
  let u8: Uint8Array | null;
  try {
    u8 = bytesOf(data);
  } catch (e) {
    return fail('detached', `the packet's ArrayBuffer is detached (transferred away before it was read): ${(e as Error).message}`);
  }
  if (!u8) return fail('not_binary', `expected an ArrayBuffer or typed array, got ${data === null ? 'null' : typeof data}`);
  const h = peekHeader(u8);
  if (!h) return fail('short_header', `packet has ${u8.byteLength} bytes, the header alone needs ${HEADER_BYTES}`);
  const { type, seq } = h;
  const present = u8.byteLength - HEADER_BYTES;
  if (h.payloadLength !== present) {
    return fail('length_mismatch', `header says payload ${h.payloadLength} bytes, packet carries ${present}`, type, seq);
  }
  if (!isPacketType(type)) return fail('unknown_type', `unknown packet type 0x${type.toString(16).padStart(2, '0')}`, type, seq);
  const name = PACKET_TYPE_NAME[type];
  if (h.priority > MAX_PRIORITY) return fail('bad_field', `${name}: priority ${h.priority} > ${MAX_PRIORITY}`, type, seq);
  if (h.requiresAck > 1) return fail('bad_field', `${name}: requiresAck byte is ${h.requiresAck}, expected 0 or 1`, type, seq);
  if (!Number.isFinite(h.timestamp)) return fail('bad_field', `${name}: timestamp is ${h.timestamp}`, type, seq);
  if (type === PacketType.AUDIO_CHUNK && present !== AUDIO_CHUNK_BYTES && present !== AUDIO_CHUNK_BYTES + AUDIO_STAMP_BYTES) {
    return fail('bad_payload_size', `AUDIO_CHUNK payload is ${present} bytes, expected ${AUDIO_CHUNK_BYTES} (${AUDIO_CHUNK_SAMPLES} Float32 samples) or ${AUDIO_CHUNK_BYTES + AUDIO_STAMP_BYTES} (with the stamp trailer)`, type, seq);
  }
  if (type === PacketType.ACK && present !== ACK_BYTES) return fail('bad_payload_size', `ACK payload is ${present} bytes, expected ${ACK_BYTES}`, type, seq);
  if (present > MAX_PAYLOAD[type]) return fail('oversize_payload', `${name} payload ${present} bytes exceeds the ${name} maximum ${MAX_PAYLOAD[type]}`, type, seq);
  const head = { priority: h.priority, seq, timestamp: h.timestamp, requiresAck: h.requiresAck === 1 };
  const dv = new DataView(u8.buffer, u8.byteOffset + HEADER_BYTES, present);
  switch (type) {
    case PacketType.HEARTBEAT:
      return { ok: true, packet: { type, ...head } };
    case PacketType.ACK:
      return { ok: true, packet: { type, ...head, ackSeq: dv.getUint32(0, true), received: dv.getUint32(4, true) } };
    case PacketType.AUDIO_CHUNK: {
      const pcm = new Float32Array(AUDIO_CHUNK_SAMPLES);
      for (let i = 0; i < AUDIO_CHUNK_SAMPLES; i++) pcm[i] = dv.getFloat32(4 * i, true);
      const bad = countBadSamples(pcm);
      if (bad.count) return fail('bad_sample', badSampleDetail(bad), type, seq);
      if (present === AUDIO_CHUNK_BYTES) return { ok: true, packet: { type, ...head, pcm } };
      const version = dv.getUint32(AUDIO_CHUNK_BYTES, true);
      if (version !== AUDIO_STAMP_VERSION) return fail('bad_field', `AUDIO_CHUNK: stamp trailer version ${version}, this codec reads version ${AUDIO_STAMP_VERSION}`, type, seq);
      return { ok: true, packet: { type, ...head, pcm, stamp: dv.getInt32(AUDIO_CHUNK_BYTES + 4, true) } };
    }
    case PacketType.TEXT_PARTIAL:
    case PacketType.TEXT_FINAL:
    case PacketType.METADATA: {
      let text: string;
      try {
        text = utf8Decode(u8.subarray(HEADER_BYTES));
      } catch {
        return fail('bad_utf8', `${name} payload is not valid UTF-8`, type, seq);
      }
      if (type !== PacketType.METADATA) return { ok: true, packet: { type, ...head, text } };
      try {
        return { ok: true, packet: { type, ...head, meta: JSON.parse(text) as unknown } };
      } catch (e) {
        return fail('bad_json', `METADATA payload is not JSON (${(e as Error).message})`, type, seq);
      }
    }
  }
}
