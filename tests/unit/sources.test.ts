// Model sources against a local HTTP server that serves fixture files the way the hub does:
// /<repo>/resolve/<revision>/<file> with Content-Length, 404 for missing files, a redirect to a
// "CDN" path, a truncated response and a slow chunked one.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_SPM_MODEL, safetensorsF32 } from '../harness/model_files.ts';
import { MemoryWeightCache } from '../../src/weights/cache.ts';
import {
  DEFAULT_REPO,
  ModelSourceError,
  type ProgressInfo,
  RELEASE_FILES,
  classifyFiles,
  fetchFile,
  fetchWeights,
  hubUrl,
  loadModelFiles,
} from '../../src/weights/sources.ts';

/** A small valid safetensors file with one F32 tensor of n elements. */

const MIMI = safetensorsF32('encoder.model.0.conv.conv.weight', 1000, 0.5);
const LM = safetensorsF32('text_emb.weight', 5000, 1.5);
/** A real SentencePiece model (the tokenizer is checked before it is cached). */
const TOK = TINY_SPM_MODEL;
const CONFIG = new TextEncoder().encode(JSON.stringify({ dim: 64, num_layers: 2 }));

let server: Server;
let base: string;
const requests: string[] = [];

/** Files by path; special paths behave like a flaky CDN. */
function routes(): Map<string, Uint8Array> {
  const repo = `/${DEFAULT_REPO}/resolve/main`;
  return new Map([
    [`${repo}/${RELEASE_FILES.mimiWeights}`, MIMI],
    [`${repo}/${RELEASE_FILES.tokenizer}`, TOK],
    [`/cdn/lm-blob`, LM],
    [`/mirror/org/m/resolve/v1.0/${RELEASE_FILES.mimiWeights}`, MIMI],
    [`/mirror/org/m/resolve/v1.0/${RELEASE_FILES.lmWeights}`, LM],
    [`/mirror/org/m/resolve/v1.0/${RELEASE_FILES.tokenizer}`, TOK],
    ['/pair/mimi.json', CONFIG],
    ['/pair/lm.json', CONFIG],
    ['/pair/bad.json', new TextEncoder().encode('{"dim": ')],
    ['/pair/mimi.safetensors', MIMI],
    ['/pair/lm.safetensors', LM],
    ['/pair/corrupt.safetensors', new Uint8Array(LM.length).fill(0xff)],
  ]);
}

beforeAll(async () => {
  const files = routes();
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    if (path === `/${DEFAULT_REPO}/resolve/main/${RELEASE_FILES.lmWeights}`) {
      // The hub answers LFS files with a redirect to its CDN.
      res.writeHead(302, { Location: '/cdn/lm-blob' }).end();
      return;
    }
    if (path === '/pair/truncated.safetensors') {
      res.writeHead(200, { 'Content-Length': String(LM.length), 'Content-Type': 'application/octet-stream' });
      res.write(LM.subarray(0, 1000));
      setTimeout(() => res.destroy(), 20);
      return;
    }
    if (path === '/pair/slow.safetensors') {
      res.writeHead(200, { 'Content-Length': String(LM.length) });
      let off = 0;
      const tick = () => {
        if (off >= LM.length) return void res.end();
        res.write(LM.subarray(off, off + 4096));
        off += 4096;
        setTimeout(tick, 5);
      };
      tick();
      return;
    }
    const body = files.get(path);
    if (!body) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Entry not found');
      return;
    }
    res.writeHead(200, { 'Content-Length': String(body.length), 'Content-Type': 'application/octet-stream' });
    res.end(body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

function recorder() {
  const events: ProgressInfo[] = [];
  return { events, onProgress: (e: ProgressInfo) => events.push(e), seq: (file: string) => events.filter((e) => e.file === file).map((e) => e.status) };
}

async function rejection(p: Promise<unknown>): Promise<ModelSourceError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ModelSourceError);
    return e as ModelSourceError;
  }
  throw new Error('expected a rejection');
}

/** The bytes of a weights file as loadModelFiles returns it (a Blob, or bytes). */
async function bytesOf(x: Uint8Array | Blob): Promise<Uint8Array> {
  return x instanceof Blob ? new Uint8Array(await x.arrayBuffer()) : x;
}

describe('model sources', () => {
  it('builds hub URLs as ${base}/${repo}/resolve/${revision}/${file}', () => {
    expect(hubUrl('model.safetensors')).toBe('https://huggingface.co/kyutai/moshiko-pytorch-bf16/resolve/main/model.safetensors');
    expect(hubUrl('a b.model', 'https://mirror.example/hf//', 'org/m', 'v1.0')).toBe('https://mirror.example/hf/org/m/resolve/v1.0/a%20b.model');
  });

  it('downloads the release from the hub with progress events, then serves it from the cache', async () => {
    const cache = new MemoryWeightCache();
    const r1 = recorder();
    requests.length = 0;
    const files = await loadModelFiles({ kind: 'hub', baseUrl: base }, { cache, onProgress: r1.onProgress, progressIntervalMs: 0 });
    expect(await bytesOf(files.mimiWeights)).toEqual(MIMI);
    expect(await bytesOf(files.lmWeights)).toEqual(LM); // through the redirect
    expect(files.tokenizer).toEqual(TOK);
    expect(files.mimiConfig).toBeNull();
    expect(files.origins).toEqual({ tokenizer: 'network', mimiWeights: 'network', lmWeights: 'network' });
    for (const f of Object.values(RELEASE_FILES)) {
      const s = r1.seq(f);
      expect(s[0]).toBe('initiate');
      expect(s[1]).toBe('download');
      expect(s).toContain('progress');
      expect(s.at(-1)).toBe('done');
    }
    const doneLm = r1.events.find((e) => e.file === RELEASE_FILES.lmWeights && e.status === 'done')!;
    expect(doneLm).toMatchObject({ loaded: LM.length, total: LM.length, role: 'lmWeights' });
    const ready = r1.events.at(-1)!;
    expect(ready.status).toBe('ready');
    expect(ready.loaded).toBe(MIMI.length + LM.length + TOK.length);
    expect(requests).toContain('/cdn/lm-blob');
    expect((await cache.keys()).length).toBe(3);

    // Second load: no network at all, 'done' events marked cached.
    requests.length = 0;
    const r2 = recorder();
    const again = await loadModelFiles({ kind: 'hub', baseUrl: base }, { cache, onProgress: r2.onProgress });
    expect(requests).toEqual([]);
    expect(again.lmWeights).toBeInstanceOf(Blob); // weights stay Blobs, from the network and from the cache
    expect(await bytesOf(again.lmWeights)).toEqual(LM);
    expect(again.origins).toEqual({ tokenizer: 'cache', mimiWeights: 'cache', lmWeights: 'cache' });
    expect(r2.seq(RELEASE_FILES.mimiWeights)).toEqual(['initiate', 'done']);
    expect(r2.events.find((e) => e.status === 'done')!.cached).toBe(true);
    expect(cache.hits).toBe(3);
  });

  it('supports a mirror base URL, another repo and a revision', async () => {
    const files = await loadModelFiles({ kind: 'hub', baseUrl: `${base}/mirror/`, repo: 'org/m', revision: 'v1.0' }, { cache: null });
    expect(await bytesOf(files.lmWeights)).toEqual(LM);
    expect(files.names).toEqual({ tokenizer: RELEASE_FILES.tokenizer, mimiWeights: RELEASE_FILES.mimiWeights, lmWeights: RELEASE_FILES.lmWeights });
  });

  it('a 404 is an error naming the file, with an error event', async () => {
    const r = recorder();
    const err = await rejection(loadModelFiles({ kind: 'hub', baseUrl: base, repo: 'kyutai/nope' }, { cache: null, onProgress: r.onProgress }));
    expect(err.file).toBe(RELEASE_FILES.tokenizer);
    expect(err.status).toBe(404);
    expect(err.message).toMatch(/^tokenizer_spm_32k_3\.model: HTTP 404 .*kyutai\/nope.*not found/);
    expect(r.events.at(-1)).toMatchObject({ status: 'error', file: RELEASE_FILES.tokenizer });
  });

  it('detects a truncated download and caches nothing', async () => {
    const cache = new MemoryWeightCache();
    const err = await rejection(fetchFile(`${base}/pair/truncated.safetensors`, 'lmWeights', { cache, retryDelayMs: 1 }));
    expect(err.file).toBe('truncated.safetensors');
    expect(err.message).toMatch(/truncated\.safetensors: (download interrupted at|truncated download: received) \d+ of 20\d+ bytes/);
    expect(await cache.keys()).toEqual([]);
  });

  it('streams progress for a slow download', async () => {
    const r = recorder();
    const { bytes } = await fetchFile(`${base}/pair/slow.safetensors`, 'lmWeights', { cache: null, onProgress: r.onProgress, progressIntervalMs: 0 });
    expect(bytes).toEqual(LM);
    const prog = r.events.filter((e) => e.status === 'progress');
    expect(prog.length).toBeGreaterThan(3);
    for (let i = 1; i < prog.length; i++) expect(prog[i].loaded).toBeGreaterThanOrEqual(prog[i - 1].loaded);
    expect(prog.every((e) => e.total === LM.length)).toBe(true);
  });

  it('weights stay Blobs from download to cache: folded in pieces, truncated or corrupt ones rejected and not cached', async () => {
    const cache = new MemoryWeightCache();
    const r = recorder();
    const w = await fetchWeights(`${base}/pair/slow.safetensors`, 'lmWeights', { cache, onProgress: r.onProgress, progressIntervalMs: 0, blobFoldBytes: 1000 });
    expect(w.blob).toBeInstanceOf(Blob);
    expect(await bytesOf(w.blob)).toEqual(LM);
    expect(r.seq('slow.safetensors').at(-1)).toBe('done');
    const hit = await fetchWeights(`${base}/pair/slow.safetensors`, 'lmWeights', { cache });
    expect(hit.origin).toBe('cache');
    expect(await bytesOf(hit.blob)).toEqual(LM);
    const fresh = new MemoryWeightCache();
    const t = await rejection(fetchWeights(`${base}/pair/truncated.safetensors`, 'lmWeights', { cache: fresh, retryDelayMs: 1 }));
    expect(t.message).toMatch(/truncated\.safetensors: (download interrupted at|truncated download: received) \d+ of 20\d+ bytes/);
    const c = await rejection(fetchWeights(`${base}/pair/corrupt.safetensors`, 'lmWeights', { cache: fresh }));
    expect(c.message).toMatch(/^corrupt\.safetensors: not a valid safetensors file/);
    expect(await fresh.keys()).toEqual([]);
  });

  it('loads a config + safetensors pair from any URLs and verifies both', async () => {
    const files = await loadModelFiles(
      { kind: 'urls', mimiConfig: `${base}/pair/mimi.json`, mimiWeights: `${base}/pair/mimi.safetensors`, lmConfig: `${base}/pair/lm.json`, lmWeights: `${base}/pair/lm.safetensors` },
      { cache: null },
    );
    expect(files.mimiConfig).toEqual({ dim: 64, num_layers: 2 });
    expect(files.lmConfig).toEqual({ dim: 64, num_layers: 2 });
    expect(files.tokenizer).toBeNull();
    const bad = await rejection(loadModelFiles({ kind: 'urls', lmConfig: `${base}/pair/bad.json`, mimiWeights: `${base}/pair/mimi.safetensors`, lmWeights: `${base}/pair/lm.safetensors` }, { cache: null }));
    expect(bad.message).toMatch(/^bad\.json: config is not valid JSON/);
    const cache = new MemoryWeightCache();
    const corrupt = await rejection(fetchFile(`${base}/pair/corrupt.safetensors`, 'lmWeights', { cache }));
    expect(corrupt.message).toMatch(/^corrupt\.safetensors: not a valid safetensors file/);
    expect(await cache.keys()).toEqual([]);
    const missing = await rejection(loadModelFiles({ kind: 'urls', mimiWeights: '', lmWeights: `${base}/pair/lm.safetensors` }, { cache: null }));
    expect(missing.message).toMatch(/Mimi weights URL/);
  });

  it('replaces a corrupted cache entry by a fresh download', async () => {
    const cache = new MemoryWeightCache();
    const url = `${base}/pair/mimi.safetensors`;
    await cache.put(url, new Uint8Array([1, 2, 3]));
    requests.length = 0;
    const r = await fetchFile(url, 'mimiWeights', { cache });
    expect(r.origin).toBe('network');
    expect(r.bytes).toEqual(MIMI);
    expect(await cache.get(url)).toEqual(MIMI);
  });

  it('a network failure names the file', async () => {
    const err = await rejection(fetchFile('http://127.0.0.1:9/x/model.safetensors', 'lmWeights', { cache: null, retryDelayMs: 1 }));
    expect(err.message).toMatch(/^model\.safetensors: could not fetch/);
  });

  it('reads picked local files, classified by name, and verifies them', async () => {
    const picked = [
      new File([TOK], RELEASE_FILES.tokenizer),
      new File([LM], 'model.safetensors'),
      new File([MIMI], RELEASE_FILES.mimiWeights),
      new File([CONFIG], 'config.json'),
    ];
    const r = recorder();
    const files = await loadModelFiles({ kind: 'files', files: picked }, { onProgress: r.onProgress, cache: null });
    // Weights stay in their Files (header checked, data read at load time).
    expect(files.lmWeights).toBe(picked[1]);
    expect(files.mimiWeights).toBe(picked[2]);
    expect(new Uint8Array(await (files.lmWeights as Blob).arrayBuffer())).toEqual(LM);
    expect(files.lmConfig).toEqual({ dim: 64, num_layers: 2 });
    expect(files.origins.lmWeights).toBe('local');
    expect(r.seq('model.safetensors')).toEqual(['initiate', 'done']);
    expect(() => classifyFiles([new File([MIMI], 'mimi.safetensors')])).toThrow(/no LM weights/);
    expect(() => classifyFiles([new File([LM], 'a.safetensors'), new File([LM], 'b.safetensors'), new File([MIMI], 'mimi.safetensors')])).toThrow(/several LM weights/);
    const bad = await rejection(loadModelFiles({ kind: 'files', files: [new File([new Uint8Array(16)], 'model.safetensors'), new File([MIMI], 'mimi.safetensors')] }, { cache: null }));
    expect(bad.message).toMatch(/^model\.safetensors: not a valid safetensors file \((truncated|header)/); // the name once
  });
});

describe('model sources in Chromium (Cache API and IndexedDB backends, cross-origin hub under COEP)', () => {
  it('caches downloads for offline use in both browser backends', async () => {
    const { launchChromium, startDevServer } = await import('../harness/browser.ts');
    const { server, url } = await startDevServer();
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const hubRequests: string[] = [];
      const served = new Map<string, Uint8Array>([
        [`/${DEFAULT_REPO}/resolve/main/${RELEASE_FILES.mimiWeights}`, MIMI],
        [`/${DEFAULT_REPO}/resolve/main/${RELEASE_FILES.lmWeights}`, LM],
        [`/${DEFAULT_REPO}/resolve/main/${RELEASE_FILES.tokenizer}`, TOK],
      ]);
      const { createHash } = await import('node:crypto');
      await page.route('https://hub.test/**', (route) => {
        const path = decodeURIComponent(new URL(route.request().url()).pathname);
        hubRequests.push(path);
        // x/flip: the release with a flipped byte in the tokenizer, under the true sha256 ETag.
        const flip = path.startsWith('/x/flip/');
        const body = served.get(flip ? path.replace('/x/flip/', `/${DEFAULT_REPO}/`) : path);
        const cors = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'Content-Length, ETag, X-Linked-Etag, X-Linked-Size' };
        if (!body) return route.fulfill({ status: 404, headers: cors, body: 'Entry not found' });
        const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
        const sent = flip && path.endsWith('.model') ? body.map((b, i) => (i === body.length - 5 ? b ^ 1 : b)) : body;
        return route.fulfill({ status: 200, headers: { ...cors, 'Content-Length': String(body.length), 'Content-Type': 'application/octet-stream', ETag: etag }, body: Buffer.from(sent) });
      });
      await page.route(`${url}/__blank.html`, (route) =>
        route.fulfill({
          status: 200,
          contentType: 'text/html',
          headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' },
          body: '<!doctype html><title>sources</title>',
        }),
      );
      await page.goto(`${url}/__blank.html`);
      const result = await page.evaluate(async () => {
        const imp = (0, eval)('(u) => import(u)') as (u: string) => Promise<Record<string, any>>;
        const src = await imp('/src/weights/sources.ts');
        const cacheMod = await imp('/src/weights/cache.ts');
        const out: Record<string, unknown> = { defaultKind: cacheMod.defaultWeightCache().kind, isolated: crossOriginIsolated };
        for (const [label, cache] of [
          ['cache-api', new cacheMod.CacheApiWeightCache('solacelive-test')],
          ['indexeddb', new cacheMod.IdbWeightCache('solacelive-test', 'files')],
        ] as const) {
          await cache.clear();
          const events: string[] = [];
          const a = await src.loadModelFiles({ kind: 'hub', baseUrl: 'https://hub.test' }, { cache, onProgress: (e: { status: string }) => events.push(e.status) });
          const b = await src.loadModelFiles({ kind: 'hub', baseUrl: 'https://hub.test' }, { cache });
          let err = '';
          try {
            await src.loadModelFiles({ kind: 'hub', baseUrl: 'https://hub.test', repo: 'x/missing' }, { cache });
          } catch (e) {
            err = (e as Error).message;
          }
          let integrity = '';
          const before = (await cache.keys()).length;
          try {
            await src.loadModelFiles({ kind: 'hub', baseUrl: 'https://hub.test', repo: 'x/flip' }, { cache });
          } catch (e) {
            integrity = `${(e as Error).name}: ${(e as Error).message}`;
          }
          const addedByFlip = (await cache.keys()).length - before;
          out[label] = {
            first: a.origins,
            second: b.origins,
            // Weights come back as Blobs (disk-backed in the browser), the cached one equal to the download.
            same: await (async () => {
              const x = new Uint8Array(await (a.lmWeights as Blob).arrayBuffer());
              const y = new Uint8Array(await (b.lmWeights as Blob).arrayBuffer());
              return a.lmWeights instanceof Blob && b.lmWeights instanceof Blob && x.length > 0 && x.length === y.length && x.every((v, i) => v === y[i]);
            })(),
            keys: before,
            events: [...new Set(events)],
            err,
            integrity,
            addedByFlip,
          };
          await cache.clear();
        }
        return out;
      });
      expect(result.defaultKind).toBe('cache-api');
      expect(result.isolated).toBe(true);
      for (const label of ['cache-api', 'indexeddb']) {
        const r = result[label] as { first: object; second: object; same: boolean; keys: number; events: string[]; err: string; integrity: string; addedByFlip: number };
        expect(r.first, label).toEqual({ tokenizer: 'network', mimiWeights: 'network', lmWeights: 'network' });
        expect(r.second, label).toEqual({ tokenizer: 'cache', mimiWeights: 'cache', lmWeights: 'cache' });
        expect(r.same).toBe(true);
        expect(r.keys).toBe(3);
        expect(r.events).toEqual(['initiate', 'download', 'progress', 'done', 'ready']);
        expect(r.err).toMatch(/^tokenizer_spm_32k_3\.model: HTTP 404/);
        // The sha256 ETag is visible through CORS: a flipped byte is an IntegrityError, not cached.
        expect(r.integrity, label).toMatch(/^IntegrityError: tokenizer_spm_32k_3\.model: sha256 mismatch: ETag says [0-9a-f]{64}/);
        expect(r.addedByFlip, label).toBe(0);
      }
      // Each backend downloaded each file once; the repeat loads were served offline.
      expect(hubRequests.filter((p) => !p.includes('x/missing') && !p.includes('x/flip')).length).toBe(6);
    } finally {
      await browser.close();
      await server.close();
    }
  });
});
