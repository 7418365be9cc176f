/**
 * `npm run bench:gpu [-- --probe-only] [--budget-s S] [--software]`: the `kernels`, `lm`
 * (`--format bf16,q8,mlx-q8,q4`), `loop` and (GPU only) `f16` benchmarks in Node on an NVIDIA GPU through the webgpu
 * package's dawn.node and NVIDIA's Vulkan driver, in under 8 minutes, with one summary JSON
 * (bench/results/gpu-<time>.json) beside the three benchmarks' own files.
 *
 * Self-contained: it finds or brings what Dawn needs before any benchmark process starts
 * (LD_LIBRARY_PATH and VK_ICD_FILENAMES only take effect at process start, so each benchmark runs
 * as a child process with them set):
 * - the Vulkan loader libvulkan.so.1: the system's (ldconfig), else a libvulkan1 .deb in .gl/ or
 *   .cache/vulkan/ unpacked into .cache/vulkan/root (no system change; /work/.library/device's
 *   recipe downloads it into .gl/ with `apt-get download libvulkan1`), else, as root with apt-get,
 *   `apt-get download libvulkan1` into .cache/vulkan/;
 * - NVIDIA's Vulkan ICD: VK_DRIVER_FILES / VK_ICD_FILENAMES if set, else nvidia_icd.json under
 *   /usr/local/nvidia/share, /usr/share or /etc (vulkan/icd.d), with /usr/local/nvidia/lib64 (or
 *   lib) added to LD_LIBRARY_PATH when present.
 * Then a probe process asks Dawn for an adapter. If that adapter is not a hardware GPU (no NVIDIA
 * driver, no GPU: this project's usual machines) it falls back to a software adapter (SwiftShader,
 * else Mesa 25 lavapipe from .cache/lavapipe, whose 128 MiB binding limit fails `lm`) and runs
 * shortened benchmarks
 * labelled NOT A GPU everywhere (console banner, summary JSON `gpu: false`, each benchmark's own
 * JSON carries its adapter with isFallbackAdapter): software times are never GPU figures.
 * --software forces that fallback; --probe-only stops after printing the adapter (tested in
 * tests/unit/bench_gpu.test.ts).
 */
import { type SpawnSyncReturns, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { AdapterSummary } from '../src/gpu/index.ts';

const ROOT = resolve(import.meta.dirname, '..');
const RESULTS_DIR = resolve(ROOT, 'bench', 'results');
const TSX = resolve(ROOT, 'node_modules', '.bin', 'tsx');
const LOADER_ARGS = ['--import', './scripts/wgsl_loader.mjs'];
const VULKAN_DIR = resolve(ROOT, '.cache', 'vulkan');
const LAVAPIPE_ICD = process.env.LAVAPIPE_ICD || resolve(ROOT, '.cache', 'lavapipe', 'lvp_icd.json');
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const NVIDIA_ICDS = ['/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json', '/usr/share/vulkan/icd.d/nvidia_icd.json', '/etc/vulkan/icd.d/nvidia_icd.json'];
const NVIDIA_LIBS = ['/usr/local/nvidia/lib64', '/usr/local/nvidia/lib'];
/** Whole-run limit: the task asks for under 8 minutes. */
const DEFAULT_BUDGET_S = 450;
const NOT_A_GPU = 'NOT A GPU';

/** What the probe child reports: the adapter summary without its limits. */
type AdapterProbe = Omit<AdapterSummary, 'limits'>;

interface Env {
  vars: Record<string, string>;
  loader: string;
  icd: string;
}

const say = (m: string) => console.log(`[bench:gpu] ${m}`);

function hasSystemLoader(): boolean {
  try {
    return execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).includes('libvulkan.so.1');
  } catch {
    return false;
  }
}

/** The directory holding libvulkan.so.1 to add to LD_LIBRARY_PATH ('' = the system's), or throws saying what is missing. */
function locateLoader(): { libDir: string; source: string } {
  if (hasSystemLoader()) return { libDir: '', source: 'system (ldconfig)' };
  const unpacked = join(VULKAN_DIR, 'root', 'usr', 'lib', 'x86_64-linux-gnu');
  if (existsSync(join(unpacked, 'libvulkan.so.1'))) return { libDir: unpacked, source: `unpacked ${unpacked}` };
  const debs = [resolve(ROOT, '.gl'), VULKAN_DIR].flatMap((d) => (existsSync(d) ? readdirSync(d).filter((f) => /^libvulkan1_.*\.deb$/.test(f)).map((f) => join(d, f)) : []));
  if (!debs.length && process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    mkdirSync(VULKAN_DIR, { recursive: true });
    say('no Vulkan loader on this machine: apt-get download libvulkan1 into .cache/vulkan/');
    const r = spawnSync('apt-get', ['-o', 'APT::Sandbox::User=root', 'download', 'libvulkan1'], { cwd: VULKAN_DIR, encoding: 'utf8' });
    if (r.status !== 0) say(`apt-get download libvulkan1 failed: ${(r.stderr || '').trim()}`);
    else debs.push(...readdirSync(VULKAN_DIR).filter((f) => /^libvulkan1_.*\.deb$/.test(f)).map((f) => join(VULKAN_DIR, f)));
  }
  if (!debs.length) throw new Error('no Vulkan loader (libvulkan.so.1): install libvulkan1, or put its .deb in .gl/ (apt-get download libvulkan1)');
  execFileSync('dpkg', ['-x', debs[0], join(VULKAN_DIR, 'root')]);
  if (!existsSync(join(unpacked, 'libvulkan.so.1'))) throw new Error(`${debs[0]} holds no usr/lib/x86_64-linux-gnu/libvulkan.so.1`);
  return { libDir: unpacked, source: `${debs[0]} unpacked into ${join(VULKAN_DIR, 'root')}` };
}

function nvidiaIcd(): string | null {
  // A driver named in the environment, unless it is one of the software ones (the tests set SwiftShader).
  const named = process.env.VK_DRIVER_FILES || process.env.VK_ICD_FILENAMES;
  if (named && !/swiftshader|lvp_icd|lavapipe/i.test(named)) return named;
  return NVIDIA_ICDS.find((p) => existsSync(p)) ?? null;
}

function envFor(icd: string, libDir: string, loader: string): Env {
  const libs = [libDir, ...NVIDIA_LIBS.filter((d) => existsSync(d)), process.env.LD_LIBRARY_PATH ?? ''].filter(Boolean);
  return {
    icd,
    loader,
    vars: { VK_ICD_FILENAMES: icd, VK_DRIVER_FILES: icd, LD_LIBRARY_PATH: libs.join(':'), XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || '/tmp' },
  };
}

/** Runs the adapter probe in a child process with `env`; null with the reason when Dawn gives no adapter. */
function probe(env: Env): { adapter: AdapterProbe | null; why: string } {
  const r: SpawnSyncReturns<string> = spawnSync(TSX, [...LOADER_ARGS, 'bench/gpu.ts', '--probe-child'], { cwd: ROOT, env: { ...process.env, ...env.vars }, encoding: 'utf8', timeout: 120_000 });
  const line = (r.stdout || '').split('\n').find((l) => l.startsWith('PROBE '));
  if (line) return { adapter: JSON.parse(line.slice(6)) as AdapterProbe, why: '' };
  return { adapter: null, why: `${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' | ') || `exit ${r.status}`}` };
}

const describe = (a: AdapterProbe) => [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ');
const isGpu = (a: AdapterProbe) => !a.isFallbackAdapter && !/swiftshader|llvmpipe|lavapipe|software/i.test(`${a.architecture} ${a.device} ${a.description}`);

/** Runs `npm run bench -- <name> <flags>` as a child with `env`, killed after `limitS`; echoes its output. */
function runBench(name: string, flags: string[], env: Env, limitS: number): Promise<{ name: string; flags: string[]; status: 'ok' | 'failed' | 'timeout'; wallS: number; resultFiles: string[]; exitCode: number | null }> {
  return new Promise((done) => {
    const t0 = performance.now();
    const child = spawn(TSX, [...LOADER_ARGS, 'bench/run.ts', name, ...flags], { cwd: ROOT, env: { ...process.env, ...env.vars }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
      process.stdout.write(d);
    });
    child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      say(`${name}: over its ${limitS.toFixed(0)} s share of the budget, stopping it`);
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, limitS * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      say(`${name}: could not start (${e.message})`);
      done({ name, flags, status: 'failed', wallS: (performance.now() - t0) / 1000, resultFiles: [], exitCode: null });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const resultFiles = [...out.matchAll(/(\S*bench\/results\/[\w.-]+\.json)/g)].map((m) => m[1]);
      done({ name, flags, status: timedOut ? 'timeout' : code === 0 ? 'ok' : 'failed', wallS: (performance.now() - t0) / 1000, resultFiles, exitCode: code });
    });
  });
}

async function probeChild(): Promise<void> {
  const { createNodeGpuContext } = await import('../src/gpu/node.ts');
  const ctx = await createNodeGpuContext();
  const a = ctx.adapter;
  console.log(`PROBE ${JSON.stringify({ vendor: a.vendor, architecture: a.architecture, device: a.device, description: a.description, isFallbackAdapter: a.isFallbackAdapter, features: a.features })}`);
  ctx.destroy();
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { 'probe-only': { type: 'boolean', default: false }, software: { type: 'boolean', default: false }, 'budget-s': { type: 'string' } },
    strict: true,
  });
  const budgetS = values['budget-s'] ? Number(values['budget-s']) : DEFAULT_BUDGET_S;
  if (!(budgetS > 0)) throw new Error(`--budget-s must be a positive number, got '${values['budget-s']}'`);
  const t0 = performance.now();
  if (!existsSync(TSX)) throw new Error(`${TSX} not found: run npm ci first`);
  const { libDir, source } = locateLoader();
  say(`Vulkan loader: ${source}`);

  let env: Env | null = null;
  let adapter: AdapterProbe | null = null;
  const icd = values.software ? null : nvidiaIcd();
  if (icd) {
    const e = envFor(icd, libDir, source);
    const p = probe(e);
    if (p.adapter && isGpu(p.adapter)) {
      env = e;
      adapter = p.adapter;
    } else say(`NVIDIA ICD ${icd}: ${p.adapter ? `Dawn gave a non-GPU adapter (${describe(p.adapter)})` : `no adapter (${p.why})`}`);
  } else if (!values.software) say(`no NVIDIA Vulkan ICD (VK_DRIVER_FILES / VK_ICD_FILENAMES unset; none of ${NVIDIA_ICDS.join(', ')})`);
  const gpu = env !== null;
  if (!env) {
    // SwiftShader first: lavapipe's 128 MiB maxStorageBufferBindingSize cannot bind the 7B's
    // [22528, 4096] bf16 gating weight that `lm` loads (SwiftShader allows 1 GiB).
    const sw = existsSync(SWIFTSHADER_ICD) ? SWIFTSHADER_ICD : LAVAPIPE_ICD;
    if (!existsSync(sw)) throw new Error(`no GPU and no software Vulkan driver (${LAVAPIPE_ICD}, ${SWIFTSHADER_ICD}): run node scripts/ensure_chromium.mjs`);
    env = envFor(sw, libDir, source);
    const p = probe(env);
    if (!p.adapter) throw new Error(`no adapter from the software driver ${sw}: ${p.why}`);
    adapter = p.adapter;
  }
  const a = adapter as AdapterProbe;
  const label = gpu ? `GPU: ${describe(a)}` : `${NOT_A_GPU}: ${describe(a)} is a software (CPU) Vulkan adapter${a.isFallbackAdapter ? ' (isFallbackAdapter)' : ''}; its times are NOT GPU figures`;
  console.log(`\n[bench:gpu] adapter: ${describe(a)}\n[bench:gpu] ICD: ${env.icd}\n[bench:gpu] ${label}\n`);
  if (values['probe-only']) return;

  // On a GPU the full benchmarks; on a software adapter shortened ones (same code paths, fewer runs).
  const plan: [string, string[], number][] = gpu
    ? [['kernels', [], 0.3], ['lm', ['--format', 'bf16,q8,mlx-q8,q4'], 0.5], ['loop', ['--layer-blocks', 'ab', '--steps', '16'], 0.2], ['f16', [], 0.05]]
    : // Software: one kernel family, the LM's depformer only, 2 loop steps (measured on SwiftShader,
      // 2 shared cores: all kernels > 135 s, lm with the 7B layer in 4 formats > 200 s, loop 104 s).
      [['kernels', ['--filter', 'linear', '--runs', '1', '--budget-ms', '50'], 0.3], ['lm', ['--format', 'bf16,q8,mlx-q8,q4', '--runs', '1', '--skip-layer'], 0.4], ['loop', ['--steps', '2', '--warmup', '1'], 0.3]];
  const benches = [];
  for (let i = 0; i < plan.length; i++) {
    const [name, flags, share] = plan[i];
    const leftS = budgetS - (performance.now() - t0) / 1000;
    const restShare = plan.slice(i).reduce((s, p) => s + p[2], 0);
    const limitS = Math.max(10, (leftS * share) / restShare);
    say(`${name} ${flags.join(' ')} (limit ${limitS.toFixed(0)} s)${gpu ? '' : ` — ${NOT_A_GPU}`}`);
    benches.push(await runBench(name, flags, env, limitS));
  }
  const wallS = (performance.now() - t0) / 1000;
  const results = benches.map((b) => ({ ...b, results: b.resultFiles.filter((f) => existsSync(f)).map((f) => JSON.parse(readFileSync(f, 'utf8')) as unknown) }));
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = resolve(RESULTS_DIR, `gpu-${new Date().toISOString().replace(/:/g, '-')}.json`);
  writeFileSync(path, `${JSON.stringify({ bench: 'gpu', gpu, label, adapter: a, icd: env.icd, vulkanLoader: env.loader, budgetS, wallS, benches: results }, null, 2)}\n`);
  console.log(`\n[bench:gpu] ${label}`);
  for (const b of benches) console.log(`[bench:gpu]   ${b.name}: ${b.status} in ${b.wallS.toFixed(0)} s${b.resultFiles.length ? ` -> ${b.resultFiles.join(', ')}` : ''}`);
  console.log(`[bench:gpu] ${wallS.toFixed(0)} s in all; summary: ${path}`);
  const bad = benches.filter((b) => b.status !== 'ok');
  if (bad.length) throw new Error(`bench:gpu: ${bad.map((b) => `${b.name} ${b.status}`).join(', ')}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  (argv.includes('--probe-child') ? probeChild() : run(argv)).then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(`bench:gpu failed: ${e instanceof Error ? e.message : String(e)}`);
      process.exit(1);
    },
  );
}
