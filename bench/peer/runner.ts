/**
 * What both sides of the Mimi peer comparison (ours_side.ts, ort_side.ts) hand the benchmark
 * loop of mimi_peer_worker.ts, and the fetch they share. Imported by all three; imports none of
 * them.
 */

/** One implementation of Mimi, loaded and ready to time. */
export interface MimiRunner {
  /** Time to create the model / sessions (weights fetched already), ms. */
  loadMs: number;
  /** Implementation and adapter, for the report. */
  detail: string;
  numCodebooks: number;
  /** pcm [N] f32 -> codes [numCodebooks, frames] (non-streaming). */
  encode(pcm: Float32Array): Promise<Int32Array>;
  /** codes [numCodebooks, frames] -> pcm [frames·1920]. */
  decode(codes: Int32Array, frames: number): Promise<Float32Array>;
  destroy(): Promise<void> | void;
}

/**
 * The body of `url` as bytes.
 * @throws Error naming the URL and the HTTP status when the response is not ok
 */
export async function fetchBytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}
