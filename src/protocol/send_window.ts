/**
 * Flow control of a Channel's data packets: how many are in flight (posted, not yet counted by the
 * peer), validated against the peer's receipts, with slots the peer never counts reclaimed by
 * timeout.
 *
 * Counting, all mod 2^32:
 * - `sent`: data packets posted to the port (resends included).
 * - `peerReceived`: the last valid receipt, i.e. the `received` field of the peer's ACKs (how many
 *   of our data packets the peer has decoded).
 * - `reclaimed`: slots given up on. When the peer's receipts have not moved for `slotTimeoutMs`
 *   although packets are in flight and the peer itself has been heard that long after (it is alive
 *   and reading, yet counts nothing more), the packets in flight since then are taken as lost in
 *   transit or undecodable there. A peer that is slow keeps moving its receipts and a peer that is
 *   stalled is not heard: neither gets its slots reclaimed, so flow control holds for both.
 *   (Receipts are counts, so a single loss during continuous traffic cannot be told from a packet
 *   in flight by counts alone: the Channel's probes settle that, see settleProbe.)
 * In flight = sent − peerReceived − reclaimed, never above `capacity`.
 *
 * A receipt is valid when it moves forward by at most the number of packets sent since the last
 * one (0 ≤ received − peerReceived ≤ sent − peerReceived); anything else (a receipt for packets
 * never sent, or one going backwards on an ordered port) is bogus, ignored and counted by the
 * Channel, so a single bad ACK cannot open the window. A receipt that counts packets already
 * reclaimed (they were late, not lost) shrinks the reclaimed count again.
 * Every operation is O(1) (reclaim: O(1) per slot reclaimed).
 */
export type ReceiptResult = 'ok' | 'bogus';

export class SendWindow {
  private sent = 0;
  private peerReceived = 0;
  /** Slots reclaimed by timeout that no receipt has counted yet. */
  private offset = 0;
  /** Post times (ms) of the in-flight packets, oldest first: a ring of `capacity` slots. */
  private readonly times: Float64Array;
  private head = 0;
  private size = 0;
  /** When a receipt last counted something new (or the window last went from empty to busy). */
  private lastProgress = -Infinity;

  /**
   * @param capacity most packets in flight (≥ 1).
   * @param slotTimeoutMs age (ms) after which an uncounted packet's slot may be reclaimed.
   * @throws RangeError when capacity < 1 or slotTimeoutMs is not positive.
   */
  constructor(readonly capacity: number, readonly slotTimeoutMs: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`SendWindow: capacity ${capacity} must be an integer ≥ 1`);
    if (!(slotTimeoutMs > 0)) throw new RangeError(`SendWindow: slotTimeoutMs ${slotTimeoutMs} must be > 0`);
    this.times = new Float64Array(capacity);
  }

  /** Packets posted and not yet counted or reclaimed (0..capacity). */
  get inFlight(): number {
    return this.size;
  }

  /** Data packets posted so far (mod 2^32). */
  get sentCount(): number {
    return this.sent;
  }

  /** When (ms) the oldest packet in flight was posted; Infinity when none is. */
  get oldestPostAt(): number {
    return this.size > 0 ? this.times[this.head] : Infinity;
  }

  /** When (ms) a receipt last counted something new, or the window last became busy. */
  get progressAt(): number {
    return this.lastProgress;
  }

  /** True when no further data packet may be posted until a receipt or a reclaim. */
  get full(): boolean {
    return this.size >= this.capacity;
  }

  /** Records one data packet posted at `now` (ms). The caller checks `full` first. */
  onPost(now: number): void {
    if (this.size >= this.capacity) throw new RangeError('SendWindow: posted with the window full');
    if (this.size === 0) this.lastProgress = now;
    this.times[(this.head + this.size) % this.capacity] = now;
    this.size++;
    this.sent = (this.sent + 1) >>> 0;
  }

  /**
   * Applies the peer's receipt `received` (u32, cumulative). Returns 'bogus' (and changes nothing)
   * when it counts packets never sent or goes backwards.
   */
  onReceipt(received: number, now: number): ReceiptResult {
    const forward = (received - this.peerReceived) >>> 0;
    const outstanding = (this.sent - this.peerReceived) >>> 0;
    if (forward > outstanding) return 'bogus';
    if (forward > 0) this.lastProgress = now;
    this.peerReceived = received >>> 0;
    const unreceipted = (this.sent - this.peerReceived) >>> 0;
    // Reclaimed packets the peer did count after all: no longer reclaimed.
    if (this.offset > unreceipted) this.offset = unreceipted;
    const inFlight = unreceipted - this.offset;
    this.drop(this.size - inFlight);
    return 'ok';
  }

  /**
   * The fallback when probes go unanswered or are lost: reclaims the slots of packets posted at
   * least slotTimeoutMs before both `now` and `heardAt`
   * (the last time a valid packet came from the peer), provided no receipt has counted anything
   * new since then either. A silent peer keeps its slots: the window then stays closed and the
   * queue, not the port, holds what waits.
   * @returns how many slots were reclaimed.
   */
  reclaim(now: number, heardAt: number): number {
    const limit = Math.min(now, heardAt) - this.slotTimeoutMs;
    if (this.size === 0 || this.lastProgress > limit) return 0;
    let n = 0;
    while (this.size > 0 && this.times[this.head] <= limit) {
      this.drop(1);
      this.offset++;
      n++;
    }
    return n;
  }

  /**
   * Applies the answer to a probe: the peer's count `received` when it read a probe that was
   * posted after `sentAtProbe` data packets. The port is ordered, so every packet posted before
   * the probe had reached the peer by then: those it has not counted are lost, and their slots are
   * reclaimed at once. Call after onReceipt(received) returned 'ok'.
   * @returns how many slots were reclaimed.
   */
  settleProbe(sentAtProbe: number, received: number): number {
    const uncounted = (sentAtProbe - received) >>> 0;
    if (uncounted > ((this.sent - received) >>> 0)) return 0; // the probe predates this count: nothing to learn
    const n = Math.min(this.size, uncounted - this.offset);
    if (n <= 0) return 0;
    this.drop(n);
    this.offset += n;
    return n;
  }

  private drop(n: number): void {
    if (n <= 0) return;
    this.head = (this.head + n) % this.capacity;
    this.size -= n;
  }
}
