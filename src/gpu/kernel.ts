import { GpuValidationError } from './errors.ts';
import type { ParamsLayout } from './params.ts';

/** A storage binding of a kernel: its WGSL variable name and access mode. */
export interface BindingDecl {
  readonly name: string;
  readonly access: 'read' | 'read_write';
}

/**
 * Storage bindings in `@binding` order from one object literal, name → WGSL access mode
 * (`{ x: 'read', y: 'read_write' }`: x at binding 0, y at 1; string keys keep their order).
 */
export function storageBindings(decl: Readonly<Record<string, BindingDecl['access']>>): BindingDecl[] {
  return Object.entries(decl).map(([name, access]) => ({ name, access }));
}

/**
 * The kernel contract. A kernel family is one `.wgsl` file in shaders/ plus a TS sibling in
 * src/kernels/ that constructs a `Kernel` with:
 * - `bindings`: the storage buffers in WGSL `@binding` order, starting at 0 in `@group(0)`;
 * - `params`: the `Params` uniform layout, bound right after the storage buffers (binding n);
 * - the entry point (default `main`).
 * The constructor checks both against the WGSL text, so the two sides cannot drift. Pipelines
 * are cached by (kernel name, entry point, override constants) only: shapes travel in Params.
 */
export class Kernel<K extends string = string> {
  constructor(
    readonly name: string,
    readonly source: string,
    readonly bindings: readonly BindingDecl[],
    readonly params: ParamsLayout<K> | null,
    readonly entryPoint = 'main',
  ) {
    const decl = [...source.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var<(storage|uniform)(?:\s*,\s*(read|read_write))?>\s*(\w+)/g)]
      .map((m) => ({ index: Number(m[1]), space: m[2], access: m[3] ?? 'read', name: m[4] }))
      .sort((a, b) => a.index - b.index);
    const storage = decl.filter((d) => d.space === 'storage');
    const want = bindings.map((b, i) => `${i}:${b.name}:${b.access}`).join(' ');
    const got = storage.map((d) => `${d.index}:${d.name}:${d.access}`).join(' ');
    if (want !== got) {
      throw new GpuValidationError(`kernel '${name}': storage bindings TS [${want}] vs WGSL [${got}]`);
    }
    const uniforms = decl.filter((d) => d.space === 'uniform');
    if (params) {
      if (uniforms.length !== 1 || uniforms[0].index !== bindings.length) {
        throw new GpuValidationError(`kernel '${name}': expected one uniform Params at @binding(${bindings.length})`);
      }
      params.checkAgainst(source, name);
    } else if (uniforms.length) {
      throw new GpuValidationError(`kernel '${name}': WGSL declares a uniform but the TS side has no Params`);
    }
    if (!new RegExp(`fn\\s+${entryPoint}\\s*\\(`).test(source)) {
      throw new GpuValidationError(`kernel '${name}': entry point '${entryPoint}' not found in WGSL`);
    }
  }
}

/** Workgroup counts for `total` invocations in groups of `wg`, folded into y when x would exceed `maxPerDim`.
 * The shader recovers the flat index as `gid.x + gid.y * (num_workgroups.x * WG)` and must bound-check it. */
export function grid1d(total: number, wg: number, maxPerDim = 65535): [number, number, number] {
  const groups = Math.max(1, Math.ceil(total / wg));
  if (groups <= maxPerDim) return [groups, 1, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y, 1];
}
