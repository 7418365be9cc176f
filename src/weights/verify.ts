/**
 * Checks that a model file is what its role needs before it is cached or used, and the errors
 * that say what is wrong. Every error is a ModelSourceError naming the file; `code` tells the kind.
 */
import type { FileRole } from './hub.ts';
import { SafetensorsError, SafetensorsFile } from './safetensors.ts';

export type ModelSourceErrorCode =
  | 'http' // the server answered with an error status (status holds it)
  | 'network' // no answer at all (offline, CORS, DNS, refused)
  | 'truncated' // fewer bytes than Content-Length / X-Linked-Size, or the body broke off
  | 'oversize' // more bytes than announced
  | 'content-type' // a web page (captive portal, login page) or a partial response instead of the file
  | 'integrity' // sha256 differs from the one the source announced
  | 'stalled' // no bytes for the stall timeout
  | 'format' // not a valid safetensors / SentencePiece / JSON file
  | 'quota' // the browser's storage is full: the file could not be cached (or its parts stored)
  | 'source' // the source itself is incomplete or ambiguous (missing URL, picked files)
  | 'local'; // a picked local file could not be read

/** A model file could not be found, fetched, read or verified. `file` names it; `code` says how. */
export class ModelSourceError extends Error {
  override name = 'ModelSourceError';
  constructor(
    readonly file: string,
    message: string,
    readonly status?: number,
    readonly code: ModelSourceErrorCode = status !== undefined ? 'http' : 'format',
  ) {
    super(`${file}: ${message}`);
  }
}

/** A download sent no bytes for the stall timeout and was aborted. Nothing was cached. */
export class DownloadStalledError extends ModelSourceError {
  override name = 'DownloadStalledError';
  constructor(file: string, message: string) {
    super(file, message, undefined, 'stalled');
  }
}

/** A file's sha256 differs from the one its source announced. Nothing was cached. */
export class IntegrityError extends ModelSourceError {
  override name = 'IntegrityError';
  constructor(file: string, message: string, readonly expected: string, readonly actual: string) {
    super(file, message, undefined, 'integrity');
  }
}

/**
 * The browser's storage quota ran out while a downloaded file was cached (or its downloaded
 * bytes stored for resuming). Nothing half-cached is left. `neededBytes`: the bytes that were
 * being written; `freeBytes`: quota − usage from the storage estimate (null when unknown).
 */
export class StorageQuotaError extends ModelSourceError {
  override name = 'StorageQuotaError';
  constructor(file: string, message: string, readonly neededBytes: number, readonly freeBytes: number | null) {
    super(file, message, undefined, 'quota');
  }
}

/**
 * True when `head` (the first bytes of a body) is an HTML document: what a captive portal, a
 * login wall or a wrong URL serves with status 200. None of the model formats can start so.
 */
export function looksLikeHtml(head: Uint8Array): boolean {
  let s = '';
  for (let i = 0; i < Math.min(head.length, 256); i++) s += String.fromCharCode(head[i]);
  s = s.replace(/^\uFEFF|^\xEF\xBB\xBF/, '').trimStart().toLowerCase();
  return s.startsWith('<!doctype html') || s.startsWith('<html') || s.startsWith('<head') || s.startsWith('<body') || (s.startsWith('<?xml') && s.includes('<html'));
}

/** A Content-Type that is a web page, never a model file. */
export function isHtmlContentType(contentType: string | null): boolean {
  const t = (contentType ?? '').split(';')[0].trim().toLowerCase();
  return t === 'text/html' || t === 'application/xhtml+xml';
}

/** A full tokenizer parse (e.g. TextTokenizer.fromBytes from src/text/tokenizer.ts); throws when the bytes are not a model. */
export type TokenizerCheck = (bytes: Uint8Array, name: string) => Promise<unknown>;

/**
 * Checks a file's bytes by role: safetensors headers and tensor ranges, JSON configs parse to an
 * object, the tokenizer is a well-formed SentencePiece model (checkSentencePieceModel, then
 * `verifyTokenizer` when given). HTML is refused for every role with a message saying so.
 * @returns the parsed JSON for config roles, else null. @throws ModelSourceError (code 'format'
 *   or 'content-type') naming the file.
 */
export async function verifyFile(role: FileRole, name: string, bytes: Uint8Array, verifyTokenizer?: TokenizerCheck): Promise<unknown | null> {
  if (looksLikeHtml(bytes.subarray(0, 256))) throw htmlError(name);
  if (role === 'mimiWeights' || role === 'lmWeights') {
    try {
      SafetensorsFile.parse(bytes, name);
    } catch (e) {
      throw formatError(name, e);
    }
    return null;
  }
  if (role === 'mimiConfig' || role === 'lmConfig') {
    try {
      const v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
      return v;
    } catch (e) {
      throw new ModelSourceError(name, `config is not valid JSON (${(e as Error).message})`);
    }
  }
  if (bytes.byteLength === 0) throw new ModelSourceError(name, 'tokenizer file is empty');
  try {
    checkSentencePieceModel(bytes);
    await verifyTokenizer?.(bytes, name);
  } catch (e) {
    throw new ModelSourceError(name, `not a SentencePiece tokenizer model (${(e as Error).message.replace(`tokenizer ${name}: `, '')})`);
  }
  return null;
}

/**
 * Structural check of a SentencePiece `.model` (a serialized `sentencepiece.ModelProto`): the
 * whole file must be well-formed protobuf (valid wire types, varints, lengths within the file),
 * with at least one `pieces` entry (field 1), each a message whose `piece` (field 1) is UTF-8 text
 * and whose `score` (field 2) is a 32-bit float. A web page, random bytes or a file cut inside a
 * field fail. (The full SentencePiece loader is src/text/tokenizer.ts, a layer above; callers
 * pass it as LoadOptions.verifyTokenizer.)
 * @returns the number of pieces. @throws Error saying what is malformed and where.
 */
export function checkSentencePieceModel(bytes: Uint8Array): number {
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pieces = 0;
  walkMessage(bytes, 0, bytes.length, (field, wire, start, end) => {
    if (field !== 1) return;
    if (wire !== 2) throw new Error(`field 1 (pieces) at byte ${start} has wire type ${wire}, expected a message`);
    let hasPiece = false;
    walkMessage(bytes, start, end, (f, w, s, e) => {
      if (f === 1) {
        if (w !== 2) throw new Error(`piece ${pieces}: its text (field 1) has wire type ${w}`);
        try {
          utf8.decode(bytes.subarray(s, e));
        } catch {
          throw new Error(`piece ${pieces}: its text is not UTF-8 (byte ${s})`);
        }
        hasPiece = true;
      } else if (f === 2 && w !== 5) throw new Error(`piece ${pieces}: its score (field 2) has wire type ${w}, expected a float`);
    });
    if (!hasPiece) throw new Error(`piece ${pieces} has no text`);
    pieces++;
  });
  if (pieces === 0) throw new Error('no vocabulary pieces');
  return pieces;
}

/** Walks the fields of one protobuf message in bytes[start, end): (field, wireType, valueStart, valueEnd). */
function walkMessage(b: Uint8Array, start: number, end: number, onField: (field: number, wire: number, s: number, e: number) => void): void {
  let p = start;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (p >= end) throw new Error(`truncated varint at byte ${p}`);
      const c = b[p++];
      if (shift < 49) v += (c & 0x7f) * 2 ** shift;
      if ((c & 0x80) === 0) return v;
    }
    throw new Error(`varint longer than 10 bytes at byte ${p}`);
  };
  while (p < end) {
    const at = p;
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new Error(`field number 0 at byte ${at}`);
    let s = p;
    if (wire === 0) varint();
    else if (wire === 1) p += 8;
    else if (wire === 5) p += 4;
    else if (wire === 2) {
      const len = varint();
      s = p;
      p += len;
    } else throw new Error(`wire type ${wire} at byte ${at}`);
    if (p > end) throw new Error(`field ${field} at byte ${at} runs past the end (${end})`);
    onField(field, wire, s, p);
  }
}

/** Checks a weights Blob like verifyFile checks bytes (its safetensors header and tensor ranges), without reading it whole. */
export async function verifyWeightsBlob(name: string, blob: Blob): Promise<void> {
  if (looksLikeHtml(new Uint8Array(await blob.slice(0, 256).arrayBuffer()))) throw htmlError(name);
  try {
    await SafetensorsFile.fromBlob(blob, name, { eagerBytes: 0 });
  } catch (e) {
    if (!(e instanceof SafetensorsError)) throw e; // an unreadable Blob, not a format error
    throw formatError(name, e);
  }
}

function formatError(name: string, e: unknown): ModelSourceError {
  const msg = e instanceof SafetensorsError ? e.message.replace(`${name}: `, '') : (e as Error).message;
  return new ModelSourceError(name, `not a valid safetensors file (${msg})`);
}

export function htmlError(name: string, contentType?: string | null): ModelSourceError {
  const ct = contentType ? ` (Content-Type ${contentType})` : '';
  return new ModelSourceError(name, `the server sent a web page${ct} instead of the file: a captive portal, a login page or a wrong URL? Nothing was cached`, undefined, 'content-type');
}
