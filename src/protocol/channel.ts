/**
 * Channel: packets (src/protocol/packet.ts) over a MessagePort, e.g. an in-page MessageChannel
 * between the page and the engine Worker. Each packet travels as its own ArrayBuffer, transferred.
 * A channel degrades under a stalled, lossy or hostile peer (drops and losses are counted and
 * reported) but never wedges, never grows without bound and never throws into its caller.
 *
 * Behaviour:
 * - Priority queue (src/protocol/send_queue.ts): data packets wait in four lanes and leave highest
 *   priority first (AUDIO_CHUNK 3 > TEXT_FINAL 2 > TEXT_PARTIAL 1 > METADATA 0), FIFO within a
 *   lane; every queue operation is O(1). Control packets (ACK, HEARTBEAT) skip the queue.
 * - Flow control (src/protocol/send_window.ts): the receiver reports how many data packets it has
 *   decoded (the `received` field of every ACK; a receipt-only ACK with ackSeq = NO_SEQ goes out
 *   after `receiptEvery` data packets and on every tick). The sender keeps at most `maxInFlight`
 *   data packets un-receipted, so a stalled peer makes the queue here grow (bounded, below)
 *   instead of the port's. A receipt that counts packets never sent is bogus: ignored and counted
 *   (`badReceipts`). Slots of packets the peer never counts (lost or undecodable there) are
 *   reclaimed (`reclaimed`) from the answers to heartbeats (see Liveness), and as a fallback when
 *   its receipts stop moving for `slotTimeoutMs` while it is still heard. A slow peer answers
 *   late but counts everything, and a stalled peer answers nothing: neither loses flow control.
 * - Backpressure and bounds, checked at every send:
 *   1. over `queueBudgetBytes`: the oldest TEXT_PARTIAL packets (without ACK) are dropped; if still
 *      over, `pressure` turns true (event 'pressure') and the engine should skip decode steps until
 *      it turns false (queue at or below half the budget);
 *   2. more than `maxQueuedAudio` AUDIO_CHUNK packets (without ACK) queued, i.e. the peer stalls:
 *      the oldest audio is dropped (stale audio is worth less than fresh);
 *   3. over `queueLimitBytes` (hard bound): the oldest METADATA, then AUDIO_CHUNK, then
 *      TEXT_PARTIAL without ACK are dropped, and last the oldest packet that needs an ACK, which is
 *      reported 'lost' (reason 'queue-limit').
 *   Every drop is counted in `dropped[type]` and raised as 'dropped'.
 * - Reliability: packets sent with `requiresAck` are acknowledged by seq; from send(), each
 *   `ackTimeoutMs` without an ACK counts one attempt and queues a resend (same seq; at most one
 *   queued at a time), whether or not the window let the previous copy out; after `maxRetries`
 *   such timeouts the packet is reported lost (event 'lost', reason 'no-ack'). A packet still
 *   waiting for its first post counts attempts only while the peer is silent (a live peer's
 *   window moves; a dead peer's does not, and its packets are reported lost all the same). The receiver suppresses duplicate deliveries of
 *   a resent packet (re-ACKs them).
 * - Liveness: a HEARTBEAT every `heartbeatMs` both ways, answered with a receipt ACK whose ackSeq
 *   is the heartbeat's seq. As the port is ordered, that answer tells exactly which data packets
 *   posted before the heartbeat the peer never counted: their slots are reclaimed at once. A
 *   heartbeat also goes out as such a probe when a packet has been in flight for slotTimeoutMs / 2
 *   (then every slotTimeoutMs while unanswered). A peer from which no valid packet came for
 *   more than `silenceMs` raises 'peer-silent' once, and 'peer-alive' when a valid packet comes
 *   again. Malformed messages and bogus receipts do not count as signs of life.
 * - Errors: a malformed incoming message (detached buffers included) is never thrown into the
 *   loop; it is counted by reason, raised as 'malformed', and the counters go to the peer in a
 *   METADATA packet `{ kind: 'channel-stats', ... }` at the next tick when any error counter
 *   changed. Every message handed to receive() is counted exactly once, in `received[type]` or in
 *   `malformed[reason]`.
 * Time comes from an injectable Clock (ManualClock in tests); flushing from an injectable scheduler.
 */
import { type Clock, realClock } from './clock.ts';
import {
  DEFAULT_PRIORITY,
  MAX_PRIORITY,
  NO_SEQ,
  PACKET_ERROR_REASONS,
  PACKET_TYPE_NAME,
  PACKET_TYPE_NAMES,
  type Packet,
  type PacketBody,
  type PacketError,
  type PacketErrorReason,
  PacketType,
  type PacketTypeName,
  decodePacket,
  encodePacket,
} from './packet.ts';
import { type QueuedPacket, SendQueue } from './send_queue.ts';
import { SendWindow } from './send_window.ts';

/** The subset of MessagePort the Channel uses (MessagePort, Worker, worker_threads ports fit). */
export interface ChannelPort {
  postMessage(message: unknown, transfer: Transferable[]): void;
  addEventListener(type: 'message', listener: (ev: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (ev: MessageEvent) => void): void;
  start?(): void;
}

export interface ChannelOptions {
  clock?: Clock;
  /** How a flush is deferred after send(): default queueMicrotask; 'manual' = only flush() sends. */
  schedule?: ((fn: () => void) => void) | 'manual';
  /** Heartbeat period, ms (default 5000). */
  heartbeatMs?: number;
  /** Peer silence threshold, ms (default 15000). */
  silenceMs?: number;
  /** Housekeeping period (heartbeat due? silence? receipts, reclaims, stats report), ms (default 1000). */
  tickMs?: number;
  /** Wait for an ACK before counting an attempt and resending, ms (default 1000). */
  ackTimeoutMs?: number;
  /** Resends before a requiresAck packet is reported lost (default 3). */
  maxRetries?: number;
  /** Data packets sent but not yet receipted by the peer (default 64). */
  maxInFlight?: number;
  /** Receipt after this many data packets received (default 8; keep ≤ the peer's maxInFlight / 2). */
  receiptEvery?: number;
  /**
   * Receipts standing still this long (ms) while packets are in flight and the peer is heard: the
   * slots of those packets are reclaimed (default 3000; keep well above the peer's tickMs).
   */
  slotTimeoutMs?: number;
  /** Queued bytes above which TEXT_PARTIAL is dropped and then pressure raised (default 256 KiB). */
  queueBudgetBytes?: number;
  /** AUDIO_CHUNK packets (without ACK) queued at most; the oldest are dropped beyond (default 64 = 5.1 s). */
  maxQueuedAudio?: number;
  /** Hard bound on queued bytes (default 1 MiB, at least queueBudgetBytes). */
  queueLimitBytes?: number;
  /** Seqs remembered for duplicate suppression (default 256). */
  dedupeWindow?: number;
}

type Counts<K extends string> = Record<K, number>;

/** Snapshot of the channel's counters (also what is sent in the 'channel-stats' METADATA). */
export interface ChannelStats {
  sent: Counts<PacketTypeName>;
  /** Valid incoming packets by type (duplicates included). */
  received: Counts<PacketTypeName>;
  /** Queued packets dropped by the bounds (see the module doc). */
  dropped: Counts<PacketTypeName>;
  /** Incoming messages that were not valid packets, by reason. */
  malformed: Counts<PacketErrorReason>;
  /** send() calls refused because the packet could not be encoded. */
  encodeErrors: number;
  retries: number;
  acksSent: number;
  acksReceived: number;
  /** requiresAck packets given up on (no ACK after maxRetries, or dropped at the queue limit). */
  lost: number;
  duplicates: number;
  /** ACKs whose `received` counted packets never sent, or went backwards (ignored). */
  badReceipts: number;
  /** Window slots reclaimed from packets the peer never counted. */
  reclaimed: number;
  queuedPackets: number;
  queuedBytes: number;
  /** Data packets posted and not yet receipted (≤ maxInFlight). */
  inFlight: number;
  /** requiresAck packets sent (or queued) and neither acknowledged nor given up yet. */
  awaitingAck: number;
  pressure: boolean;
  peerSilent: boolean;
}

export interface ChannelEvents {
  /** A decoded data packet from the peer (never ACK/HEARTBEAT, never a duplicate). */
  packet: Packet;
  malformed: PacketError;
  /**
   * A requiresAck packet given up on. `attempts`: times it was posted (0 when it never left the
   * queue). `reason`: 'no-ack' (maxRetries resends unanswered) or 'queue-limit' (dropped at the
   * hard queue bound before its ACK).
   */
  lost: { seq: number; type: PacketTypeName; attempts: number; reason: 'no-ack' | 'queue-limit' };
  /** A queued packet without ACK dropped by a bound. */
  dropped: { seq: number; type: PacketTypeName };
  pressure: boolean;
  'peer-silent': { silentForMs: number };
  'peer-alive': { silentForMs: number };
}

export type SendResult = { ok: true; seq: number } | { ok: false; error: PacketError };

interface Pending {
  bytes: ArrayBuffer;
  type: PacketType;
  /** Times posted. */
  posts: number;
  /** Ack timeouts so far (each queues a resend). */
  attempts: number;
  timer: unknown;
  /** The entry of this packet still in the queue (original or resend), if any. */
  queued: QueuedPacket | null;
}

const zeros = <K extends string>(keys: readonly K[]): Counts<K> => Object.fromEntries(keys.map((k) => [k, 0])) as Counts<K>;
const isControl = (t: number) => t === PacketType.ACK || t === PacketType.HEARTBEAT;
/** Unanswered heartbeats remembered for settling the window. */
const MAX_PROBES = 8;
const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class Channel {
  private readonly clock: Clock;
  private readonly schedule: ((fn: () => void) => void) | null;
  private readonly o: Required<Omit<ChannelOptions, 'clock' | 'schedule'>>;
  private readonly queue = new SendQueue();
  private readonly window: SendWindow;
  private nextSeq = 0;
  /** Data packets taken in from the peer (mod 2^32) and how many since our last ACK. */
  private dataReceived = 0;
  private sinceReceipt = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly seen = new Set<number>();
  private readonly seenOrder: number[] = [];
  private seenHead = 0;
  /** Heartbeats not yet answered: seq → data packets posted before it (at most MAX_PROBES). */
  private readonly probes = new Map<number, number>();
  /** When the last valid packet came from the peer. */
  private lastHeard: number;
  private lastHeartbeat: number;
  private silent = false;
  private pressureOn = false;
  private flushScheduled = false;
  private tickTimer: unknown = null;
  private closed = false;
  private lastErrorKey = '';
  private readonly listeners = new Map<keyof ChannelEvents, Set<(e: never) => void>>();
  private readonly counters = {
    sent: zeros(PACKET_TYPE_NAMES),
    received: zeros(PACKET_TYPE_NAMES),
    dropped: zeros(PACKET_TYPE_NAMES),
    malformed: zeros(PACKET_ERROR_REASONS),
    encodeErrors: 0,
    retries: 0,
    acksSent: 0,
    acksReceived: 0,
    lost: 0,
    duplicates: 0,
    badReceipts: 0,
    reclaimed: 0,
  };
  private readonly onMessage = (ev: MessageEvent) => this.receive(ev?.data);

  /**
   * Attaches to `port` (calls port.start()) and starts the heartbeat/housekeeping timer.
   * @throws RangeError for option values out of range (counts < 1, times ≤ 0).
   */
  constructor(private readonly port: ChannelPort, opts: ChannelOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.schedule = opts.schedule === 'manual' ? null : (opts.schedule ?? ((fn) => queueMicrotask(fn)));
    const budget = opts.queueBudgetBytes ?? 256 * 1024;
    this.o = {
      heartbeatMs: opts.heartbeatMs ?? 5000,
      silenceMs: opts.silenceMs ?? 15000,
      tickMs: opts.tickMs ?? 1000,
      ackTimeoutMs: opts.ackTimeoutMs ?? 1000,
      maxRetries: opts.maxRetries ?? 3,
      maxInFlight: opts.maxInFlight ?? 64,
      receiptEvery: opts.receiptEvery ?? 8,
      slotTimeoutMs: opts.slotTimeoutMs ?? 3000,
      queueBudgetBytes: budget,
      maxQueuedAudio: opts.maxQueuedAudio ?? 64,
      queueLimitBytes: Math.max(opts.queueLimitBytes ?? 1024 * 1024, budget),
      dedupeWindow: opts.dedupeWindow ?? 256,
    };
    const o = this.o;
    for (const k of ['maxInFlight', 'receiptEvery', 'maxQueuedAudio', 'dedupeWindow'] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new RangeError(`Channel: ${k} (${o[k]}) must be an integer ≥ 1`);
    }
    for (const k of ['heartbeatMs', 'silenceMs', 'tickMs', 'ackTimeoutMs', 'slotTimeoutMs', 'queueBudgetBytes'] as const) {
      if (!(o[k] > 0)) throw new RangeError(`Channel: ${k} (${o[k]}) must be > 0`);
    }
    if (!Number.isInteger(o.maxRetries) || o.maxRetries < 0) throw new RangeError(`Channel: maxRetries (${o.maxRetries}) must be an integer ≥ 0`);
    this.window = new SendWindow(o.maxInFlight, o.slotTimeoutMs);
    this.lastHeard = this.clock.now();
    this.lastHeartbeat = this.clock.now();
    this.lastErrorKey = this.errorKey();
    port.addEventListener('message', this.onMessage);
    port.start?.();
    this.armTick();
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof ChannelEvents>(name: K, fn: (e: ChannelEvents[K]) => void): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(fn as (e: never) => void);
    return () => set.delete(fn as (e: never) => void);
  }

  private emit<K extends keyof ChannelEvents>(name: K, e: ChannelEvents[K]): void {
    const set = this.listeners.get(name) as Set<(e: ChannelEvents[K]) => void> | undefined;
    if (!set) return;
    for (const fn of set) {
      try {
        fn(e);
      } catch (err) {
        // A listener's bug must not break the channel; surface it asynchronously.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** True while the send queue is over budget after dropping TEXT_PARTIAL: skip a decode step. */
  get pressure(): boolean {
    return this.pressureOn;
  }

  /** True once the peer has been silent for longer than silenceMs (until heard again). */
  get peerSilent(): boolean {
    return this.silent;
  }

  /** Data packets waiting in the send queue (O(1); stats() has it too). */
  get queuedPackets(): number {
    return this.queue.count;
  }

  /**
   * Queues a data packet (AUDIO_CHUNK, TEXT_*, METADATA) or sends a control packet at once.
   * Assigns seq and timestamp. O(1) (amortised). Never throws: an unencodable packet returns
   * `{ ok: false, error }` (counted in encodeErrors); a closed channel returns a bad_field error.
   * The PCM of an AUDIO_CHUNK is copied, so the caller may reuse it.
   */
  send(body: PacketBody, opts: { requiresAck?: boolean; priority?: number } = {}): SendResult {
    let type: PacketType | undefined;
    try {
      type = (body as { type?: PacketType } | null)?.type;
      if (this.closed) return { ok: false, error: { reason: 'bad_field', detail: 'channel is closed', type } };
      const seq = this.takeSeq();
      const requiresAck = !!opts?.requiresAck && !isControl(type as number);
      const priority = opts?.priority ?? DEFAULT_PRIORITY[type as PacketType];
      const enc = encodePacket({ ...body, priority, seq, timestamp: this.clock.now(), requiresAck } as Packet);
      if (!enc.ok) {
        this.counters.encodeErrors++;
        return enc;
      }
      const t = type as PacketType;
      if (isControl(t)) {
        if (this.post(t, enc.bytes) && t === PacketType.HEARTBEAT) this.noteProbe(seq);
        return { ok: true, seq };
      }
      const q: QueuedPacket = { seq, type: t, bytes: enc.bytes, requiresAck, resend: false };
      this.queue.push(q, Math.min(priority, MAX_PRIORITY));
      if (requiresAck) {
        // The ACK clock starts now, not at the first post: a packet stuck behind a full window
        // is resent (once it can go) or reported lost on the same schedule.
        const pend: Pending = { bytes: enc.bytes, type: t, posts: 0, attempts: 0, timer: null, queued: q };
        this.pending.set(seq, pend);
        this.armAckTimer(seq, pend);
      }
      this.applyBounds();
      this.requestFlush();
      return { ok: true, seq };
    } catch (e) {
      // A hostile body (throwing getters) or listener-free failure: refused, never thrown.
      this.counters.encodeErrors++;
      return { ok: false, error: { reason: 'bad_field', detail: `send failed: ${describe(e)}`, type } };
    }
  }

  /**
   * An 80 ms frame of 24 kHz PCM (1920 samples). `stamp` (an Int32, or null for none): the
   * capture clock of the frame's first sample, sent in the AUDIO_CHUNK's version-2 trailer
   * (src/protocol/packet.ts); a non-Int32 stamp is refused as 'bad_field'.
   */
  sendAudio(pcm: Float32Array, requiresAck = false, stamp: number | null = null): SendResult {
    return this.send(stamp === null ? { type: PacketType.AUDIO_CHUNK, pcm } : { type: PacketType.AUDIO_CHUNK, pcm, stamp }, { requiresAck });
  }

  /** Text of the inner monologue: partial (may be superseded and dropped) or final (acknowledged). */
  sendText(text: string, final: boolean): SendResult {
    return final
      ? this.send({ type: PacketType.TEXT_FINAL, text }, { requiresAck: true })
      : this.send({ type: PacketType.TEXT_PARTIAL, text });
  }

  /** JSON metadata: metrics, state, errors. */
  sendMetadata(meta: unknown, requiresAck = false): SendResult {
    return this.send({ type: PacketType.METADATA, meta }, { requiresAck });
  }

  /** Posts queued data packets, highest priority first, while the in-flight window allows. */
  flush(): void {
    this.flushScheduled = false;
    if (this.closed) return;
    while (!this.window.full) {
      const q = this.queue.shift();
      if (!q) break;
      if (q.requiresAck) {
        const pend = this.pending.get(q.seq);
        if (!pend) continue; // ACKed or given up while waiting
        pend.queued = null;
        // Keep the original bytes for resends; post a copy (the posted buffer is transferred).
        if (!this.post(q.type, q.bytes.slice(0))) continue;
        pend.posts++;
      } else if (!this.post(q.type, q.bytes)) continue;
      this.window.onPost(this.clock.now());
    }
    this.updatePressure();
  }

  /** Counter snapshot. */
  stats(): ChannelStats {
    const c = this.counters;
    return {
      sent: { ...c.sent },
      received: { ...c.received },
      dropped: { ...c.dropped },
      malformed: { ...c.malformed },
      encodeErrors: c.encodeErrors,
      retries: c.retries,
      acksSent: c.acksSent,
      acksReceived: c.acksReceived,
      lost: c.lost,
      duplicates: c.duplicates,
      badReceipts: c.badReceipts,
      reclaimed: c.reclaimed,
      queuedPackets: this.queue.count,
      queuedBytes: this.queue.bytes,
      inFlight: this.window.inFlight,
      awaitingAck: this.pending.size,
      pressure: this.pressureOn,
      peerSilent: this.silent,
    };
  }

  /** Stops timers and detaches from the port; queued and pending packets are discarded. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.port.removeEventListener('message', this.onMessage);
    if (this.tickTimer !== null) this.clock.clearTimeout(this.tickTimer);
    for (const p of this.pending.values()) if (p.timer !== null) this.clock.clearTimeout(p.timer);
    this.pending.clear();
    this.queue.clear();
  }

  /**
   * Handles one incoming message (normally called by the port listener; public for tests and for
   * hosts that route messages themselves). Never throws: a message that cannot be read (not
   * binary, detached, malformed) is counted in malformed[reason] and raised as 'malformed'.
   */
  receive(data: unknown): void {
    if (this.closed) return;
    let res: ReturnType<typeof decodePacket>;
    try {
      res = decodePacket(data);
    } catch (e) {
      // e.g. a detached ArrayBuffer (its bytes were transferred away): nothing can be read.
      res = { ok: false, error: { reason: 'not_binary', detail: `message could not be read (${describe(e)}); detached buffer?` } };
    }
    if (!res.ok) {
      // Neither counted for flow control (the peer's window only counts packets we decode) nor
      // as a sign of life.
      this.counters.malformed[res.error.reason]++;
      this.emit('malformed', res.error);
      return;
    }
    const p = res.packet;
    this.counters.received[PACKET_TYPE_NAME[p.type]]++;
    if (p.type === PacketType.ACK) {
      if (this.window.onReceipt(p.received, this.clock.now()) === 'bogus') {
        this.counters.badReceipts++;
        return; // a lying ACK is no sign of life either
      }
      this.heard();
      const probe = this.probes.get(p.ackSeq);
      if (probe !== undefined) {
        this.probes.delete(p.ackSeq);
        this.counters.reclaimed += this.window.settleProbe(probe, p.received);
      }
      this.onAck(p.ackSeq);
      return;
    }
    this.heard();
    if (p.type === PacketType.HEARTBEAT) {
      // Answered with our receipt, acknowledging the heartbeat's seq: the sender learns exactly
      // which of its packets before the heartbeat we never counted (see SendWindow.settleProbe).
      this.sendAck(p.seq);
      return;
    }
    this.countIn();
    if (p.requiresAck) {
      this.sendAck(p.seq);
      if (this.seen.has(p.seq)) {
        this.counters.duplicates++;
        return;
      }
      this.remember(p.seq);
    }
    this.emit('packet', p);
  }

  // ---- internals ----

  private heard(): void {
    const now = this.clock.now();
    if (this.silent) {
      this.silent = false;
      this.emit('peer-alive', { silentForMs: now - this.lastHeard });
    }
    this.lastHeard = now;
  }

  private takeSeq(): number {
    const s = this.nextSeq;
    this.nextSeq = this.nextSeq + 1 >= NO_SEQ ? 0 : this.nextSeq + 1;
    return s;
  }

  /** Posts to the port; false (nothing counted) when the port throws (e.g. already closed). */
  private post(type: PacketType, bytes: ArrayBuffer): boolean {
    try {
      this.port.postMessage(bytes, [bytes]);
    } catch {
      return false;
    }
    this.counters.sent[PACKET_TYPE_NAME[type]]++;
    if (type === PacketType.ACK) this.counters.acksSent++;
    if (type === PacketType.HEARTBEAT) this.lastHeartbeat = this.clock.now();
    return true;
  }

  private noteProbe(seq: number): void {
    this.probes.set(seq, this.window.sentCount);
    if (this.probes.size > MAX_PROBES) this.probes.delete(this.probes.keys().next().value!);
  }

  private requestFlush(): void {
    if (!this.schedule || this.flushScheduled) return;
    this.flushScheduled = true;
    this.schedule(() => this.flush());
  }

  /** The queue bounds of the module doc, in order. Each drop is O(1). */
  private applyBounds(): void {
    const q = this.queue;
    const o = this.o;
    while (q.bytes > o.queueBudgetBytes && this.dropOne(PacketType.TEXT_PARTIAL));
    while (q.countOf(PacketType.AUDIO_CHUNK) > o.maxQueuedAudio && this.dropOne(PacketType.AUDIO_CHUNK));
    while (q.bytes > o.queueLimitBytes) {
      if (this.dropOne(PacketType.METADATA) || this.dropOne(PacketType.AUDIO_CHUNK) || this.dropOne(PacketType.TEXT_PARTIAL)) continue;
      const a = q.dropOldest('ack');
      if (!a) break; // only resends left: bounded by the pending packets
      this.giveUp(a.seq, 'queue-limit');
    }
    this.updatePressure();
  }

  private dropOne(type: PacketType): boolean {
    const d = this.queue.dropOldest(type);
    if (!d) return false;
    const name = PACKET_TYPE_NAME[type];
    this.counters.dropped[name]++;
    this.emit('dropped', { seq: d.seq, type: name });
    return true;
  }

  private updatePressure(): void {
    const bytes = this.queue.bytes;
    const over = bytes > this.o.queueBudgetBytes;
    const under = bytes <= this.o.queueBudgetBytes / 2;
    if (!this.pressureOn && over) {
      this.pressureOn = true;
      this.emit('pressure', true);
    } else if (this.pressureOn && under) {
      this.pressureOn = false;
      this.emit('pressure', false);
    }
  }

  private countIn(): void {
    this.dataReceived = (this.dataReceived + 1) >>> 0;
    if (++this.sinceReceipt >= this.o.receiptEvery) this.sendAck(NO_SEQ);
  }

  private sendAck(ackSeq: number): void {
    this.sinceReceipt = 0;
    this.send({ type: PacketType.ACK, ackSeq, received: this.dataReceived });
  }

  private onAck(ackSeq: number): void {
    if (ackSeq !== NO_SEQ) {
      const pend = this.pending.get(ackSeq);
      // Only a packet that went out can be acknowledged (an ACK for a seq still queued is bogus).
      if (pend && pend.posts > 0) {
        this.counters.acksReceived++;
        this.forget(ackSeq, pend);
      }
    }
    if (this.queue.count > 0) this.requestFlush();
  }

  private forget(seq: number, pend: Pending): void {
    if (pend.timer !== null) this.clock.clearTimeout(pend.timer);
    if (pend.queued) this.queue.remove(pend.queued);
    this.pending.delete(seq);
  }

  private giveUp(seq: number, reason: 'no-ack' | 'queue-limit'): void {
    const pend = this.pending.get(seq);
    if (!pend) return;
    this.forget(seq, pend);
    this.counters.lost++;
    this.emit('lost', { seq, type: PACKET_TYPE_NAME[pend.type], attempts: pend.posts, reason });
  }

  private armAckTimer(seq: number, pend: Pending): void {
    if (pend.timer !== null) this.clock.clearTimeout(pend.timer);
    pend.timer = this.clock.setTimeout(() => this.onAckTimeout(seq), this.o.ackTimeoutMs);
  }

  /**
   * One ACK timeout: an attempt is counted whether or not the last resend got out of the queue
   * (a full window must not stop the clock), a resend is queued unless one already waits, and the
   * timer is re-armed; after maxRetries the packet is lost. A packet never posted yet counts
   * attempts only while the peer is silent.
   */
  private onAckTimeout(seq: number): void {
    const pend = this.pending.get(seq);
    if (!pend || this.closed) return;
    pend.timer = null;
    if (pend.posts === 0 && !this.silent) {
      // Still waiting its turn in the queue while the peer is alive (the window moves): not an
      // attempt. Once the peer is silent, waiting counts, so a dead peer cannot hold it forever.
      this.armAckTimer(seq, pend);
      return;
    }
    if (pend.attempts >= this.o.maxRetries) {
      this.giveUp(seq, 'no-ack');
      return;
    }
    pend.attempts++;
    this.counters.retries++;
    if (!pend.queued) {
      // The previous copy left; queue another. (One still queued means the window is full: the
      // attempt counts all the same, so a wedged window cannot hold the packet forever.)
      const q: QueuedPacket = { seq, type: pend.type, bytes: pend.bytes, requiresAck: true, resend: true };
      pend.queued = q;
      this.queue.push(q, DEFAULT_PRIORITY[pend.type]);
    }
    this.armAckTimer(seq, pend);
    this.requestFlush();
  }

  /** Duplicate suppression over the last dedupeWindow seqs (a ring: O(1)). */
  private remember(seq: number): void {
    if (this.seenOrder.length < this.o.dedupeWindow) {
      this.seenOrder.push(seq);
    } else {
      this.seen.delete(this.seenOrder[this.seenHead]);
      this.seenOrder[this.seenHead] = seq;
      this.seenHead = (this.seenHead + 1) % this.o.dedupeWindow;
    }
    this.seen.add(seq);
  }

  /** Fingerprint of the error counters; a change triggers a 'channel-stats' METADATA report. */
  private errorKey(): string {
    const c = this.counters;
    return `${Object.values(c.malformed).join(',')}|${c.lost}|${Object.values(c.dropped).join(',')}|${c.encodeErrors}|${c.badReceipts}|${c.reclaimed}`;
  }

  private armTick(): void {
    this.tickTimer = this.clock.setTimeout(() => this.tick(), this.o.tickMs);
  }

  private tick(): void {
    if (this.closed) return;
    const now = this.clock.now();
    // A packet in flight for half the slot timeout: probe the peer with a heartbeat (its answer
    // settles which packets were lost); after an unanswered one, wait a whole slot timeout. A peer
    // already reported silent is not probed: a stalled one gets no more than the regular
    // heartbeats in its port.
    const probe = this.o.slotTimeoutMs / 2;
    const stale = now - this.window.oldestPostAt >= probe;
    const probing = !this.silent && stale && now - this.lastHeartbeat >= (this.probes.size === 0 ? probe : 2 * probe);
    if (probing || now - this.lastHeartbeat >= this.o.heartbeatMs) this.send({ type: PacketType.HEARTBEAT });
    if (this.sinceReceipt > 0) this.sendAck(NO_SEQ);
    if (!this.silent && now - this.lastHeard > this.o.silenceMs) {
      this.silent = true;
      this.emit('peer-silent', { silentForMs: now - this.lastHeard });
    }
    const n = this.window.reclaim(now, this.lastHeard);
    if (n > 0) {
      this.counters.reclaimed += n;
      this.requestFlush();
    }
    const key = this.errorKey();
    if (key !== this.lastErrorKey) {
      this.lastErrorKey = key;
      this.sendMetadata({ kind: 'channel-stats', stats: this.stats() });
    }
    this.armTick();
  }
}
