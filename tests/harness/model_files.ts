/** Small model files for the download and cache tests. */
import { readFileSync } from 'node:fs';

/** A valid safetensors file with one F32 tensor `name` of n elements, all `fill`. */
export function safetensorsF32(name: string, n: number, fill: number): Uint8Array<ArrayBuffer> {
  const header = new TextEncoder().encode(JSON.stringify({ [name]: { dtype: 'F32', shape: [n], data_offsets: [0, 4 * n] } }));
  const out = new Uint8Array(8 + header.length + 4 * n);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  for (let i = 0; i < n; i++) dv.setFloat32(8 + header.length + 4 * i, fill, true);
  return out;
}

/** The 300-piece SentencePiece model of tests/fixtures/spm (a real tokenizer: downloads parse it before caching). */
export const TINY_SPM_MODEL: Uint8Array<ArrayBuffer> = new Uint8Array(readFileSync(new URL('../fixtures/spm/tiny_unigram.model', import.meta.url)));
