/**
 * A local HTTP server on 127.0.0.1 that serves files the way the Hugging Face hub does, for the
 * resume tests (Node and Chromium): `/<repo>/resolve/main/<file>` answers 302 (through `hops`
 * more redirects) to `/cdn/<sha12>/<file>` with X-Linked-Etag = sha256 and X-Linked-Size; the
 * CDN answers with ETag = "sha256", honours `Range: bytes=N-` and `bytes=N-M` (206 + Content-Range) and
 * `If-Range` (a changed file: 200 with the whole new file). CORS headers on every answer (the
 * page is cross-origin isolated; Range and If-Range are allowed in preflights).
 *
 * Faults are queued per file and consumed one per CDN GET request: a dropped connection after N
 * bytes, a stall after N bytes, Range or If-Range ignored, a flipped byte, a status code.
 * Every request is logged with its Range/If-Range headers, the status, the bytes sent and
 * whether the client went away early.
 */
import { createHash } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';

export type Fault =
  | { kind: 'drop'; after: number } // send `after` bytes of the body, then cut the connection
  | { kind: 'stall'; after: number } // send `after` bytes, then nothing (the connection stays open)
  | { kind: 'ignore-range' } // answer 200 with the whole file although Range was asked for
  | { kind: 'ignore-if-range' } // answer 206 even when If-Range does not match the file
  | { kind: 'flip'; at: number } // flip one bit of the byte at file offset `at` in what is sent
  | { kind: 'status'; status: number }; // answer with this status and no body

export interface HubRequest {
  method: string;
  path: string;
  range: string | null;
  ifRange: string | null;
  status: number;
  /** Body bytes written (for a 206: from the range start). */
  sent: number;
  /** The connection closed before the response finished. */
  closedEarly: boolean;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export class HubServer {
  readonly files = new Map<string, Uint8Array>();
  readonly faults = new Map<string, Fault[]>();
  readonly log: HubRequest[] = [];
  /** Extra redirects between the resolve URL and the CDN. */
  hops = 0;
  /** The CDN's ETag is an opaque version tag (`"v-<8 hex>"`, no sha256), like a plain web server's. */
  opaqueEtag = false;
  private server: Server | null = null;
  base = '';

  /** The resolve URL of `file` in repository `repo` (default 'org/repo'). */
  url(file: string, repo = 'org/repo'): string {
    return `${this.base}/${repo}/resolve/main/${encodeURIComponent(file)}`;
  }
  /** Queues faults for the next CDN requests of `file`, one per request. */
  fault(file: string, ...f: Fault[]): void {
    this.faults.set(file, [...(this.faults.get(file) ?? []), ...f]);
  }
  /** CDN GET requests of `file`, in order (HEAD requests, which size probes send, are left out). */
  cdnRequests(file: string): HubRequest[] {
    return this.log.filter((r) => r.method === 'GET' && r.path.startsWith('/cdn/') && r.path.endsWith(`/${file}`));
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    this.base = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }
  async close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((ok) => s.close(() => ok()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const cors = {
      'Access-Control-Allow-Origin': '*',
      'Access-Control-Expose-Headers': 'Content-Length, Content-Range, ETag, X-Linked-Etag, X-Linked-Size, Accept-Ranges',
    };
    if (req.method === 'OPTIONS') {
      return void res.writeHead(204, { ...cors, 'Access-Control-Allow-Headers': 'Range, If-Range', 'Access-Control-Allow-Methods': 'GET, HEAD' }).end();
    }
    const entry: HubRequest = { method: req.method ?? 'GET', path, range: header(req, 'range'), ifRange: header(req, 'if-range'), status: 0, sent: 0, closedEarly: false };
    this.log.push(entry);
    res.on('close', () => {
      if (!res.writableFinished) entry.closedEarly = true;
    });
    const reply = (status: number, headers: Record<string, string>, body?: Uint8Array) => {
      entry.status = status;
      res.writeHead(status, { ...cors, ...headers });
      if (body) entry.sent += body.length;
      res.end(body);
    };
    const resolve = /^\/(.+)\/resolve\/main\/(.+)$/.exec(path);
    const hop = /^\/hop\/(\d+)\/(.+)$/.exec(path);
    const cdn = /^\/cdn\/(\w+)\/(.+)$/.exec(path);
    const file = resolve?.[2] ?? hop?.[2] ?? cdn?.[2] ?? '';
    const body = this.files.get(file);
    if (!body) return reply(404, { 'X-Error-Code': 'EntryNotFound' }, new TextEncoder().encode('Entry not found'));
    const digest = sha(body);
    const toCdn = `/cdn/${digest.slice(0, 12)}/${encodeURIComponent(file)}`;
    if (resolve) {
      const next = this.hops > 0 ? `/hop/1/${encodeURIComponent(file)}` : toCdn;
      return reply(302, { Location: next, 'X-Linked-Etag': `"${digest}"`, 'X-Linked-Size': String(body.length), ETag: '"0123456789abcdef0123456789abcdef01234567"' });
    }
    if (hop) {
      const n = Number(hop[1]);
      return reply(307, { Location: n < this.hops ? `/hop/${n + 1}/${encodeURIComponent(file)}` : toCdn });
    }
    const fault = req.method === 'GET' ? this.faults.get(file)?.shift() : undefined; // HEAD (a size probe) takes no fault
    if (fault?.kind === 'status') return reply(fault.status, {});
    const etag = this.opaqueEtag ? `"v-${digest.slice(0, 8)}"` : `"${digest}"`;
    const base = { 'Content-Type': 'application/octet-stream', ETag: etag, 'Accept-Ranges': 'bytes' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(entry.range ?? '');
    const ifRangeOk = !entry.ifRange || entry.ifRange === etag || fault?.kind === 'ignore-if-range';
    let start = 0;
    let end = body.length;
    let status = 200;
    let headers: Record<string, string> = { ...base, 'Content-Length': String(body.length) };
    if (range && ifRangeOk && fault?.kind !== 'ignore-range') {
      start = Number(range[1]);
      if (start >= body.length) return reply(416, { 'Content-Range': `bytes */${body.length}` });
      end = range[2] ? Math.min(Number(range[2]) + 1, body.length) : body.length;
      status = 206;
      headers = { ...base, 'Content-Range': `bytes ${start}-${end - 1}/${body.length}`, 'Content-Length': String(end - start) };
    }
    let sent = body.subarray(start, end);
    if (fault?.kind === 'flip' && fault.at >= start) {
      sent = sent.slice();
      sent[fault.at - start] ^= 0x10;
    }
    entry.status = status;
    res.writeHead(status, { ...cors, ...headers });
    if (fault?.kind === 'drop' || fault?.kind === 'stall') {
      const part = sent.subarray(0, fault.after);
      entry.sent = part.length;
      // Cut once the bytes have left the process (the write callback: a slow client under load would
      // otherwise lose what still waited in the socket's user-space queue), so the client reads all
      // `after` bytes, then sees the connection drop.
      res.write(part, () => {
        if (fault.kind === 'drop') setTimeout(() => res.destroy(), 30);
      });
      return;
    }
    entry.sent = sent.length;
    res.end(sent);
  }
}

function header(req: IncomingMessage, name: string): string | null {
  const v = req.headers[name];
  return typeof v === 'string' ? v : null;
}
