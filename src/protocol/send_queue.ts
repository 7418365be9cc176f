/**
 * The Channel's queue of encoded data packets waiting for the flow-control window: four priority
 * lanes (3 highest), FIFO within a lane, and O(1) removal of the oldest packet of a kind for the
 * drop policy (the Channel decides what to drop; see src/protocol/channel.ts).
 *
 * Each entry sits in its lane and in one "kind" list (its type when it needs no ACK, or the common
 * list of packets that need one). Removal marks the entry dead; dead entries are skipped and
 * discarded when they reach the front of a list, so push, shift and dropOldest are all O(1)
 * amortised, whatever the queue length.
 */
import { MAX_PRIORITY, type PacketType } from './packet.ts';

/** One encoded packet waiting to be posted. */
export interface QueuedPacket {
  seq: number;
  type: PacketType;
  /** The encoded packet (ownership passes to the queue). */
  bytes: ArrayBuffer;
  requiresAck: boolean;
  /** A resend of a packet already posted once (its slot in the queue is not counted for drops). */
  resend: boolean;
  /** Set when the entry was taken out of the queue (posted, dropped or cancelled). */
  dead?: boolean;
}

/** A FIFO on a growable ring: push/shift/peek O(1). */
export class Fifo<T> {
  private buf: (T | undefined)[] = new Array(16);
  private head = 0;
  private n = 0;

  get length(): number {
    return this.n;
  }

  push(v: T): void {
    if (this.n === this.buf.length) {
      const next = new Array<T | undefined>(this.buf.length * 2);
      for (let i = 0; i < this.n; i++) next[i] = this.buf[(this.head + i) % this.buf.length];
      this.buf = next;
      this.head = 0;
    }
    this.buf[(this.head + this.n) % this.buf.length] = v;
    this.n++;
  }

  peek(): T | undefined {
    return this.n > 0 ? this.buf[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.n === 0) return undefined;
    const v = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) % this.buf.length;
    this.n--;
    return v;
  }

  clear(): void {
    this.buf = new Array(16);
    this.head = 0;
    this.n = 0;
  }
}

/** Kind lists: one per type for packets without ACK, one for all packets that need an ACK. */
type Kind = PacketType | 'ack';

export class SendQueue {
  private readonly lanes: Fifo<QueuedPacket>[] = Array.from({ length: MAX_PRIORITY + 1 }, () => new Fifo());
  private readonly kinds = new Map<Kind, Fifo<QueuedPacket>>();
  private readonly liveByKind = new Map<Kind, number>();
  private liveBytes = 0;
  private live = 0;

  /** Live (not dead) packets queued. */
  get count(): number {
    return this.live;
  }

  /** Bytes of the live packets queued. */
  get bytes(): number {
    return this.liveBytes;
  }

  /** Live packets of a kind: a type without ACK, or 'ack' for every packet that needs one (resends excluded). */
  countOf(kind: Kind): number {
    return this.liveByKind.get(kind) ?? 0;
  }

  /** Queues `q` in lane `priority` (clamped to [0, MAX_PRIORITY]). */
  push(q: QueuedPacket, priority: number): void {
    const lane = Math.max(0, Math.min(MAX_PRIORITY, priority | 0));
    q.dead = false;
    this.lanes[lane].push(q);
    this.live++;
    this.liveBytes += q.bytes.byteLength;
    if (q.resend) return; // resends are bounded by the pending packets, never dropped from here
    const kind: Kind = q.requiresAck ? 'ack' : q.type;
    let list = this.kinds.get(kind);
    if (!list) this.kinds.set(kind, (list = new Fifo()));
    list.push(q);
    this.liveByKind.set(kind, this.countOf(kind) + 1);
  }

  /** Takes the next live packet, highest lane first; null when empty. */
  shift(): QueuedPacket | null {
    for (let p = MAX_PRIORITY; p >= 0; p--) {
      const lane = this.lanes[p];
      for (let q = lane.shift(); q; q = lane.shift()) {
        if (q.dead) continue;
        this.kill(q);
        return q;
      }
    }
    return null;
  }

  /** Removes and returns the oldest live packet of `kind`, or null. */
  dropOldest(kind: Kind): QueuedPacket | null {
    const list = this.kinds.get(kind);
    if (!list) return null;
    for (let q = list.shift(); q; q = list.shift()) {
      if (q.dead) continue;
      this.kill(q);
      return q;
    }
    return null;
  }

  /** Takes `q` out of the queue if it is still in it (e.g. a resend whose ACK arrived). */
  remove(q: QueuedPacket): void {
    if (!q.dead) this.kill(q);
  }

  /** Empties the queue. */
  clear(): void {
    for (const l of this.lanes) l.clear();
    this.kinds.clear();
    this.liveByKind.clear();
    this.live = 0;
    this.liveBytes = 0;
  }

  private kill(q: QueuedPacket): void {
    q.dead = true;
    this.live--;
    this.liveBytes -= q.bytes.byteLength;
    if (!q.resend) {
      const kind: Kind = q.requiresAck ? 'ack' : q.type;
      this.liveByKind.set(kind, this.countOf(kind) - 1);
    }
    // Dead entries stay in the lists until they reach a front; bound that garbage by compacting
    // a list whose live share fell under a quarter (amortised O(1)).
    this.compact(q);
  }

  private compact(q: QueuedPacket): void {
    const kind: Kind = q.requiresAck ? 'ack' : q.type;
    const list = q.resend ? null : this.kinds.get(kind);
    if (list && list.length > 64 && this.countOf(kind) * 4 < list.length) this.kinds.set(kind, filterLive(list));
    for (let i = 0; i < this.lanes.length; i++) {
      const lane = this.lanes[i];
      if (lane.length > 64 && this.live * 4 < lane.length) this.lanes[i] = filterLive(lane);
    }
  }
}

function filterLive(list: Fifo<QueuedPacket>): Fifo<QueuedPacket> {
  const out = new Fifo<QueuedPacket>();
  for (let q = list.shift(); q; q = list.shift()) if (!q.dead) out.push(q);
  return out;
}
