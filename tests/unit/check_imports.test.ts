// scripts/check_imports.mjs (run first by `npm test`): on small synthetic trees it must flag an
// upward import, a cycle, app code reaching into tests/, a page importing Worker code; and it must pass
// this repository as it stands.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = join(ROOT, 'scripts/check_imports.mjs');
const made: string[] = [];

/** Writes `files` (path → source) into a fresh directory and runs the check over it. */
function check(files: Record<string, string>): { status: number | null; out: string } {
  const root = mkdtempSync(join(tmpdir(), 'check-imports-'));
  made.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  const r = spawnSync(process.execPath, [SCRIPT, '--root', root], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('check_imports', () => {
  it('passes imports that point down (type-only and multi-line ones included)', () => {
    const r = check({
      'src/gpu/tensor.ts': 'export const T = 1;\n',
      'src/kernels/linear.ts': "import {\n  T,\n} from '../gpu/tensor.ts';\nexport const L = T;\n",
      'src/models/lm.ts': "import type { T } from '../gpu/tensor.ts';\nimport { L } from '../kernels/linear.ts';\nexport const M = L;\n",
      'tests/unit/lm.test.ts': "import { M } from '../../src/models/lm.ts';\nconsole.log(M);\n",
    });
    expect(r.out).toContain('every import points down');
    expect(r.status).toBe(0);
  });

  it('flags an upward import with the file, the import and the rule', () => {
    const r = check({
      'src/gpu/tensor.ts': "import type { LmConfig } from '../models/lm_config.ts';\nexport type X = LmConfig;\n",
      'src/models/lm_config.ts': 'export interface LmConfig { dim: number }\n',
    });
    expect(r.status).toBe(1);
    expect(r.out).toContain('src/gpu/tensor.ts:1 → ../models/lm_config.ts');
    expect(r.out).toContain('gpu may import nothing (and itself), not models');
  });

  it('flags app code importing tests/ or bench/, and dev-only packages in src/', () => {
    const r = check({
      'workers/selftest_worker.ts': "import { runCase } from '../tests/harness/kernel_case.ts';\nimport { t } from '../bench/timing.ts';\nconsole.log(runCase, t);\n",
      'src/engine/x.ts': "import { it } from 'vitest';\nconsole.log(it);\n",
      'tests/harness/kernel_case.ts': 'export const runCase = 1;\n',
      'bench/timing.ts': 'export const t = 1;\n',
    });
    expect(r.status).toBe(1);
    expect(r.out).toContain('workers/selftest_worker.ts:1 → ../tests/harness/kernel_case.ts  [src/ and workers/ must never import tests/ or bench/');
    expect(r.out).toContain('workers/selftest_worker.ts:2 → ../bench/timing.ts');
    expect(r.out).toContain('src/engine/x.ts:1 → vitest  [engine must not use the dev-only package vitest]');
  });

  it('flags files importing each other in a circle, even inside one layer', () => {
    const r = check({
      'bench/peer/a.ts': "import { b } from './b.ts';\nexport const a = () => b;\n",
      'bench/peer/b.ts': "import { a } from './a.ts';\nexport const b = () => a;\n",
    });
    expect(r.status).toBe(1);
    expect(r.out).toContain('bench/peer/a.ts:1 → ./b.ts  [import cycle: bench/peer/a.ts ↔ bench/peer/b.ts]');
    expect(r.out).toContain('bench/peer/b.ts:1 → ./a.ts');
  });

  it('lets a page start a Worker by URL but not import its code', () => {
    const ok = check({
      'src/ui/page.ts': "export const w = () => new Worker(new URL('../../workers/engine_worker.ts', import.meta.url));\n",
      'workers/engine_worker.ts': 'export {};\n',
    });
    expect(ok.status).toBe(0);
    const bad = check({
      'src/ui/page.ts': "import type { Msg } from '../../workers/engine_worker.ts';\nexport type M = Msg;\n",
      'workers/engine_worker.ts': 'export type Msg = 1;\n',
    });
    expect(bad.status).toBe(1);
    expect(bad.out).toContain('src/ui/page.ts:1 → ../../workers/engine_worker.ts  [ui may reference workers/ entry points only as URLs');
  });

  it('allows the Recorder its type-only back-reference to GpuContext, and nothing more', () => {
    const files = (recorderImport: string) => ({
      'src/gpu/context.ts': "import { Recorder } from './recorder.ts';\nexport class GpuContext { record() { return new Recorder(); } }\n",
      'src/gpu/recorder.ts': `${recorderImport}\nexport class Recorder { ctx?: GpuContext; }\n`,
    });
    expect(check(files("import type { GpuContext } from './context.ts';")).status).toBe(0);
    const r = check(files("import { GpuContext } from './context.ts';"));
    expect(r.status).toBe(1);
    expect(r.out).toContain('import cycle: src/gpu/context.ts ↔ src/gpu/recorder.ts');
  });

  it('passes this repository', () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toContain('every import points down');
    expect(r.status).toBe(0);
  });
});
