/**
 * Downloading one model file so that nothing bad reaches the offline cache, resuming an
 * interrupted download instead of starting over, and checking cache hits before they are used.
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
 *   model (parsed), JSON object ('format');
 * - the storage quota runs out while it is cached (StorageQuotaError, 'quota': the bytes needed
 *   and the estimate's free bytes; the cache entry is removed, nothing half-cached is left), or
 *   while its received bytes are stored as parts (StorageQuotaError too, not retried).
 *
 * Resuming: the bytes received are kept as parts (src/weights/parts.ts: OPFS in browsers,
 * IndexedDB where OPFS cannot be written, memory in Node), every `blobFoldBytes` and when a
 * connection breaks, with the running SHA-256 over them. A stalled or dropped connection, a body that ends
 * early, a network error or an HTTP 408/429/5xx is retried `retries` times (backoff
 * `retryDelayMs`, doubling), each time with `Range: bytes=<stored>-` (and `If-Range: <ETag>`
 * where allowed, see LoadOptions.ifRange); after the last one the named error above is thrown
 * and the parts stay, so a later Load (or, with OPFS, a later visit) resumes from them. A 206 is
 * accepted only when its Content-Range starts at the stored length and names the same total,
 * and its ETag is the stored one; a 200 to a Range request (a server ignoring Range, or If-Range
 * seeing a changed file), a 416, or a 206 with another ETag discard the parts and start from 0.
 * Requests bypass the browser's HTTP cache (`cache: 'no-store'`): it would hold a second copy
 * and answer Range requests from a cut-off response of its own.
 * Only downloads that something can vouch for resume (a strong ETag or a known sha256);
 * others start over. The whole file's sha256 is checked before it is used or cached; a
 * mismatch (IntegrityError), a web page or an invalid file discard the parts too.
 *
 * Cancel: aborting `signal` aborts the fetch and every read; the call rejects with the signal's
 * AbortError and caches nothing (the bytes received are kept as parts, for the next Load); no
 * request starts once the signal is aborted.
 * Cache hits are checked before use: size against the stored meta, format as above, and the
 * stored sha256 again for files up to `rehashCachedBytes` (and against the source's expected
 * sha256 if it gives one); a bad entry is deleted and the file downloaded again.
 * Progress events: see ProgressInfo.
 */
import { type CacheEntryMeta, type StorageEstimateBytes, type WeightCache, browserStorageEstimate, defaultWeightCache, isQuotaError } from './cache.ts';
import { type FileRole, announcedFile, fileNameOf } from './hub.ts';
import { type PartStore, type PartialMeta, defaultPartStore } from './parts.ts';
import { Sha256, sha256Hex, sha256OfBlob } from './sha256.ts';
import {
  DownloadStalledError,
  IntegrityError,
  ModelSourceError,
  StorageQuotaError,
  type TokenizerCheck,
  htmlError,
  isHtmlContentType,
  looksLikeHtml,
  verifyFile,
  verifyWeightsBlob,
} from './verify.ts';

export type ProgressStatus = 'plan' | 'initiate' | 'download' | 'progress' | 'retry' | 'done' | 'ready' | 'error';

/** One file of a load as the 'plan' event announces it. */
export interface PlannedFile {
  file: string;
  role: FileRole;
  /** Bytes (the cache's meta, or the server's answer to HEAD), or null when unknown. */
  bytes: number | null;
  /** In the offline cache already. */
  cached: boolean;
}

export interface ProgressInfo {
  status: ProgressStatus;
  /** File name (last URL segment or File.name); for 'ready', a summary of the set. */
  file: string;
  /** Which model input this file is. Absent for 'ready'. */
  role?: FileRole;
  /** Bytes so far, including those stored by an earlier attempt (for 'ready': all files). */
  loaded: number;
  /** Bytes expected (0 when unknown, e.g. no Content-Length yet). */
  total: number;
  /** 'done' served from the offline cache, or read from a local file (no network). */
  cached?: boolean;
  /** A picked local file (loadModelFiles with a 'files' source), not a download. */
  local?: boolean;
  /** 'download': the bytes already stored that this response continues from (0 or absent: from the start). */
  resumedFrom?: number;
  /** 'retry': the attempt about to start (1 = the first retry), of `retries`; `loaded` is then what it resumes from (0: it starts over). */
  attempt?: number;
  retries?: number;
  /** 'retry': ms until that attempt starts. */
  retryInMs?: number;
  /** 'error': the message; 'retry': what went wrong. */
  error?: string;
  /** loadModelFiles: this file's place (1-based) among the `fileCount` files of the load. */
  fileIndex?: number;
  fileCount?: number;
  /** 'plan' (loadModelFiles with probeSizes, before the first file): every file of the load; `total` is the sum of the known sizes. */
  plan?: PlannedFile[];
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
  /** Bytes received before they are stored as one part (default 64 MiB); JS holds at most this much of a download. */
  blobFoldBytes?: number;
  /** No bytes (or no response headers) for this many ms aborts the attempt with DownloadStalledError (default 30 000). */
  stallTimeoutMs?: number;
  /** Cache hits up to this many bytes are re-hashed against their stored sha256 (default 64 MiB: configs, tokenizer; not multi-GB weights). */
  rehashCachedBytes?: number;
  /**
   * The full tokenizer parse, run before a downloaded (or cached) tokenizer is accepted, on top
   * of the structural check: the engine Worker passes TextTokenizer.fromBytes (src/text/tokenizer.ts).
   */
  verifyTokenizer?: TokenizerCheck;
  /** Where unfinished downloads keep their bytes (default defaultPartStore()); null: nothing kept, a failed download starts over. */
  parts?: PartStore | null;
  /** Automatic retries of a stalled or dropped download, each resuming where the last stopped (default 3; 0 = none). */
  retries?: number;
  /** Delay before the first retry in ms, doubled for each further one, at most 30 000 (default 1000). */
  retryDelayMs?: number;
  /**
   * Send `If-Range: <ETag>` with a resuming request (the server then answers 200, the whole new
   * file, if it changed). Default: in Node, and in a browser for same-origin URLs; cross-origin
   * it would need a CORS preflight the server may refuse, so there the 206's ETag is compared
   * instead (a changed one restarts from 0 all the same).
   */
  ifRange?: boolean;
  /**
   * loadModelFiles: before the first download, ask the server each uncached file's size (HEAD,
   * at most 5 s) and emit one 'plan' event, so that progress can be shown over the whole load
   * (default false).
   */
  probeSizes?: boolean;
  /** Storage usage and quota for quota errors (default: the cache's estimate(), else navigator.storage.estimate()). */
  estimate?: () => Promise<StorageEstimateBytes | null>;
}

const PART_BYTES = 64 * 1024 * 1024;
const STALL_TIMEOUT_MS = 30_000;
const REHASH_CACHED_BYTES = 64 * 1024 * 1024;
const RETRIES = 3;
const RETRY_DELAY_MS = 1000;
const MAX_RETRY_DELAY_MS = 30_000;

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
/** An ETag usable as If-Range and for comparing two responses: a strong one (no W/). */
const strongEtag = (h: Headers) => {
  const t = h.get('etag')?.trim();
  return t && !t.startsWith('W/') ? t : null;
};
/** `bytes <first>-<last>/<total>` (total may be '*'). */
function parseContentRange(v: string | null): { first: number; last: number; total: number | null } | null {
  const m = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(v?.trim() ?? '');
  if (!m) return null;
  const r = { first: Number(m[1]), last: Number(m[2]), total: m[3] === '*' ? null : Number(m[3]) };
  return r.last >= r.first && Number.isSafeInteger(r.last) ? r : null;
}
const errorText = (e: unknown) => (e as Error)?.message ?? String(e);

/** Thrown inside an attempt: the stored parts do not fit what the server sends now; start from 0 at once (not a retry). */
class Restart extends Error {}

/** Errors worth another attempt (the connection, not the file). */
function retryable(e: unknown): boolean {
  if (!(e instanceof ModelSourceError)) return false;
  if (e.code === 'stalled' || e.code === 'network' || e.code === 'truncated') return true;
  return e.code === 'http' && e.status !== undefined && (e.status === 408 || e.status === 429 || e.status >= 500);
}

/** Waits `ms`, rejecting with the signal's reason when it is aborted first. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((ok, fail) => {
    if (signal?.aborted) return fail(abortError(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      ok();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      fail(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** What one download has stored so far, across attempts. */
interface Progress {
  meta: PartialMeta | null;
  /** The stored bytes (the parts, as the store gives them back). */
  stored: Blob;
  hasher: Sha256 | null;
}

/**
 * Downloads `url` for `role` (or serves it from the cache), verified and resumed as the module
 * doc says. Where the Web Locks API exists (browsers, Workers), one download of a URL runs at a
 * time across this origin's tabs and Workers (lock `solacelive-download <url>`): a second one
 * waits, then finds the file in the cache, instead of writing the same parts.
 * @param asBlob keep the body as a Blob (weights) instead of bytes.
 * @param expectedSha256 the source's own sha256 for the file, if it has one.
 * @throws ModelSourceError (or DownloadStalledError / IntegrityError / StorageQuotaError) naming
 *   the file, after an 'error' progress event; the signal's AbortError when cancelled (also
 *   while waiting for the lock).
 */
export async function download(url: string, role: FileRole, opts: LoadOptions, asBlob: boolean, expectedSha256: string | null = null): Promise<Downloaded> {
  const locks = typeof navigator !== 'undefined' ? (navigator as Navigator & { locks?: LockManager }).locks : undefined;
  if (!locks?.request) return downloadLocked(url, role, opts, asBlob, expectedSha256);
  opts.signal?.throwIfAborted();
  return locks.request(`solacelive-download ${url}`, opts.signal ? { signal: opts.signal } : {}, () => downloadLocked(url, role, opts, asBlob, expectedSha256));
}

/** download() once this URL's lock is held. */
async function downloadLocked(url: string, role: FileRole, opts: LoadOptions, asBlob: boolean, expectedSha256: string | null): Promise<Downloaded> {
  const name = fileNameOf(url);
  const emit = opts.onProgress ?? (() => {});
  const cache = opts.cache === undefined ? defaultWeightCache() : opts.cache;
  const parts = opts.parts === undefined ? defaultPartStore() : opts.parts;
  const signal = opts.signal;
  const expected = expectedSha256?.toLowerCase() ?? null;
  let loaded = 0;
  let total = 0;
  const fail = (err: ModelSourceError): never => {
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

  const p: Progress = { meta: null, stored: new Blob([]), hasher: null };
  const discard = async () => {
    p.meta = null;
    p.stored = new Blob([]);
    p.hasher = null;
    await parts?.delete(url).catch(() => false);
  };
  if (parts) {
    const prev = await parts.open(url).catch(() => null);
    const usable =
      prev && (prev.meta.etag || prev.meta.sha256) && prev.meta.total > 0 && prev.meta.bytes <= prev.meta.total &&
      (!expected || prev.meta.sha256 === expected) && (!prev.meta.sha256 || prev.meta.hash);
    if (prev && usable) {
      try {
        p.hasher = prev.meta.hash ? Sha256.restore(prev.meta.hash) : null;
        if (p.hasher && p.hasher.length !== prev.meta.bytes) throw new Error('hash state does not cover the stored bytes');
        p.meta = prev.meta;
        p.stored = prev.blob;
      } catch {
        await discard();
      }
    } else if (prev) await discard();
  }

  const ifRange = opts.ifRange ?? (typeof location === 'undefined' || (() => {
    try {
      return new URL(url, location.href).origin === location.origin;
    } catch {
      return false;
    }
  })());
  const retries = Math.max(0, opts.retries ?? RETRIES);
  const ctx: AttemptContext = { url, name, role, opts, parts, expected, ifRange, emit, discard, setCounts: (l, t) => ((loaded = l), (total = t)) };
  let result: { blob: Blob; sha: string | null } | null = null;
  for (let attempt = 0, restarts = 0; ; ) {
    try {
      result = await attemptOnce(ctx, p);
      break;
    } catch (e) {
      if (signal?.aborted) throw abortError(signal);
      if (e instanceof Restart && restarts++ < 2) continue; // the stored parts were discarded: from 0, now
      if (e instanceof Restart) return fail(new ModelSourceError(name, `the server's answers to a resumed download did not fit together (${e.message}); nothing was cached`, undefined, 'content-type'));
      if (!(e instanceof ModelSourceError)) throw e;
      if (retryable(e) && attempt < retries) {
        attempt++;
        const delay = Math.min(MAX_RETRY_DELAY_MS, (opts.retryDelayMs ?? RETRY_DELAY_MS) * 2 ** (attempt - 1));
        emit({ status: 'retry', file: name, role, loaded, total, attempt, retries, retryInMs: delay, error: e.message });
        await sleep(delay, signal);
        continue;
      }
      if (!retryable(e) && e.code !== 'quota') await discard(); // the file itself is bad: its bytes go
      if (retryable(e)) {
        const kept = parts && p.meta && p.meta.bytes > 0 ? ` ${p.meta.bytes} bytes are kept: Load again to resume` : ' nothing was cached';
        const tries = retries > 0 ? ` (${retries + 1} attempts)` : '';
        const err = e instanceof DownloadStalledError
          ? new DownloadStalledError(name, `${e.message.slice(name.length + 2)}${tries};${kept}`)
          : new ModelSourceError(name, `${e.message.slice(name.length + 2)}${tries};${kept}`, e.status, e.code);
        return fail(err);
      }
      return fail(e);
    }
  }

  const { blob, sha } = result;
  let data: Uint8Array | Blob;
  try {
    data = asBlob ? blob : new Uint8Array(await blob.arrayBuffer());
    if (data instanceof Blob) await verifyWeightsBlob(name, data);
    else await verifyFile(role, name, data, opts.verifyTokenizer);
  } catch (e) {
    await discard();
    if (e instanceof ModelSourceError) return fail(e);
    return fail(new ModelSourceError(name, `could not read the downloaded file back (${errorText(e)})`, undefined, 'format'));
  }
  emit({ status: 'progress', file: name, role, loaded, total: total || loaded });
  signal?.throwIfAborted(); // cancelled while verifying: nothing is cached
  let partsSafeToDrop = !asBlob || !parts || parts.kind === 'memory' || p.stored.size === 0;
  if (cache) {
    const meta: CacheEntryMeta = { size: loaded, sha256: sha };
    try {
      if (data instanceof Blob) await cache.putBlob(url, data, meta);
      else await cache.put(url, data, meta);
      if (data instanceof Blob && !partsSafeToDrop) {
        // Served from the cache from now on: the returned Blob must not be the parts deleted next.
        const back = await cache.getBlob(url).catch(() => null);
        if (back && back.size === data.size) {
          data = back;
          partsSafeToDrop = true;
        }
      }
    } catch (e) {
      await cache.delete(url).catch(() => false); // nothing half-cached
      if (isQuotaError(e)) {
        const est = (await (opts.estimate ?? (() => cache.estimate()))().catch(() => null)) ?? (await browserStorageEstimate());
        const free = est ? Math.max(0, est.quota - est.usage) : null;
        const kept = parts && p.meta && p.meta.bytes > 0 ? ` ${p.meta.bytes} downloaded bytes are kept for the next Load.` : '';
        // Browsers may estimate more room than they then grant (Chromium adds free disk to the quota it reports).
        const odd = free !== null && free >= loaded ? ', yet the browser refused it (its real limit is lower than its estimate, or the disk is full)' : '';
        return fail(new StorageQuotaError(name, `storage full: caching it needs ${loaded} bytes, the browser's estimate leaves ${free === null ? 'an unknown number of' : free} bytes free${est ? ` (${est.usage} of ${est.quota} used)` : ''}${odd}; nothing was cached. Delete cached models or free disk space, then Load again.${kept}`, loaded, free));
      }
      // Another storage failure (storage disabled, private mode): the load still succeeds, only offline use is lost.
    }
  }
  if (partsSafeToDrop) await parts?.delete(url).catch(() => false);
  emit({ status: 'done', file: name, role, loaded, total: total || loaded });
  return { data, origin: 'network', name, sha256: sha };
}

interface AttemptContext {
  url: string;
  name: string;
  role: FileRole;
  opts: LoadOptions;
  parts: PartStore | null;
  expected: string | null;
  ifRange: boolean;
  emit: ProgressCallback;
  discard: () => Promise<void>;
  setCounts: (loaded: number, total: number) => void;
}

/**
 * One request: from the stored bytes on (Range) or from 0; the body's bytes are appended to the
 * parts as they come. Resolves with the whole file (its sha256 checked); throws the named error
 * (the caller retries the retryable ones) or Restart.
 */
async function attemptOnce(c: AttemptContext, p: Progress): Promise<{ blob: Blob; sha: string | null }> {
  const { url, name, role, opts, parts, emit } = c;
  const signal = opts.signal;
  // Everything stored and hashed already (an earlier Load failed after the last byte): no request.
  if (p.meta && p.meta.bytes === p.meta.total) {
    c.setCounts(p.meta.bytes, p.meta.total);
    return { blob: p.stored, sha: finish(c, p, p.meta.sha256, p.meta.sha256 ? 'the stored download' : null) };
  }
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
  const offset = p.meta?.bytes ?? 0;
  let loaded = offset;
  let total = p.meta?.total ?? 0;
  const counts = () => c.setCounts(loaded, total);
  counts();
  const stallError = () =>
    new DownloadStalledError(name, `no bytes for ${stallMs / 1000} s ${loaded > 0 || total > 0 ? `at ${loaded} of ${total || '?'} bytes ` : 'before the response '}from ${url}; the server stalled`);
  /** Chunks received and hashed, not stored as a part yet. */
  let chunks: Uint8Array<ArrayBuffer>[] = [];
  let chunkBytes = 0;
  /** A later answer can be matched to this one (known size, and an ETag or a sha256): the bytes are kept between attempts. */
  let canResume = false;
  /** …and stored in the part store (kept between Loads). */
  let persist = false;
  /** Stores the pending chunks as one part (they follow the stored bytes; the hash covers them). */
  const flush = async () => {
    if (!chunkBytes || !p.meta) return;
    const part = new Blob(chunks);
    chunks = [];
    chunkBytes = 0;
    const meta: PartialMeta = { ...p.meta, bytes: p.meta.bytes + part.size, parts: p.meta.parts + 1, hash: p.hasher?.save() ?? null, updatedAt: Date.now() };
    if (parts && persist) {
      try {
        // The part as stored (a disk-backed file in OPFS): JS keeps no copy of it.
        const stored = await parts.append(url, part, meta);
        p.stored = new Blob([p.stored, stored]);
        p.meta = meta;
        return;
      } catch (e) {
        if (isQuotaError(e)) {
          const est = await (opts.estimate ?? browserStorageEstimate)().catch(() => null);
          const free = est ? Math.max(0, est.quota - est.usage) : null;
          throw new StorageQuotaError(name, `storage full: keeping the downloaded bytes needs ${total - p.meta.bytes} bytes more, the browser's estimate leaves ${free ?? 'an unknown number of'} bytes free; nothing was cached. Delete cached models or free disk space, then Load again`, total - p.meta.bytes, free);
        }
        persist = false; // the store failed otherwise: go on in memory
        await parts.delete(url).catch(() => false);
      }
    }
    p.stored = new Blob([p.stored, part]);
    p.meta = meta;
  };
  /** After an interruption: keep what arrived for the next attempt, or forget it when it cannot be resumed. */
  const keep = async () => {
    await flush();
    if (!canResume) {
      p.meta = null;
      p.stored = new Blob([]);
      p.hasher = null;
    }
  };
  try {
    arm();
    const headers: Record<string, string> = {};
    if (offset > 0) {
      headers.Range = `bytes=${offset}-`;
      if (c.ifRange && p.meta?.etag) headers['If-Range'] = p.meta.etag;
    }
    const doFetch = opts.fetch ?? globalThis.fetch;
    let res: Response;
    try {
      // cache: 'no-store': the browser's HTTP cache would keep a second copy of multi-GB files and,
      // holding a cut-off response, turns Range requests into ranges of its own.
      res = await doFetch(url, { signal: ctrl.signal, redirect: 'follow', cache: 'no-store', ...(offset > 0 ? { headers } : {}) });
    } catch (e) {
      if (signal?.aborted) throw abortError(signal);
      if (stalled) throw stallError();
      if (isAbort(e)) throw e;
      throw new ModelSourceError(name, `could not fetch ${url}: ${errorText(e)} (offline, CORS, or a wrong base URL)`, undefined, 'network');
    }
    const drop = () => void res.body?.cancel().catch(() => undefined);
    if (res.status === 416 && offset > 0) {
      drop();
      await c.discard();
      throw new Restart(`HTTP 416 for bytes=${offset}-`);
    }
    if (!res.ok) {
      const hint =
        res.status === 404 ? ' (not found: check the repository, revision and file name)' : res.status === 401 || res.status === 403 ? ' (access denied: gated or private repository?)' : '';
      drop();
      throw new ModelSourceError(name, `HTTP ${res.status} ${res.statusText} for ${url}${hint}`, res.status, 'http');
    }
    const contentType = res.headers.get('content-type');
    if (isHtmlContentType(contentType)) {
      drop();
      throw htmlError(name, contentType);
    }
    const announced = announcedFile(res.headers);
    const etag = strongEtag(res.headers);
    const lenHeader = res.headers.get('content-length');
    const encoding = res.headers.get('content-encoding');
    const contentLength = lenHeader !== null && (!encoding || encoding === 'identity') && /^\d+$/.test(lenHeader.trim()) ? Number(lenHeader) : null;
    let from = 0;
    if (res.status === 206) {
      if (offset === 0 || !p.meta) {
        drop();
        throw new ModelSourceError(name, `the server answered a full request with a partial response (HTTP 206) for ${url}; nothing was cached`, 206, 'content-type');
      }
      const range = parseContentRange(res.headers.get('content-range'));
      const remainder = p.meta.total - offset;
      // Without a readable Content-Range (a CORS server not exposing it), the length must be the remainder.
      const fits = range ? range.first === offset && range.last === p.meta.total - 1 && (range.total === null || range.total === p.meta.total) : contentLength === remainder;
      const sameFile = (!p.meta.etag || !etag || etag === p.meta.etag) && (!p.meta.sha256 || !announced.sha256 || announced.sha256 === p.meta.sha256) && (announced.linkedSize === null || announced.linkedSize === p.meta.total);
      if (!fits || !sameFile) {
        drop();
        const why = !sameFile ? `the file changed (ETag ${etag ?? '?'}, stored ${p.meta.etag ?? '?'})` : `Content-Range ${res.headers.get('content-range') ?? '(none)'} does not continue ${offset} of ${p.meta.total} bytes`;
        await c.discard();
        throw new Restart(why);
      }
      from = offset;
      total = p.meta.total;
    } else {
      // 200: the whole file (a server ignoring Range, or If-Range seeing a changed file): from 0.
      if (offset > 0) await c.discard();
      if (contentLength !== null && announced.linkedSize !== null && contentLength !== announced.linkedSize) {
        drop();
        throw new ModelSourceError(name, `Content-Length ${contentLength} differs from the hub's X-Linked-Size ${announced.linkedSize} for ${url}; nothing was cached`, undefined, 'oversize');
      }
      total = contentLength ?? announced.linkedSize ?? 0;
      const wantSha = c.expected ?? announced.sha256;
      p.hasher = wantSha ? new Sha256() : null;
      p.meta = { key: url, etag, sha256: wantSha, total, bytes: 0, parts: 0, hash: null, updatedAt: Date.now() };
    }
    loaded = from;
    counts();
    // Keep parts only where a later answer can be matched to this one.
    canResume = total > 0 && !!(p.meta.etag || p.meta.sha256);
    persist = !!parts && canResume;
    emit({ status: 'download', file: name, role, loaded, total, ...(from > 0 ? { resumedFrom: from } : {}) });
    const interval = opts.progressIntervalMs ?? 100;
    const partBytes = opts.blobFoldBytes ?? PART_BYTES;
    try {
      const reader = (res.body ?? new Blob([]).stream()).getReader();
      let last = -Infinity;
      let head = from === 0;
      let sniff: Uint8Array[] = [];
      let sniffed = 0;
      arm();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        if (head) {
          // Sniff the first bytes (at least 64, however the body is chunked) for a web page.
          sniff.push(value);
          sniffed += value.byteLength;
          if (sniffed >= 64) {
            head = false;
            const first = new Uint8Array(Math.min(sniffed, 256));
            let at = 0;
            for (const s of sniff) {
              const n = Math.min(s.byteLength, first.length - at);
              first.set(s.subarray(0, n), at);
              at += n;
              if (at >= first.length) break;
            }
            sniff = [];
            if (looksLikeHtml(first)) {
              void reader.cancel().catch(() => undefined);
              throw htmlError(name, contentType);
            }
          }
        }
        if (total > 0 && loaded + value.byteLength > total) {
          void reader.cancel().catch(() => undefined);
          throw new ModelSourceError(name, `server sent more than the announced ${total} bytes; nothing was cached`, undefined, 'oversize');
        }
        p.hasher?.update(value);
        chunks.push(value as Uint8Array<ArrayBuffer>);
        chunkBytes += value.byteLength;
        loaded += value.byteLength;
        counts();
        if (chunkBytes >= partBytes) {
          clearTimeout(timer); // writing a part is not the server stalling
          await flush();
          arm();
        }
        const now = Date.now();
        if (now - last >= interval) {
          last = now;
          emit({ status: 'progress', file: name, role, loaded, total });
        }
      }
    } catch (e) {
      clearTimeout(timer);
      if (e instanceof ModelSourceError && (e.code === 'content-type' || e.code === 'oversize')) throw e;
      const at = total > 0 ? ` at ${loaded} of ${total} bytes` : ` after ${loaded} bytes`;
      const err = signal?.aborted ? abortError(signal) : stalled ? stallError() : e instanceof ModelSourceError ? e : new ModelSourceError(name, `download interrupted${at} (${errorText(e)})`, undefined, 'truncated');
      // Interrupted: what did arrive is kept (the next attempt, or Load, resumes after it).
      await keep().catch((f) => {
        if (f instanceof StorageQuotaError) throw f;
      });
      loaded = p.meta?.bytes ?? 0; // what the next attempt starts from
      counts();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (total > 0 && loaded !== total) {
      await keep();
      const what = res.status === 206 ? 'Content-Range' : contentLength !== null ? 'Content-Length' : 'X-Linked-Size';
      const err = new ModelSourceError(name, `truncated download: received ${loaded} of ${total} bytes (${what})`, undefined, 'truncated');
      loaded = p.meta?.bytes ?? 0;
      counts();
      throw err;
    }
    if (total === 0) total = loaded;
    counts();
    const blob = new Blob([p.stored, ...chunks]);
    const sha = finish(c, p, p.meta.sha256, p.meta.sha256 ? (c.expected ? 'the source' : from > 0 ? 'the stored download' : announced.sha256From) : null);
    return { blob, sha };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onCancel);
  }
}

/**
 * The size the server announces for `url` (HEAD, redirects followed: Content-Length, else the
 * hub's X-Linked-Size), or null when it does not answer within `timeoutMs`, fails or says nothing.
 * Never throws except the signal's AbortError.
 */
export async function probeSize(url: string, opts: Pick<LoadOptions, 'fetch' | 'signal'> = {}, timeoutMs = 5000): Promise<number | null> {
  const ctrl = new AbortController();
  const onCancel = () => ctrl.abort();
  opts.signal?.addEventListener('abort', onCancel, { once: true });
  const t = setTimeout(() => ctrl.abort(), timeoutMs);
  try {
    const res = await (opts.fetch ?? globalThis.fetch)(url, { method: 'HEAD', redirect: 'follow', cache: 'no-store', signal: ctrl.signal });
    void res.body?.cancel().catch(() => undefined);
    if (!res.ok) return null;
    const enc = res.headers.get('content-encoding');
    const len = res.headers.get('content-length');
    if (len !== null && (!enc || enc === 'identity') && /^\d+$/.test(len.trim())) return Number(len);
    return announcedFile(res.headers).linkedSize;
  } catch {
    opts.signal?.throwIfAborted();
    return null;
  } finally {
    clearTimeout(t);
    opts.signal?.removeEventListener('abort', onCancel);
  }
}

/** The whole file's sha256 from the running hash, checked against `want`. @throws IntegrityError. */
function finish(c: AttemptContext, p: Progress, want: string | null, from: string | null): string | null {
  const bytes = p.hasher?.length ?? 0;
  const sha = p.hasher ? p.hasher.hex() : null;
  p.hasher = null; // finished: a further attempt (none should come) would start over
  if (want && sha !== want) {
    throw new IntegrityError(c.name, `sha256 mismatch: ${from ?? 'the source'} says ${want}, the ${bytes} bytes received hash to ${sha} (corrupted in transit or on the server); nothing was cached`, want, sha ?? '');
  }
  return sha;
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
