import { describe, expect, it } from 'vitest';
import { channelPair, portPair } from '../harness/fake_port.ts';
import { RingBuffer } from '../../src/audio/ring_buffer.ts';
import {
  AUDIO_CHUNK_SAMPLES,
  Channel,
  type ChannelOptions,
  type ChannelPort,
  ChannelToRing,
  ManualClock,
  type Packet,
  PacketType,
  RingToChannel,
  decodePacket,
} from '../../src/protocol/index.ts';

/** Channels on in-memory ports whose messages wait until the test delivers them; every post must transfer its buffer. */
function pair(opts: ChannelOptions = {}, optsB: ChannelOptions = opts) {
  const p = channelPair(opts, optsB);
  for (const port of [p.pa, p.pb]) port.onPost = (message, transfer) => expect(transfer).toEqual([message]);
  return p;
}

const frame = (v: number) => new Float32Array(AUDIO_CHUNK_SAMPLES).fill(v);
const typeName = (p: Packet) => PacketType.AUDIO_CHUNK === p.type ? `A${(p as { pcm: Float32Array }).pcm[0]}` : p.type === PacketType.TEXT_FINAL ? `F:${p.text}` : p.type === PacketType.TEXT_PARTIAL ? `P:${p.text}` : p.type === PacketType.METADATA ? `M` : `?${p.type}`;

describe('Channel', () => {
  it('delivers audio, text and metadata with timestamps and seqs', () => {
    const { a, pb, got, clock } = pair();
    a.sendAudio(frame(0.5));
    clock.advance(3);
    a.sendText('hello', false);
    a.sendMetadata({ state: 'listening' });
    a.flush();
    pb.deliver();
    expect(got.map(typeName)).toEqual(['A0.5', 'P:hello', 'M']);
    expect(got[0].timestamp).toBe(1000);
    expect(got[1].timestamp).toBe(1003);
    expect(got.map((p) => p.seq)).toEqual([0, 1, 2]);
    expect((got[2] as { meta: unknown }).meta).toEqual({ state: 'listening' });
    expect(a.stats().sent.AUDIO_CHUNK).toBe(1);
  });

  it('sends queued packets by priority: AUDIO > TEXT_FINAL > TEXT_PARTIAL > METADATA, FIFO within one', () => {
    const { a, b, pa, pb, got } = pair();
    a.sendMetadata({ n: 1 });
    a.sendText('p1', false);
    a.sendText('f1', true);
    a.sendAudio(frame(1));
    a.sendMetadata({ n: 2 });
    a.sendText('p2', false);
    a.sendAudio(frame(2));
    a.sendText('f2', true);
    expect(pb.inbox.length).toBe(0); // manual schedule: nothing before flush
    a.flush();
    pb.deliver();
    expect(got.map(typeName)).toEqual(['A1', 'A2', 'F:f1', 'F:f2', 'P:p1', 'P:p2', 'M', 'M']);
    // Both TEXT_FINAL packets required an ACK: b answered with ACKs (control, sent at once).
    expect(pa.types().filter((t) => t === PacketType.ACK).length).toBeGreaterThanOrEqual(2);
    pa.deliver();
    expect(a.stats().acksReceived).toBe(2);
    expect(b.stats().acksSent).toBeGreaterThanOrEqual(2);
  });

  it('auto-flushes on a microtask by default', async () => {
    const clock = new ManualClock();
    const [pa, pb] = portPair();
    const a = new Channel(pa, { clock });
    a.sendText('x', false);
    expect(pb.inbox.length).toBe(0);
    await Promise.resolve();
    expect(pb.inbox.length).toBe(1);
    a.close();
  });

  it('resends a requiresAck packet after the timeout and suppresses the duplicate delivery', () => {
    const { a, b, pa, pb, got, clock } = pair({ ackTimeoutMs: 500, maxRetries: 3 });
    const r = a.sendText('final words', true);
    expect(r.ok).toBe(true);
    a.flush();
    expect(pb.inbox.length).toBe(1);
    clock.advance(499);
    expect(a.stats().retries).toBe(0);
    clock.advance(1);
    a.flush();
    expect(a.stats().retries).toBe(1);
    expect(pb.inbox.length).toBe(2); // original + resend, same seq
    expect(pb.inbox.map((m) => (decodePacket(m) as { ok: true; packet: Packet }).packet.seq)).toEqual([0, 0]);
    pb.deliver();
    expect(got.map(typeName)).toEqual(['F:final words']);
    expect(b.stats().duplicates).toBe(1);
    pa.deliver();
    expect(a.stats().acksReceived).toBe(1);
    clock.advance(5000);
    a.flush();
    expect(a.stats().retries).toBe(1);
    expect(a.stats().lost).toBe(0);
  });

  it('reports a packet lost after maxRetries resends without an ACK', () => {
    const { a, pb, clock } = pair({ ackTimeoutMs: 100, maxRetries: 2 });
    const lost: unknown[] = [];
    a.on('lost', (e) => lost.push(e));
    a.send({ type: PacketType.METADATA, meta: { important: true } }, { requiresAck: true });
    a.flush();
    for (let i = 0; i < 5; i++) {
      clock.advance(100);
      a.flush();
    }
    expect(pb.types().filter((t) => t === PacketType.METADATA).length).toBe(3); // original + 2 resends
    expect(a.stats().retries).toBe(2);
    expect(a.stats().lost).toBe(1);
    expect(lost).toEqual([{ seq: 0, type: 'METADATA', attempts: 3, reason: 'no-ack' }]);
  });

  it('heartbeats every 5 s both ways and reports a silent peer, then its return', () => {
    const { a, b, pa, pb, clock } = pair({ heartbeatMs: 5000, silenceMs: 12000, tickMs: 1000 });
    const events: string[] = [];
    a.on('peer-silent', (e) => events.push(`silent ${e.silentForMs}`));
    a.on('peer-alive', () => events.push('alive'));
    clock.advance(4999);
    expect(pb.types()).toEqual([]);
    clock.advance(1001);
    expect(pb.types()).toEqual([PacketType.HEARTBEAT]);
    expect(pa.types()).toEqual([PacketType.HEARTBEAT]);
    pb.deliver();
    expect(b.stats().received.HEARTBEAT).toBe(1);
    // b's heartbeats never reach a (never delivered): a declares b silent after 12 s.
    clock.advance(12000);
    expect(events).toEqual(['silent 13000']);
    expect(a.peerSilent).toBe(true);
    clock.advance(5000);
    expect(events.length).toBe(1); // once, not every tick
    pa.deliver();
    expect(events).toEqual(['silent 13000', 'alive']);
    expect(a.peerSilent).toBe(false);
    expect(pb.types().filter((t) => t === PacketType.HEARTBEAT).length).toBe(3);
  });

  it('backpressure: drops TEXT_PARTIAL first, then raises pressure; never drops audio; recovers', () => {
    const budget = 4 * 7697 + 200; // four audio packets and a few short texts
    const { a, b, pb, pa, got } = pair({ maxInFlight: 2, queueBudgetBytes: budget, receiptEvery: 1 });
    const pressure: boolean[] = [];
    a.on('pressure', (on) => pressure.push(on));
    // The peer is stalled: 2 packets go out, the rest wait in the queue.
    for (let i = 0; i < 2; i++) a.sendAudio(frame(i));
    a.flush();
    expect(a.stats().inFlight).toBe(2);
    for (let i = 0; i < 5; i++) a.sendText(`partial ${i}`, false);
    a.sendText('final', true);
    for (let i = 2; i < 6; i++) a.sendAudio(frame(i));
    a.flush();
    expect(a.stats().dropped.TEXT_PARTIAL).toBe(0); // 4 audio + texts still fit
    expect(a.pressure).toBe(false);
    a.sendAudio(frame(6));
    expect(a.stats().dropped.TEXT_PARTIAL).toBe(5); // partials go first, oldest first
    expect(a.pressure).toBe(true);
    expect(pressure).toEqual([true]);
    a.sendAudio(frame(7));
    expect(a.stats().dropped.AUDIO_CHUNK).toBe(0);
    expect(a.stats().queuedPackets).toBe(7); // 6 audio + the final text
    // The peer catches up: receipts open the window and the queue drains.
    for (let round = 0; round < 10; round++) {
      pb.deliver();
      pa.deliver();
      a.flush();
    }
    expect(got.map(typeName)).toEqual(['A0', 'A1', 'A2', 'A3', 'A4', 'A5', 'A6', 'A7', 'F:final']);
    expect(a.pressure).toBe(false);
    expect(pressure).toEqual([true, false]);
    expect(a.stats().queuedBytes).toBe(0);
    expect(b.stats().received.AUDIO_CHUNK).toBe(8);
  });

  it('counts malformed input by reason, never throws, and reports the counters in METADATA', () => {
    const { a, b, pa, pb, clock } = pair({ tickMs: 1000 });
    const bad: string[] = [];
    b.on('malformed', (e) => bad.push(e.reason));
    expect(() => {
      pb.inbox.push('text', new ArrayBuffer(3), new Uint8Array(20).fill(0x99));
      pb.deliver();
    }).not.toThrow();
    expect(bad).toEqual(['not_binary', 'short_header', 'length_mismatch']);
    expect(b.stats().malformed.short_header).toBe(1);
    const metas: unknown[] = [];
    a.on('packet', (p) => p.type === PacketType.METADATA && metas.push(p.meta));
    clock.advance(1000);
    b.flush();
    pa.deliver();
    expect(metas.length).toBe(1);
    const m = metas[0] as { kind: string; stats: { malformed: Record<string, number> } };
    expect(m.kind).toBe('channel-stats');
    expect(m.stats.malformed).toMatchObject({ not_binary: 1, short_header: 1, length_mismatch: 1, unknown_type: 0 });
    clock.advance(3000); // no new errors: no new report
    b.flush();
    pa.deliver();
    expect(metas.length).toBe(1);
  });

  it('refuses unencodable packets with a typed result and counts them', () => {
    const { a } = pair();
    const r = a.sendAudio(new Float32Array(100));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.reason).toBe('bad_payload_size');
    expect(a.stats().encodeErrors).toBe(1);
    expect(a.stats().queuedPackets).toBe(0);
  });

  it('works over a real MessageChannel with transferred buffers', async () => {
    const mc = new MessageChannel();
    const a = new Channel(mc.port1 as unknown as ChannelPort);
    const b = new Channel(mc.port2 as unknown as ChannelPort);
    const got: Packet[] = [];
    const done = new Promise<void>((ok) => b.on('packet', (p) => (got.push(p), got.length === 3 && ok())));
    const pcm = frame(0.25);
    a.sendAudio(pcm);
    a.sendText('fin', true);
    a.sendMetadata({ x: 1 });
    expect(pcm[0]).toBe(0.25); // caller's buffer untouched
    await done;
    expect(got.map(typeName)).toEqual(['A0.25', 'F:fin', 'M']);
    await new Promise((r) => setTimeout(r, 20));
    expect(a.stats().acksReceived).toBe(1);
    a.close();
    b.close();
    mc.port1.close();
    mc.port2.close();
  });

  it('RingToChannel and ChannelToRing move PCM frames between rings through a channel', () => {
    const { a, b, pb } = pair();
    const capture = RingBuffer.create(8192);
    const playback = RingBuffer.create(4096);
    const sink = new ChannelToRing(b, playback);
    const src = Float32Array.from({ length: 3 * AUDIO_CHUNK_SAMPLES + 5 }, (_, i) => i / 8192); // audio range (|x| <= 16), exact in f32
    capture.push(src);
    const pump = new RingToChannel(capture, a);
    expect(pump.pump()).toBe(3);
    expect(capture.availableRead()).toBe(5);
    a.flush();
    pb.deliver();
    expect(sink.frames).toBe(3);
    expect(playback.availableRead()).toBe(4096);
    expect(sink.overflowSamples).toBe(3 * AUDIO_CHUNK_SAMPLES - 4096);
    const out = new Float32Array(4096);
    playback.pop(out);
    expect(out[0]).toBe(0);
    expect(out[4095]).toBe(4095 / 8192);
    sink.detach();
  });
});
