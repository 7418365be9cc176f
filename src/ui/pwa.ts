/**
 * Progressive-web-app hooks: the manifest link and the service worker (public/sw.js), which keeps
 * the app shell available offline. Model weights are cached separately (src/weights/cache.ts).
 */

export interface PwaOptions {
  /** Register in development too (default false: the Vite dev server's modules are not cacheable). */
  inDev?: boolean;
  /** Service worker URL (default `${BASE_URL}sw.js`). */
  url?: string;
}

export type PwaStatus =
  | { registered: true; scope: string }
  | { registered: false; reason: string };

function baseUrl(): string {
  return (import.meta.env?.BASE_URL as string | undefined) ?? '/';
}

/** Adds `<link rel="manifest">` (and theme colour) to the document head when missing. */
export function ensureManifestLink(doc: Document = document): void {
  if (!doc.querySelector('link[rel="manifest"]')) {
    const link = doc.createElement('link');
    link.rel = 'manifest';
    link.href = `${baseUrl()}manifest.webmanifest`;
    doc.head.appendChild(link);
  }
  if (!doc.querySelector('meta[name="theme-color"]')) {
    const meta = doc.createElement('meta');
    meta.name = 'theme-color';
    meta.content = '#0f172a';
    doc.head.appendChild(meta);
  }
}

/**
 * Registers public/sw.js. Never throws: resolves with why it did not register (no
 * serviceWorker support, insecure context, development build, or the registration error).
 */
export async function registerServiceWorker(opts: PwaOptions = {}): Promise<PwaStatus> {
  if (typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return { registered: false, reason: 'service workers are unsupported here' };
  if (typeof isSecureContext !== 'undefined' && !isSecureContext) return { registered: false, reason: 'not a secure context (https or localhost needed)' };
  if (import.meta.env?.DEV && !opts.inDev) return { registered: false, reason: 'development server (pass inDev: true to register anyway)' };
  try {
    const reg = await navigator.serviceWorker.register(opts.url ?? `${baseUrl()}sw.js`, { scope: baseUrl() });
    return { registered: true, scope: reg.scope };
  } catch (e) {
    return { registered: false, reason: `registration failed: ${(e as Error)?.message ?? e}` };
  }
}

/** Manifest link + service worker, in one call for the app page. */
export function registerPwa(opts: PwaOptions = {}): Promise<PwaStatus> {
  if (typeof document !== 'undefined') ensureManifestLink(document);
  return registerServiceWorker(opts);
}
