/**
 * Shared pieces of the `npm run cli -- <command> ...` tool: the command contract, usage errors
 * (exit code 2) and flag parsing on top of node:util parseArgs. Node only.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Bad command line: the CLI prints the message and the command's usage, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    /** Usage text printed after the message (the command's, or the top-level one). */
    readonly usage = '',
  ) {
    super(message);
  }
}

/** Where a command writes: stdout for results, stderr for notes and progress. */
export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** True with --verbose: commands may print more detail (timings, adapter). */
  verbose: boolean;
}

/**
 * One subcommand. `run` gets the arguments after the command's name; it returns the exit code
 * (0 when it returns nothing), throws UsageError for a bad command line (exit 2) and any other
 * error for a runtime failure (exit 1, the message printed).
 */
export interface CliCommand {
  name: string;
  /** One line for the top-level usage. */
  summary: string;
  /** Full usage text, printed by `<command> --help` and after usage errors. */
  usage: string;
  run(argv: string[], io: CliIO): Promise<number | void>;
}

export type FlagSpec = NonNullable<ParseArgsConfig['options']>;

/**
 * Parses `argv` with node:util parseArgs (strict: unknown flags and missing values are errors).
 * @throws UsageError (with `usage`) for an unknown flag, a flag without its value, or stray positionals when none are allowed
 */
export function parseFlags(argv: string[], options: FlagSpec, usage: string, allowPositionals = false): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals, strict: true });
    return { values: r.values as Record<string, string | boolean | undefined>, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message, usage);
  }
}

/** The string value of a required flag. @throws UsageError naming the flag when it is absent */
export function requireString(values: Record<string, unknown>, name: string, usage: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`missing required flag --${name}`, usage);
  return v;
}

/**
 * An integer flag in [min, max], or `undefined` when absent.
 * @throws UsageError naming the flag when the value is not such an integer
 */
export function optionalInt(values: Record<string, unknown>, name: string, min: number, max: number, usage: string): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got '${String(v)}'`, usage);
  return n;
}

/**
 * A number flag >= 0, or `undefined` when absent.
 * @throws UsageError naming the flag when the value is not a finite number >= 0
 */
export function optionalFloat(values: Record<string, unknown>, name: string, usage: string): number | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number >= 0, got '${String(v)}'`, usage);
  return n;
}

/**
 * The sampling flags shared by `lm generate` and `run` (parseArgs options): temperatures and top-k
 * for audio and text (the official LMGen's temp, temp_text, top_k, top_k_text), the seed, and
 * repeatable `--condition NAME=VALUE`.
 */
export const SAMPLING_FLAGS = {
  temp: { type: 'string' },
  'temp-text': { type: 'string' },
  'top-k': { type: 'string' },
  'top-k-text': { type: 'string' },
  seed: { type: 'string' },
  condition: { type: 'string', multiple: true },
} as const satisfies FlagSpec;

/** The sampling flags as given; an absent flag is `undefined` (each command has its own defaults). */
export interface SamplingFlags {
  temp?: number;
  tempText?: number;
  topK?: number;
  topKText?: number;
  seed?: number;
  /** The raw `NAME=VALUE` strings, in order ([] when none). */
  conditions: string[];
}

/**
 * Reads SAMPLING_FLAGS from parsed `values`: temperatures numbers >= 0, top-k integers in
 * [minTopK, 2^20], seed an integer in [0, 2^31).
 * @throws UsageError (with `usage`) naming the first flag out of range
 */
export function samplingFlags(values: Record<string, unknown>, usage: string, minTopK: number): SamplingFlags {
  return {
    temp: optionalFloat(values, 'temp', usage),
    tempText: optionalFloat(values, 'temp-text', usage),
    topK: optionalInt(values, 'top-k', minTopK, 1 << 20, usage),
    topKText: optionalInt(values, 'top-k-text', minTopK, 1 << 20, usage),
    seed: optionalInt(values, 'seed', 0, 0x7fffffff, usage),
    conditions: (values.condition as unknown as string[] | undefined) ?? [],
  };
}

/** True when argv asks for help (-h / --help anywhere). */
export function wantsHelp(argv: string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}
