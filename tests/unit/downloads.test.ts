// Downloads against a local server on 127.0.0.1 that serves files the way the Hugging Face hub
// does (resolve URLs; LFS files answered with a 302 to a CDN path carrying X-Linked-Etag = sha256
// and X-Linked-Size; the CDN's ETag = sha256; Range requests), plus broken variants: a captive
// portal, truncated bodies, a flipped byte, a stalled server, a slow one to cancel.
// Every case asserts the named error and that nothing was cached. Bounded in time: the stall
// timeout is 300 ms in the stall cases (5 s elsewhere) and every test has its own timeout.
import { createHash } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_SPM_MODEL, safetensorsF32 } from '../harness/model_files.ts';
import { MemoryWeightCache } from '../../src/weights/cache.ts';
import {
  DownloadStalledError,
  IntegrityError,
  ModelSourceError,
  type ProgressInfo,
  RELEASE_FILES,
  fetchFile,
  fetchWeights,
  loadModelFiles,
} from '../../src/weights/sources.ts';


const MIMI = safetensorsF32('encoder.model.0.conv.conv.weight', 1000, 0.5);
const LM = safetensorsF32('text_emb.weight', 50_000, 1.5);
const TOK = TINY_SPM_MODEL;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const PORTAL = new TextEncoder().encode('<!DOCTYPE html>\n<html><head><title>Welcome to Airport Wi-Fi</title></head><body>Please log in</body></html>');
const FILES: Record<string, Uint8Array> = {
  [RELEASE_FILES.mimiWeights]: MIMI,
  [RELEASE_FILES.lmWeights]: LM,
  [RELEASE_FILES.tokenizer]: TOK,
};

let server: Server;
let base: string;
/** Every request: path and whether the client went away before the response finished. */
const log: { path: string; closedEarly: boolean }[] = [];

/** Serves `body` (Range honoured) with `headers`. */
function serve(req: IncomingMessage, res: ServerResponse, body: Uint8Array, headers: Record<string, string>): void {
  const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
  if (range) {
    const start = Number(range[1]);
    const end = range[2] ? Math.min(Number(range[2]), body.length - 1) : body.length - 1;
    res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${end}/${body.length}`, 'Content-Length': String(end - start + 1) });
    res.end(body.subarray(start, end + 1));
    return;
  }
  res.writeHead(200, { ...headers, 'Content-Length': String(body.length), 'Accept-Ranges': 'bytes' });
  res.end(body);
}

/** The CDN behind the hub: /cdn/<mode>/<sha>/<file>. */
function cdn(req: IncomingMessage, res: ServerResponse, mode: string, file: string): void {
  const body = FILES[file];
  const etag = `"${sha(body)}"`;
  const binary = { 'Content-Type': 'application/octet-stream', ETag: etag };
  switch (mode) {
    case 'ok':
      return serve(req, res, body, binary);
    case 'flip': {
      const bad = body.slice();
      bad[bad.length - 3] ^= 0x10; // in the tensor data: the safetensors header still parses
      return serve(req, res, bad, binary);
    }
    case 'truncated': // announces the full length, sends half, then closes
      res.writeHead(200, { ...binary, 'Content-Length': String(body.length) });
      res.write(body.subarray(0, body.length >> 1));
      setTimeout(() => res.destroy(), 10);
      return;
    case 'stall': // headers and 1000 bytes, then nothing, ever
      res.writeHead(200, { ...binary, 'Content-Length': String(body.length) });
      res.write(body.subarray(0, 1000));
      return;
    case 'slow': {
      res.writeHead(200, { ...binary, 'Content-Length': String(body.length) });
      let off = 0;
      const tick = () => {
        if (res.destroyed) return;
        if (off >= body.length) return void res.end();
        res.write(body.subarray(off, off + 2048));
        off += 2048;
        setTimeout(tick, 15);
      };
      return tick();
    }
  }
  res.writeHead(500).end();
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const entry = { path, closedEarly: false };
    log.push(entry);
    res.on('close', () => {
      if (!res.writableFinished) entry.closedEarly = true;
    });
    // /<mode>/repo/resolve/main/<file>: the hub. LFS files redirect to the CDN.
    const hub = /^\/([\w-]+)\/repo\/resolve\/main\/(.+)$/.exec(path);
    if (hub) {
      const [, mode, file] = hub;
      if (mode === 'portal') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': String(PORTAL.length) });
        return void res.end(PORTAL);
      }
      if (mode === 'portal-octet') return serve(req, res, PORTAL, { 'Content-Type': 'application/octet-stream' });
      if (mode === 'stall-headers') return; // accepts the request, never answers
      const body = FILES[file];
      if (!body) return void res.writeHead(404, { 'X-Error-Code': 'EntryNotFound' }).end('Entry not found');
      if (mode === 'mirror-short') {
        // A mirror answering the resolve URL itself (no redirect), with the hub's headers but no
        // Content-Length, ending cleanly after half the file: only X-Linked-Size tells.
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'X-Linked-Etag': `"${sha(body)}"`, 'X-Linked-Size': String(body.length) });
        return void res.end(body.subarray(0, body.length >> 1));
      }
      if (mode === 'mirror-long') {
        // A mirror whose X-Linked-Size says half the file (no Content-Length) and that sends it all.
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'X-Linked-Size': String(body.length >> 1) });
        return void res.end(body);
      }
      if (mode === 'mirror-size') return serve(req, res, body, { 'Content-Type': 'application/octet-stream', 'X-Linked-Size': String(body.length + 1) });
      if (mode === 'mirror-flip') {
        const bad = body.slice();
        bad[bad.length - 3] ^= 0x10;
        return serve(req, res, bad, { 'Content-Type': 'application/octet-stream', 'X-Linked-Etag': `"${sha(body)}"`, 'X-Linked-Size': String(body.length) });
      }
      res.writeHead(302, {
        Location: `/cdn/${mode}/${sha(body).slice(0, 12)}/${encodeURIComponent(file)}`,
        'X-Linked-Etag': `"${sha(body)}"`,
        'X-Linked-Size': String(body.length),
        ETag: '"0123456789abcdef0123456789abcdef01234567"', // the LFS pointer's git id, not the file's
      });
      return void res.end();
    }
    const c = /^\/cdn\/([\w-]+)\/\w+\/(.+)$/.exec(path);
    if (c) return cdn(req, res, c[1], c[2]);
    // A plain URL source: /plain/<file> with no integrity headers at all; /plain-sha/<file> with a sha256 ETag.
    const plain = /^\/(plain|plain-sha)\/(.+)$/.exec(path);
    if (plain && FILES[plain[2]]) return serve(req, res, FILES[plain[2]], plain[1] === 'plain-sha' ? { ETag: `"${sha(FILES[plain[2]])}"` } : {});
    res.writeHead(404).end('Entry not found');
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => new Promise<void>((ok) => {
  server.closeAllConnections();
  server.close(() => ok());
}));

const hub = (mode: string) => ({ kind: 'hub' as const, baseUrl: base, repo: `${mode}/repo` });
const url = (mode: string, file: string) => `${base}/${mode}/repo/resolve/main/${file}`;
const fast = { stallTimeoutMs: 5000, progressIntervalMs: 0, retryDelayMs: 5 };
/** The stall cases' own short timeout (elsewhere a loaded CI machine must not look stalled). */
const STALL_MS = 300;

async function rejection<T extends Error = ModelSourceError>(p: Promise<unknown>, cls: new (...a: never[]) => T = ModelSourceError as never): Promise<T> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(cls);
    return e as T;
  }
  throw new Error('expected a rejection');
}

describe('downloads against a hub-like server', () => {
  it('verifies the hub release by its LFS sha256 and stores it in the cache meta; a hit is re-checked', async () => {
    const cache = new MemoryWeightCache();
    const files = await loadModelFiles(hub('ok'), { cache, ...fast });
    expect(files.origins).toEqual({ tokenizer: 'network', mimiWeights: 'network', lmWeights: 'network' });
    expect(await cache.getMeta(url('ok', RELEASE_FILES.tokenizer))).toEqual({ size: TOK.length, sha256: sha(TOK), storedAt: expect.any(Number) });
    expect((await cache.getMeta(url('ok', RELEASE_FILES.lmWeights)))?.sha256).toBe(sha(LM));
    // Bytes flipped in the cache (disk corruption) with the meta intact: the hit fails its sha256
    // check, is dropped and downloaded again.
    const bad = TOK.slice();
    bad[bad.length - 10] ^= 1;
    await cache.put(url('ok', RELEASE_FILES.tokenizer), bad, { size: TOK.length, sha256: sha(TOK) });
    log.length = 0;
    const again = await loadModelFiles(hub('ok'), { cache, ...fast });
    expect(again.origins).toEqual({ tokenizer: 'network', mimiWeights: 'cache', lmWeights: 'cache' });
    expect(again.tokenizer).toEqual(TOK);
    expect(log.map((r) => r.path)).toEqual([`/ok/repo/resolve/main/${RELEASE_FILES.tokenizer}`, expect.stringMatching(/^\/cdn\/ok\//)]);
    // A cached weights Blob whose size differs from its meta is dropped too.
    await cache.putBlob(url('ok', RELEASE_FILES.mimiWeights), new Blob([MIMI, new Uint8Array(4)]), { size: MIMI.length, sha256: sha(MIMI) });
    const w = await fetchWeights(url('ok', RELEASE_FILES.mimiWeights), 'mimiWeights', { cache, ...fast });
    expect(w.origin).toBe('network');
  }, 30_000);

  it('a captive portal (HTML with 200) for weights and for the tokenizer: a named error, nothing cached', async () => {
    const cache = new MemoryWeightCache();
    const events: ProgressInfo[] = [];
    const e1 = await rejection(fetchWeights(url('portal', RELEASE_FILES.lmWeights), 'lmWeights', { cache, ...fast, onProgress: (e) => events.push(e) }));
    expect(e1.code).toBe('content-type');
    expect(e1.message).toMatch(/^model\.safetensors: the server sent a web page \(Content-Type text\/html; charset=utf-8\).*captive portal/);
    expect(events.at(-1)?.status).toBe('error');
    const e2 = await rejection(fetchFile(url('portal', RELEASE_FILES.tokenizer), 'tokenizer', { cache, ...fast }));
    expect(e2.message).toMatch(/^tokenizer_spm_32k_3\.model: the server sent a web page/);
    // The same page labelled application/octet-stream is recognised by its first bytes.
    const e3 = await rejection(fetchFile(url('portal-octet', RELEASE_FILES.tokenizer), 'tokenizer', { cache, ...fast }));
    expect(e3.code).toBe('content-type');
    const e4 = await rejection(fetchWeights(url('portal-octet', RELEASE_FILES.mimiWeights), 'mimiWeights', { cache, ...fast }));
    expect(e4.code).toBe('content-type');
    // Sent a byte at a time: still recognised.
    const trickle = async () =>
      new Response(new ReadableStream({ start(c) { for (const b of PORTAL) c.enqueue(new Uint8Array([b])); c.close(); } }), { headers: { 'Content-Type': 'application/octet-stream' } });
    const e5 = await rejection(fetchWeights(`${base}/x/model.safetensors`, 'lmWeights', { cache, ...fast, fetch: trickle as typeof fetch }));
    expect(e5.code).toBe('content-type');
    expect(await cache.keys()).toEqual([]);
  }, 30_000);

  it('a tokenizer that is not a SentencePiece model is refused before caching', async () => {
    const cache = new MemoryWeightCache();
    const garbage = new Uint8Array(300).map((_, i) => (i * 7) & 0xff);
    const fetchGarbage = async () => new Response(garbage, { status: 200, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': '300' } });
    const err = await rejection(fetchFile(`${base}/plain/bogus.model`, 'tokenizer', { cache, fetch: fetchGarbage as typeof fetch }));
    expect(err.code).toBe('format');
    expect(err.message).toMatch(/^bogus\.model: not a SentencePiece tokenizer model/);
    // Cut in half, with no length header to tell: the structure check finds the broken field.
    const half = async () => new Response(TOK.subarray(0, TOK.length >> 1), { status: 200, headers: { 'Content-Type': 'application/octet-stream' } });
    const cut = await rejection(fetchFile(`${base}/plain/cut.model`, 'tokenizer', { cache, fetch: half as typeof fetch }));
    expect(cut.message).toMatch(/^cut\.model: not a SentencePiece tokenizer model \(.*runs past the end/);
    // The caller's full parse (the Worker passes TextTokenizer.fromBytes) runs before caching too.
    const seen: string[] = [];
    const strict = async (_b: Uint8Array, name: string) => {
      seen.push(name);
      throw new Error('vocabulary too small for this LM');
    };
    const deep = await rejection(fetchFile(url('ok', RELEASE_FILES.tokenizer), 'tokenizer', { cache, ...fast, verifyTokenizer: strict }));
    expect(deep.message).toMatch(/not a SentencePiece tokenizer model \(vocabulary too small for this LM\)/);
    expect(seen).toEqual([RELEASE_FILES.tokenizer]);
    expect(await cache.keys()).toEqual([]);
    const { TextTokenizer } = await import('../../src/text/tokenizer.ts');
    const ok = await fetchFile(url('ok', RELEASE_FILES.tokenizer), 'tokenizer', { cache, ...fast, verifyTokenizer: (b, name) => TextTokenizer.fromBytes(b, { source: name }) });
    expect(ok.bytes).toEqual(TOK);
  }, 30_000);

  it('the SentencePiece structure check: the fixture model passes, cuts inside a field and HTML fail', async () => {
    const { checkSentencePieceModel } = await import('../../src/weights/sources.ts');
    expect(checkSentencePieceModel(TOK)).toBe(300);
    expect(() => checkSentencePieceModel(PORTAL)).toThrow(/wire type|field/);
    let failed = 0;
    for (let k = 1; k < 50; k++) {
      try {
        checkSentencePieceModel(TOK.subarray(0, Math.floor((TOK.length * k) / 50)));
      } catch {
        failed++;
      }
    }
    expect(failed).toBeGreaterThan(45); // a cut exactly between two fields can still be well-formed
  });

  it('truncated bodies: against Content-Length, and against X-Linked-Size when no length is sent', async () => {
    const cache = new MemoryWeightCache();
    const t1 = await rejection(fetchWeights(url('truncated', RELEASE_FILES.lmWeights), 'lmWeights', { cache, ...fast }));
    expect(t1.code).toBe('truncated');
    expect(t1.message).toMatch(new RegExp(`^model\\.safetensors: (download interrupted at|truncated download: received) \\d+ of ${LM.length} bytes`));
    const t2 = await rejection(fetchFile(url('truncated', RELEASE_FILES.tokenizer), 'tokenizer', { cache, ...fast }));
    expect(t2.code).toBe('truncated');
    const t3 = await rejection(fetchFile(url('mirror-short', RELEASE_FILES.tokenizer), 'tokenizer', { cache, ...fast }));
    expect(t3.message).toMatch(new RegExp(`truncated download: received ${TOK.length >> 1} of ${TOK.length} bytes \\(X-Linked-Size\\)`));
    expect(await cache.keys()).toEqual([]);
  }, 30_000);

  it('oversize bodies: more bytes than X-Linked-Size announced, and a Content-Length that differs from it', async () => {
    const cache = new MemoryWeightCache();
    const o1 = await rejection(fetchWeights(url('mirror-long', RELEASE_FILES.lmWeights), 'lmWeights', { cache, ...fast }));
    expect(o1.code).toBe('oversize');
    expect(o1.message).toMatch(new RegExp(`^model\\.safetensors: server sent more than the announced ${LM.length >> 1} bytes; nothing was cached`));
    const o2 = await rejection(fetchFile(url('mirror-size', RELEASE_FILES.tokenizer), 'tokenizer', { cache, ...fast }));
    expect(o2.code).toBe('oversize');
    expect(o2.message).toMatch(new RegExp(`Content-Length ${TOK.length} differs from the hub's X-Linked-Size ${TOK.length + 1} .*; nothing was cached`));
    expect(await cache.keys()).toEqual([]);
  }, 30_000);

  it('a flipped byte: sha256 mismatch against the hub LFS id (IntegrityError), nothing cached', async () => {
    const cache = new MemoryWeightCache();
    const err = await rejection(fetchWeights(url('flip', RELEASE_FILES.lmWeights), 'lmWeights', { cache, ...fast }), IntegrityError);
    expect(err.name).toBe('IntegrityError');
    expect(err.code).toBe('integrity');
    expect(err.expected).toBe(sha(LM));
    expect(err.actual).not.toBe(sha(LM));
    // Behind the hub's redirect the CDN's ETag is the sha256 (the 302's X-Linked-Etag is not visible to fetch).
    expect(err.message).toMatch(new RegExp(`^model\\.safetensors: sha256 mismatch: ETag says ${sha(LM)}, the ${LM.length} bytes received hash to [0-9a-f]{64}`));
    const tok = await rejection(fetchFile(url('flip', RELEASE_FILES.tokenizer), 'tokenizer', { cache, ...fast }), IntegrityError);
    expect(tok.file).toBe(RELEASE_FILES.tokenizer);
    // A mirror that answers the resolve URL directly: its X-Linked-Etag is checked.
    const m = await rejection(fetchWeights(url('mirror-flip', RELEASE_FILES.mimiWeights), 'mimiWeights', { cache, ...fast }), IntegrityError);
    expect(m.message).toMatch(/sha256 mismatch: X-Linked-Etag says/);
    expect(await cache.keys()).toEqual([]);
  }, 30_000);

  it('a URL source with its own sha256, and a plain server whose ETag is a sha256', async () => {
    const cache = new MemoryWeightCache();
    const src = (s: string) => ({
      kind: 'urls' as const,
      mimiWeights: `${base}/plain/${RELEASE_FILES.mimiWeights}`,
      lmWeights: `${base}/plain/${RELEASE_FILES.lmWeights}`,
      sha256: { lmWeights: s },
    });
    const wrong = await rejection(loadModelFiles(src('f'.repeat(64)), { cache, ...fast }), IntegrityError);
    expect(wrong.message).toMatch(/sha256 mismatch: the source says f{64}/);
    expect(await cache.keys()).toEqual([`${base}/plain/${RELEASE_FILES.mimiWeights}`]); // Mimi had no sha to check: cached
    const ok = await loadModelFiles(src(sha(LM).toUpperCase()), { cache, ...fast });
    expect(ok.origins.lmWeights).toBe('network');
    expect((await cache.getMeta(`${base}/plain/${RELEASE_FILES.lmWeights}`))?.sha256).toBe(sha(LM));
    const bad = await rejection(loadModelFiles(src('xyz'), { cache: null, ...fast }));
    expect(bad.message).toMatch(/expected sha256 'xyz' is not 64 hex digits/);
    // A server announcing the sha256 in its ETag gets checked (and a wrong one refused).
    const flipFetch = async (u: string | URL | Request) => {
      const r = await fetch(u);
      const b = new Uint8Array(await r.arrayBuffer());
      b[b.length - 1] ^= 1;
      return new Response(b, { status: 200, headers: r.headers });
    };
    const e = await rejection(fetchFile(`${base}/plain-sha/${RELEASE_FILES.tokenizer}`, 'tokenizer', { cache: null, fetch: flipFetch as typeof fetch }), IntegrityError);
    expect(e.message).toMatch(/ETag says/);
    await expect(fetchFile(`${base}/plain-sha/${RELEASE_FILES.tokenizer}`, 'tokenizer', { cache: null })).resolves.toMatchObject({ origin: 'network' });
  }, 30_000);

  it('a stalled server: DownloadStalledError after the stall timeout (mid-body and before the headers), nothing cached', async () => {
    const cache = new MemoryWeightCache();
    const t0 = performance.now();
    // One attempt (retries: 0): the stall timer alone (retrying and resuming: the resume tests).
    const err = await rejection(fetchWeights(url('stall', RELEASE_FILES.lmWeights), 'lmWeights', { cache, ...fast, stallTimeoutMs: STALL_MS, retries: 0 }), DownloadStalledError);
    const ms = performance.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(ms).toBeLessThan(5000);
    expect(err.name).toBe('DownloadStalledError');
    expect(err.message).toMatch(new RegExp(`^model\\.safetensors: no bytes for 0\\.3 s at 1000 of ${LM.length} bytes`));
    const h = await rejection(fetchFile(url('stall-headers', RELEASE_FILES.tokenizer), 'tokenizer', { cache, ...fast, stallTimeoutMs: STALL_MS, retries: 0 }), DownloadStalledError);
    expect(h.message).toMatch(/no bytes for 0\.3 s before the response/);
    expect(await cache.keys()).toEqual([]);
    await new Promise((r) => setTimeout(r, 50));
    const stalled = log.filter((r) => r.path.startsWith('/cdn/stall') || r.path.startsWith('/stall-headers'));
    expect(stalled.length).toBe(2);
    expect(stalled.every((r) => r.closedEarly)).toBe(true); // the client hung up
  }, 30_000);

  it('cancel mid-download: every request aborted, no request after, nothing cached', async () => {
    const cache = new MemoryWeightCache();
    const ctrl = new AbortController();
    log.length = 0;
    const p = loadModelFiles(hub('slow'), {
      cache,
      signal: ctrl.signal,
      progressIntervalMs: 0,
      onProgress: (e) => {
        // Cancel once the tokenizer (the first file) is half-way.
        if (e.status === 'progress' && e.file === RELEASE_FILES.tokenizer && e.loaded > TOK.length / 2) ctrl.abort();
      },
    });
    const err = await p.then(() => null, (e: unknown) => e as Error);
    expect(err?.name).toBe('AbortError');
    await new Promise((r) => setTimeout(r, 100));
    expect(log.map((r) => r.path)).toEqual([`/slow/repo/resolve/main/${RELEASE_FILES.tokenizer}`, expect.stringMatching(/^\/cdn\/slow\//)]);
    expect(log[1].closedEarly).toBe(true); // the body's connection was dropped
    expect(await cache.keys()).toEqual([]);
    // Aborted before it starts: no request at all.
    log.length = 0;
    const pre = new AbortController();
    pre.abort();
    await expect(loadModelFiles(hub('ok'), { cache, signal: pre.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(log).toEqual([]);
  }, 30_000);

  it('a 206 answer to a full request is refused', async () => {
    const partial = async () => new Response(TOK.subarray(0, 100), { status: 206, headers: { 'Content-Range': `bytes 0-99/${TOK.length}` } });
    const err = await rejection(fetchFile(`${base}/x/t.model`, 'tokenizer', { cache: null, fetch: partial as typeof fetch }));
    expect(err.message).toMatch(/partial response \(HTTP 206\)/);
  });
});
