import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// `npm run bench -- f16` (bench/f16.ts): shader-f16 arithmetic against the engine's unpack -> f32
// matvec, on Mesa 25 lavapipe (the software adapter with shader-f16; Dawn reads VK_ICD_FILENAMES
// at process start, so the benchmark runs as a child process) and on SwiftShader (no shader-f16).
const ROOT = resolve(import.meta.dirname, '../..');
const LAVAPIPE_ICD = process.env.LAVAPIPE_ICD || resolve(ROOT, '.cache/lavapipe/lvp_icd.json');
const TSX = resolve(ROOT, 'node_modules/.bin/tsx');

function bench(icd: string, args: string[]): { out: string; code: number } {
  try {
    const out = execFileSync(TSX, ['--import', './scripts/wgsl_loader.mjs', 'bench/run.ts', 'f16', ...args], { cwd: ROOT, env: { ...process.env, VK_ICD_FILENAMES: icd }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { out, code: 0 };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    return { out: `${err.stdout ?? ''}${err.stderr ?? ''}`, code: err.status ?? -1 };
  }
}

describe('bench f16', () => {
  it.skipIf(!existsSync(LAVAPIPE_ICD))('lavapipe: both paths timed on the same words, each within its precision of the f64 reference', () => {
    const { out, code } = bench(LAVAPIPE_ICD, ['--n', '256', '--k', '1024', '--runs', '3', '--reps', '2']);
    expect(code, out).toBe(0);
    expect(out).toMatch(/NOT a GPU figure/);
    const file = /results: (\S+)/.exec(out)?.[1];
    expect(file, out).toBeDefined();
    const r = JSON.parse(readFileSync(file as string, 'utf8')) as { n: number; k: number; f32Ms: number; f16Ms: number; ratio: number; f32RelErr: number; f16RelErr: number };
    expect([r.n, r.k]).toEqual([256, 1024]);
    for (const ms of [r.f32Ms, r.f16Ms]) expect(ms).toBeGreaterThan(0);
    expect(r.ratio).toBeCloseTo(r.f16Ms / r.f32Ms, 10);
    // f32 accumulation of f16 weights: ~1e-7; f16 products (x rounded to f16, 11-bit mantissa): ~1e-4,
    // well above the f32 path, which shows the f16 arithmetic really ran.
    expect(r.f32RelErr).toBeLessThan(1e-5);
    expect(r.f16RelErr).toBeLessThan(1e-2);
    expect(r.f16RelErr).toBeGreaterThan(10 * r.f32RelErr);
    expect(out).toMatch(new RegExp(`f16 math ÷ unpack -> f32: ${r.ratio.toFixed(2)} \\(f16 arithmetic is ${r.ratio < 1 ? 'faster' : 'not faster'} here\\)`));
  }, 120_000);

  const swiftshader = process.env.VK_ICD_FILENAMES; // vitest.config.ts sets SwiftShader's ICD for project main
  it.skipIf(!swiftshader || swiftshader === LAVAPIPE_ICD)('an adapter without shader-f16 is named, exit 1', () => {
    const { out, code } = bench(swiftshader as string, ['--n', '8', '--k', '8']);
    expect(code).toBe(1);
    expect(out).toMatch(/bench f16: the adapter google swiftshader .* has no shader-f16: nothing to compare/);
  }, 60_000);

  it('bad flags are refused by name', () => {
    const { out, code } = bench(LAVAPIPE_ICD, ['--k', '12']);
    expect(code).toBe(1);
    expect(out).toMatch(/--k must be a multiple of 8/);
  }, 60_000);
});
