/**
 * Progressive-web-app hooks: the manifest link and the service worker (workers/sw.ts, built into
 * sw.js by vite-plugin-pwa: Workbox precaching of every build file), registered through
 * workbox-window. When a new version's worker has installed and waits, `onUpdate` is called with
 * a function that activates it and reloads the page. Model weights are cached separately
 * (src/weights/cache.ts).
 */
import { Workbox } from 'workbox-window';

export interface PwaOptions {
  /** Register in development too (default false: the Vite dev server has no sw.js). */
  inDev?: boolean;
  /** Service worker URL (default `${BASE_URL}sw.js`). */
  url?: string;
  /** A new version is installed and waiting: `reload()` activates it and reloads the page. */
  onUpdate?: (reload: () => void) => void;
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
 * Registers the service worker. Never throws: resolves with why it did not register (no
 * serviceWorker support, insecure context, development server, or the registration error).
 */
export async function registerServiceWorker(opts: PwaOptions = {}): Promise<PwaStatus> {
  if (typeof navigator === 'undefined' || !('serviceWorker' in navigator)) return { registered: false, reason: 'service workers are unsupported here' };
  if (typeof isSecureContext !== 'undefined' && !isSecureContext) return { registered: false, reason: 'not a secure context (https or localhost needed)' };
  if (import.meta.env?.DEV && !opts.inDev) return { registered: false, reason: 'development server (pass inDev: true to register anyway)' };
  try {
    const wb = new Workbox(opts.url ?? `${baseUrl()}sw.js`, { scope: baseUrl() });
    wb.addEventListener('waiting', () => {
      opts.onUpdate?.(() => {
        // The new worker takes control, then the page reloads into the new version.
        wb.addEventListener('controlling', () => location.reload());
        wb.messageSkipWaiting();
      });
    });
    const reg = await wb.register();
    if (!reg) return { registered: false, reason: 'registration failed' };
    return { registered: true, scope: reg.scope };
  } catch (e) {
    return { registered: false, reason: `registration failed: ${(e as Error)?.message ?? e}` };
  }
}

/** Manifest link + service worker, in one call for a page. */
export function registerPwa(opts: PwaOptions = {}): Promise<PwaStatus> {
  if (typeof document !== 'undefined') ensureManifestLink(document);
  return registerServiceWorker(opts);
}
