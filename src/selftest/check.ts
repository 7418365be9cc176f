/**
 * Tolerance checks that explain failures: how many elements failed, the worst one with its
 * multi-dimensional index, and the scale of the expected values.
 */
export interface CloseOptions {
  /** Absolute tolerance. */
  atol?: number;
  /** Relative tolerance, against |expected| per element. */
  rtol?: number;
  /** Tolerance relative to max |expected| over the whole array (added to atol). */
  scaleTol?: number;
  /** Shape of the arrays, for index reporting. */
  shape?: readonly number[];
}

export interface CloseReport {
  ok: boolean;
  failed: number;
  total: number;
  maxAbs: number;
  worstIndex: number[];
  message: string;
}

/** Unflattens a row-major flat index. */
export function unravel(i: number, shape: readonly number[]): number[] {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(i % shape[d]);
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

export function compareClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions = {}): CloseReport {
  const shape = opts.shape ?? [expected.length];
  if (actual.length !== expected.length) {
    return { ok: false, failed: expected.length, total: expected.length, maxAbs: Infinity, worstIndex: [], message: `${name}: length ${actual.length}, expected ${expected.length}` };
  }
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  const atol = (opts.atol ?? 0) + (opts.scaleTol ?? 0) * scale;
  const rtol = opts.rtol ?? 0;
  let failed = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  let maxAbs = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const d = Math.abs(a - e);
    const tol = atol + rtol * Math.abs(e);
    const bad = !(d <= tol) || Number.isNaN(a);
    if (d > maxAbs || Number.isNaN(d)) maxAbs = Number.isNaN(d) ? Infinity : d;
    if (bad) {
      failed++;
      const excess = Number.isNaN(d) ? Infinity : d - tol;
      if (excess > worstExcess) {
        worstExcess = excess;
        worst = i;
      }
    }
  }
  const worstIndex = worst >= 0 ? unravel(worst, shape) : [];
  const message = failed
    ? `${name}: ${failed}/${expected.length} not close (atol ${atol.toExponential(2)}, rtol ${rtol}), max |Δ|=${maxAbs.toExponential(3)}; worst at [${worstIndex.join(',')}]: got ${actual[worst]}, expected ${expected[worst]} (scale ${scale.toExponential(3)})`
    : `${name}: ${expected.length} close, max |Δ|=${maxAbs.toExponential(3)} (scale ${scale.toExponential(3)})`;
  return { ok: failed === 0, failed, total: expected.length, maxAbs, worstIndex, message };
}

/** Throws with the explanation unless every element is close. */
export function assertClose(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, opts: CloseOptions = {}): CloseReport {
  const r = compareClose(name, actual, expected, opts);
  if (!r.ok) throw new Error(r.message);
  return r;
}

/** Throws naming the first differing index unless the integer arrays are equal. */
export function assertEqualInts(name: string, actual: ArrayLike<number>, expected: ArrayLike<number>, shape?: readonly number[]): void {
  if (actual.length !== expected.length) throw new Error(`${name}: length ${actual.length}, expected ${expected.length}`);
  let first = -1;
  let count = 0;
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      count++;
      if (first < 0) first = i;
    }
  }
  if (count) {
    const idx = unravel(first, shape ?? [expected.length]);
    throw new Error(`${name}: ${count}/${expected.length} differ; first at [${idx.join(',')}]: got ${actual[first]}, expected ${expected[first]}`);
  }
}

/** Output buffers are pre-filled with this value so unwritten elements show up. */
export const SENTINEL = -12345.678;
