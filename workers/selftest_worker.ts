/// <reference lib="webworker" />
// The kernel page's module Worker: runs the self-test or benchmark of src/selftest/runner.ts on
// this browser's WebGPU adapter for each SelfTestRequest it receives, posting SelfTestMessages.
import { type SelfTestMessage, type SelfTestRequest, runSelfTest } from '../src/selftest/runner.ts';

const post = (m: SelfTestMessage) => (self as unknown as Worker).postMessage(m);

self.onmessage = (e: MessageEvent<SelfTestRequest>) => runSelfTest(e.data, post);
