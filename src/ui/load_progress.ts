/**
 * Progress over all files of one Load, from the download events (src/weights/download.ts
 * ProgressInfo): bytes so far of the whole load, its total (the 'plan' event's sizes, else the
 * sizes known so far), the download speed over the last seconds and the time left, put in words
 * for the page's status line. No DOM here: src/ui/app.ts shows `words()`.
 */
import type { ProgressInfo } from '../weights/download.ts';

/** Bytes for people: 950 kB, 12.3 MB, 1.24 GB (decimal units, as browsers and the hub show them). */
export function bytesText(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e11 ? 0 : n >= 1e10 ? 1 : 2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} bytes`;
}

/** A duration for people: 45 s, 3 min, 1 h 20 min. */
export function durationText(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  const h = Math.floor(seconds / 3600);
  const m = Math.round((seconds - 3600 * h) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

interface FileState {
  loaded: number;
  total: number;
  cached: boolean;
}

export interface LoadProgressSnapshot {
  /** Bytes of all files so far (cached ones count whole once they are served). */
  loaded: number;
  /** Bytes of the whole load, as far as known. */
  total: number;
  /** Every file's size is known (the plan gave them all, or every file has started). */
  totalKnown: boolean;
  /** Bytes per second received from the network over the last `windowMs`, or null before there is enough to tell. */
  bytesPerSec: number | null;
  /** Seconds left at that speed, or null when the total or the speed is unknown. */
  secondsLeft: number | null;
}

/** Folds one Load's progress events into totals, speed and time left. */
export class LoadProgress {
  private readonly files = new Map<string, FileState>();
  private planned: Map<string, number | null> | null = null;
  private fileCount = 0;
  /** (time ms, network bytes so far) samples for the speed. */
  private samples: [number, number][] = [];
  private networkBytes = 0;
  private last: ProgressInfo | null = null;

  /**
   * @param now clock in ms (performance.now by default; tests pass their own)
   * @param windowMs the speed is measured over this many recent ms (default 5000)
   */
  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly windowMs = 5000,
  ) {}

  update(e: ProgressInfo): void {
    const t = this.now();
    if (e.status === 'plan' && e.plan) {
      this.planned = new Map(e.plan.map((f) => [f.file, f.bytes]));
      this.fileCount = e.plan.length;
      this.last = e;
      return;
    }
    if (e.fileCount) this.fileCount = Math.max(this.fileCount, e.fileCount);
    if (e.status === 'ready') {
      this.last = e;
      return;
    }
    const f = this.files.get(e.file) ?? { loaded: 0, total: 0, cached: false };
    if (e.cached) f.cached = true;
    if (e.total > 0) f.total = e.total;
    if (e.status === 'download') {
      f.loaded = e.loaded; // from 0, or from the stored bytes of an earlier attempt (not new bytes)
    } else if (e.status === 'retry') {
      f.loaded = e.loaded; // what the next attempt starts from
    } else if (e.status === 'progress' || e.status === 'done') {
      if (!f.cached && e.loaded > f.loaded) this.networkBytes += e.loaded - f.loaded;
      f.loaded = Math.max(f.loaded, e.loaded);
    }
    this.files.set(e.file, f);
    // A response starting after a pause (cache checks, a retry's wait): the pause is no download time.
    if (e.status === 'download') this.samples = this.samples.filter(([, b]) => b !== this.networkBytes);
    this.samples.push([t, this.networkBytes]);
    while (this.samples.length > 2 && this.samples[1][0] < t - this.windowMs) this.samples.shift();
    this.last = e;
  }

  snapshot(): LoadProgressSnapshot {
    let loaded = 0;
    let total = 0;
    let known = true;
    const names = new Set([...this.files.keys(), ...(this.planned?.keys() ?? [])]);
    for (const name of names) {
      const f = this.files.get(name);
      const planned = this.planned?.get(name) ?? null;
      const size = f && f.total > 0 ? f.total : planned;
      loaded += f?.loaded ?? 0;
      if (size === null || size === undefined) known = false;
      else total += size;
    }
    if (names.size < this.fileCount) known = false;
    let bytesPerSec: number | null = null;
    if (this.samples.length >= 2) {
      const [t0, b0] = this.samples[0];
      const [t1, b1] = this.samples[this.samples.length - 1];
      if (t1 - t0 >= 1000 && b1 > b0) bytesPerSec = ((b1 - b0) * 1000) / (t1 - t0);
    }
    const secondsLeft = known && bytesPerSec ? Math.max(0, total - loaded) / bytesPerSec : null;
    return { loaded, total, totalKnown: known, bytesPerSec, secondsLeft };
  }

  /**
   * The status line: what happens to which file (its place in the load), the bytes of the whole
   * load, the speed and the time left, e.g. "Downloading model.safetensors (file 3 of 3) ·
   * 1.24 GB of 15.4 GB · 23.1 MB/s · about 10 min left".
   */
  words(): string {
    const e = this.last;
    if (!e) return 'starting…';
    const s = this.snapshot();
    const of = this.fileCount > 1 && e.fileIndex ? ` (file ${e.fileIndex} of ${this.fileCount})` : '';
    const amount = s.total > 0 ? `${bytesText(s.loaded)} of ${s.totalKnown ? '' : 'at least '}${bytesText(s.total)}` : bytesText(s.loaded);
    const speed = s.bytesPerSec ? ` · ${bytesText(s.bytesPerSec)}/s` : '';
    const left = s.secondsLeft !== null && s.loaded < s.total ? ` · about ${durationText(s.secondsLeft)} left` : '';
    switch (e.status) {
      case 'plan': {
        const cached = e.plan?.filter((f) => f.cached).length ?? 0;
        return `${e.plan?.length ?? 0} files, ${s.total > 0 ? `${s.totalKnown ? '' : 'at least '}${bytesText(s.total)}` : 'size unknown'}${cached ? ` (${cached} in this browser's cache)` : ''}`;
      }
      case 'initiate':
        return `${e.local ? 'Reading' : 'Opening'} ${e.file}${of} · ${amount}`;
      case 'download':
        return `${e.resumedFrom ? `Resuming ${e.file} from ${bytesText(e.resumedFrom)}` : `Downloading ${e.file}`}${of} · ${amount}${speed}${left}`;
      case 'progress':
        return `${e.cached ? 'Reading' : 'Downloading'} ${e.file}${of} · ${amount}${speed}${left}`;
      case 'retry':
        return `Connection problem on ${e.file}${of}: trying again in ${durationText((e.retryInMs ?? 0) / 1000)} (retry ${e.attempt} of ${e.retries}), ${e.loaded > 0 ? `resuming from ${bytesText(e.loaded)}` : 'starting over'} · ${amount}`;
      case 'done':
        return `${e.local ? 'Read' : e.cached ? 'From the cache' : 'Downloaded'}: ${e.file}${of} · ${amount}${speed}${left}`;
      case 'error':
        return `Failed: ${e.file}${of} · ${amount}`;
      case 'ready':
        return `All files loaded · ${bytesText(e.total)}`;
    }
  }
}
