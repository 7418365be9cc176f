// The Channel's two parts on their own: the flow-control window (receipts validated, slots
// reclaimed) and the priority queue (FIFO lanes, O(1) drops of the oldest of a kind).
import { describe, expect, it } from 'vitest';
import { PacketType } from '../../src/protocol/packet.ts';
import { type QueuedPacket, SendQueue } from '../../src/protocol/send_queue.ts';
import { SendWindow } from '../../src/protocol/send_window.ts';

describe('SendWindow', () => {
  it('counts posts against receipts, refuses receipts for packets never sent or going backwards', () => {
    const w = new SendWindow(4, 1000);
    for (let i = 0; i < 4; i++) w.onPost(i);
    expect(w.full).toBe(true);
    expect(() => w.onPost(5)).toThrow(RangeError);
    expect(w.onReceipt(5, 10)).toBe('bogus'); // only 4 were sent
    expect(w.inFlight).toBe(4);
    expect(w.onReceipt(3, 10)).toBe('ok');
    expect(w.inFlight).toBe(1);
    expect(w.onReceipt(2, 11)).toBe('bogus'); // backwards
    expect(w.onReceipt(3, 12)).toBe('ok'); // the same count again is fine
    expect(w.onReceipt(4, 13)).toBe('ok');
    expect(w.inFlight).toBe(0);
  });

  it('wraps at 2^32', () => {
    const w = new SendWindow(2, 1000);
    const inner = w as unknown as { sent: number; peerReceived: number };
    inner.sent = 0xffffffff; // as after 2^32 - 1 packets
    inner.peerReceived = 0xffffffff;
    w.onPost(0);
    w.onPost(0);
    expect(w.sentCount).toBe(1);
    expect(w.onReceipt(0, 1)).toBe('ok'); // 0xffffffff + 1 = 0
    expect(w.inFlight).toBe(1);
    expect(w.onReceipt(1, 2)).toBe('ok');
    expect(w.inFlight).toBe(0);
  });

  it('settles a probe: packets posted before it and not counted are lost; later receipts of them undo it', () => {
    const w = new SendWindow(8, 1000);
    for (let i = 0; i < 5; i++) w.onPost(i);
    const atProbe = w.sentCount; // 5
    w.onPost(6);
    expect(w.onReceipt(3, 10)).toBe('ok'); // the peer counted 3 of the 5 before the probe
    expect(w.settleProbe(atProbe, 3)).toBe(2);
    expect(w.inFlight).toBe(1); // the one posted after the probe
    expect(w.settleProbe(atProbe, 3)).toBe(0); // idempotent
    // They were only late after all: the peer counts all 6; nothing is left in flight, nothing negative.
    expect(w.onReceipt(6, 11)).toBe('ok');
    expect(w.inFlight).toBe(0);
    for (let i = 0; i < 8; i++) w.onPost(20);
    expect(w.full).toBe(true);
  });

  it('reclaims by timeout only when the peer is heard and its receipts stood still', () => {
    const w = new SendWindow(2, 1000);
    w.onPost(0);
    w.onPost(0);
    expect(w.reclaim(5000, 0)).toBe(0); // not heard since: a stalled peer keeps its slots
    expect(w.reclaim(5000, 500)).toBe(0); // heard, but not long enough after the posts
    expect(w.reclaim(5000, 1000)).toBe(2);
    expect(w.inFlight).toBe(0);
    w.onPost(6000);
    w.onPost(6100);
    expect(w.onReceipt(1, 7500)).toBe('ok'); // progress at 7500: one more counted
    expect(w.inFlight).toBe(1);
    expect(w.reclaim(8000, 8000)).toBe(0); // receipts moved recently
    expect(w.reclaim(8600, 8600)).toBe(1); // then stood still for 1000 ms while the peer was heard
    expect(w.inFlight).toBe(0);
  });
});

describe('SendQueue', () => {
  const q = (seq: number, type: PacketType, requiresAck = false, bytes = 10): QueuedPacket => ({ seq, type, bytes: new ArrayBuffer(bytes), requiresAck, resend: false });

  it('highest lane first, FIFO within a lane; drops the oldest of a kind; counts live bytes', () => {
    const s = new SendQueue();
    s.push(q(1, PacketType.METADATA), 0);
    s.push(q(2, PacketType.AUDIO_CHUNK), 3);
    s.push(q(3, PacketType.TEXT_PARTIAL), 1);
    s.push(q(4, PacketType.AUDIO_CHUNK), 3);
    s.push(q(5, PacketType.TEXT_FINAL, true), 2);
    expect(s.count).toBe(5);
    expect(s.bytes).toBe(50);
    expect(s.countOf(PacketType.AUDIO_CHUNK)).toBe(2);
    expect(s.dropOldest(PacketType.AUDIO_CHUNK)?.seq).toBe(2);
    expect(s.dropOldest('ack')?.seq).toBe(5);
    expect(s.dropOldest(PacketType.TEXT_FINAL)).toBeNull(); // finals need an ACK: their kind is 'ack'
    const order: number[] = [];
    for (let p = s.shift(); p; p = s.shift()) order.push(p.seq);
    expect(order).toEqual([4, 3, 1]);
    expect(s.count).toBe(0);
    expect(s.bytes).toBe(0);
  });

  it('stays compact under a drop-heavy load (a stalled peer): dead entries do not pile up', () => {
    const s = new SendQueue();
    for (let i = 0; i < 100_000; i++) {
      s.push(q(i, PacketType.AUDIO_CHUNK), 3);
      if (s.countOf(PacketType.AUDIO_CHUNK) > 64) s.dropOldest(PacketType.AUDIO_CHUNK);
    }
    expect(s.count).toBe(64);
    const lanes = (s as unknown as { lanes: { length: number }[] }).lanes;
    expect(lanes[3].length).toBeLessThanOrEqual(4 * 64 + 1);
    expect(s.shift()?.seq).toBe(100_000 - 64);
  });
});
