// The kernel page's roofline SVG (src/ui/roofline.ts): one circle per point, both roofs meeting
// at the ridge (peak ÷ bandwidth), points placed on the log axes where the roofs say.
import { describe, expect, it } from 'vitest';
import { rooflineSvg } from '../../src/ui/roofline.ts';

const attrs = (svg: string, re: RegExp) => [...svg.matchAll(re)].map((m) => Object.fromEntries([...m[0].matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])));
const lines = (svg: string) => attrs(svg, /<line class="roof"[^>]*>/g);
const circles = (svg: string) => attrs(svg, /<circle class="point"[^>]*>/g);

describe('rooflineSvg', () => {
  // Copy 10 GB/s, peak 100 GFLOP/s: the ridge is at 10 FLOP/B. One point on the ridge, one on
  // the memory roof (1 FLOP/B at 10 GFLOP/s), one on the compute roof (1000 FLOP/B at 100).
  const svg = rooflineSvg({
    copyGbps: 10,
    peakGflops: 100,
    points: [
      { side: 'ours', label: 'linear: ridge', intensity: 10, gflops: 100 },
      { side: 'webgpu', label: 'linear: <mem>', intensity: 1, gflops: 10 },
      { side: 'wasm', label: 'linear: flat', intensity: 1000, gflops: 100 },
    ],
  });

  it('draws one circle per point, labelled and escaped, and both roofs', () => {
    expect(circles(svg).map((c) => `${c['data-side']} ${c['data-label']}`)).toEqual(['ours linear: ridge', 'webgpu linear: &lt;mem&gt;', 'wasm linear: flat']);
    expect(lines(svg).map((l) => l['data-roof'])).toEqual(['memory', 'compute']);
    expect(svg).toContain('copy bandwidth 10.0 GB/s');
    expect(svg).toContain('peak compute 100 GFLOP/s');
  });

  it('meets the roofs at the ridge and puts points on them', () => {
    const [mem, comp] = lines(svg);
    const [ridge, onMem, onFlat] = circles(svg);
    const near = (a: string, b: string) => expect(Math.abs(Number(a) - Number(b))).toBeLessThan(0.11);
    // The memory roof ends where the compute roof starts, at the ridge point.
    near(mem.x2, comp.x1);
    near(mem.y2, comp.y1);
    near(ridge.cx, mem.x2);
    near(ridge.cy, mem.y2);
    // A point on the slanted roof lies on the line through its ends.
    const t = (Number(onMem.cx) - Number(mem.x1)) / (Number(mem.x2) - Number(mem.x1));
    near(onMem.cy, String(Number(mem.y1) + t * (Number(mem.y2) - Number(mem.y1))));
    // A compute-bound point at the peak lies on the flat roof.
    near(onFlat.cy, comp.y1);
    expect(Number(onFlat.cx)).toBeGreaterThan(Number(comp.x1));
    expect(Number(onFlat.cx)).toBeLessThanOrEqual(Number(comp.x2));
  });

  it('has no compute roof when the peak was not measured', () => {
    const s = rooflineSvg({ copyGbps: 10, peakGflops: null, points: [{ side: 'ours', label: 'a', intensity: 2, gflops: 3 }] });
    expect(lines(s).map((l) => l['data-roof'])).toEqual(['memory']);
    expect(circles(s).length).toBe(1);
  });
});
