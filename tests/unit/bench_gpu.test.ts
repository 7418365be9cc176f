import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// `npm run bench:gpu` (bench/gpu.ts) starts, finds a Vulkan loader and an adapter, and labels a
// software adapter NOT A GPU (this project's test machines have no GPU; the full run is for a GPU
// machine). --probe-only stops after printing the adapter.
const ROOT = resolve(import.meta.dirname, '../..');
const probe = (...flags: string[]) => {
  const r = spawnSync(resolve(ROOT, 'node_modules/.bin/tsx'), ['--import', './scripts/wgsl_loader.mjs', 'bench/gpu.ts', '--probe-only', ...flags], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
};

describe('bench:gpu', () => {
  it('--software: falls back to a software adapter and labels it NOT A GPU', () => {
    const r = probe('--software');
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/\[bench:gpu\] Vulkan loader: /);
    const adapter = r.out.match(/\[bench:gpu\] adapter: (.+)/)?.[1] ?? '';
    expect(adapter, r.out).toMatch(/swiftshader|llvmpipe/i);
    expect(r.out).toMatch(/\[bench:gpu\] NOT A GPU: .* is a software \(CPU\) Vulkan adapter.*NOT GPU figures/);
  });

  it('without --software: a GPU label only for a hardware adapter, else NOT A GPU', () => {
    const r = probe();
    expect(r.status, r.out).toBe(0);
    const adapter = r.out.match(/\[bench:gpu\] adapter: (.+)/)?.[1] ?? '';
    expect(adapter, r.out).not.toBe('');
    const software = /swiftshader|llvmpipe|lavapipe/i.test(adapter);
    if (software) expect(r.out).toMatch(/\[bench:gpu\] NOT A GPU: /);
    else expect(r.out).toMatch(/\[bench:gpu\] GPU: /);
    expect(/\[bench:gpu\] GPU: /.test(r.out) && software, 'a software adapter labelled GPU').toBe(false);
  });
});
