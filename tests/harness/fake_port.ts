/**
 * In-memory ChannelPort pairs for Channel tests: messages wait in the receiving port's inbox until
 * the test delivers them (a stalled peer = no deliver), and a link may lose messages or be closed.
 */
import type { ChannelOptions, ChannelPort } from '../../src/protocol/channel.ts';
import { Channel } from '../../src/protocol/channel.ts';
import { ManualClock } from '../../src/protocol/clock.ts';
import type { Packet } from '../../src/protocol/packet.ts';

export class FakePort implements ChannelPort {
  peer!: FakePort;
  inbox: unknown[] = [];
  /** Messages posted from this port that the link threw away (lossy or closed). */
  lostInTransit = 0;
  /** Messages posted from this port. */
  posted = 0;
  /** Decides per posted message whether the link loses it (default: never). */
  lose: (message: unknown) => boolean = () => false;
  /** A closed link: every message posted from this side vanishes. */
  closed = false;
  /** Checks each postMessage call (e.g. that the buffer is transferred). */
  onPost: ((message: unknown, transfer: Transferable[]) => void) | null = null;
  private listener: ((ev: MessageEvent) => void) | null = null;
  private head = 0;

  postMessage(message: unknown, transfer: Transferable[]): void {
    this.onPost?.(message, transfer);
    this.posted++;
    if (this.closed || this.lose(message)) {
      this.lostInTransit++;
      return;
    }
    this.peer.inbox.push(message);
  }
  addEventListener(_t: 'message', l: (ev: MessageEvent) => void): void {
    this.listener = l;
  }
  removeEventListener(): void {
    this.listener = null;
  }
  /** Messages waiting (not yet delivered). */
  get waiting(): number {
    return this.inbox.length - this.head;
  }
  /** Delivers up to n waiting messages; returns how many. */
  deliver(n = Infinity): number {
    let k = 0;
    while (k < n && this.head < this.inbox.length) {
      const m = this.inbox[this.head];
      this.inbox[this.head++] = undefined;
      this.listener?.({ data: m } as MessageEvent);
      k++;
    }
    if (this.head > 1024 && this.head * 2 > this.inbox.length) {
      this.inbox = this.inbox.slice(this.head);
      this.head = 0;
    }
    return k;
  }
  /** Types of the waiting messages (without delivering them). */
  types(): number[] {
    return this.inbox.slice(this.head).map((m) => new Uint8Array(m as ArrayBuffer)[0]);
  }
}

/** Two channels a ⇄ b on one ManualClock (manual flush); `got` collects b's data packets. */
export function channelPair(opts: ChannelOptions = {}, optsB: ChannelOptions = opts, start = 1000) {
  const clock = new ManualClock(start);
  const pa = new FakePort();
  const pb = new FakePort();
  pa.peer = pb;
  pb.peer = pa;
  const a = new Channel(pa, { clock, schedule: 'manual', ...opts });
  const b = new Channel(pb, { clock, schedule: 'manual', ...optsB });
  const got: Packet[] = [];
  b.on('packet', (p) => got.push(p));
  return { clock, pa, pb, a, b, got };
}
