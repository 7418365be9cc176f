// The page's progress over a whole Load (src/ui/load_progress.ts): totals over all files from the
// plan, speed from network bytes only (not cached files, not bytes stored by an earlier attempt),
// time left, and the status line in words.
import { describe, expect, it } from 'vitest';
import { LoadProgress, bytesText, durationText } from '../../src/ui/load_progress.ts';
import type { ProgressInfo } from '../../src/weights/download.ts';

const ev = (e: Partial<ProgressInfo> & Pick<ProgressInfo, 'status' | 'file'>): ProgressInfo => ({ loaded: 0, total: 0, ...e });

describe('LoadProgress', () => {
  it('sums all files of the plan, measures speed on network bytes and says the time left', () => {
    let t = 0;
    const p = new LoadProgress(() => t);
    p.update(ev({ status: 'plan', file: 'a, b, c', total: 1_110_000_000, plan: [
      { file: 'tok.model', role: 'tokenizer', bytes: 10_000_000, cached: true },
      { file: 'mimi.safetensors', role: 'mimiWeights', bytes: 100_000_000, cached: false },
      { file: 'model.safetensors', role: 'lmWeights', bytes: 1_000_000_000, cached: false },
    ] }));
    expect(p.words()).toBe("3 files, 1.11 GB (1 in this browser's cache)");
    const at = { fileCount: 3 };
    p.update(ev({ status: 'initiate', file: 'tok.model', fileIndex: 1, ...at }));
    p.update(ev({ status: 'done', file: 'tok.model', loaded: 10_000_000, total: 10_000_000, cached: true, fileIndex: 1, ...at }));
    expect(p.snapshot()).toMatchObject({ loaded: 10_000_000, total: 1_110_000_000, totalKnown: true, bytesPerSec: null, secondsLeft: null });
    // The Mimi file resumes from 40 MB stored earlier: those bytes are no speed.
    t = 1000;
    p.update(ev({ status: 'download', file: 'mimi.safetensors', loaded: 40_000_000, total: 100_000_000, resumedFrom: 40_000_000, fileIndex: 2, ...at }));
    for (let i = 1; i <= 3; i++) {
      t = 1000 + i * 1000;
      p.update(ev({ status: 'progress', file: 'mimi.safetensors', loaded: 40_000_000 + i * 20_000_000, total: 100_000_000, fileIndex: 2, ...at }));
    }
    const s = p.snapshot();
    expect(s.loaded).toBe(110_000_000);
    expect(s.bytesPerSec).toBeCloseTo(20_000_000, -3);
    expect(s.secondsLeft).toBeCloseTo(1_000_000_000 / 20_000_000, 3);
    expect(p.words()).toBe('Downloading mimi.safetensors (file 2 of 3) · 110 MB of 1.11 GB · 20.0 MB/s · about 50 s left');
    t = 5000;
    p.update(ev({ status: 'retry', file: 'model.safetensors', loaded: 5_000_000, total: 1_000_000_000, attempt: 1, retries: 3, retryInMs: 2000, fileIndex: 3, ...at }));
    expect(p.words()).toMatch(/^Connection problem on model\.safetensors \(file 3 of 3\): trying again in 2 s \(retry 1 of 3\), resuming from 5\.0 MB/);
    p.update(ev({ status: 'ready', file: 'all', loaded: 1_110_000_000, total: 1_110_000_000 }));
    expect(p.words()).toBe('All files loaded · 1.11 GB');
  });

  it('without a plan: the sizes known so far, "at least", no time left until every file has started', () => {
    let t = 0;
    const p = new LoadProgress(() => t);
    p.update(ev({ status: 'download', file: 'mimi.safetensors', total: 2_000_000, fileIndex: 1, fileCount: 2 }));
    t = 2000;
    p.update(ev({ status: 'progress', file: 'mimi.safetensors', loaded: 1_000_000, total: 2_000_000, fileIndex: 1, fileCount: 2 }));
    expect(p.snapshot()).toMatchObject({ total: 2_000_000, totalKnown: false, secondsLeft: null });
    expect(p.snapshot().bytesPerSec).toBeCloseTo(500_000, -2);
    expect(p.words()).toBe('Downloading mimi.safetensors (file 1 of 2) · 1.0 MB of at least 2.0 MB · 500 kB/s');
    t = 4000;
    p.update(ev({ status: 'done', file: 'mimi.safetensors', loaded: 2_000_000, total: 2_000_000, fileIndex: 1, fileCount: 2 }));
    p.update(ev({ status: 'download', file: 'model.safetensors', total: 8_000_000, fileIndex: 2, fileCount: 2 }));
    expect(p.snapshot()).toMatchObject({ loaded: 2_000_000, total: 10_000_000, totalKnown: true });
    expect(p.snapshot().secondsLeft).toBeCloseTo(8_000_000 / 500_000, 3);
  });

  it('local files: read, not downloaded nor from the cache', () => {
    const p = new LoadProgress(() => 0);
    p.update(ev({ status: 'initiate', file: 'mimi.safetensors', total: 2_000_000, local: true, fileIndex: 1, fileCount: 2 }));
    expect(p.words()).toBe('Reading mimi.safetensors (file 1 of 2) · 0 bytes of at least 2.0 MB');
    p.update(ev({ status: 'done', file: 'mimi.safetensors', loaded: 2_000_000, total: 2_000_000, cached: true, local: true, fileIndex: 1, fileCount: 2 }));
    expect(p.words()).toBe('Read: mimi.safetensors (file 1 of 2) · 2.0 MB of at least 2.0 MB');
  });

  it('byte and duration words', () => {
    expect([999, 1500, 12_345_678, 123_456_789, 1_240_000_000, 15_400_000_000].map(bytesText)).toEqual(['999 bytes', '2 kB', '12.3 MB', '123 MB', '1.24 GB', '15.4 GB']);
    expect([0.2, 45, 600, 4800, 7200].map(durationText)).toEqual(['1 s', '45 s', '10 min', '1 h 20 min', '2 h']);
  });
});
