/**
 * `npm run bench [-- <name> ...] [--flags]`: runs the named benchmarks in order (default
 * `kernels`). A benchmark is a module bench/<name>.ts (a '-' in the name may also be spelled '_'
 * in the file name: `mimi-peer` -> bench/mimi_peer.ts) exporting
 * `export async function run(args: string[]): Promise<void>`; every flag after the names is
 * passed to each of them. An unknown name fails listing the available ones.
 */
import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const BENCH_DIR = import.meta.dirname;
/** Files in bench/ that are helpers, not benchmarks. */
const NOT_BENCHES = new Set(['run', 'common']);

interface BenchModule {
  run(args: string[]): Promise<void>;
}

/** Benchmark names available in bench/ (file names without .ts, '_' shown as '-'). */
export function availableBenches(): string[] {
  return readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => f.slice(0, -3))
    .filter((n) => !NOT_BENCHES.has(n))
    .map((n) => n.replace(/_/g, '-'))
    .sort();
}

/** The module file for `name`, or null. */
function benchFile(name: string): string | null {
  if (!/^[a-z0-9][a-z0-9_-]*$/i.test(name) || NOT_BENCHES.has(name)) return null;
  for (const n of [name, name.replace(/-/g, '_')]) {
    const p = resolve(BENCH_DIR, `${n}.ts`);
    if (existsSync(p)) return p;
  }
  return null;
}

async function main(argv: string[]): Promise<void> {
  const firstFlag = argv.findIndex((a) => a.startsWith('-'));
  const names = firstFlag < 0 ? argv : argv.slice(0, firstFlag);
  const flags = firstFlag < 0 ? [] : argv.slice(firstFlag);
  if (flags.includes('--help') || flags.includes('-h')) {
    console.log(`usage: npm run bench [-- <name> ...] [--flags]\navailable: ${availableBenches().join(', ')} (default: kernels)`);
    return;
  }
  const todo = names.length ? names : ['kernels'];
  const files = todo.map((n) => [n, benchFile(n)] as const);
  const missing = files.filter(([, f]) => !f).map(([n]) => n);
  if (missing.length) {
    throw new Error(`unknown benchmark ${missing.map((n) => `'${n}'`).join(', ')}; available: ${availableBenches().join(', ')}`);
  }
  for (const [name, file] of files) {
    const mod = (await import(pathToFileURL(file as string).href)) as Partial<BenchModule>;
    if (typeof mod.run !== 'function') {
      throw new Error(`bench/${name}: ${file} does not export 'async function run(args: string[])'`);
    }
    console.log(`\n=== bench ${name} ===`);
    await mod.run(flags);
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? `bench failed: ${e.stack ?? e.message}` : e);
    process.exit(1);
  },
);
