/**
 * File access of the CLI commands, with errors that name the file and what is wrong with it
 * (missing, a directory, unreadable, not JSON), checked before any model is loaded or any step
 * computed: inputs are read (or opened as Blobs) here, output paths are checked up front so a
 * long run never ends on "no such directory". Node only.
 */
import { openAsBlob } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Most frames a codes file may hold: 2^16 (87 minutes at 12.5 Hz; its decoded audio, 503 MB of
 * f32, still fits one WAV file). Larger claims are refused before anything is allocated.
 */
export const MAX_CODE_FRAMES = 1 << 16;

/** A problem with an input or output file (missing, a directory, unreadable, malformed). Exit code 1; the message names the file. */
export class CliInputError extends Error {
  override name = 'CliInputError';
}

function ioError(e: unknown, what: string, path: string): CliInputError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new CliInputError(`${what} file '${path}' does not exist`);
  if (code === 'EISDIR') return new CliInputError(`${what} '${path}' is a directory, expected a file`);
  if (code === 'EACCES') return new CliInputError(`${what} file '${path}' is not readable (permission denied)`);
  return new CliInputError(`${what} file '${path}' could not be read: ${(e as Error).message}`);
}

/**
 * Reads a whole input file. `what` names its role in messages ('config', 'weights', 'input', ...).
 * @throws CliInputError naming the file: missing, a directory, unreadable
 */
export async function readInputFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw ioError(e, what, path);
  }
}

/**
 * Reads and parses a JSON input file.
 * @throws CliInputError naming the file: missing, a directory, unreadable, or not valid JSON (with the parser's message)
 */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  const bytes = await readInputFile(path, what);
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new CliInputError(`${what} file '${path}' is not valid JSON (${(e as Error).message})`);
  }
}

/**
 * Opens a (large) input file as a Blob without reading it; checks first that it is a regular
 * file (openAsBlob on a directory succeeds and fails only later, with "The blob could not be read").
 * @throws CliInputError naming the file: missing, a directory or other non-file, unreadable
 */
export async function openInputBlob(path: string, what: string): Promise<Blob> {
  try {
    const s = await stat(path);
    if (s.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    if (!s.isFile()) throw new CliInputError(`${what} '${path}' is not a regular file`);
    await access(path, constants.R_OK);
    return await openAsBlob(path);
  } catch (e) {
    if (e instanceof CliInputError) throw e;
    throw ioError(e, what, path);
  }
}

/**
 * Checks that `path` can be written: its folder exists and is a folder, the path itself is not a
 * folder, and the folder is writable. Call before any long computation.
 * @param flag the option that gave the path, for the message (e.g. 'out')
 * @throws CliInputError naming the flag and the path
 */
export async function checkOutputPath(path: string, flag: string): Promise<void> {
  const dir = dirname(resolve(path));
  let s;
  try {
    s = await stat(dir);
  } catch {
    throw new CliInputError(`--${flag} '${path}': the folder '${dir}' does not exist`);
  }
  if (!s.isDirectory()) throw new CliInputError(`--${flag} '${path}': '${dir}' is not a folder`);
  try {
    await access(dir, constants.W_OK);
  } catch {
    throw new CliInputError(`--${flag} '${path}': the folder '${dir}' is not writable`);
  }
  const t = await stat(path).catch(() => null);
  if (t?.isDirectory()) throw new CliInputError(`--${flag} '${path}' is a folder, expected a file name`);
}
