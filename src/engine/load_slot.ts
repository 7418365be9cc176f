/**
 * One model load at a time, cancellable, with the previous model disposed: the engine Worker's
 * `load` / `cancelLoad` (workers/engine_worker.ts) run through a LoadSlot.
 *
 * - `run(fn)`: a load already running is aborted and awaited first (its result, if it still
 *   arrives, is disposed), then the current model is disposed (its GPU memory freed before the
 *   next upload starts), then `fn(signal)` runs. If `run` is called again, or `cancel()`, while
 *   `fn` runs, its signal aborts; whatever `fn` returns after that is disposed and `run` rejects
 *   with an AbortError. Only a load that finished un-aborted becomes `current`.
 * - `fn` must free what it allocated when it throws (loadEngine does), and should pass the signal
 *   down (fetches, uploads) so that a cancel takes effect quickly.
 */
export interface Disposable {
  dispose(): void;
}

const aborted = () => new DOMException('the model load was cancelled', 'AbortError');

export class LoadSlot<T extends Disposable> {
  private model: T | null = null;
  private ctrl: AbortController | null = null;
  /** Settles when the running load has settled (never rejects). */
  private running: Promise<void> = Promise.resolve();
  private generation = 0;

  /** The loaded model, or null (none yet, or disposed for a load in progress). */
  get current(): T | null {
    return this.model;
  }

  /** True while a load runs. */
  get loading(): boolean {
    return this.ctrl !== null;
  }

  /**
   * Runs `fn` as the only load (see the module doc).
   * @returns fn's result, now `current`. @throws fn's error, or an AbortError when cancelled or
   *   superseded by a newer run().
   */
  async run(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const gen = ++this.generation;
    this.ctrl?.abort(aborted());
    const previous = this.running;
    let settle!: () => void;
    const mine = new Promise<void>((ok) => (settle = ok));
    this.running = previous.then(() => mine);
    try {
      await previous;
      if (gen !== this.generation) throw aborted(); // a newer run() came while we waited
      this.model?.dispose();
      this.model = null;
      const ctrl = new AbortController();
      this.ctrl = ctrl;
      let result: T;
      try {
        result = await fn(ctrl.signal);
      } finally {
        if (this.ctrl === ctrl) this.ctrl = null;
      }
      if (ctrl.signal.aborted) {
        result.dispose();
        throw ctrl.signal.reason ?? aborted();
      }
      this.model = result;
      return result;
    } finally {
      settle();
    }
  }

  /** Aborts the running load, if any. @returns whether one was running. */
  cancel(): boolean {
    if (!this.ctrl) return false;
    this.ctrl.abort(aborted());
    return true;
  }

  /** Cancels a running load and disposes the current model. */
  async dispose(): Promise<void> {
    this.generation++;
    this.cancel();
    await this.running;
    this.model?.dispose();
    this.model = null;
  }
}
