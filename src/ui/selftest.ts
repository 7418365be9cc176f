import type { SelfTestMessage, SelfTestRequest } from '../../workers/selftest_worker.ts';

/**
 * Mounts the WebGPU adapter report and the kernel self-test (every kernel case of the test suite,
 * run in a module Worker on this browser's adapter) into `root`. `?suites=rope,linear` in the
 * page URL runs only those suites.
 */
export function mountSelfTest(root: HTMLElement): void {
  root.innerHTML = `
    <h2>WebGPU adapter</h2><pre class="adapter">checking…</pre>
    <h2>Kernel self-test <button class="run">Run</button></h2>
    <p class="summary"></p><table class="results"><thead><tr><th>suite</th><th>case</th><th>result</th><th>ms</th></tr></thead><tbody></tbody></table>`;
  const adapterEl = root.querySelector('.adapter') as HTMLElement;
  const summary = root.querySelector('.summary') as HTMLElement;
  const tbody = root.querySelector('tbody') as HTMLElement;
  const button = root.querySelector('.run') as HTMLButtonElement;
  const start = () => {
    button.disabled = true;
    tbody.textContent = '';
    summary.textContent = 'running…';
    const worker = new Worker(new URL('../../workers/selftest_worker.ts', import.meta.url), { type: 'module' });
    worker.onmessage = (e: MessageEvent<SelfTestMessage>) => {
      const m = e.data;
      if (m.type === 'adapter') {
        const a = m.adapter;
        adapterEl.textContent = `${a.vendor} ${a.architecture} ${a.device} ${a.description}${a.isFallbackAdapter ? ' (fallback/software adapter)' : ''}\nfeatures: ${a.features.join(', ')}\n${Object.entries(a.limits).map(([k, v]) => `${k}: ${v}`).join('\n')}`;
      } else if (m.type === 'result') {
        const tr = document.createElement('tr');
        tr.className = m.ok ? 'ok' : 'fail';
        for (const v of [m.suite, m.name, m.ok ? 'pass' : `FAIL: ${m.message}`, m.ms.toFixed(1)]) {
          const td = document.createElement('td');
          td.textContent = v;
          tr.appendChild(td);
        }
        tbody.appendChild(tr);
      } else if (m.type === 'done') {
        summary.textContent = `${m.passed} passed, ${m.failed} failed`;
        summary.dataset.state = m.failed ? 'fail' : 'pass';
        button.disabled = false;
        worker.terminate();
      } else {
        adapterEl.textContent = m.message;
        summary.textContent = 'self-test could not run';
        summary.dataset.state = 'error';
        button.disabled = false;
        worker.terminate();
      }
    };
    worker.onerror = (e) => {
      adapterEl.textContent = `the self-test worker failed to start: ${e.message}`;
      summary.textContent = 'self-test could not run';
      summary.dataset.state = 'error';
      button.disabled = false;
    };
    const suites = new URLSearchParams(location.search).get('suites');
    const req: SelfTestRequest = { type: 'run', suites: suites ? suites.split(',').map((x) => x.trim()).filter(Boolean) : undefined };
    worker.postMessage(req); // the worker starts on its first message
  };
  button.onclick = start;
  if (!('gpu' in navigator)) {
    adapterEl.textContent = 'WebGPU is not available in this browser (no navigator.gpu). Use Chrome/Edge 113+ or enable WebGPU.';
    button.disabled = true;
    return;
  }
  start();
}
