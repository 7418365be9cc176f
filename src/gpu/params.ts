import { GpuValidationError } from './errors.ts';

/** Scalar types a Params uniform may hold. Every field is 4 bytes, laid out in declaration order. */
export type ParamType = 'u32' | 'i32' | 'f32';

/**
 * The layout of a kernel's `Params` uniform struct. The WGSL file declares the same struct
 * (`struct Params { a: u32, b: f32, ... }`); `checkAgainst()` verifies that at pipeline creation,
 * so TS and WGSL cannot drift apart. Sizes are "in elements", never bytes.
 */
export class ParamsLayout<K extends string = string> {
  readonly byteSize: number;
  constructor(readonly fields: readonly (readonly [K, ParamType])[]) {
    // WGSL uniform structs round up to 16 bytes.
    this.byteSize = Math.max(16, Math.ceil((fields.length * 4) / 16) * 16);
  }

  /** Writes `values` into `view` at `byteOffset`. Throws naming a missing or non-finite field. */
  write(view: DataView, byteOffset: number, values: Record<K, number>, kernel: string): void {
    this.fields.forEach(([name, type], i) => {
      const v = values[name];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new GpuValidationError(`kernel '${kernel}': Params.${name} must be a finite number, got ${v}`);
      }
      const o = byteOffset + i * 4;
      if (type === 'f32') view.setFloat32(o, v, true);
      else if (type === 'i32') view.setInt32(o, v, true);
      else {
        if (v < 0 || !Number.isInteger(v) || v > 0xffffffff) {
          throw new GpuValidationError(`kernel '${kernel}': Params.${name} must be a u32, got ${v}`);
        }
        view.setUint32(o, v, true);
      }
    });
  }

  /** Verifies that the WGSL source declares `struct Params` with the same fields and types. */
  checkAgainst(source: string, kernel: string): void {
    const m = /struct\s+Params\s*\{([^}]*)\}/.exec(source);
    if (!m) throw new GpuValidationError(`kernel '${kernel}': WGSL has no 'struct Params' but the TS side declares one`);
    const declared = m[1]
      .split(/[,;\n]/)
      .map((s) => s.replace(/\/\/.*$/, '').trim())
      .filter(Boolean)
      .map((s) => s.split(':').map((p) => p.trim()));
    const want = this.fields.map(([n, t]) => `${n}: ${t}`).join(', ');
    const got = declared.map(([n, t]) => `${n}: ${t}`).join(', ');
    if (want !== got) throw new GpuValidationError(`kernel '${kernel}': Params mismatch, TS {${want}} vs WGSL {${got}}`);
  }
}
