// The live loop for minutes (default 5; SOLACELIVE_SOAK_MINUTES) in headless Chromium: GPU memory,
// the page heap and the browser's RSS stay flat, and the loop keeps stepping (tests/e2e/soak.ts).
import { describe, expect, it } from 'vitest';
import type { E2ESample } from './run_e2e.ts';
import { judgeSoak, runSoak } from './soak.ts';

const MINUTES = Number(process.env.SOLACELIVE_SOAK_MINUTES ?? 5);

describe('soak', () => {
  it('the flatness rules catch growing memory and a stalled loop', () => {
    const s = (elapsedS: number, steps: number, gpu: number, heap: number, rss: number): E2ESample => ({ elapsedS, steps, gpuBytes: gpu, pageHeapBytes: heap, browserRssBytes: rss, underruns: 0 });
    expect(judgeSoak([s(60, 700, 1e6, 10e6, 500e6), s(120, 1450, 1e6, 12e6, 510e6)])).toEqual([]);
    expect(judgeSoak([s(60, 700, 1e6, 10e6, 500e6), s(120, 1450, 1.1e6, 12e6, 510e6)])[0]).toMatch(/GPU memory changed/);
    expect(judgeSoak([s(60, 700, 1e6, 10e6, 500e6), s(120, 1450, 1e6, 12e6, 600e6)])[0]).toMatch(/browser RSS grew by 100\.0 MB/);
    expect(judgeSoak([s(60, 700, 1e6, 10e6, 500e6), s(120, 1450, 1e6, 40e6, 500e6)])[0]).toMatch(/page JS heap grew/);
    expect(judgeSoak([s(60, 700, 1e6, 10e6, 500e6), s(120, 700, 1e6, 10e6, 500e6)])[0]).toMatch(/stopped stepping/);
  });

  it(`${MINUTES} min of the live loop: memory stays flat`, async () => {
    const r = await runSoak(MINUTES, Math.min(60, (MINUTES * 60) / 2));
    expect(r.samples.length).toBeGreaterThanOrEqual(2);
    expect(r.samples.every((x) => x.gpuBytes !== null && x.gpuBytes > 0)).toBe(true);
    expect(r.problems).toEqual([]);
  }, (MINUTES * 60 + 300) * 1000);
});
