/**
 * Downloading one model file so that nothing bad reaches the offline cache, and checking cache
 * hits before they are used.
 *
 * A download is refused (ModelSourceError naming the file, `code` saying why; nothing cached) when:
 * - the server answers with an error status ('http'), or not at all ('network');
 * - it answers 206 to a full request, or with a web page: Content-Type text/html, or a body that
 *   starts like HTML (a captive portal or login page served with 200) ('content-type');
 * - the body is shorter than Content-Length or the hub's X-Linked-Size, or breaks off
 *   ('truncated'), or is longer ('oversize');
 * - its sha256 differs from the expected one: the source's own (UrlSource.sha256), else the hub's
 *   LFS id (`X-Linked-Etag`, or a 64-hex `ETag` after the redirect) (IntegrityError, 'integrity');
 * - no bytes arrive for `stallTimeoutMs` (DownloadStalledError, 'stalled'; also while waiting
 *   for the response headers);
 * - the bytes are not a valid file of their role: safetensors header and ranges, SentencePiece
 *   model (parsed), JSON object ('format').
 * Cancel: aborting `signal` aborts the fetch and every read; the call rejects with the signal's
 * AbortError and caches nothing; no request starts once the signal is aborted.
 * Cache hits are checked before use: size against the stored meta, format as above, and the
 * stored sha256 again for files up to `rehashCachedBytes` (and against the source's expected
 * sha256 if it gives one); a bad entry is deleted and the file downloaded again.
 * Progress events: see ProgressInfo (src/weights/sources.ts).
 */
import { type CacheEntryMeta, type WeightCache, defaultWeightCache } from './cache.ts';
import { type FileRole, announcedFile, fileNameOf } from './hub.ts';
import { Sha256, sha256Hex, sha256OfBlob } from './sha256.ts';
import { DownloadStalledError, IntegrityError, ModelSourceError, type TokenizerCheck, htmlError, isHtmlContentType, looksLikeHtml, verifyFile, verifyWeightsBlob } from './verify.ts';

export type ProgressStatus = 'initiate' | 'download' | 'progress' | 'done' | 'ready' | 'error';

export interface ProgressInfo {
  status: ProgressStatus;
  /** File name (last URL segment or File.name); for 'ready', a summary of the set. */
  file: string;
  /** Which model input this file is. Absent for 'ready'. */
  role?: FileRole;
  /** Bytes so far (for 'ready': all files). */
  loaded: number;
  /** Bytes expected (0 when unknown, e.g. no Content-Length yet). */
  total: number;
  /** 'done' served from the offline cache, or read from a local file (no network). */
  cached?: boolean;
  /** 'error': the message. */
  error?: string;
}
export type ProgressCallback = (e: ProgressInfo) => void;

export interface LoadOptions {
  /** Offline cache (default: defaultWeightCache()); null disables caching. */
  cache?: WeightCache | null;
  onProgress?: ProgressCallback;
  /** Cancels: fetches and reads are aborted, the call rejects with an AbortError, nothing is cached. */
  signal?: AbortSignal;
  /** fetch implementation (default globalThis.fetch). */
  fetch?: typeof fetch;
  /** Minimum ms between 'progress' events per file (default 100; 0 = every chunk). */
  progressIntervalMs?: number;
  /** Weights downloads: bytes kept in JS chunks before they are folded into the file's Blob (default 64 MiB). */
  blobFoldBytes?: number;
  /** No bytes (or no response headers) for this many ms aborts with DownloadStalledError (default 30 000). */
  stallTimeoutMs?: number;
  /** Cache hits up to this many bytes are re-hashed against their stored sha256 (default 64 MiB: configs, tokenizer; not multi-GB weights). */
  rehashCachedBytes?: number;
  /**
   * The full tokenizer parse, run before a downloaded (or cached) tokenizer is accepted, on top
   * of the structural check: the engine Worker passes TextTokenizer.fromBytes (src/text/tokenizer.ts).
   */
  verifyTokenizer?: TokenizerCheck;
}

/** Bytes a download keeps in JS chunks before folding them into its Blob. */
const BLOB_FOLD_BYTES = 64 * 1024 * 1024;
const STALL_TIMEOUT_MS = 30_000;
const REHASH_CACHED_BYTES = 64 * 1024 * 1024;

export interface Downloaded {
  /** Bytes for small files, a Blob (disk-backed in browsers) for weights. */
  data: Uint8Array | Blob;
  origin: 'network' | 'cache';
  name: string;
  /** sha256 of the file when it was checked or computed, else null. */
  sha256: string | null;
}

const abortError = (signal: AbortSignal): unknown => signal.reason ?? new DOMException('the download was cancelled', 'AbortError');
const isAbort = (e: unknown) => (e as Error)?.name === 'AbortError';

/**
 * Downloads `url` for `role` (or serves it from the cache), verified as the module doc says.
 * @param asBlob keep the body as a Blob (weights) instead of bytes.
 * @param expectedSha256 the source's own sha256 for the file, if it has one.
 * @throws ModelSourceError (or DownloadStalledError / IntegrityError) naming the file, after an
 *   'error' progress event; the signal's AbortError when cancelled.
 */
export async function download(url: string, role: FileRole, opts: LoadOptions, asBlob: boolean, expectedSha256: string | null = null): Promise<Downloaded> {
  const name = fileNameOf(url);
  const emit = opts.onProgress ?? (() => {});
  const cache = opts.cache === undefined ? defaultWeightCache() : opts.cache;
  const signal = opts.signal;
  const expected = expectedSha256?.toLowerCase() ?? null;
  const fail = (err: ModelSourceError, loaded = 0, total = 0): never => {
    emit({ status: 'error', file: name, role, loaded, total, error: err.message });
    throw err;
  };
  if (expected !== null && !/^[0-9a-f]{64}$/.test(expected)) {
    return fail(new ModelSourceError(name, `the expected sha256 '${expectedSha256}' is not 64 hex digits`, undefined, 'source'));
  }
  signal?.throwIfAborted();
  emit({ status: 'initiate', file: name, role, loaded: 0, total: 0 });
  if (cache) {
    const hit = await checkedCacheHit(cache, url, role, name, asBlob, expected, opts.rehashCachedBytes ?? REHASH_CACHED_BYTES, signal, opts.verifyTokenizer);
    if (hit) {
      const size = sizeOf(hit.data);
      emit({ status: 'done', file: name, role, loaded: size, total: size, cached: true });
      return { ...hit, origin: 'cache', name };
    }
  }
  signal?.throwIfAborted(); // no request starts after Cancel

  // One controller for the user's Cancel and the stall timer, down to fetch and every read.
  const ctrl = new AbortController();
  const onCancel = () => ctrl.abort(abortError(signal!));
  signal?.addEventListener('abort', onCancel, { once: true });
  const stallMs = opts.stallTimeoutMs ?? STALL_TIMEOUT_MS;
  let stalled = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      ctrl.abort(new DOMException('the download stalled', 'TimeoutError'));
    }, stallMs);
  };
  let loaded = 0;
  let total = 0;
  const stallError = () =>
    new DownloadStalledError(name, `no bytes for ${stallMs / 1000} s ${loaded > 0 || total > 0 ? `at ${loaded} of ${total || '?'} bytes ` : 'before the response '}from ${url}; the server stalled: retry — nothing was cached`);
  try {
    arm();
    const doFetch = opts.fetch ?? globalThis.fetch;
    let res: Response;
    try {
      res = await doFetch(url, { signal: ctrl.signal, redirect: 'follow' });
    } catch (e) {
      if (signal?.aborted) throw abortError(signal);
      if (stalled) return fail(stallError());
      if (isAbort(e)) throw e;
      return fail(new ModelSourceError(name, `could not fetch ${url}: ${(e as Error)?.message ?? e} (offline, CORS, or a wrong base URL)`, undefined, 'network'));
    }
    if (!res.ok) {
      const hint =
        res.status === 404 ? ' (not found: check the repository, revision and file name)' : res.status === 401 || res.status === 403 ? ' (access denied: gated or private repository?)' : '';
      void res.body?.cancel().catch(() => undefined);
      return fail(new ModelSourceError(name, `HTTP ${res.status} ${res.statusText} for ${url}${hint}`, res.status, 'http'));
    }
    if (res.status === 206) {
      void res.body?.cancel().catch(() => undefined);
      return fail(new ModelSourceError(name, `the server answered a full request with a partial response (HTTP 206) for ${url}; nothing was cached`, 206, 'content-type'));
    }
    const contentType = res.headers.get('content-type');
    if (isHtmlContentType(contentType)) {
      void res.body?.cancel().catch(() => undefined);
      return fail(htmlError(name, contentType));
    }
    const announced = announcedFile(res.headers);
    const lenHeader = res.headers.get('content-length');
    const encoding = res.headers.get('content-encoding');
    const contentLength = lenHeader !== null && (!encoding || encoding === 'identity') && /^\d+$/.test(lenHeader.trim()) ? Number(lenHeader) : null;
    if (contentLength !== null && announced.linkedSize !== null && contentLength !== announced.linkedSize) {
      void res.body?.cancel().catch(() => undefined);
      return fail(new ModelSourceError(name, `Content-Length ${contentLength} differs from the hub's X-Linked-Size ${announced.linkedSize} for ${url}; nothing was cached`, undefined, 'truncated'));
    }
    total = contentLength ?? announced.linkedSize ?? 0;
    const wantSha = expected ?? announced.sha256;
    const shaFrom = expected ? 'the source' : announced.sha256From;
    emit({ status: 'download', file: name, role, loaded: 0, total });
    const interval = opts.progressIntervalMs ?? 100;
    const hasher = wantSha ? new Sha256() : null;
    let blob: Blob;
    try {
      // The body is folded into a Blob as it arrives (JS holds at most blobFoldBytes of chunks);
      // small files (configs, tokenizer) are then read back as bytes.
      if (!res.body) {
        blob = await res.blob();
        loaded = blob.size;
        if (hasher) hasher.update(new Uint8Array(await blob.arrayBuffer()));
      } else {
        const reader = res.body.getReader();
        let folded = new Blob([]);
        let chunks: Uint8Array<ArrayBuffer>[] = [];
        let chunkBytes = 0;
        let last = -Infinity;
        let head = true;
        arm();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          arm();
          if (head) {
            // Sniff the first bytes (at least 64, however the body is chunked) for a web page.
            const seen = chunkBytes + folded.size + value.byteLength;
            if (seen >= 64) {
              head = false;
              const first = new Uint8Array(Math.min(seen, 256));
              let at = 0;
              for (const c of [...chunks, value]) {
                const n = Math.min(c.byteLength, first.length - at);
                first.set(c.subarray(0, n), at);
                at += n;
                if (at >= first.length) break;
              }
              if (looksLikeHtml(first)) {
                void reader.cancel().catch(() => undefined);
                return fail(htmlError(name, contentType));
              }
            }
          }
          if (total > 0 && loaded + value.byteLength > total) {
            void reader.cancel().catch(() => undefined);
            return fail(new ModelSourceError(name, `server sent more than the announced ${total} bytes; nothing was cached`, undefined, 'oversize'), loaded, total);
          }
          hasher?.update(value);
          chunks.push(value as Uint8Array<ArrayBuffer>);
          chunkBytes += value.byteLength;
          loaded += value.byteLength;
          if (chunkBytes >= (opts.blobFoldBytes ?? BLOB_FOLD_BYTES)) {
            folded = new Blob([folded, ...chunks]);
            chunks = [];
            chunkBytes = 0;
          }
          const now = Date.now();
          if (now - last >= interval) {
            last = now;
            emit({ status: 'progress', file: name, role, loaded, total });
          }
        }
        blob = new Blob([folded, ...chunks]);
      }
    } catch (e) {
      if (signal?.aborted) throw abortError(signal);
      if (stalled) return fail(stallError(), loaded, total);
      if (e instanceof ModelSourceError) throw e;
      const at = total > 0 ? ` at ${loaded} of ${total} bytes` : ` after ${loaded} bytes`;
      return fail(new ModelSourceError(name, `download interrupted${at} (${(e as Error)?.message ?? e}); retry — nothing was cached`, undefined, 'truncated'), loaded, total);
    } finally {
      clearTimeout(timer);
    }
    if (total > 0 && loaded !== total) {
      const what = contentLength !== null ? 'Content-Length' : 'X-Linked-Size';
      return fail(new ModelSourceError(name, `truncated download: received ${loaded} of ${total} bytes (${what}); retry — nothing was cached`, undefined, 'truncated'), loaded, total);
    }
    const sha = hasher ? hasher.hex() : null;
    if (wantSha && sha !== wantSha) {
      return fail(new IntegrityError(name, `sha256 mismatch: ${shaFrom} says ${wantSha}, the ${loaded} bytes received hash to ${sha} (corrupted in transit or on the server); nothing was cached`, wantSha, sha!), loaded, total);
    }
    let data: Uint8Array | Blob;
    try {
      data = asBlob ? blob : new Uint8Array(await blob.arrayBuffer());
      if (data instanceof Blob) await verifyWeightsBlob(name, data);
      else await verifyFile(role, name, data, opts.verifyTokenizer);
    } catch (e) {
      if (e instanceof ModelSourceError) return fail(e, loaded, total);
      return fail(new ModelSourceError(name, `could not read the downloaded file back (${(e as Error)?.message ?? e})`, undefined, 'format'), loaded, total);
    }
    emit({ status: 'progress', file: name, role, loaded, total: total || loaded });
    signal?.throwIfAborted(); // cancelled while verifying: nothing is cached
    if (cache) {
      try {
        const meta: CacheEntryMeta = { size: loaded, sha256: sha };
        if (data instanceof Blob) await cache.putBlob(url, data, meta);
        else await cache.put(url, data, meta);
      } catch {
        // Out of quota: the load still succeeds, only offline use is lost.
      }
    }
    emit({ status: 'done', file: name, role, loaded, total: total || loaded });
    return { data, origin: 'network', name, sha256: sha };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onCancel);
  }
}

const sizeOf = (d: Uint8Array | Blob) => (d instanceof Blob ? d.size : d.byteLength);

/**
 * A cache entry that passes every check, or null (absent, unreadable, or bad: then deleted).
 * A broken cache never blocks loading: the caller falls through to the network.
 */
async function checkedCacheHit(
  cache: WeightCache,
  url: string,
  role: FileRole,
  name: string,
  asBlob: boolean,
  expected: string | null,
  rehashLimit: number,
  signal: AbortSignal | undefined,
  verifyTokenizer: TokenizerCheck | undefined,
): Promise<{ data: Uint8Array | Blob; sha256: string | null } | null> {
  let hit: Uint8Array | Blob | null = null;
  let meta: CacheEntryMeta | null = null;
  try {
    hit = asBlob ? await cache.getBlob(url) : await cache.get(url);
    meta = hit ? await cache.getMeta(url) : null;
  } catch {
    return null;
  }
  if (!hit) return null;
  try {
    const size = sizeOf(hit);
    if (meta && meta.size !== size) throw new Error(`cached ${size} bytes, ${meta.size} were stored`);
    if (hit instanceof Blob) await verifyWeightsBlob(name, hit);
    else await verifyFile(role, name, hit, verifyTokenizer);
    const stored = meta?.sha256 ?? null;
    if (expected && stored && stored !== expected) throw new Error('cached for another sha256');
    let sha = stored;
    if ((stored || expected) && size <= rehashLimit) {
      sha = hit instanceof Blob ? await sha256OfBlob(hit, undefined, signal) : sha256Hex(hit);
      if (sha !== (expected ?? stored)) throw new Error('sha256 of the cached bytes changed');
    } else if (expected && !stored) {
      throw new Error('no sha256 stored to compare with the expected one'); // cannot vouch for it: fetch again
    }
    return { data: hit, sha256: sha };
  } catch (e) {
    if (isAbort(e)) throw e;
    await cache.delete(url).catch(() => false); // corrupted or stale entry: download again
    return null;
  }
}
