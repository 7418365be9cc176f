// Resumed downloads against the hub-like server of tests/harness/hub_server.ts (302 to a CDN
// with X-Linked-Etag; Range, If-Range; faults queued per request): a dropped connection or a
// stall mid-body is retried with `Range: bytes=<stored>-` and only the remainder is sent again;
// a redirect chain keeps the Range; a server ignoring Range, a changed file (If-Range, or a 206
// with another ETag) and a 416 restart from 0; a failed Load leaves its parts and the next Load
// resumes from them; a flipped byte in the resumed part is an IntegrityError with nothing cached
// and the parts gone; a full storage is a StorageQuotaError naming the bytes needed and free.
// Parts are 16 KiB here (blobFoldBytes) so that the files are stored in several parts.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HubServer } from '../harness/hub_server.ts';
import { safetensorsF32 } from '../harness/model_files.ts';
import { MemoryWeightCache } from '../../src/weights/cache.ts';
import { MemoryPartStore } from '../../src/weights/parts.ts';
import { Sha256 } from '../../src/weights/sha256.ts';
import { IntegrityError, ModelSourceError, type ProgressInfo, StorageQuotaError, fetchFile, fetchWeights, loadModelFiles } from '../../src/weights/sources.ts';

/** A valid safetensors file whose tensor bytes all differ (a flipped or shifted byte changes the sha256). */
function weights(n: number, seed: number): Uint8Array<ArrayBuffer> {
  const f = safetensorsF32('w', n, 0);
  const dv = new DataView(f.buffer);
  const start = f.length - 4 * n;
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    dv.setFloat32(start + 4 * i, (x / 2 ** 32) * 2 - 1, true);
  }
  return f;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const FILE = 'model.safetensors';
const V1 = weights(60_000, 1); // ~240 KB
const V2 = weights(60_000, 2); // same size, other bytes
const hub = new HubServer();
let cache: MemoryWeightCache;
let parts: MemoryPartStore;
let events: ProgressInfo[];
const opts = () => ({
  cache, parts, stallTimeoutMs: 5000, // the stall test sets its own short one; elsewhere a loaded CI machine must not look stalled
  retryDelayMs: 5, progressIntervalMs: 0, blobFoldBytes: 16 * 1024, onProgress: (e: ProgressInfo) => events.push(e),
});

beforeAll(async () => {
  await hub.start();
});
afterAll(() => hub.close());
beforeEach(() => {
  hub.files.clear();
  hub.faults.clear();
  hub.log.length = 0;
  hub.hops = 0;
  hub.opaqueEtag = false;
  hub.files.set(FILE, V1);
  cache = new MemoryWeightCache();
  parts = new MemoryPartStore();
  events = [];
});

async function rejection<T extends Error>(p: Promise<unknown>, cls: new (...a: never[]) => T): Promise<T> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(cls);
    return e as T;
  }
  throw new Error('expected a rejection');
}

describe('resumed downloads', () => {
  it('a dropped connection mid-body: retried with Range from the stored bytes, only the remainder sent again, sha256 right', async () => {
    const cut = 100_003; // not on a part boundary
    hub.fault(FILE, { kind: 'drop', after: cut });
    const r = await fetchWeights(hub.url(FILE), 'lmWeights', opts());
    expect(sha(new Uint8Array(await r.blob.arrayBuffer()))).toBe(sha(V1));
    const [first, second, ...rest] = hub.cdnRequests(FILE);
    expect(rest).toEqual([]);
    expect(first).toMatchObject({ range: null, status: 200, sent: cut, closedEarly: true });
    // The second request asks for exactly the bytes not received, with the CDN's ETag as If-Range.
    expect(second).toMatchObject({ range: `bytes=${cut}-`, ifRange: `"${sha(V1)}"`, status: 206, sent: V1.length - cut });
    expect(events.find((e) => e.status === 'retry')).toMatchObject({ attempt: 1, retries: 3, error: expect.stringMatching(/download interrupted at 100003 of 240\d+ bytes/) });
    expect(events.find((e) => e.status === 'download' && e.resumedFrom)).toMatchObject({ resumedFrom: cut, loaded: cut, total: V1.length });
    expect(events.at(-1)).toMatchObject({ status: 'done', loaded: V1.length, total: V1.length });
    expect(await cache.getMeta(hub.url(FILE))).toMatchObject({ size: V1.length, sha256: sha(V1) });
    expect(await parts.list()).toEqual([]); // cached: the parts are gone
  });

  it('a stalled server: the attempt times out, the retry resumes with Range', async () => {
    hub.fault(FILE, { kind: 'stall', after: 50_000 });
    const r = await fetchWeights(hub.url(FILE), 'lmWeights', { ...opts(), stallTimeoutMs: 300 });
    expect(sha(new Uint8Array(await r.blob.arrayBuffer()))).toBe(sha(V1));
    const [first, second] = hub.cdnRequests(FILE);
    expect(first).toMatchObject({ range: null, sent: 50_000, closedEarly: true }); // the client hung up
    expect(second).toMatchObject({ range: 'bytes=50000-', status: 206, sent: V1.length - 50_000 });
    expect(events.find((e) => e.status === 'retry')?.error).toMatch(/^model\.safetensors: no bytes for 0\.3 s at 50000 of \d+ bytes/);
  });

  it('a redirect chain (302 and two 307s) keeps the Range header to the CDN', async () => {
    hub.hops = 2;
    hub.fault(FILE, { kind: 'drop', after: 70_000 });
    const r = await fetchWeights(hub.url(FILE), 'lmWeights', opts());
    expect(sha(new Uint8Array(await r.blob.arrayBuffer()))).toBe(sha(V1));
    const second = hub.log.slice(hub.log.findIndex((q) => q.path.startsWith('/cdn/')) + 1);
    // resolve → hop 1 → hop 2 → CDN, each with the Range of the resumed download.
    expect(second.map((q) => [q.path.split('/')[1], q.status, q.range])).toEqual([
      ['org', 302, 'bytes=70000-'], ['hop', 307, 'bytes=70000-'], ['hop', 307, 'bytes=70000-'], ['cdn', 206, 'bytes=70000-'],
    ]);
  });

  it('a server ignoring Range (200 with the whole file): the download restarts cleanly from 0', async () => {
    hub.fault(FILE, { kind: 'drop', after: 90_000 }, { kind: 'ignore-range' });
    const r = await fetchWeights(hub.url(FILE), 'lmWeights', opts());
    expect(sha(new Uint8Array(await r.blob.arrayBuffer()))).toBe(sha(V1)); // not the first 90 000 bytes twice
    const [, second] = hub.cdnRequests(FILE);
    expect(second).toMatchObject({ range: 'bytes=90000-', status: 200, sent: V1.length });
    const downloads = events.filter((e) => e.status === 'download');
    expect(downloads.map((e) => e.resumedFrom ?? 0)).toEqual([0, 0]);
    expect(await cache.getMeta(hub.url(FILE))).toMatchObject({ sha256: sha(V1) });
  });

  it('the file changed between attempts: If-Range gets the new file (200), and a 206 with another ETag restarts from 0', async () => {
    // 1. The server honours If-Range: the changed file comes whole.
    hub.fault(FILE, { kind: 'drop', after: 80_000 });
    const p = fetchWeights(hub.url(FILE), 'lmWeights', { ...opts(), retryDelayMs: 200 });
    await expect.poll(() => events.some((e) => e.status === 'retry')).toBe(true);
    hub.files.set(FILE, V2);
    const r = await p;
    expect(sha(new Uint8Array(await r.blob.arrayBuffer()))).toBe(sha(V2));
    expect(hub.cdnRequests(FILE)[1]).toMatchObject({ range: 'bytes=80000-', ifRange: `"${sha(V1)}"`, status: 200, sent: V2.length });
    // 2. A server ignoring If-Range sends the new file's tail (206, new ETag): discarded, from 0.
    hub.log.length = 0;
    hub.files.set(FILE, V1);
    cache = new MemoryWeightCache();
    events = [];
    hub.fault(FILE, { kind: 'drop', after: 80_000 }, { kind: 'ignore-if-range' });
    const q = fetchWeights(hub.url(FILE), 'lmWeights', { ...opts(), retryDelayMs: 200 });
    await expect.poll(() => events.some((e) => e.status === 'retry')).toBe(true);
    hub.files.set(FILE, V2);
    const r2 = await q;
    expect(sha(new Uint8Array(await r2.blob.arrayBuffer()))).toBe(sha(V2));
    expect(hub.cdnRequests(FILE).map((x) => [x.range, x.status])).toEqual([[null, 200], ['bytes=80000-', 206], [null, 200]]);
  });

  it('a server whose ETag is no sha256: resumed by its ETag alone, and a 206 under another ETag restarts from 0', async () => {
    hub.opaqueEtag = true;
    hub.fault(FILE, { kind: 'drop', after: 80_000 });
    const r = await fetchWeights(hub.url(FILE), 'lmWeights', opts());
    expect(r.blob.size).toBe(V1.length);
    expect(hub.cdnRequests(FILE)[1]).toMatchObject({ range: 'bytes=80000-', ifRange: `"v-${sha(V1).slice(0, 8)}"`, status: 206 });
    expect(await cache.getMeta(hub.url(FILE))).toMatchObject({ sha256: null }); // nothing to check it against
    // Changed between attempts, If-Range ignored: only the ETag tells the tail is another file's.
    hub.log.length = 0;
    cache = new MemoryWeightCache();
    events = [];
    hub.fault(FILE, { kind: 'drop', after: 80_000 }, { kind: 'ignore-if-range' });
    const q = fetchWeights(hub.url(FILE), 'lmWeights', { ...opts(), retryDelayMs: 200 });
    await expect.poll(() => events.some((e) => e.status === 'retry')).toBe(true);
    hub.files.set(FILE, V2);
    const r2 = await q;
    expect(sha(new Uint8Array(await r2.blob.arrayBuffer()))).toBe(sha(V2)); // not V1's head + V2's tail
    expect(hub.cdnRequests(FILE).map((x) => [x.range, x.status])).toEqual([[null, 200], ['bytes=80000-', 206], [null, 200]]);
  });

  it('a server without any validator (no ETag, no sha256): a retry starts over, nothing is kept', async () => {
    const plain = async (u: string | URL | Request, init?: RequestInit) => {
      const res = await fetch(u, init);
      const h = new Headers(res.headers);
      h.delete('etag');
      return new Response(res.body, { status: res.status, headers: h });
    };
    hub.fault(FILE, { kind: 'drop', after: 80_000 });
    const r = await fetchWeights(hub.url(FILE), 'lmWeights', { ...opts(), fetch: plain as typeof fetch });
    expect(sha(new Uint8Array(await r.blob.arrayBuffer()))).toBe(sha(V1));
    expect(hub.cdnRequests(FILE).map((x) => [x.range, x.status])).toEqual([[null, 200], [null, 200]]);
    expect(await parts.list()).toEqual([]);
    // The retry says where it broke off and that it starts over (loaded 0).
    expect(events.find((e) => e.status === 'retry')).toMatchObject({ loaded: 0, error: expect.stringMatching(/download interrupted at 80000 of \d+ bytes/) });
  });

  it('a failed Load keeps its parts; the next Load resumes from them (also after a 416 restarts)', async () => {
    hub.fault(FILE, { kind: 'drop', after: 120_000 });
    const err = await rejection(fetchWeights(hub.url(FILE), 'lmWeights', { ...opts(), retries: 0 }), ModelSourceError);
    expect(err.code).toBe('truncated');
    expect(err.message).toMatch(/^model\.safetensors: download interrupted at 120000 of \d+ bytes .*; 120000 bytes are kept: Load again to resume$/);
    expect(await cache.keys()).toEqual([]);
    const [stored] = await parts.list();
    expect(stored).toMatchObject({ key: hub.url(FILE), bytes: 120_000, total: V1.length, sha256: sha(V1), etag: `"${sha(V1)}"` });
    expect(stored.parts).toBeGreaterThan(1);
    // The running hash is the sha256 state of exactly the stored bytes.
    expect(Sha256.restore(stored.hash!).update(V1.subarray(120_000)).hex()).toBe(sha(V1));
    hub.log.length = 0;
    const r = await loadModelFiles({ kind: 'urls', mimiWeights: hub.url(FILE), lmWeights: hub.url(FILE) }, opts());
    expect(sha(new Uint8Array(await (r.lmWeights as Blob).arrayBuffer()))).toBe(sha(V1));
    expect(hub.cdnRequests(FILE)[0]).toMatchObject({ range: 'bytes=120000-', status: 206, sent: V1.length - 120_000 });
    // A 416 to a Range request (the parts do not fit the server's file): discarded, from 0.
    hub.log.length = 0;
    cache = new MemoryWeightCache();
    await parts.append(hub.url(FILE), new Blob([V1.subarray(0, 1000)]), { ...stored, bytes: 1000, parts: 1, hash: new Sha256().update(V1.subarray(0, 1000)).save() });
    hub.fault(FILE, { kind: 'status', status: 416 });
    const again = await fetchWeights(hub.url(FILE), 'lmWeights', opts());
    expect(again.blob.size).toBe(V1.length);
    expect(hub.cdnRequests(FILE).map((x) => [x.range, x.status])).toEqual([['bytes=1000-', 416], [null, 200]]);
  });

  it('a flipped byte in the resumed part: IntegrityError, nothing cached, the parts deleted', async () => {
    hub.fault(FILE, { kind: 'drop', after: 60_000 }, { kind: 'flip', at: 200_000 });
    const err = await rejection(fetchWeights(hub.url(FILE), 'lmWeights', opts()), IntegrityError);
    expect(err.expected).toBe(sha(V1));
    expect(err.message).toMatch(new RegExp(`^model\\.safetensors: sha256 mismatch: the stored download says ${sha(V1)}, the ${V1.length} bytes received hash to [0-9a-f]{64}`));
    expect(hub.cdnRequests(FILE)[1]).toMatchObject({ range: 'bytes=60000-', status: 206 });
    expect(await cache.keys()).toEqual([]);
    expect(await parts.list()).toEqual([]);
    // The next Load starts from 0 (nothing of the bad download is reused) and succeeds.
    hub.log.length = 0;
    await fetchWeights(hub.url(FILE), 'lmWeights', opts());
    expect(hub.cdnRequests(FILE).map((x) => x.range)).toEqual([null]);
  });

  it('retries are bounded: a server that keeps dropping fails with the named error after 1 + retries attempts', async () => {
    hub.fault(FILE, ...[0, 1, 2, 3].map(() => ({ kind: 'status' as const, status: 503 })));
    const err = await rejection(fetchWeights(hub.url(FILE), 'lmWeights', opts()), ModelSourceError);
    expect(err.code).toBe('http');
    expect(err.status).toBe(503);
    expect(err.message).toMatch(/HTTP 503 .* \(4 attempts\); nothing was cached$/);
    expect(hub.cdnRequests(FILE).length).toBe(4);
    expect(events.filter((e) => e.status === 'retry').map((e) => e.retryInMs)).toEqual([5, 10, 20]); // doubling backoff
  });

  it('probeSizes: one plan event first, sizes from the cache meta or HEAD (through the redirect), no file downloaded twice', async () => {
    hub.files.set('mimi.safetensors', V2);
    const src = { kind: 'urls' as const, mimiWeights: hub.url('mimi.safetensors'), lmWeights: hub.url(FILE) };
    await fetchWeights(hub.url('mimi.safetensors'), 'mimiWeights', opts()); // cached now
    events = [];
    hub.log.length = 0;
    await loadModelFiles(src, { ...opts(), probeSizes: true });
    expect(events[0]).toMatchObject({
      status: 'plan', total: V1.length + V2.length,
      plan: [{ file: 'mimi.safetensors', role: 'mimiWeights', bytes: V2.length, cached: true }, { file: FILE, role: 'lmWeights', bytes: V1.length, cached: false }],
    });
    const perFile = events.filter((e) => e.status !== 'plan' && e.status !== 'ready');
    expect(perFile.map((e) => [e.file, e.fileIndex, e.fileCount]).filter(([f, i, n]) => n !== 2 || i !== (f === FILE ? 2 : 1))).toEqual([]);
    expect(hub.log.filter((r) => r.path.startsWith('/cdn/')).map((r) => `${r.method} ${r.path.split('/').pop()}`)).toEqual([`HEAD ${FILE}`, `GET ${FILE}`]);
    // A server that does not answer HEAD: the size is unknown, the load goes on.
    events = [];
    cache = new MemoryWeightCache();
    hub.fault(FILE, { kind: 'status', status: 500 });
    const noHead = async (u: string | URL | Request, init?: RequestInit) => (init?.method === 'HEAD' ? new Response(null, { status: 405 }) : fetch(u, init));
    await loadModelFiles(src, { ...opts(), probeSizes: true, fetch: noHead as typeof fetch });
    expect(events[0].plan?.map((f) => f.bytes)).toEqual([null, null]);
  });

  it('storage full while keeping the downloaded bytes: StorageQuotaError (not retried), the parts stored so far kept', async () => {
    parts.quotaBytes = 150_000;
    const err = await rejection(fetchWeights(hub.url(FILE), 'lmWeights', opts()), StorageQuotaError);
    expect(err.message).toMatch(/^model\.safetensors: storage full: keeping the downloaded bytes needs \d+ bytes more/);
    expect(err.neededBytes).toBeGreaterThan(V1.length - 150_000);
    expect(hub.cdnRequests(FILE).length).toBe(1);
    expect(events.some((e) => e.status === 'retry')).toBe(false);
    expect(await cache.keys()).toEqual([]);
    const [kept] = await parts.list();
    expect(kept.bytes).toBeGreaterThan(0);
    expect(kept.bytes).toBeLessThanOrEqual(150_000);
    expect(kept.bytes + err.neededBytes).toBe(V1.length);
  });

  it('storage full while caching: StorageQuotaError with the bytes needed and the free bytes, nothing half-cached', async () => {
    const small = new TextEncoder().encode(JSON.stringify({ dim: 1 }));
    hub.files.set('config.json', small);
    cache = new MemoryWeightCache(100_000);
    await fetchFile(hub.url('config.json'), 'lmConfig', opts());
    const err = await rejection(fetchWeights(hub.url(FILE), 'lmWeights', opts()), StorageQuotaError);
    const free = 100_000 - small.length;
    expect(err).toMatchObject({ code: 'quota', neededBytes: V1.length, freeBytes: free });
    // What was stored as parts (whole 16 KiB parts, or all of it when the last chunk filled a part) stays for the next Load.
    const [kept] = await parts.list();
    expect(kept.bytes).toBeGreaterThanOrEqual(V1.length - 16 * 1024 - 65_536);
    expect(err.message).toBe(
      `model.safetensors: storage full: caching it needs ${V1.length} bytes, the browser's estimate leaves ${free} bytes free (${small.length} of 100000 used); nothing was cached. ` +
        `Delete cached models or free disk space, then Load again. ${kept.bytes} downloaded bytes are kept for the next Load.`,
    );
    expect(await cache.keys()).toEqual([hub.url('config.json')]);
    // Space freed: the next Load fetches only what the parts lack (nothing at all when they hold the whole file).
    cache = new MemoryWeightCache();
    hub.log.length = 0;
    const r = await fetchWeights(hub.url(FILE), 'lmWeights', opts());
    expect(sha(new Uint8Array(await r.blob.arrayBuffer()))).toBe(sha(V1));
    expect(hub.cdnRequests(FILE).map((x) => x.range)).toEqual(kept.bytes === V1.length ? [] : [`bytes=${kept.bytes}-`]);
    expect(await cache.getMeta(hub.url(FILE))).toMatchObject({ sha256: sha(V1) });
  });
});
