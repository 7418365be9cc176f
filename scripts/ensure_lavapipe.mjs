#!/usr/bin/env node
// Makes sure Mesa 25's lavapipe Vulkan driver (a second software adapter for Node's Dawn: shader-f16,
// subgroups of 8) is unpacked in <repo>/.cache/lavapipe/. Debian 12's own mesa-vulkan-drivers
// (22.3) gives Dawn no adapter, so the package comes from bookworm-backports. It is NOT installed
// system-wide (that would upgrade the system's Mesa and could change which adapter Chromium
// picks): apt-get downloads the .deb through a private sources list and list directory under
// .cache/lavapipe/apt (the system's apt state stays as it was), dpkg -x unpacks it, and the ICD
// JSON written beside it names the unpacked .so by absolute path. Shared libraries the driver
// needs that the system lacks (libLLVM-15, xcb, wayland...) are installed from the machine's own
// suites with apt-get.
//
// Usage: node scripts/ensure_lavapipe.mjs [--optional]   (ensure_chromium.mjs calls ensureLavapipe())
// Prints the ICD path on success. Without root/apt-get, or when the download fails, it says why;
// the tests then skip their lavapipe pass with that reason (tests/harness/adapters.ts).
import { execFileSync, execSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const LAVAPIPE_DIR = join(ROOT, '.cache', 'lavapipe');
/** The ICD JSON the tests point VK_ICD_FILENAMES at. */
export const LAVAPIPE_ICD = join(LAVAPIPE_DIR, 'lvp_icd.json');
const LIB = join(LAVAPIPE_DIR, 'root', 'usr', 'lib', 'x86_64-linux-gnu', 'libvulkan_lvp.so');
/** Why the last ensure failed (written for the tests' skip message). */
export const LAVAPIPE_FAILURE = join(LAVAPIPE_DIR, 'FAILED.txt');
const MIN_MAJOR = 25;

const log = (m) => console.log(`[solacelive] lavapipe: ${m}`);

/** Shared libraries of the unpacked driver that the dynamic linker cannot find. */
function missingLibs() {
  const out = execFileSync('ldd', [LIB], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes('not found')).map((l) => l.trim().split(/\s+/)[0]);
}

function ready() {
  if (!existsSync(LAVAPIPE_ICD) || !existsSync(LIB)) return false;
  try {
    return JSON.parse(readFileSync(LAVAPIPE_ICD, 'utf8')).ICD.library_path === LIB && missingLibs().length === 0;
  } catch {
    return false;
  }
}

/**
 * The machine's Debian suites as deb822 stanzas with `-backports` added to the main archive's
 * stanza (same URIs, components and keyring): read from /etc/apt/sources.list.d/*.sources or the
 * one-line format of /etc/apt/sources.list. Throws when no Debian main archive entry is found.
 */
export function backportsSources() {
  const stanzas = [];
  const d = '/etc/apt/sources.list.d';
  const files = existsSync(d) ? readdirSync(d).filter((f) => f.endsWith('.sources')).map((f) => join(d, f)) : [];
  for (const f of files) {
    for (const block of readFileSync(f, 'utf8').split(/\n\s*\n/)) {
      const field = (k) => block.match(new RegExp(`^${k}:\\s*(.+)$`, 'mi'))?.[1].trim();
      const uris = field('URIs');
      const suites = field('Suites');
      if (!uris || !suites || /^\s*Enabled:\s*no/im.test(block)) continue;
      const codename = suites.split(/\s+/).find((s) => /^[a-z]+$/.test(s));
      if (!codename || !/\/debian\/?$/.test(uris.split(/\s+/)[0])) continue;
      const keyring = field('Signed-By');
      stanzas.push({ uris, codename, components: field('Components') ?? 'main', keyring });
    }
  }
  if (stanzas.length === 0 && existsSync('/etc/apt/sources.list')) {
    for (const line of readFileSync('/etc/apt/sources.list', 'utf8').split('\n')) {
      const m = line.match(/^\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+([a-z]+)\s+(.+)$/);
      if (!m || !/\/debian\/?$/.test(m[2])) continue;
      const keyring = m[1]?.match(/signed-by=(\S+?)\]?(\s|$)/)?.[1];
      stanzas.push({ uris: m[2], codename: m[3], components: m[4].trim(), keyring });
    }
  }
  if (stanzas.length === 0) throw new Error('no Debian archive entry (URIs ending in /debian) in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list');
  const s = stanzas[0];
  return {
    codename: s.codename,
    text: [
      'Types: deb',
      `URIs: ${s.uris}`,
      `Suites: ${s.codename} ${s.codename}-backports`,
      `Components: ${s.components}`,
      ...(s.keyring ? [`Signed-By: ${s.keyring}`] : []),
      '',
    ].join('\n'),
  };
}

/** Downloads and unpacks the backports driver; throws with apt's own message on failure. */
function install() {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = join(LAVAPIPE_DIR, 'apt');
  rmSync(apt, { recursive: true, force: true });
  for (const p of ['parts', 'lists/partial', 'archives/partial', 'dl']) mkdirSync(join(apt, p), { recursive: true });
  const { codename, text } = backportsSources();
  writeFileSync(join(apt, 'parts', 'debian.sources'), text);
  const o = [
    '-o', 'Dir::Etc::SourceList=/dev/null', '-o', `Dir::Etc::SourceParts=${join(apt, 'parts')}`,
    '-o', `Dir::State::Lists=${join(apt, 'lists')}`, '-o', `Dir::Cache::Archives=${join(apt, 'archives')}`,
    '-o', 'APT::Sandbox::User=root',
  ];
  const run = (args, cwd) => execFileSync('apt-get', [...o, ...args], { cwd, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  log(`downloading mesa-vulkan-drivers from ${codename}-backports (private apt lists under .cache/lavapipe/apt)`);
  run(['update', '-qq']);
  run(['download', `mesa-vulkan-drivers/${codename}-backports`], join(apt, 'dl'));
  const deb = readdirSync(join(apt, 'dl')).find((f) => f.startsWith('mesa-vulkan-drivers_') && f.endsWith('.deb'));
  if (!deb) throw new Error('apt-get download left no mesa-vulkan-drivers .deb');
  const version = deb.split('_')[1];
  if (Number.parseInt(version, 10) < MIN_MAJOR) throw new Error(`${codename}-backports has mesa-vulkan-drivers ${version}, Dawn needs Mesa >= ${MIN_MAJOR}`);
  rmSync(join(LAVAPIPE_DIR, 'root'), { recursive: true, force: true });
  execFileSync('dpkg', ['-x', join(apt, 'dl', deb), join(LAVAPIPE_DIR, 'root')]);
  const icd = JSON.parse(readFileSync(join(LAVAPIPE_DIR, 'root', 'usr', 'share', 'vulkan', 'icd.d', 'lvp_icd.json'), 'utf8'));
  icd.ICD.library_path = LIB;
  const missing = missingLibs();
  if (missing.length) {
    // The driver's runtime libraries, from the machine's own (non-backports) suites.
    const deps = execFileSync('dpkg-deb', ['-f', join(apt, 'dl', deb), 'Depends'], { encoding: 'utf8' })
      .split(',').map((d) => d.trim().split(/\s+/)[0]).filter((d) => d && d !== 'libc6');
    log(`the system lacks ${missing.join(', ')}: apt-get install ${deps.join(' ')}`);
    execSync('apt-get update -qq', { stdio: 'inherit', env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...deps], { stdio: 'inherit', env });
    const still = missingLibs();
    if (still.length) throw new Error(`libvulkan_lvp.so still misses ${still.join(', ')} after installing its dependencies`);
  }
  writeFileSync(LAVAPIPE_ICD, `${JSON.stringify(icd, null, 2)}\n`);
  rmSync(apt, { recursive: true, force: true });
  log(`mesa-vulkan-drivers ${version} unpacked; ICD ${LAVAPIPE_ICD}`);
}

/**
 * Returns { icd } when lavapipe is ready (installing it as root with apt-get if needed), else
 * { icd: null, reason } and records the reason in .cache/lavapipe/FAILED.txt.
 */
export function ensureLavapipe() {
  if (ready()) return { icd: LAVAPIPE_ICD };
  mkdirSync(LAVAPIPE_DIR, { recursive: true });
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  let reason;
  if (process.arch !== 'x64') reason = `the Debian package is amd64 and this machine is ${process.arch}`;
  else if (!isRoot || !existsSync('/usr/bin/apt-get')) reason = 'not root with apt-get, so Mesa 25 lavapipe cannot be fetched from bookworm-backports (run `sudo node scripts/ensure_lavapipe.mjs`, or set LAVAPIPE_ICD to a Mesa >= 25 lvp_icd.json)';
  else {
    try {
      install();
      if (ready()) {
        rmSync(LAVAPIPE_FAILURE, { force: true });
        return { icd: LAVAPIPE_ICD };
      }
      reason = 'the unpacked driver did not pass its check (ICD JSON or libraries)';
    } catch (e) {
      const err = /** @type {{ stderr?: string, message: string }} */ (e);
      reason = `${err.message.split('\n')[0]}${err.stderr ? `\n${String(err.stderr).trim()}` : ''}`;
    }
  }
  writeFileSync(LAVAPIPE_FAILURE, `${reason}\n`);
  return { icd: null, reason };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = ensureLavapipe();
  if (r.icd) console.log(r.icd);
  else {
    console.error(`[solacelive] lavapipe unavailable: ${r.reason}`);
    process.exit(process.argv.includes('--optional') ? 0 : 1);
  }
}
