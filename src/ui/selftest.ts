import type { PeerRequest, SelfTestMessage, SelfTestRequest } from '../selftest/runner.ts';
import type { PeerEp, PeerResult } from '../selftest/peer.ts';
import type { CopyBandwidth, KernelBenchResult, PeakCompute } from '../selftest/timing.ts';
import { type RooflinePoint, rooflineSvg } from './roofline.ts';

const fmt = (v: number) => (v === 0 ? '0' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(3));

/** One line per benchmark column, shown under the table. */
const BENCH_COLUMNS: [string, string][] = [
  ['suite', 'kernel family (src/selftest/cases/<suite>.cases.ts); peer rows (↳) are onnxruntime-web on the same shape'],
  ['case', 'the shape at model size; attention cases say how many cached slots one query attends over'],
  ['median ms', 'ours: median time of one recording, GPU timestamps (sum of its dispatches) when the adapter has timestamp-query, else wall time; peer rows: median host-to-host wall time of one session.run'],
  ['GFLOP/s', 'counted floating-point operations (an FMA is 2) ÷ median time: the chart\'s y'],
  ['GB/s', 'bytes the case must move at least (inputs read once, outputs written once) ÷ median time'],
  ['FLOP/B', 'arithmetic intensity, FLOPs ÷ those bytes: the chart\'s x (a peer reads f32 weights, so its bf16 cases sit at half our intensity)'],
  ['of copy BW', 'GB/s ÷ the adapter\'s copyBufferToBuffer bandwidth measured on this page (read + write bytes)'],
  ['runs', 'timed runs behind the median (one warm-up first)'],
  ['ours ÷ peer', 'peer rows: our host-to-host median ms ÷ the peer\'s, timed alternately in this run; below 1 means ours is faster'],
];

/** Everything the benchmark produced, as downloaded (`solacelive-kernels-<time>.json`). */
export interface BenchReport {
  page: string;
  date: string;
  userAgent: string;
  browser: string;
  adapter: unknown;
  timing: 'gpu-timestamp' | 'wall' | null;
  copyBandwidth: CopyBandwidth | null;
  peakCompute: PeakCompute | null;
  peakError: string | null;
  peer: { available: boolean; eps: PeerEp[]; message: string } | null;
  results: KernelBenchResult[];
  peers: PeerResult[];
  summary: string;
}

/** 'Chrome 131.0.6778.85' (or the user agent's last product token). */
function browserName(): string {
  const ua = navigator.userAgent;
  for (const re of [/(Edg)\/([\d.]+)/, /(Firefox)\/([\d.]+)/, /(Chrome|Chromium)\/([\d.]+)/, /Version\/([\d.]+).*(Safari)/]) {
    const m = ua.match(re);
    if (m) return re.source.startsWith('Version') ? `${m[2]} ${m[1]}` : `${m[1] === 'Edg' ? 'Edge' : m[1]} ${m[2]}`;
  }
  return ua.split(' ').pop() ?? ua;
}

const geomean = (v: number[]) => Math.exp(v.reduce((a, b) => a + Math.log(b), 0) / v.length);

/**
 * The one-line share summary: adapter, browser, both roofs (GB/s, GFLOP/s), our best matvec as a
 * fraction of the copy bandwidth and best matmul as a fraction of peak compute, and per peer
 * backend the geometric mean of ours ÷ peer (host-to-host time ratios) over the linear cases.
 */
export function summaryLine(r: Pick<BenchReport, 'adapter' | 'browser' | 'copyBandwidth' | 'peakCompute' | 'results' | 'peers'>): string {
  const a = (r.adapter ?? {}) as { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
  const adapter = [a.vendor, a.architecture, a.description].filter(Boolean).join(' ') || 'unknown adapter';
  const soft = a.isFallbackAdapter || /swiftshader|llvmpipe|lavapipe/i.test(adapter) ? ' (software adapter: CPU figures, not GPU figures)' : '';
  const parts = [`SolaceLive kernels on ${adapter}${soft}, ${r.browser}`];
  if (r.copyBandwidth) parts.push(`copy ${fmt(r.copyBandwidth.gbps)} GB/s`);
  if (r.peakCompute) parts.push(`peak FMA ${fmt(r.peakCompute.gflops)} GFLOP/s`);
  const ok = r.results.filter((x) => x.status === 'ok');
  parts.push(`${ok.length} cases`);
  // Our linear cases against the roofs: matvec (M = 1) is bandwidth-bound, matmul compute-bound.
  const linear = ok.filter((x) => x.suite === 'linear');
  const matvec = linear.filter((x) => / M=1 /.test(x.name)).map((x) => x.fractionOfCopy!);
  const matmul = linear.filter((x) => !/ M=1 /.test(x.name)).map((x) => x.gflops!);
  if (matvec.length) parts.push(`matvec up to ${(100 * Math.max(...matvec)).toFixed(0)}% of copy BW`);
  if (matmul.length && r.peakCompute) parts.push(`matmul up to ${((100 * Math.max(...matmul)) / r.peakCompute.gflops).toFixed(0)}% of peak FMA`);
  for (const ep of ['webgpu', 'wasm'] as const) {
    const ratios = r.peers.filter((p) => p.ep === ep && p.status === 'ok' && p.ratio).map((p) => p.ratio!);
    if (ratios.length) parts.push(`ours÷ORT-${ep} ${fmt(geomean(ratios))} (geomean of ${ratios.length} linear case${ratios.length > 1 ? 's' : ''}, <1 = ours faster)`);
  }
  return parts.join(' · ');
}

/**
 * Mounts the kernel page into `root`: the WebGPU adapter report, the kernel self-test (every case
 * of the test suite against its CPU reference) and the kernel benchmark, both run in a module
 * Worker on this browser's adapter. The benchmark measures the adapter's copy bandwidth (GB/s)
 * and peak FMA compute (GFLOP/s), times the suites' model-size cases (median ms, GFLOP/s, GB/s,
 * FLOP/byte, fraction of copy bandwidth), runs the kernel peer (onnxruntime-web WebGPU and wasm)
 * on the linear cases, plots everything on a roofline, and offers the results as JSON and a
 * one-line summary. The self-test starts on load; URL parameters: `?suites=rope,linear` limits
 * either to those suites, `?bench=1` starts the benchmark instead, `?cases=depformer,mimi` keeps
 * the benchmark cases whose '<suite>: <name>' contains one of the words, `?peer=0` skips the peer
 * (`?peer=wasm` or `webgpu` runs one backend).
 */
export function mountSelfTest(root: HTMLElement): void {
  root.innerHTML = `
    <h2>WebGPU adapter</h2><pre class="adapter">checking…</pre>
    <h2>Kernels <button class="run">Self-test</button> <button class="bench">Benchmark</button></h2>
    <p class="summary"></p><p class="copy hint"></p><p class="peer-status hint"></p>
    <figure class="roofline" hidden><div class="chart"></div><figcaption class="hint"></figcaption></figure>
    <p class="share" hidden><button class="download">Download JSON</button> <button class="copy-summary">Copy summary</button> <code class="share-line"></code></p>
    <table class="results"><thead></thead><tbody></tbody></table>
    <dl class="columns hint" hidden></dl>`;
  const $ = <T extends HTMLElement>(sel: string) => root.querySelector(sel) as T;
  const adapterEl = $('.adapter');
  const summary = $('.summary');
  const copyEl = $('.copy');
  const peerEl = $('.peer-status');
  const figure = $('.roofline');
  const chart = $('.chart');
  const caption = $('figcaption');
  const share = $('.share');
  const shareLine = $('.share-line');
  const columns = $('.columns');
  const thead = $('thead');
  const tbody = $('tbody');
  const runBtn = $<HTMLButtonElement>('.run');
  const benchBtn = $<HTMLButtonElement>('.bench');
  const params = new URLSearchParams(location.search);
  const list = (v: string | null) => (v ? v.split(',').map((x) => x.trim()).filter(Boolean) : undefined);
  const suites = list(params.get('suites'));
  const cases = list(params.get('cases'));
  const peerParam = params.get('peer');
  const eps: PeerEp[] = peerParam === '0' ? [] : peerParam === 'wasm' || peerParam === 'webgpu' ? [peerParam] : ['webgpu', 'wasm'];
  let report: BenchReport | null = null;

  const row = (cls: string, cells: string[], title?: string) => {
    const tr = document.createElement('tr');
    tr.className = cls;
    for (const v of cells) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.appendChild(td);
    }
    if (title) tr.title = title;
    tbody.appendChild(tr);
  };
  const drawChart = (r: BenchReport) => {
    if (!r.copyBandwidth) return;
    const points: RooflinePoint[] = [];
    const off: string[] = [];
    for (const x of r.results) {
      if (x.status !== 'ok') continue;
      if (x.flops! > 0 && x.bytes! > 0) points.push({ side: 'ours', label: `${x.suite}: ${x.name}`, intensity: x.flops! / x.bytes!, gflops: x.gflops! });
      else off.push(`${x.suite}: ${x.name}`);
    }
    for (const p of r.peers) if (p.status === 'ok') points.push({ side: p.ep, label: `${p.suite}: ${p.name}`, intensity: p.flops / p.bytes, gflops: p.gflops! });
    chart.innerHTML = rooflineSvg({ copyGbps: r.copyBandwidth.gbps, peakGflops: r.peakCompute?.gflops ?? null, points });
    figure.hidden = false;
    const roofs = `Roofs measured on this page: copy bandwidth ${fmt(r.copyBandwidth.gbps)} GB/s (copyBufferToBuffer), peak compute ${r.peakCompute ? `${fmt(r.peakCompute.gflops)} GFLOP/s (a dedicated FMA-loop kernel, shaders/peak_fma.wgsl: ${r.peakCompute.threads} threads × ${r.peakCompute.iters} rounds of 16 f32 FMA chains)` : `not measured (${r.peakError ?? 'pending'})`}.`;
    const peers = r.peers.length ? ' Peer points are host-to-host (x in, y out, weights resident) and the wasm peer runs on the CPU, not under these roofs.' : '';
    caption.textContent = `${roofs}${peers}${off.length ? ` Not plotted (no FLOPs, pure data movement): ${off.join('; ')}.` : ''}`;
  };
  const updateShare = (r: BenchReport) => {
    r.summary = summaryLine(r);
    shareLine.textContent = r.summary;
    share.hidden = false;
  };
  $<HTMLButtonElement>('.download').onclick = () => {
    if (!report) return;
    const blob = new Blob([`${JSON.stringify(report, null, 2)}\n`], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `solacelive-kernels-${report.date.replace(/:/g, '-')}.json`;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  };
  $<HTMLButtonElement>('.copy-summary').onclick = async () => {
    if (!report) return;
    try {
      await navigator.clipboard.writeText(report.summary);
      shareLine.dataset.copied = 'yes';
    } catch {
      // No clipboard permission: select the line so the user can copy it by hand.
      const range = document.createRange();
      range.selectNodeContents(shareLine);
      getSelection()?.removeAllRanges();
      getSelection()?.addRange(range);
      shareLine.dataset.copied = 'selected';
    }
  };

  const start = (mode: 'test' | 'bench') => {
    runBtn.disabled = benchBtn.disabled = true;
    tbody.textContent = '';
    copyEl.textContent = '';
    peerEl.textContent = '';
    figure.hidden = share.hidden = columns.hidden = true;
    delete figure.dataset.state;
    thead.innerHTML = mode === 'test'
      ? '<tr><th>suite</th><th>case</th><th>result</th><th>ms</th></tr>'
      : `<tr>${BENCH_COLUMNS.map(([h, d]) => `<th title="${d.replace(/"/g, '&quot;')}">${h}</th>`).join('')}</tr>`;
    columns.innerHTML = BENCH_COLUMNS.map(([h, d]) => `<dt>${h}</dt><dd>${d.replace(/</g, '&lt;')}</dd>`).join('');
    summary.textContent = mode === 'test' ? 'running…' : 'benchmarking…';
    delete summary.dataset.state;
    summary.dataset.mode = mode;
    report = mode === 'bench'
      ? { page: location.href, date: new Date().toISOString(), userAgent: navigator.userAgent, browser: browserName(), adapter: null, timing: null, copyBandwidth: null, peakCompute: null, peakError: null, peer: null, results: [], peers: [], summary: '' }
      : null;
    const worker = new Worker(new URL('../../workers/selftest_worker.ts', import.meta.url), { type: 'module' });
    const finish = () => {
      runBtn.disabled = benchBtn.disabled = false;
      worker.terminate();
    };
    worker.onmessage = (e: MessageEvent<SelfTestMessage>) => {
      const m = e.data;
      if (m.type === 'adapter') {
        const a = m.adapter;
        if (report) report.adapter = a;
        adapterEl.textContent = `${a.vendor} ${a.architecture} ${a.device} ${a.description}${a.isFallbackAdapter ? ' (fallback/software adapter)' : ''}\nfeatures: ${a.features.join(', ')}\n${Object.entries(a.limits).map(([k, v]) => `${k}: ${v}`).join('\n')}`;
      } else if (m.type === 'result') {
        row(m.ok ? 'ok' : 'fail', [m.suite, m.name, m.ok ? 'pass' : `FAIL: ${m.message}`, m.ms.toFixed(1)]);
      } else if (m.type === 'copy') {
        report!.copyBandwidth = m.copy;
        report!.timing = m.timing;
        copyEl.textContent = `adapter copy bandwidth ${fmt(m.copy.gbps)} GB/s (copyBufferToBuffer of ${m.copy.bytes / 2 ** 20} MiB, read + write bytes); kernel times from ${m.timing === 'gpu-timestamp' ? 'GPU timestamps' : 'wall clock (no timestamp-query)'}`;
        columns.hidden = false;
      } else if (m.type === 'peak') {
        report!.peakCompute = m.peak;
        report!.peakError = m.error ?? null;
        copyEl.textContent += m.peak ? `; peak compute ${fmt(m.peak.gflops)} GFLOP/s (FMA-loop kernel)` : `; peak compute not measured: ${m.error}`;
        drawChart(report!);
      } else if (m.type === 'peer-status') {
        report!.peer = { available: m.available, eps: m.eps, message: m.message };
        peerEl.textContent = m.available ? `kernel peer: ${m.message}` : `kernel peer not run: ${m.message}`;
        peerEl.dataset.available = String(m.available);
      } else if (m.type === 'bench') {
        const r = m.result;
        report!.results.push(r);
        if (r.status === 'ok' && r.timing) {
          row('ok', [r.suite, r.name, fmt(r.timing.medianMs), fmt(r.gflops!), fmt(r.gbps!), r.flops! > 0 ? fmt(r.flops! / r.bytes!) : '0', `${(100 * r.fractionOfCopy!).toFixed(1)}%`, String(r.timing.runs), '']);
        } else {
          row('fail', [r.suite, r.name, `${r.status === 'check-failed' ? 'CHECK FAILED' : 'ERROR'}: ${r.error ?? ''}`, '', '', '', '', '', '']);
        }
        drawChart(report!);
      } else if (m.type === 'peer') {
        const p = m.result;
        report!.peers.push(p);
        const who = `↳ onnxruntime-web ${p.ep === 'webgpu' ? 'WebGPU' : 'wasm (CPU)'}`;
        if (p.status === 'ok') {
          const copy = report!.copyBandwidth!.gbps;
          const verdict = `${p.ratio! < 1 ? 'ours faster' : 'peer faster'} (ours ${fmt(p.oursMedianMs!)} ms vs ${fmt(p.peerMedianMs!)} ms)`;
          row('ok peer', [who, p.name, fmt(p.peerMedianMs!), fmt(p.gflops!), fmt(p.gbps!), fmt(p.flops / p.bytes), `${((100 * p.gbps!) / copy).toFixed(1)}%`, String(p.runs), `${p.ratio!.toFixed(2)}: ${verdict}`], p.detail);
        } else {
          row('fail peer', [who, p.name, `${p.status === 'check-failed' ? 'PEER CHECK FAILED' : 'PEER ERROR'}: ${p.error ?? ''}`, '', '', '', '', '', ''], p.detail);
        }
        drawChart(report!);
      } else if (m.type === 'done') {
        summary.textContent = mode === 'test' ? `${m.passed} passed, ${m.failed} failed` : `${m.passed} benchmarked, ${m.failed} failed`;
        if (report) {
          drawChart(report);
          updateShare(report);
          figure.dataset.state = 'done';
        }
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
    // The peer loads onnxruntime-web at run time from the dev server's node_modules (never bundled).
    const dist = new URL('/node_modules/onnxruntime-web/dist/', location.href).href;
    const peer: PeerRequest | undefined = mode === 'bench' && eps.length ? { moduleUrl: `${dist}ort.webgpu.min.mjs`, wasmPaths: dist, eps } : undefined;
    const req: SelfTestRequest = { type: 'run', mode, suites, cases: mode === 'bench' ? cases : undefined, peer };
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
