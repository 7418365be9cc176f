import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/selftest/rng.ts';
import { Sha256, sha256FromEtag, sha256Hex, sha256OfBlob } from '../../src/weights/sha256.ts';

const ref = (u8: Uint8Array) => createHash('sha256').update(u8).digest('hex');

describe('Sha256 (incremental)', () => {
  it('matches node:crypto for every length around the block and padding edges, in any chunking', () => {
    const rng = new Rng(11);
    const data = new Uint8Array(1200).map(() => rng.int(256));
    for (let n = 0; n <= 300; n++) expect(sha256Hex(data.subarray(0, n)), `length ${n}`).toBe(ref(data.subarray(0, n)));
    for (let trial = 0; trial < 50; trial++) {
      const n = rng.int(data.length + 1);
      const h = new Sha256();
      for (let off = 0; off < n; ) {
        const step = Math.min(n - off, rng.int(130));
        h.update(data.subarray(off, off + step));
        off += step;
      }
      expect(h.hex()).toBe(ref(data.subarray(0, n)));
    }
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('hashes a Blob in slices', async () => {
    const rng = new Rng(5);
    const data = new Uint8Array(100_003).map(() => rng.int(256));
    expect(await sha256OfBlob(new Blob([data]), 4096)).toBe(ref(data));
  });

  it('reads a sha256 from an entity tag, and nothing else', () => {
    const sha = 'a'.repeat(64);
    expect(sha256FromEtag(`"${sha}"`)).toBe(sha);
    expect(sha256FromEtag(`W/"${sha.toUpperCase()}"`)).toBe(sha);
    expect(sha256FromEtag('"0123456789abcdef0123456789abcdef01234567"')).toBeNull(); // a git blob id
    expect(sha256FromEtag(null)).toBeNull();
    expect(sha256FromEtag(`"${sha}-2"`)).toBeNull();
  });
});
