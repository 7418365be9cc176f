/** Messages between the browser test Worker, its page and the Node driver (tests/harness/browser.ts). */
export interface CaseResult {
  suite: string;
  name: string;
  ok: boolean;
  message: string;
  ms: number;
}

export type RunnerMessage =
  | { type: 'adapter'; adapter: unknown }
  | { type: 'result'; result: CaseResult }
  | { type: 'done'; error?: string };

/** A browser suite: runs inside a module Worker with WebGPU and reports each case. */
export type BrowserSuite = (ctx: import('../../src/gpu/index.ts').GpuContext, env: BrowserSuiteEnv) => Promise<void>;

export interface BrowserSuiteEnv {
  /** URL prefix under which ../shared/fixtures is served (vite /@fs/). */
  fixturesUrl: string;
  /** Runs one named case, catching and reporting its failure. */
  test(name: string, fn: () => Promise<void>): Promise<void>;
}
