// The stores of unfinished downloads (src/weights/parts.ts) in headless Chromium, OPFS and
// IndexedDB, the same checks for both: parts appended in order come back as one Blob with their
// meta; a part written without its meta (a crash between the two) is dropped when the download is
// opened again; a meta counting more bytes than the parts hold deletes the entry; a Blob returned
// by append stays readable after later appends; delete and clear leave nothing. And the Web Lock
// per URL: two Loads of one file at once download it once (the second waits, then finds it
// cached); a Load cancelled while it waits rejects with its AbortError.
import { createHash } from 'node:crypto';
import { expect, it } from 'vitest';
import { useDevServerAndChromium } from '../harness/browser_hooks.ts';
import { safetensorsF32 } from '../harness/model_files.ts';

const env = useDevServerAndChromium();

it('OPFS and IndexedDB part stores: append, reopen, a crash between part and meta, a bad meta, delete, clear', async () => {
  const page = await env.browser.newPage();
  await page.route(`${env.url}/__blank.html`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }, body: '<!doctype html><title>parts</title>' }),
  );
  await page.goto(`${env.url}/__blank.html`);
  const result = await page.evaluate(async () => {
    const imp = (0, eval)('(u) => import(u)') as (u: string) => Promise<Record<string, any>>;
    const parts = await imp('/src/weights/parts.ts');
    const { Sha256 } = await imp('/src/weights/sha256.ts');
    const enc = (s: string) => new TextEncoder().encode(s);
    const out: Record<string, unknown> = { defaultKind: parts.defaultPartStore().kind };
    const stores = [
      ['opfs', new parts.OpfsPartStore(undefined, 'test-parts')],
      ['indexeddb', new parts.IdbPartStore('test-parts')],
    ] as const;
    for (const [label, store] of stores) {
      const r: Record<string, unknown> = {};
      const key = 'https://hub.test/org/m/resolve/main/model.safetensors?x=1';
      await store.clear();
      r.emptyOpen = await store.open(key);
      const h = new Sha256();
      const meta = (bytes: number, n: number) => ({ key, etag: '"e1"', sha256: null, total: 100, bytes, parts: n, hash: h.save(), updatedAt: 1700000000000 + n });
      h.update(enc('hello '));
      const first = await store.append(key, new Blob([enc('hello ')]), meta(6, 1));
      h.update(enc('world'));
      await store.append(key, new Blob([enc('world')]), meta(11, 2));
      r.firstStillReadable = await first.text();
      const opened = await store.open(key);
      r.text = await opened.blob.text();
      r.meta = { bytes: opened.meta.bytes, parts: opened.meta.parts, etag: opened.meta.etag, hashLength: opened.meta.hash.length };
      r.list = (await store.list()).map((m: { key: string; bytes: number }) => [m.key, m.bytes]);
      // A crash after a part was written, before its meta: the part is not counted, and removed.
      if (label === 'opfs') {
        const root = await navigator.storage.getDirectory();
        const base = await root.getDirectoryHandle('test-parts');
        let dir: FileSystemDirectoryHandle | null = null;
        for await (const [, hnd] of (base as unknown as { entries(): AsyncIterable<[string, FileSystemHandle]> }).entries()) dir = hnd as FileSystemDirectoryHandle;
        const w = await (await dir!.getFileHandle('part-000002.bin', { create: true })).createWritable();
        await w.write('!!!');
        await w.close();
        const again = await store.open(key);
        r.afterCrash = await again.blob.text();
        const names: string[] = [];
        for await (const [n] of (dir as unknown as { entries(): AsyncIterable<[string, unknown]> }).entries()) names.push(n);
        r.filesAfterCrash = names.sort();
      } else {
        const idb = await imp('/node_modules/idb-keyval/dist/index.js');
        const ps = idb.createStore('test-parts', 'parts');
        await idb.set(`${key}\n2`, new Blob(['!!!']), ps);
        const again = await store.open(key);
        r.afterCrash = await again.blob.text();
        r.filesAfterCrash = ((await idb.keys(ps)) as string[]).map((k) => k.slice(key.length + 1)).sort();
      }
      // A meta that counts bytes the parts do not hold: the entry goes.
      await store.append(key, new Blob([enc('!')]), { ...meta(40, 3) });
      r.badMetaOpen = await store.open(key);
      r.listAfterBad = (await store.list()).length;
      await store.append('k2', new Blob([enc('x')]), { ...meta(1, 1), key: 'k2' });
      r.deleted = [await store.delete('k2'), await store.delete('k2')];
      await store.append('k3', new Blob([enc('y')]), { ...meta(1, 1), key: 'k3' });
      await store.clear();
      r.listAfterClear = (await store.list()).length;
      out[label] = r;
    }
    return out;
  });
  expect(result.defaultKind).toBe('opfs');
  for (const label of ['opfs', 'indexeddb']) {
    expect(result[label], label).toEqual({
      emptyOpen: null,
      firstStillReadable: 'hello ',
      text: 'hello world',
      meta: { bytes: 11, parts: 2, etag: '"e1"', hashLength: 11 },
      list: [['https://hub.test/org/m/resolve/main/model.safetensors?x=1', 11]],
      afterCrash: 'hello world',
      filesAfterCrash: label === 'opfs' ? ['meta.json', 'part-000000.bin', 'part-000001.bin'] : ['0', '1'],
      badMetaOpen: null,
      listAfterBad: 0,
      deleted: [true, false],
      listAfterClear: 0,
    });
  }
}, 120_000);

it('one download of a URL at a time (Web Locks): the second waits and is served from the cache; cancelled while waiting, it rejects', async () => {
  const page = await env.browser.newPage();
  await page.route(`${env.url}/__blank.html`, (route) =>
    route.fulfill({ status: 200, contentType: 'text/html', headers: { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }, body: '<!doctype html><title>locks</title>' }),
  );
  const body = safetensorsF32('w', 100_000, 0.25);
  const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
  let gets = 0;
  await page.route('https://hub.test/**', async (route) => {
    if (route.request().method() === 'GET') gets++;
    await new Promise((r) => setTimeout(r, 300)); // long enough for the others to queue up
    await route.fulfill({
      status: 200,
      headers: { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'Content-Length, ETag', 'Content-Type': 'application/octet-stream', 'Content-Length': String(body.length), ETag: etag },
      body: Buffer.from(body),
    });
  });
  await page.goto(`${env.url}/__blank.html`);
  const r = await page.evaluate(async () => {
    const imp = (0, eval)('(u) => import(u)') as (u: string) => Promise<Record<string, any>>;
    const src = await imp('/src/weights/sources.ts');
    const cacheMod = await imp('/src/weights/cache.ts');
    const partsMod = await imp('/src/weights/parts.ts');
    const cache = new cacheMod.MemoryWeightCache();
    const parts = new partsMod.MemoryPartStore();
    const url = 'https://hub.test/org/m/resolve/main/model.safetensors';
    const cancel = new AbortController();
    const a = src.fetchWeights(url, 'lmWeights', { cache, parts });
    const b = src.fetchWeights(url, 'lmWeights', { cache, parts });
    const c = src.fetchWeights(url, 'lmWeights', { cache, parts, signal: cancel.signal }).then(() => 'resolved', (e: Error) => e.name);
    setTimeout(() => cancel.abort(), 50);
    const [ra, rb] = await Promise.all([a, b]);
    return { origins: [ra.origin, rb.origin], sizes: [ra.blob.size, rb.blob.size], cancelled: await c };
  });
  expect(r).toEqual({ origins: ['network', 'cache'], sizes: [body.length, body.length], cancelled: 'AbortError' });
  expect(gets).toBe(1);
}, 120_000);
