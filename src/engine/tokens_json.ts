/**
 * tokens.json, the token log shared by `cli run` and `cli lm`:
 *   {"dep_q": D, "steps": [null | {"text": int, "audio": [D ints]}, ...]}
 * one entry per LMGen step, null where the step returned nothing.
 */
import type { LmFrame } from './engine.ts';

export interface TokensFile {
  dep_q: number;
  steps: ({ text: number; audio: number[] } | null)[];
}

/** Serialises steps as tokens.json text (one step per line). */
export function tokensJson(depQ: number, frames: readonly (LmFrame | null)[]): string {
  const steps = frames.map((f) => (f ? JSON.stringify({ text: f.text, audio: Array.from(f.audio) }) : 'null'));
  return `{"dep_q": ${depQ}, "steps": [\n${steps.join(',\n')}\n]}\n`;
}

/** Parses and checks tokens.json text. Throws an Error naming `source` and the bad step. */
export function parseTokensJson(text: string, source = 'tokens.json'): TokensFile {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new Error(`${source}: not JSON (${(e as Error).message})`);
  }
  const o = j as Partial<TokensFile>;
  if (!o || !Number.isInteger(o.dep_q) || !Array.isArray(o.steps)) throw new Error(`${source}: expected {"dep_q": int, "steps": [...]}`);
  o.steps.forEach((s, i) => {
    if (s === null) return;
    if (!Number.isInteger(s.text) || !Array.isArray(s.audio) || s.audio.length !== o.dep_q || !s.audio.every(Number.isInteger)) {
      throw new Error(`${source}: step ${i} must be null or {"text": int, "audio": [${o.dep_q} ints]}`);
    }
  });
  return o as TokensFile;
}
