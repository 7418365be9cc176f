/**
 * safetensors reader: 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}`, then the raw
 * little-endian tensor data; offsets are relative to the end of the header.
 * Spec: https://github.com/huggingface/safetensors (format section).
 */

export type SafeDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'U16' | 'U32' | 'U64' | 'BOOL';

const BYTES: Record<SafeDType, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, U16: 2, U32: 4, U64: 8, BOOL: 1 };

/** Errors while parsing a safetensors file; the message names the file and, where known, the key. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export interface TensorEntry {
  name: string;
  dtype: SafeDType;
  shape: number[];
  /** The raw little-endian bytes of this tensor (a view into the file). */
  data: Uint8Array;
}

export class SafetensorsFile {
  private constructor(
    readonly fileName: string,
    readonly tensors: ReadonlyMap<string, TensorEntry>,
    readonly metadata: Record<string, string>,
  ) {}

  /**
   * Parses a whole file held in memory. Throws SafetensorsError for a truncated file, a bad or
   * oversized header, invalid JSON, an unknown dtype, a shape/offset mismatch or offsets out of range.
   */
  static parse(bytes: ArrayBuffer | Uint8Array, fileName = '<memory>'): SafetensorsFile {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const fail = (msg: string) => new SafetensorsError(`${fileName}: ${msg}`);
    if (u8.byteLength < 8) throw fail(`truncated: ${u8.byteLength} bytes, a safetensors file starts with an 8-byte header length`);
    const view = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
    const n = Number(view.getBigUint64(0, true));
    if (n > 100 * 1024 * 1024) throw fail(`header length ${n} is implausible (over 100 MiB): not a safetensors file?`);
    if (8 + n > u8.byteLength) throw fail(`truncated: header length ${n} but the file has only ${u8.byteLength - 8} bytes after it`);
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(u8.subarray(8, 8 + n)));
    } catch (e) {
      throw fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) throw fail('header is not a JSON object');
    const dataStart = 8 + n;
    const dataLen = u8.byteLength - dataStart;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') {
        metadata = (raw ?? {}) as Record<string, string>;
        continue;
      }
      const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e !== 'object' || e === null) throw fail(`key '${name}': entry is not an object`);
      const dtype = e.dtype as SafeDType;
      if (typeof dtype !== 'string' || !(dtype in BYTES)) throw fail(`key '${name}': unknown dtype ${JSON.stringify(e.dtype)}`);
      const shape = e.shape;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) throw fail(`key '${name}': bad shape ${JSON.stringify(shape)}`);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[0] > off[1]) {
        throw fail(`key '${name}': bad data_offsets ${JSON.stringify(off)}`);
      }
      if (off[1] > dataLen) throw fail(`key '${name}': data_offsets [${off[0]}, ${off[1]}] out of range (data section is ${dataLen} bytes; file truncated?)`);
      const numel = (shape as number[]).reduce((a, b) => a * b, 1);
      if (numel * BYTES[dtype] !== off[1] - off[0]) {
        throw fail(`key '${name}': ${dtype}[${shape.join(', ')}] needs ${numel * BYTES[dtype]} bytes, data_offsets span ${off[1] - off[0]}`);
      }
      tensors.set(name, { name, dtype, shape: shape as number[], data: u8.subarray(dataStart + off[0], dataStart + off[1]) });
    }
    return new SafetensorsFile(fileName, tensors, metadata);
  }

  get(name: string): TensorEntry | undefined {
    return this.tensors.get(name);
  }

  keys(): string[] {
    return [...this.tensors.keys()];
  }
}

/** Converts a float or integer entry to f32 values on the host. */
export function entryToF32(e: TensorEntry, fileName = ''): Float32Array {
  const n = e.shape.reduce((a, b) => a * b, 1);
  const dv = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength);
  const out = new Float32Array(n);
  switch (e.dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      return out;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat64(8 * i, true);
      return out;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToF32(dv.getUint16(2 * i, true));
      return out;
    case 'BF16': {
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      for (let i = 0; i < n; i++) {
        u[0] = dv.getUint16(2 * i, true) << 16;
        out[i] = f[0];
      }
      return out;
    }
    case 'I32':
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      return out;
    case 'U32':
      for (let i = 0; i < n; i++) out[i] = dv.getUint32(4 * i, true);
      return out;
    case 'I64':
      for (let i = 0; i < n; i++) out[i] = Number(dv.getBigInt64(8 * i, true));
      return out;
    case 'I16':
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      return out;
    case 'U16':
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true);
      return out;
    case 'I8':
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      return out;
    case 'U8':
    case 'BOOL':
      for (let i = 0; i < n; i++) out[i] = dv.getUint8(i);
      return out;
    default:
      throw new SafetensorsError(`${fileName}: key '${e.name}': cannot convert dtype ${e.dtype} to f32`);
  }
}

function halfToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const ex = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (ex === 0) return s * m * 2 ** -24;
  if (ex === 0x1f) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (ex - 15);
}

/** Serializes tensors to the safetensors format (keys sorted, as the official writer does). For tests and tools. */
export function serializeSafetensors(entries: { name: string; dtype: SafeDType; shape: number[]; data: Uint8Array }[], metadata?: Record<string, string>): Uint8Array {
  const sorted = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const e of sorted) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.data.byteLength] };
    off += e.data.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.byteLength % 8)) % 8;
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.byteLength + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let p = 8 + json.byteLength;
  for (const e of sorted) {
    out.set(e.data, p);
    p += e.data.byteLength;
  }
  return out;
}
