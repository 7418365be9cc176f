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
    return this.inbox.length;
  }
  /**
   * Delivers up to n waiting messages, in order; returns how many. (Replies go to the peer's
   * inbox, never to this one, so the delivered ones are removed in one splice at the end.)
   */
  deliver(n = Infinity): number {
    let k = 0;
    const end = Math.min(this.inbox.length, n);
    for (; k < end; k++) this.listener?.({ data: this.inbox[k] } as MessageEvent);
    this.inbox.splice(0, k);
    return k;
  }
  /** Types of the waiting messages (without delivering them). */
  types(): number[] {
    return this.inbox.map((m) => new Uint8Array(m as ArrayBuffer)[0]);
  }
}

/** Two ports linked to each other. */
export function portPair(): [FakePort, FakePort] {
  const pa = new FakePort();
  const pb = new FakePort();
  pa.peer = pb;
  pb.peer = pa;
  return [pa, pb];
}

/** Two channels a ⇄ b on one ManualClock (manual flush); `got` collects b's data packets. */
export function channelPair(opts: ChannelOptions = {}, optsB: ChannelOptions = opts, start = 1000) {
  const clock = new ManualClock(start);
  const [pa, pb] = portPair();
  const a = new Channel(pa, { clock, schedule: 'manual', ...opts });
  const b = new Channel(pb, { clock, schedule: 'manual', ...optsB });
  const got: Packet[] = [];
  b.on('packet', (p) => got.push(p));
  return { clock, pa, pb, a, b, got };
}
