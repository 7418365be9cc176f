/**
 * Where network model files are: the Hugging Face hub layout (`${base}/${repo}/resolve/${rev}/${file}`)
 * and plain URLs, the release's file names, and what the hub says about a file's integrity.
 * No fetching here (src/weights/download.ts does that).
 */
import { sha256FromEtag } from './sha256.ts';

export const DEFAULT_HUB_BASE = 'https://huggingface.co';
export const DEFAULT_REPO = 'kyutai/moshiko-pytorch-bf16';
export const DEFAULT_REVISION = 'main';
/** File names of the release (moshi/models/loaders.py: MIMI_NAME, MOSHI_NAME, TEXT_TOKENIZER_NAME). */
export const RELEASE_FILES = {
  mimiWeights: 'tokenizer-e351c8d8-checkpoint125.safetensors',
  lmWeights: 'model.safetensors',
  tokenizer: 'tokenizer_spm_32k_3.model',
} as const;

export type FileRole = 'mimiWeights' | 'lmWeights' | 'mimiConfig' | 'lmConfig' | 'tokenizer';

export interface HubSource {
  kind: 'hub';
  /** Hub or mirror base URL (default https://huggingface.co). */
  baseUrl?: string;
  repo?: string;
  revision?: string;
  /**
   * Override file names (e.g. a quantised LM file); defaults are RELEASE_FILES. `lmConfig` (no
   * default): the repository's config.json, for models without a built-in config (Kyutai STT).
   */
  files?: Partial<Record<'mimiWeights' | 'lmWeights' | 'tokenizer' | 'lmConfig', string>>;
  /** Skip the tokenizer download (text not needed). */
  skipTokenizer?: boolean;
}

export interface UrlSource {
  kind: 'urls';
  mimiWeights: string;
  lmWeights: string;
  mimiConfig?: string | null;
  lmConfig?: string | null;
  tokenizer?: string | null;
  /**
   * Expected sha256 (64 hex digits) per role, when known: checked on download and on cache hits,
   * in addition to any sha256 the server announces.
   */
  sha256?: Partial<Record<FileRole, string>>;
}

/** `${base}/${repo}/resolve/${revision}/${file}` with the base's trailing slashes trimmed. */
export function hubUrl(file: string, base = DEFAULT_HUB_BASE, repo = DEFAULT_REPO, revision = DEFAULT_REVISION): string {
  const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');
  return `${base.replace(/\/+$/, '')}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(file)}`;
}

/** Last path segment of a URL, without query. */
export function fileNameOf(url: string): string {
  const path = url.split(/[?#]/)[0];
  const last = path.split('/').filter(Boolean).pop() ?? url;
  try {
    return decodeURIComponent(last);
  } catch {
    return last; // a stray % in the URL: show it as written
  }
}

/** The URL of each role for a hub or URL source (configs/tokenizer may be absent). */
export function sourceUrls(source: HubSource | UrlSource): Partial<Record<FileRole, string>> {
  if (source.kind === 'urls') {
    const out: Partial<Record<FileRole, string>> = { mimiWeights: source.mimiWeights, lmWeights: source.lmWeights };
    if (source.mimiConfig) out.mimiConfig = source.mimiConfig;
    if (source.lmConfig) out.lmConfig = source.lmConfig;
    if (source.tokenizer) out.tokenizer = source.tokenizer;
    return out;
  }
  const f = { ...RELEASE_FILES, ...source.files };
  const u = (file: string) => hubUrl(file, source.baseUrl ?? DEFAULT_HUB_BASE, source.repo ?? DEFAULT_REPO, source.revision ?? DEFAULT_REVISION);
  const out: Partial<Record<FileRole, string>> = { mimiWeights: u(f.mimiWeights), lmWeights: u(f.lmWeights) };
  if (source.files?.lmConfig) out.lmConfig = u(source.files.lmConfig);
  if (!source.skipTokenizer) out.tokenizer = u(f.tokenizer);
  return out;
}

/** What a response's headers promise about the file. */
export interface AnnouncedFile {
  /** sha256 of the file (64 lowercase hex digits), or null when the server gives none. */
  sha256: string | null;
  /** Where the sha256 came from, for error messages. */
  sha256From: 'X-Linked-Etag' | 'ETag' | null;
  /** The hub's `X-Linked-Size` (the LFS file's size), or null. */
  linkedSize: number | null;
}

/**
 * Reads the hub's integrity headers: for an LFS file, `X-Linked-Etag` (on the resolve response)
 * or the `ETag` (on the response it redirects to) is the file's sha256, and `X-Linked-Size` its
 * size. An ETag is only trusted as a sha256 when it is 64 hex digits and the body is not
 * content-encoded (an encoded body's tag describes the encoded bytes).
 */
export function announcedFile(headers: Headers): AnnouncedFile {
  const linked = sha256FromEtag(headers.get('x-linked-etag'));
  const enc = headers.get('content-encoding');
  const etag = !enc || enc === 'identity' ? sha256FromEtag(headers.get('etag')) : null;
  const size = Number(headers.get('x-linked-size') ?? NaN);
  return {
    sha256: linked ?? etag,
    sha256From: linked ? 'X-Linked-Etag' : etag ? 'ETag' : null,
    linkedSize: Number.isSafeInteger(size) && size >= 0 ? size : null,
  };
}
