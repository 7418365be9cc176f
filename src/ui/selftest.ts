import type { SelfTestMessage, SelfTestRequest } from '../selftest/runner.ts';

const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(3));

/**
 * Mounts the kernel page into `root`: the WebGPU adapter report, the kernel self-test (every case
 * of the test suite against its CPU reference) and the kernel benchmark (the suites' model-size
 * cases: median ms, GFLOP/s, GB/s and the fraction of the adapter's own copy bandwidth), both run
 * in a module Worker on this browser's adapter. The self-test starts on load; URL parameters:
 * `?suites=rope,linear` limits either to those suites, `?bench=1` starts the benchmark instead.
 */
export function mountSelfTest(root: HTMLElement): void {
  root.innerHTML = `
    <h2>WebGPU adapter</h2><pre class="adapter">checking…</pre>
    <h2>Kernels <button class="run">Self-test</button> <button class="bench">Benchmark</button></h2>
    <p class="summary"></p><p class="copy hint"></p>
    <table class="results"><thead></thead><tbody></tbody></table>`;
  const adapterEl = root.querySelector('.adapter') as HTMLElement;
  const summary = root.querySelector('.summary') as HTMLElement;
  const copyEl = root.querySelector('.copy') as HTMLElement;
  const thead = root.querySelector('thead') as HTMLElement;
  const tbody = root.querySelector('tbody') as HTMLElement;
  const runBtn = root.querySelector('.run') as HTMLButtonElement;
  const benchBtn = root.querySelector('.bench') as HTMLButtonElement;
  const params = new URLSearchParams(location.search);
  const suites = params.get('suites');
  const row = (cls: string, cells: string[]) => {
    const tr = document.createElement('tr');
    tr.className = cls;
    for (const v of cells) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  };
  const start = (mode: 'test' | 'bench') => {
    runBtn.disabled = benchBtn.disabled = true;
    tbody.textContent = '';
    copyEl.textContent = '';
    thead.innerHTML = mode === 'test'
      ? '<tr><th>suite</th><th>case</th><th>result</th><th>ms</th></tr>'
      : '<tr><th>suite</th><th>case</th><th>median ms</th><th>GFLOP/s</th><th>GB/s</th><th>of copy BW</th><th>runs</th></tr>';
    summary.textContent = mode === 'test' ? 'running…' : 'benchmarking…';
    delete summary.dataset.state;
    summary.dataset.mode = mode;
    const worker = new Worker(new URL('../../workers/selftest_worker.ts', import.meta.url), { type: 'module' });
    const finish = () => {
      runBtn.disabled = benchBtn.disabled = false;
      worker.terminate();
    };
    worker.onmessage = (e: MessageEvent<SelfTestMessage>) => {
      const m = e.data;
      if (m.type === 'adapter') {
        const a = m.adapter;
        adapterEl.textContent = `${a.vendor} ${a.architecture} ${a.device} ${a.description}${a.isFallbackAdapter ? ' (fallback/software adapter)' : ''}\nfeatures: ${a.features.join(', ')}\n${Object.entries(a.limits).map(([k, v]) => `${k}: ${v}`).join('\n')}`;
      } else if (m.type === 'result') {
        row(m.ok ? 'ok' : 'fail', [m.suite, m.name, m.ok ? 'pass' : `FAIL: ${m.message}`, m.ms.toFixed(1)]);
      } else if (m.type === 'copy') {
        copyEl.textContent = `adapter copy bandwidth ${fmt(m.copy.gbps)} GB/s (copyBufferToBuffer of ${m.copy.bytes / 2 ** 20} MiB, read + write bytes); kernel times from ${m.timing === 'gpu-timestamp' ? 'GPU timestamps' : 'wall clock (no timestamp-query)'}`;
      } else if (m.type === 'bench') {
        const r = m.result;
        if (r.status === 'ok' && r.timing) {
          row('ok', [r.suite, r.name, fmt(r.timing.medianMs), fmt(r.gflops!), fmt(r.gbps!), `${(100 * r.fractionOfCopy!).toFixed(1)}%`, String(r.timing.runs)]);
        } else {
          row('fail', [r.suite, r.name, `${r.status === 'check-failed' ? 'CHECK FAILED' : 'ERROR'}: ${r.error ?? ''}`, '', '', '', '']);
        }
      } else if (m.type === 'done') {
        summary.textContent = mode === 'test' ? `${m.passed} passed, ${m.failed} failed` : `${m.passed} benchmarked, ${m.failed} failed`;
        summary.dataset.state = m.failed ? 'fail' : 'pass';
        finish();
      } else {
        adapterEl.textContent = m.message;
        summary.textContent = mode === 'test' ? 'self-test could not run' : 'benchmark could not run';
        summary.dataset.state = 'error';
        finish();
      }
    };
    worker.onerror = (e) => {
      adapterEl.textContent = `the kernel worker failed to start: ${e.message}`;
      summary.textContent = 'could not run';
      summary.dataset.state = 'error';
      finish();
    };
    const req: SelfTestRequest = { type: 'run', mode, suites: suites ? suites.split(',').map((x) => x.trim()).filter(Boolean) : undefined };
    worker.postMessage(req); // the worker starts on its first message
  };
  runBtn.onclick = () => start('test');
  benchBtn.onclick = () => start('bench');
  if (!('gpu' in navigator)) {
    adapterEl.textContent = 'WebGPU is not available in this browser (no navigator.gpu). Use Chrome/Edge 113+ or enable WebGPU.';
    runBtn.disabled = benchBtn.disabled = true;
    return;
  }
  start(params.get('bench') === '1' ? 'bench' : 'test');
}
