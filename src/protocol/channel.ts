/**
 * Channel: packets (src/protocol/packet.ts) over a MessagePort, e.g. an in-page MessageChannel
 * between the page and the engine Worker. Each packet travels as its own ArrayBuffer, transferred.
 *
 * Behaviour:
 * - Priority queue: data packets wait in four lanes and leave highest priority first
 *   (AUDIO_CHUNK 3 > TEXT_FINAL 2 > TEXT_PARTIAL 1 > METADATA 0), FIFO within a lane. Control
 *   packets (ACK, HEARTBEAT) skip the queue and go out at once.
 * - Flow control: the receiver reports how many data packets it has taken in (the `received`
 *   field of every ACK; a receipt-only ACK with ackSeq = NO_SEQ goes out after `receiptEvery`
 *   data packets and on every tick). The sender keeps at most `maxInFlight` data packets
 *   un-receipted, so a stalled peer (blocked main thread, busy engine) makes the send queue grow
 *   here instead of inside the port.
 * - Backpressure: when the queue holds more than `queueBudgetBytes`, the oldest TEXT_PARTIAL
 *   packets are dropped first; if still over budget, `pressure` turns true (event 'pressure') and
 *   the engine should skip a decode step until it turns false again (queue below half the budget).
 *   AUDIO_CHUNK, TEXT_FINAL and METADATA are never dropped.
 * - Reliability: packets sent with `requiresAck` are acknowledged by seq; without an ACK within
 *   `ackTimeoutMs` they are resent (same seq) up to `maxRetries` times, then reported lost
 *   (event 'lost'). The receiver suppresses duplicate deliveries of a resent packet (re-ACKs them).
 * - Liveness: a HEARTBEAT every `heartbeatMs` both ways; a peer silent for more than `silenceMs`
 *   raises 'peer-silent' once, and 'peer-alive' when it is heard again.
 * - Errors: a malformed incoming message is never thrown into the loop; it is counted by reason,
 *   raised as 'malformed', and the counters go to the peer in a METADATA packet
 *   `{ kind: 'channel-stats', ... }` at the next tick when any error counter changed.
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
  /** Housekeeping period (heartbeat due? silence? receipts, stats report), ms (default 1000). */
  tickMs?: number;
  /** Wait for an ACK before resending, ms (default 1000). */
  ackTimeoutMs?: number;
  /** Resends before a requiresAck packet is reported lost (default 3). */
  maxRetries?: number;
  /** Data packets sent but not yet receipted by the peer (default 64). */
  maxInFlight?: number;
  /** Receipt after this many data packets received (default 8; keep ≤ the peer's maxInFlight / 2). */
  receiptEvery?: number;
  /** Queued bytes above which TEXT_PARTIAL is dropped and then pressure raised (default 256 KiB). */
  queueBudgetBytes?: number;
  /** Seqs remembered for duplicate suppression (default 256). */
  dedupeWindow?: number;
}

type Counts<K extends string> = Record<K, number>;

/** Snapshot of the channel's counters (also what is sent in the 'channel-stats' METADATA). */
export interface ChannelStats {
  sent: Counts<PacketTypeName>;
  received: Counts<PacketTypeName>;
  dropped: Counts<PacketTypeName>;
  malformed: Counts<PacketErrorReason>;
  /** send() calls refused because the packet could not be encoded. */
  encodeErrors: number;
  retries: number;
  acksSent: number;
  acksReceived: number;
  lost: number;
  duplicates: number;
  queuedPackets: number;
  queuedBytes: number;
  inFlight: number;
  pressure: boolean;
  peerSilent: boolean;
}

export interface ChannelEvents {
  /** A decoded data packet from the peer (never ACK/HEARTBEAT, never a duplicate). */
  packet: Packet;
  malformed: PacketError;
  lost: { seq: number; type: PacketTypeName; attempts: number };
  dropped: { seq: number; type: PacketTypeName };
  pressure: boolean;
  'peer-silent': { silentForMs: number };
  'peer-alive': { silentForMs: number };
}

export type SendResult = { ok: true; seq: number } | { ok: false; error: PacketError };

interface Queued {
  seq: number;
  type: PacketType;
  bytes: ArrayBuffer;
  requiresAck: boolean;
  /** A resend of a pending requiresAck packet. */
  resend: boolean;
}

interface Pending {
  bytes: ArrayBuffer;
  type: PacketType;
  attempts: number;
  timer: unknown;
}

const zeros = <K extends string>(keys: readonly K[]): Counts<K> => Object.fromEntries(keys.map((k) => [k, 0])) as Counts<K>;
const isControl = (t: number) => t === PacketType.ACK || t === PacketType.HEARTBEAT;

export class Channel {
  private readonly clock: Clock;
  private readonly schedule: ((fn: () => void) => void) | null;
  private readonly o: Required<Omit<ChannelOptions, 'clock' | 'schedule'>>;
  private readonly lanes: Queued[][] = [[], [], [], []];
  private queuedBytes = 0;
  private nextSeq = 0;
  /** Data packets posted (mod 2^32) and the peer's last receipt of them. */
  private dataSent = 0;
  private peerReceived = 0;
  /** Data packets taken in from the peer (mod 2^32) and how many since our last ACK. */
  private dataReceived = 0;
  private sinceReceipt = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly seen = new Set<number>();
  private readonly seenOrder: number[] = [];
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
  };
  private readonly onMessage = (ev: MessageEvent) => this.receive(ev.data);

  /** Attaches to `port` (calls port.start()) and starts the heartbeat/housekeeping timer. */
  constructor(private readonly port: ChannelPort, opts: ChannelOptions = {}) {
    this.clock = opts.clock ?? realClock;
    this.schedule = opts.schedule === 'manual' ? null : (opts.schedule ?? ((fn) => queueMicrotask(fn)));
    this.o = {
      heartbeatMs: opts.heartbeatMs ?? 5000,
      silenceMs: opts.silenceMs ?? 15000,
      tickMs: opts.tickMs ?? 1000,
      ackTimeoutMs: opts.ackTimeoutMs ?? 1000,
      maxRetries: opts.maxRetries ?? 3,
      maxInFlight: opts.maxInFlight ?? 64,
      receiptEvery: opts.receiptEvery ?? 8,
      queueBudgetBytes: opts.queueBudgetBytes ?? 256 * 1024,
      dedupeWindow: opts.dedupeWindow ?? 256,
    };
    if (!(this.o.maxInFlight >= 1) || !(this.o.receiptEvery >= 1)) {
      throw new RangeError(`Channel: maxInFlight (${this.o.maxInFlight}) and receiptEvery (${this.o.receiptEvery}) must be ≥ 1`);
    }
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

  /**
   * Queues a data packet (AUDIO_CHUNK, TEXT_*, METADATA) or sends a control packet at once.
   * Assigns seq and timestamp. Never throws: an unencodable packet returns `{ ok: false, error }`
   * (counted in encodeErrors). The PCM of an AUDIO_CHUNK is copied, so the caller may reuse it.
   */
  send(body: PacketBody, opts: { requiresAck?: boolean; priority?: number } = {}): SendResult {
    if (this.closed) return { ok: false, error: { reason: 'bad_field', detail: 'channel is closed', type: body.type } };
    const seq = this.takeSeq();
    const requiresAck = !!opts.requiresAck && !isControl(body.type);
    const priority = opts.priority ?? DEFAULT_PRIORITY[body.type];
    const enc = encodePacket({ ...body, priority, seq, timestamp: this.clock.now(), requiresAck } as Packet);
    if (!enc.ok) {
      this.counters.encodeErrors++;
      return enc;
    }
    if (isControl(body.type)) {
      this.post(body.type, enc.bytes);
      return { ok: true, seq };
    }
    this.enqueue({ seq, type: body.type, bytes: enc.bytes, requiresAck, resend: false }, Math.min(priority, MAX_PRIORITY));
    this.applyBudget();
    this.requestFlush();
    return { ok: true, seq };
  }

  /** An 80 ms frame of 24 kHz PCM (1920 samples). */
  sendAudio(pcm: Float32Array, requiresAck = false): SendResult {
    return this.send({ type: PacketType.AUDIO_CHUNK, pcm }, { requiresAck });
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
    for (let p = MAX_PRIORITY; p >= 0; p--) {
      const lane = this.lanes[p];
      while (lane.length > 0) {
        if (this.inFlight() >= this.o.maxInFlight) {
          this.updatePressure();
          return;
        }
        const q = lane.shift()!;
        this.queuedBytes -= q.bytes.byteLength;
        if (q.resend && !this.pending.has(q.seq)) continue; // ACKed while waiting to be resent
        if (q.requiresAck) {
          const pend = this.pending.get(q.seq);
          // Keep the original bytes for resends; post a copy (the posted buffer is transferred).
          if (!pend) this.pending.set(q.seq, { bytes: q.bytes, type: q.type, attempts: 0, timer: null });
          this.post(q.type, q.bytes.slice(0));
          this.armAckTimer(q.seq);
        } else {
          this.post(q.type, q.bytes);
        }
        this.dataSent = (this.dataSent + 1) >>> 0;
      }
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
      queuedPackets: this.lanes.reduce((a, l) => a + l.length, 0),
      queuedBytes: this.queuedBytes,
      inFlight: this.inFlight(),
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
    for (const lane of this.lanes) lane.length = 0;
    this.queuedBytes = 0;
  }

  /**
   * Handles one incoming message (normally called by the port listener; public for tests and for
   * hosts that route messages themselves). Never throws.
   */
  receive(data: unknown): void {
    if (this.closed) return;
    const now = this.clock.now();
    if (this.silent) {
      this.silent = false;
      this.emit('peer-alive', { silentForMs: now - this.lastHeard });
    }
    this.lastHeard = now;
    const res = decodePacket(data);
    if (!res.ok) {
      // Not counted for flow control: the sender's window only counts packets we can decode.
      this.counters.malformed[res.error.reason]++;
      this.emit('malformed', res.error);
      return;
    }
    const p = res.packet;
    this.counters.received[PACKET_TYPE_NAME[p.type]]++;
    if (p.type === PacketType.HEARTBEAT) return;
    if (p.type === PacketType.ACK) {
      this.onAck(p.ackSeq, p.received);
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

  private takeSeq(): number {
    const s = this.nextSeq;
    this.nextSeq = this.nextSeq + 1 >= NO_SEQ ? 0 : this.nextSeq + 1;
    return s;
  }

  private inFlight(): number {
    return Math.max(0, (this.dataSent - this.peerReceived) | 0);
  }

  private post(type: PacketType, bytes: ArrayBuffer): void {
    this.counters.sent[PACKET_TYPE_NAME[type]]++;
    if (type === PacketType.ACK) this.counters.acksSent++;
    if (type === PacketType.HEARTBEAT) this.lastHeartbeat = this.clock.now();
    this.port.postMessage(bytes, [bytes]);
  }

  private enqueue(q: Queued, priority: number): void {
    this.lanes[priority].push(q);
    this.queuedBytes += q.bytes.byteLength;
  }

  private requestFlush(): void {
    if (!this.schedule || this.flushScheduled) return;
    this.flushScheduled = true;
    this.schedule(() => this.flush());
  }

  /** Over budget: drop the oldest TEXT_PARTIAL packets, then raise pressure. */
  private applyBudget(): void {
    if (this.queuedBytes <= this.o.queueBudgetBytes) return;
    for (const lane of this.lanes) {
      for (let i = 0; i < lane.length && this.queuedBytes > this.o.queueBudgetBytes; ) {
        const q = lane[i];
        if (q.type === PacketType.TEXT_PARTIAL && !q.requiresAck) {
          lane.splice(i, 1);
          this.queuedBytes -= q.bytes.byteLength;
          this.counters.dropped.TEXT_PARTIAL++;
          this.emit('dropped', { seq: q.seq, type: 'TEXT_PARTIAL' });
        } else i++;
      }
    }
    this.updatePressure();
  }

  private updatePressure(): void {
    const over = this.queuedBytes > this.o.queueBudgetBytes;
    const under = this.queuedBytes <= this.o.queueBudgetBytes / 2;
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

  private onAck(ackSeq: number, received: number): void {
    // Receipts only move forward (mod 2^32).
    if (((received - this.peerReceived) | 0) > 0) this.peerReceived = received;
    if (ackSeq !== NO_SEQ) {
      const pend = this.pending.get(ackSeq);
      if (pend) {
        this.counters.acksReceived++;
        if (pend.timer !== null) this.clock.clearTimeout(pend.timer);
        this.pending.delete(ackSeq);
      }
    }
    if (this.lanes.some((l) => l.length > 0)) this.requestFlush();
  }

  private armAckTimer(seq: number): void {
    const pend = this.pending.get(seq);
    if (!pend) return;
    if (pend.timer !== null) this.clock.clearTimeout(pend.timer);
    pend.timer = this.clock.setTimeout(() => this.onAckTimeout(seq), this.o.ackTimeoutMs);
  }

  private onAckTimeout(seq: number): void {
    const pend = this.pending.get(seq);
    if (!pend || this.closed) return;
    pend.timer = null;
    if (pend.attempts >= this.o.maxRetries) {
      this.pending.delete(seq);
      this.counters.lost++;
      this.emit('lost', { seq, type: PACKET_TYPE_NAME[pend.type], attempts: pend.attempts + 1 });
      return;
    }
    pend.attempts++;
    this.counters.retries++;
    // A resend is not window-limited against itself: the peer may simply be slow, but the copy
    // still counts as one more in-flight packet once posted.
    this.enqueue({ seq, type: pend.type, bytes: pend.bytes, requiresAck: true, resend: true }, DEFAULT_PRIORITY[pend.type]);
    this.requestFlush();
  }

  private remember(seq: number): void {
    this.seen.add(seq);
    this.seenOrder.push(seq);
    if (this.seenOrder.length > this.o.dedupeWindow) this.seen.delete(this.seenOrder.shift()!);
  }

  /** Fingerprint of the error counters; a change triggers a 'channel-stats' METADATA report. */
  private errorKey(): string {
    const c = this.counters;
    return `${Object.values(c.malformed).join(',')}|${c.lost}|${c.dropped.TEXT_PARTIAL}|${c.encodeErrors}`;
  }

  private armTick(): void {
    this.tickTimer = this.clock.setTimeout(() => this.tick(), this.o.tickMs);
  }

  private tick(): void {
    if (this.closed) return;
    const now = this.clock.now();
    if (now - this.lastHeartbeat >= this.o.heartbeatMs) this.send({ type: PacketType.HEARTBEAT });
    if (this.sinceReceipt > 0) this.sendAck(NO_SEQ);
    if (!this.silent && now - this.lastHeard > this.o.silenceMs) {
      this.silent = true;
      this.emit('peer-silent', { silentForMs: now - this.lastHeard });
    }
    const key = this.errorKey();
    if (key !== this.lastErrorKey) {
      this.lastErrorKey = key;
      this.sendMetadata({ kind: 'channel-stats', stats: this.stats() });
    }
    this.armTick();
  }
}
