/**
 * The kernel page's roofline chart, as SVG text (no chart library): achieved GFLOP/s (y, log)
 * against arithmetic intensity FLOP/byte (x, log), with the two roofs of the adapter measured in
 * the same run: its copy bandwidth (GB/s × FLOP/byte = GFLOP/s, the slanted roof) and its peak
 * compute (GFLOP/s, the flat roof). One circle per plotted case and side, a legend, decade ticks.
 * Pure: the page (./selftest.ts) gives it numbers, it returns markup.
 */

/** Which implementation a point is: ours (WGSL kernels) or an onnxruntime-web backend (the kernel peer). */
export type RooflineSide = 'ours' | 'webgpu' | 'wasm';

export interface RooflinePoint {
  side: RooflineSide;
  /** '<suite>: <case name>', shown on hover. */
  label: string;
  /** FLOP per byte (> 0). */
  intensity: number;
  /** Achieved GFLOP/s (> 0). */
  gflops: number;
}

export interface RooflineData {
  /** Copy bandwidth, GB/s (read + write bytes). */
  copyGbps: number;
  /** Peak compute, GFLOP/s; null when it could not be measured (no flat roof then). */
  peakGflops: number | null;
  points: RooflinePoint[];
}

/** Legend text and colour of each side. */
export const SIDE_STYLE: Record<RooflineSide, { name: string; color: string }> = {
  ours: { name: 'ours, WGSL (kernel time)', color: '#2563eb' },
  webgpu: { name: 'peer: ORT WebGPU (host to host)', color: '#ea580c' },
  wasm: { name: 'peer: ORT wasm, CPU (host to host)', color: '#16a34a' },
};

const W = 980;
const H = 440;
/** The legend sits right of the plot, in PAD.r. */
const PAD = { l: 64, r: 300, t: 16, b: 48 };

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toPrecision(3) : v.toPrecision(2));
const tick = (e: number) => (e >= 0 && e <= 4 ? String(10 ** e) : `1e${e}`);

/**
 * The chart's SVG markup. Axes span every point and both roofs' ridge with a decade of margin.
 * Roofs are `<line class="roof" data-roof="memory|compute">`, points
 * `<circle class="point" data-side="…" data-label="…">` (the page's test counts them).
 */
export function rooflineSvg(d: RooflineData): string {
  const xs = d.points.map((p) => p.intensity);
  const ys = d.points.map((p) => p.gflops);
  const ridge = d.peakGflops !== null ? d.peakGflops / d.copyGbps : null;
  if (ridge !== null) xs.push(ridge);
  if (d.peakGflops !== null) ys.push(d.peakGflops);
  // At least a decade and a half left of the ridge, so the slanted roof shows.
  const x0 = Math.floor(Math.log10(Math.min(...xs, 0.1, ridge !== null ? ridge / 30 : 0.1)));
  const x1 = Math.ceil(Math.log10(Math.max(...xs, 10))) + 1;
  const y0 = Math.floor(Math.log10(Math.min(...ys, d.copyGbps * 10 ** x0)));
  const y1 = Math.ceil(Math.log10(Math.max(...ys, 1e-3))) + 1;
  const px = (v: number) => PAD.l + ((Math.log10(v) - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
  const py = (v: number) => H - PAD.b - ((Math.log10(v) - y0) / (y1 - y0)) * (H - PAD.t - PAD.b);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" class="roofline-chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="roofline: achieved GFLOP/s against FLOP per byte">`);
  out.push(`<defs><clipPath id="roofline-plot"><rect x="${PAD.l}" y="${PAD.t}" width="${W - PAD.l - PAD.r}" height="${H - PAD.t - PAD.b}"/></clipPath></defs>`);
  out.push(`<rect x="${PAD.l}" y="${PAD.t}" width="${W - PAD.l - PAD.r}" height="${H - PAD.t - PAD.b}" fill="#fff" stroke="#999"/>`);
  for (let e = x0; e <= x1; e++) {
    const x = px(10 ** e);
    out.push(`<line x1="${x}" y1="${PAD.t}" x2="${x}" y2="${H - PAD.b}" stroke="#eee"/><text x="${x}" y="${H - PAD.b + 16}" font-size="11" text-anchor="middle">${tick(e)}</text>`);
  }
  for (let e = y0; e <= y1; e++) {
    const y = py(10 ** e);
    out.push(`<line x1="${PAD.l}" y1="${y}" x2="${W - PAD.r}" y2="${y}" stroke="#eee"/><text x="${PAD.l - 6}" y="${y + 4}" font-size="11" text-anchor="end">${tick(e)}</text>`);
  }
  out.push(`<text x="${(PAD.l + W - PAD.r) / 2}" y="${H - 10}" font-size="12" text-anchor="middle">arithmetic intensity (FLOP / byte, log)</text>`);
  out.push(`<text transform="translate(16 ${(PAD.t + H - PAD.b) / 2}) rotate(-90)" font-size="12" text-anchor="middle">achieved GFLOP/s (log)</text>`);
  // Roofs: memory from the left edge to the ridge (or the right edge), compute from the ridge on.
  const xl = 10 ** x0;
  const xr = 10 ** x1;
  const memEnd = ridge !== null ? Math.min(ridge, xr) : xr;
  out.push(`<g clip-path="url(#roofline-plot)">`);
  out.push(`<line class="roof" data-roof="memory" x1="${px(xl)}" y1="${py(d.copyGbps * xl)}" x2="${px(memEnd)}" y2="${py(d.copyGbps * memEnd)}" stroke="#555" stroke-width="2"><title>copy bandwidth ${fmt(d.copyGbps)} GB/s</title></line>`);
  if (d.peakGflops !== null && ridge !== null) {
    const start = Math.max(ridge, xl);
    out.push(`<line class="roof" data-roof="compute" x1="${px(start)}" y1="${py(d.peakGflops)}" x2="${px(xr)}" y2="${py(d.peakGflops)}" stroke="#555" stroke-width="2" stroke-dasharray="6 3"><title>peak compute ${fmt(d.peakGflops)} GFLOP/s</title></line>`);
  }
  out.push('</g>');
  // The memory roof's label sits along it, a decade left of its end.
  const memLabel = Math.max(xl, memEnd / 10);
  out.push(`<text x="${px(memLabel) + 4}" y="${py(d.copyGbps * memLabel) - 8}" font-size="11" fill="#555">copy BW ${fmt(d.copyGbps)} GB/s</text>`);
  if (d.peakGflops !== null) out.push(`<text x="${W - PAD.r - 6}" y="${py(d.peakGflops) - 6}" font-size="11" fill="#555" text-anchor="end">peak FMA ${fmt(d.peakGflops)} GFLOP/s</text>`);
  for (const p of d.points) {
    const { color, name } = SIDE_STYLE[p.side];
    out.push(`<circle class="point" data-side="${p.side}" data-label="${esc(p.label)}" cx="${px(p.intensity).toFixed(1)}" cy="${py(p.gflops).toFixed(1)}" r="5" fill="${color}" fill-opacity="0.8" stroke="#fff"><title>${esc(`${name}: ${p.label}: ${fmt(p.gflops)} GFLOP/s at ${fmt(p.intensity)} FLOP/B`)}</title></circle>`);
  }
  // Legend, right of the plot.
  const lx = W - PAD.r + 14;
  const sides = (['ours', 'webgpu', 'wasm'] as const).filter((s) => s === 'ours' || d.points.some((p) => p.side === s));
  sides.forEach((s, i) => {
    const y = PAD.t + 12 + i * 20;
    out.push(`<g class="legend" data-side="${s}"><circle cx="${lx + 8}" cy="${y - 4}" r="5" fill="${SIDE_STYLE[s].color}"/><text x="${lx + 20}" y="${y}" font-size="11">${esc(SIDE_STYLE[s].name)}</text></g>`);
  });
  const y = PAD.t + 12 + sides.length * 20;
  out.push(`<g class="legend"><line x1="${lx}" y1="${y - 4}" x2="${lx + 16}" y2="${y - 4}" stroke="#555" stroke-width="2"/><text x="${lx + 20}" y="${y}" font-size="11">roof: copy bandwidth (measured)</text></g>`);
  out.push(`<g class="legend"><line x1="${lx}" y1="${y + 16}" x2="${lx + 16}" y2="${y + 16}" stroke="#555" stroke-width="2" stroke-dasharray="6 3"/><text x="${lx + 20}" y="${y + 20}" font-size="11">roof: peak FMA compute (measured)</text></g>`);
  out.push('</svg>');
  return out.join('');
}
