/**
 * The page's cache manager: the model files this browser keeps (the offline cache,
 * src/weights/cache.ts) and the unfinished downloads waiting to resume (src/weights/parts.ts),
 * each with its model, size and date and a Delete button; "Clear all" (asks once more); and the
 * site's storage usage of quota (navigator.storage.estimate), refreshed after every change.
 * The engine Worker writes the same storage (same origin): the page calls `refresh()` after a Load.
 */
import { type CachedFile, type WeightCache, cachedFiles, defaultWeightCache } from '../weights/cache.ts';
import { fileNameOf } from '../weights/hub.ts';
import { type PartStore, type PartialMeta, defaultPartStore } from '../weights/parts.ts';
import { bytesText } from './load_progress.ts';
import './cache_manager.css';

/** One row of the list. */
export interface CacheRow {
  key: string;
  file: string;
  /** The model it belongs to: `repo@revision` for hub URLs, else the URL's host and folder. */
  model: string;
  /** Bytes stored. */
  bytes: number;
  /** 'cached': a complete, verified file; 'partial': an unfinished download (`total` bytes in all). */
  kind: 'cached' | 'partial';
  total: number;
  /** When it was stored (ms since the epoch), or null when not recorded. */
  at: number | null;
}

export interface CacheManager {
  /** Lists the cache and the unfinished downloads again, and the storage estimate. */
  refresh(): Promise<void>;
  /** The rows shown now (for tests and automation). */
  readonly rows: readonly CacheRow[];
}

/** The model a cached URL belongs to: `org/name@rev` for hub resolve URLs, else host + folder. */
export function modelOfUrl(url: string): string {
  try {
    const u = new URL(url);
    const m = /^\/(.+)\/resolve\/([^/]+)\/.+$/.exec(decodeURIComponent(u.pathname));
    if (m) return `${m[1]}@${m[2]}`;
    const dir = decodeURIComponent(u.pathname).replace(/\/[^/]*$/, '');
    return `${u.host}${dir}`;
  } catch {
    return url;
  }
}

const rowOfCached = (f: CachedFile): CacheRow => ({ key: f.key, file: fileNameOf(f.key), model: modelOfUrl(f.key), bytes: f.size, kind: 'cached', total: f.size, at: f.storedAt ?? null });
const rowOfPartial = (m: PartialMeta): CacheRow => ({ key: m.key, file: fileNameOf(m.key), model: modelOfUrl(m.key), bytes: m.bytes, kind: 'partial', total: m.total, at: m.updatedAt });

/**
 * Mounts the manager into `root` (emptied). `storageLine`: where the usage/quota sentence goes.
 * Failures of the storage (a backend that cannot be read) are shown in the manager, not thrown.
 */
export function mountCacheManager(
  root: HTMLElement,
  opts: { cache?: WeightCache; parts?: PartStore; storageLine?: HTMLElement | null } = {},
): CacheManager {
  const cache = opts.cache ?? defaultWeightCache();
  const parts = opts.parts ?? defaultPartStore();
  root.innerHTML = `
<details class="cache-manager-box">
  <summary>Stored models <span class="cache-summary"></span></summary>
  <table class="cache-list">
    <thead><tr><th>file</th><th>model</th><th>size</th><th>stored</th><th></th></tr></thead>
    <tbody></tbody>
  </table>
  <p class="hint cache-empty" hidden>Nothing stored: models are downloaded again at the next Load.</p>
  <p class="hint cache-error" hidden></p>
  <div class="row"><button class="cache-clear">Clear all</button><button class="cache-refresh">Refresh</button></div>
</details>`;
  const q = <T extends HTMLElement>(sel: string) => root.querySelector(sel) as T;
  const tbody = q<HTMLTableSectionElement>('tbody');
  const summary = q('.cache-summary');
  const empty = q('.cache-empty');
  const errorLine = q('.cache-error');
  const clearBtn = q<HTMLButtonElement>('.cache-clear');
  const state = { rows: [] as CacheRow[] };

  const showStorage = async () => {
    const line = opts.storageLine;
    if (!line || typeof navigator === 'undefined' || !navigator.storage?.estimate) return;
    const [{ usage = 0, quota = 0 }, persisted] = await Promise.all([navigator.storage.estimate(), navigator.storage.persisted?.() ?? Promise.resolve(false)]);
    const gb = (n: number) => (n < 1e9 ? `${(n / 1e6).toFixed(0)} MB` : `${(n / 1e9).toFixed(1)} GB`);
    line.textContent = `Storage: ${gb(usage)} used of ${gb(quota)} for this site; ${persisted ? 'persistent (the browser keeps it)' : 'the browser may clear it when space runs low'}.`;
  };

  const render = () => {
    tbody.replaceChildren();
    for (const r of state.rows) {
      const tr = document.createElement('tr');
      tr.dataset.key = r.key;
      tr.dataset.kind = r.kind;
      const cell = (text: string, cls: string, title?: string) => {
        const td = document.createElement('td');
        td.className = cls;
        td.textContent = text;
        if (title) td.title = title;
        tr.append(td);
      };
      cell(r.file, 'file', r.key);
      cell(r.model, 'model');
      cell(r.kind === 'cached' ? bytesText(r.bytes) : `${bytesText(r.bytes)} of ${bytesText(r.total)} (unfinished: resumes at the next Load)`, 'size', `${r.bytes} bytes`);
      cell(r.at === null ? '–' : new Date(r.at).toLocaleString(), 'date');
      const td = document.createElement('td');
      const del = document.createElement('button');
      del.className = 'cache-delete';
      del.textContent = 'Delete';
      del.setAttribute('aria-label', `Delete ${r.file} (${r.model})`);
      del.onclick = () => void act(async () => {
        if (r.kind === 'cached') await cache.delete(r.key);
        else await parts.delete(r.key);
      });
      td.append(del);
      tr.append(td);
      tbody.append(tr);
    }
    const bytes = state.rows.reduce((n, r) => n + r.bytes, 0);
    const models = new Set(state.rows.map((r) => r.model)).size;
    summary.textContent = state.rows.length ? `(${models} model${models === 1 ? '' : 's'}, ${state.rows.length} file${state.rows.length === 1 ? '' : 's'}, ${bytesText(bytes)})` : '(none)';
    empty.hidden = state.rows.length > 0;
    q('.cache-list').hidden = state.rows.length === 0;
    clearBtn.disabled = state.rows.length === 0;
  };

  const refresh = async () => {
    errorLine.hidden = true;
    const rows: CacheRow[] = [];
    try {
      rows.push(...(await cachedFiles(cache)).map(rowOfCached));
    } catch (e) {
      errorLine.hidden = false;
      errorLine.textContent = `The offline cache (${cache.kind}) could not be read: ${(e as Error)?.message ?? e}`;
    }
    try {
      rows.push(...(await parts.list()).map(rowOfPartial));
    } catch (e) {
      errorLine.hidden = false;
      errorLine.textContent = `Unfinished downloads (${parts.kind}) could not be read: ${(e as Error)?.message ?? e}`;
    }
    rows.sort((a, b) => a.model.localeCompare(b.model) || a.file.localeCompare(b.file));
    state.rows = rows;
    render();
    await showStorage().catch(() => undefined);
  };

  /** Runs a change, then lists again (also when the change failed: the list shows what is left). */
  const act = async (change: () => Promise<unknown>) => {
    try {
      await change();
    } catch (e) {
      errorLine.hidden = false;
      errorLine.textContent = `Could not delete: ${(e as Error)?.message ?? e}`;
      await refresh();
      errorLine.hidden = false;
      return;
    }
    await refresh();
  };

  // Clear all asks once more: the first click arms it for 5 s.
  let armed: ReturnType<typeof setTimeout> | null = null;
  clearBtn.onclick = () => {
    if (!armed) {
      clearBtn.textContent = 'Really delete all stored models?';
      armed = setTimeout(() => {
        armed = null;
        clearBtn.textContent = 'Clear all';
      }, 5000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    clearBtn.textContent = 'Clear all';
    void act(async () => {
      await cache.clear();
      await parts.clear();
    });
  };
  q<HTMLButtonElement>('.cache-refresh').onclick = () => void refresh();
  void refresh();
  return {
    refresh,
    get rows() {
      return state.rows;
    },
  };
}
