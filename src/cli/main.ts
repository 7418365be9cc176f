/**
 * `npm run cli -- <command> [args]`: the SolaceLive command-line tool (Node, WebGPU through Dawn).
 *
 * Exit codes: 0 success, 1 runtime error (the error's message on stderr; the stack too with
 * --verbose), 2 usage error (message + usage on stderr). `--help` (or no command) prints usage.
 *
 * Commands live in their own modules, loaded only when used (so `--help` starts fast). To add
 * one, export a `CliCommand` (src/cli/args.ts) and add one line to COMMANDS below.
 */
import { pathToFileURL } from 'node:url';
import { type CliCommand, type CliIO, UsageError, wantsHelp } from './args.ts';

/** Command name -> one-line summary + loader of its module's CliCommand. One line per command. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<CliCommand> }> = {
  mimi: { summary: 'Mimi codec: encode a WAV to codes, decode codes to audio', load: async () => (await import('./mimi.ts')).mimiCommand },
  run: { summary: 'the real-time engine loop over a WAV file (Mimi + Moshi LM)', load: async () => (await import('./run.ts')).runCommand },
  lm: { summary: 'Moshi LM: generate text + audio tokens from user audio codes (LMGen)', load: async () => (await import('./lm.ts')).lmCommand },
  transcribe: { summary: 'Kyutai speech-to-text: transcribe a WAV (STT model + Mimi), words with times', load: async () => (await import('./transcribe.ts')).transcribeCommand },
  models: { summary: 'the released Moshi models, their sizes and which fit this adapter', load: async () => (await import('./models.ts')).modelsCommand },
};

export function topUsage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(width)}  ${c.summary}`);
  return [
    'usage: npm run cli -- <command> [options]   (global: --verbose, --help)',
    '',
    'commands:',
    ...lines,
    '',
    "Run 'npm run cli -- <command> --help' for a command's options.",
  ].join('\n');
}

function processIO(verbose: boolean): CliIO {
  return {
    stdout: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
    stderr: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
    verbose,
  };
}

/**
 * Runs the CLI on `argv` (the arguments after `main.ts`) and returns the exit code; never throws.
 * `makeIO` lets tests capture output.
 */
export async function main(argv: string[], makeIO: (verbose: boolean) => CliIO = processIO): Promise<number> {
  const verbose = argv.includes('--verbose');
  const args = argv.filter((a) => a !== '--verbose');
  const io = makeIO(verbose);
  const [name, ...rest] = args;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout)(topUsage());
    return name === undefined ? 2 : 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) {
    io.stderr(`error: unknown command '${name}'\n\n${topUsage()}`);
    return 2;
  }
  let cmd: CliCommand | null = null;
  try {
    cmd = await entry.load();
    if (wantsHelp(rest)) {
      io.stdout(cmd.usage);
      return 0;
    }
    const code = await cmd.run(rest, io);
    return code ?? 0;
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`error: ${e.message}${e.usage || cmd ? `\n\n${e.usage || cmd?.usage}` : ''}`);
      return 2;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    io.stderr(verbose && err.stack ? err.stack : `error: ${err.message}`);
    return 1;
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  const code = await main(process.argv.slice(2));
  // Dawn keeps handles open; exit explicitly once stdout/stderr are flushed.
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
