/**
 * safetensors reader: 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}`, then the raw
 * little-endian tensor data; offsets are relative to the end of the header.
 * Spec: https://github.com/huggingface/safetensors (format section).
 *
 * Checked as the reference library (`safetensors` crate, `Metadata::validate`) checks: the tensors'
 * byte ranges, in offset order, tile the data section exactly (the first starts at 0, each starts
 * where the previous ended: no two share or overlap bytes, no hole between them, no data after
 * the last); each range is exactly numel × dtype size; `__metadata__`, when present, is a map of
 * strings to strings. Any of these failing is a SafetensorsError naming the file and the key.
 */
import { bf16BitsToF32, f16BitsToF32 } from '../gpu/dtype.ts';

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
  /** The raw little-endian bytes of this tensor (a view into the file); empty for a lazy entry. */
  data: Uint8Array;
  /**
   * Set for a tensor of a file opened with `SafetensorsFile.fromBlob` whose bytes stay in the
   * Blob until read (large tensors: the file is never held in memory as a whole).
   */
  lazy?: { readonly byteLength: number; read(): Promise<Uint8Array> };
}

/** Tensors up to this size are read into memory when a file is opened from a Blob. */
export const DEFAULT_EAGER_BYTES = 1024 * 1024;

export class SafetensorsFile {
  private constructor(
    readonly fileName: string,
    readonly tensors: ReadonlyMap<string, TensorEntry>,
    readonly metadata: Record<string, string>,
  ) {}

  /**
   * Parses a whole file held in memory. Throws SafetensorsError for a truncated file, a bad or
   * oversized header, invalid JSON, an unknown dtype, a shape/offset mismatch, offsets out of
   * range, tensors that overlap or leave a hole, data after the last tensor, or `__metadata__`
   * that is not a string→string map.
   */
  static parse(bytes: ArrayBuffer | Uint8Array, fileName = '<memory>'): SafetensorsFile {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
    const fail = (msg: string) => new SafetensorsError(`${fileName}: ${msg}`);
    const n = headerLength(u8, u8.byteLength, fail);
    const header = parseHeaderJson(u8.subarray(8, 8 + n), fail);
    const dataStart = 8 + n;
    const { metadata, layout } = tensorLayout(header, u8.byteLength - dataStart, fail);
    const tensors = new Map<string, TensorEntry>();
    for (const t of layout) tensors.set(t.name, { name: t.name, dtype: t.dtype, shape: t.shape, data: u8.subarray(dataStart + t.begin, dataStart + t.end) });
    return new SafetensorsFile(fileName, tensors, metadata);
  }

  /**
   * Opens a file held in a Blob (a picked File, `fs.openAsBlob` in Node, a Cache API response)
   * without reading it whole: the header is parsed and checked as in `parse`, tensors of at most
   * `eagerBytes` (default 1 MiB) are read now, larger ones become lazy entries read on demand
   * (VarBuilder uploads them one at a time). Throws SafetensorsError like `parse`.
   */
  static async fromBlob(blob: Blob, fileName = '<blob>', opts: { eagerBytes?: number } = {}): Promise<SafetensorsFile> {
    const fail = (msg: string) => new SafetensorsError(`${fileName}: ${msg}`);
    const eager = opts.eagerBytes ?? DEFAULT_EAGER_BYTES;
    const head = new Uint8Array(await blob.slice(0, 8).arrayBuffer());
    const n = headerLength(head, blob.size, fail);
    const header = parseHeaderJson(new Uint8Array(await blob.slice(8, 8 + n).arrayBuffer()), fail);
    const dataStart = 8 + n;
    const { metadata, layout } = tensorLayout(header, blob.size - dataStart, fail);
    const read = async (name: string, begin: number, end: number): Promise<Uint8Array> => {
      const b = new Uint8Array(await blob.slice(dataStart + begin, dataStart + end).arrayBuffer());
      if (b.byteLength !== end - begin) throw fail(`key '${name}': read ${b.byteLength} of ${end - begin} bytes (the file changed or is truncated)`);
      return b;
    };
    const tensors = new Map<string, TensorEntry>();
    for (const t of layout) {
      const bytes = t.end - t.begin;
      if (bytes <= eager) {
        tensors.set(t.name, { name: t.name, dtype: t.dtype, shape: t.shape, data: await read(t.name, t.begin, t.end) });
      } else {
        tensors.set(t.name, { name: t.name, dtype: t.dtype, shape: t.shape, data: new Uint8Array(0), lazy: { byteLength: bytes, read: () => read(t.name, t.begin, t.end) } });
      }
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

/** Length of the JSON header from the first 8 bytes, checked against the file size. */
function headerLength(head: Uint8Array, fileSize: number, fail: (m: string) => SafetensorsError): number {
  if (fileSize < 8 || head.byteLength < 8) throw fail(`truncated: ${fileSize} bytes, a safetensors file starts with an 8-byte header length`);
  const n = Number(new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true));
  if (n > 100 * 1024 * 1024) throw fail(`header length ${n} is implausible (over 100 MiB): not a safetensors file?`);
  if (8 + n > fileSize) throw fail(`truncated: header length ${n} but the file has only ${fileSize - 8} bytes after it`);
  return n;
}

function parseHeaderJson(bytes: Uint8Array, fail: (m: string) => SafetensorsError): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw fail(`header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw fail('header is not a JSON object');
  return header as Record<string, unknown>;
}

/** Every tensor's dtype, shape and data range, checked against the data section's length. */
function tensorLayout(header: Record<string, unknown>, dataLen: number, fail: (m: string) => SafetensorsError) {
  const layout: { name: string; dtype: SafeDType; shape: number[]; begin: number; end: number }[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw fail(`'__metadata__' must be a map of strings to strings, got ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw}`);
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') throw fail(`'__metadata__' key '${k}': value must be a string, got ${JSON.stringify(v)}`);
      }
      metadata = raw as Record<string, string>;
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
    layout.push({ name, dtype, shape: shape as number[], begin: off[0] as number, end: off[1] as number });
  }
  // The ranges must tile [0, dataLen) exactly, in offset order (the reference library's rule).
  const order = [...layout].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev = '';
  for (const t of order) {
    if (t.begin < at) throw fail(`key '${t.name}': data_offsets [${t.begin}, ${t.end}] overlap the bytes of '${prev}' (which end at ${at}): tensors may not share bytes`);
    if (t.begin > at) throw fail(`key '${t.name}': data_offsets [${t.begin}, ${t.end}] leave a hole of ${t.begin - at} bytes after ${prev ? `'${prev}'` : 'the header'} (which ends at ${at}): tensors must be contiguous`);
    at = t.end;
    prev = t.name;
  }
  if (at !== dataLen) throw fail(`${dataLen - at} bytes of data after the last tensor${prev ? ` ('${prev}', ending at ${at})` : ''}: the data section must end with the last tensor`);
  return { metadata, layout };
}

/** Element i of a little-endian safetensors buffer as a number, per dtype (I64 through Number: exact below 2^53). */
const HOST_READERS: Partial<Record<SafeDType, (dv: DataView, i: number) => number>> = {
  F32: (dv, i) => dv.getFloat32(4 * i, true),
  F64: (dv, i) => dv.getFloat64(8 * i, true),
  F16: (dv, i) => f16BitsToF32(dv.getUint16(2 * i, true)),
  BF16: (dv, i) => bf16BitsToF32(dv.getUint16(2 * i, true)),
  I32: (dv, i) => dv.getInt32(4 * i, true),
  U32: (dv, i) => dv.getUint32(4 * i, true),
  I64: (dv, i) => Number(dv.getBigInt64(8 * i, true)),
  I16: (dv, i) => dv.getInt16(2 * i, true),
  U16: (dv, i) => dv.getUint16(2 * i, true),
  I8: (dv, i) => dv.getInt8(i),
  U8: (dv, i) => dv.getUint8(i),
  BOOL: (dv, i) => dv.getUint8(i),
};

/** Converts a float or integer entry to f32 values on the host. */
export function entryToF32(e: TensorEntry, fileName = ''): Float32Array {
  if (e.lazy) throw new SafetensorsError(`${fileName ? `${fileName}: ` : ''}key '${e.name}' (${e.lazy.byteLength} bytes) is read lazily from its Blob; read it (lazy.read()) before converting it on the host`);
  const n = e.shape.reduce((a, b) => a * b, 1);
  const read = HOST_READERS[e.dtype];
  if (!read) throw new SafetensorsError(`${fileName}: key '${e.name}': cannot convert dtype ${e.dtype} to f32`);
  const dv = new DataView(e.data.buffer, e.data.byteOffset, e.data.byteLength);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = read(dv, i);
  return out;
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
