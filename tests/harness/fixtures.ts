/**
 * Reads golden fixtures from ../shared/fixtures: through the file system in Node, through the
 * Vite dev server (`/@fs/...`, see BrowserSuiteEnv.fixturesUrl) in a browser Worker.
 * Paths are relative to the fixtures folder, e.g. 'ref/mimi/st_codes.i32.bin'.
 */
export type FixtureReader = (relPath: string) => Promise<Uint8Array>;

/** Node reader over `<project>/../shared/fixtures` (or $SOLACELIVE_FIXTURES). */
export function nodeFixtures(): FixtureReader {
  return async (rel) => {
    const { readFile } = await import('node:fs/promises');
    const { resolve } = await import('node:path');
    const base = process.env.SOLACELIVE_FIXTURES ?? resolve(import.meta.dirname, '../../../shared/fixtures');
    const path = resolve(base, rel);
    try {
      return new Uint8Array(await readFile(path));
    } catch (e) {
      throw new Error(`fixture ${path} could not be read (${(e as Error).message}); the golden fixtures live in ../shared/fixtures beside the project`);
    }
  };
}

/** Browser reader over a URL prefix. */
export function urlFixtures(base: string): FixtureReader {
  return async (rel) => {
    const r = await fetch(`${base}/${rel}`);
    if (!r.ok) throw new Error(`fixture ${base}/${rel}: HTTP ${r.status}`);
    return new Uint8Array(await r.arrayBuffer());
  };
}

const aligned = (b: Uint8Array) => (b.byteOffset % 4 === 0 ? b : b.slice());

export async function fixtureF32(read: FixtureReader, rel: string): Promise<Float32Array> {
  const b = aligned(await read(rel));
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

export async function fixtureI32(read: FixtureReader, rel: string): Promise<Int32Array> {
  const b = aligned(await read(rel));
  return new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

export async function fixtureJson<T = unknown>(read: FixtureReader, rel: string): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await read(rel))) as T;
}
