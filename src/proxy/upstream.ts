/**
 * The model server, through one undici keep-alive pool. Requests leave without the client's
 * credentials (`Authorization`, `DPoP`, the `upstream_auth` header) and hop-by-hop headers,
 * with the proxy's identity headers (`x-mintgate-jti|sub|job`); responses come back with their
 * body masked as it streams, and their hop-by-hop headers removed.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { Readable } from 'node:stream';
import { Pool } from 'undici';
import { BadGateway } from './errors.js';
import { createBodyMasker, type MaskCounts, type MaskPolicy } from './mask/index.js';
import type { VerifiedToken } from './token_verifier.js';

const EMPTY = new Uint8Array(0);

/** RFC 9110 7.6.1 hop-by-hop fields, plus ones a proxy must not pass on. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect', 'http2-settings']);
/** The client's credentials for the proxy, and identity headers only the proxy may set. */
const NEVER_FORWARDED = new Set(['authorization', 'dpop', 'x-mintgate-jti', 'x-mintgate-sub', 'x-mintgate-job', 'forwarded', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']);

export interface UpstreamOptions {
  /** Base URL of the model server; a path in it prefixes every forwarded path. */
  url: string;
  /** The model server's own credential (`upstream_auth`), set on every request. */
  auth?: { header: string; value: string } | undefined;
  connections?: number;
}

export interface ForwardRequest {
  req: IncomingMessage;
  /** Normalised path plus the original query. */
  target: string;
  token: VerifiedToken;
  /** The body already read (when a rule needed it); otherwise the request streams through. */
  body: Buffer | null;
  mask: MaskPolicy | null;
  signal: AbortSignal;
  /** Called with each chunk sent to the client (after masking), for the record. */
  onBody?: (chunk: Uint8Array) => void;
  /** Called with each chunk of a request body streamed through (not read beforehand), for the record. */
  onRequestBody?: (chunk: Buffer) => void;
}

export interface ForwardResult {
  status: number;
  bytesOut: number;
  masked: MaskCounts;
}

export class Upstream {
  private readonly pool: Pool;
  private readonly basePath: string;

  constructor(private readonly opts: UpstreamOptions) {
    const url = new URL(opts.url);
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.pool = new Pool(url.origin, { connections: opts.connections ?? 128, pipelining: 1, keepAliveTimeout: 30_000 });
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /**
   * Sends the request upstream and streams the (masked) answer to `res`. Rejects with
   * BadGateway when the upstream cannot be reached or answers garbage before anything was sent;
   * a failure mid-body destroys the client's response (the framing cannot be finished honestly).
   */
  async forward(f: ForwardRequest, res: ServerResponse): Promise<ForwardResult> {
    const headers = this.requestHeaders(f);
    let upstream;
    try {
      upstream = await this.pool.request({
        method: f.req.method as 'GET',
        path: this.basePath + f.target,
        headers,
        body: f.body ?? (requestHasBody(f.req) ? Readable.from(tap(f.req, f.onRequestBody)) : null),
        signal: f.signal,
        headersTimeout: 300_000,
        bodyTimeout: 300_000,
      });
    } catch (err) {
      throw new BadGateway(`upstream request failed: ${(err as Error).message}`);
    }

    const contentType = header(upstream.headers['content-type']);
    const masker = f.mask ? createBodyMasker(f.mask, contentType) : null;
    const encoding = header(upstream.headers['content-encoding'])?.toLowerCase();
    let source: AsyncIterable<Uint8Array> = upstream.body;
    if (masker && encoding && encoding !== 'identity') {
      const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? createGunzip() : encoding === 'deflate' ? createInflate() : encoding === 'br' ? createBrotliDecompress() : null;
      if (!decoder) {
        upstream.body.destroy();
        throw new BadGateway(`upstream answered with content-encoding ${encoding.slice(0, 20)}, which cannot be masked`);
      }
      source = Readable.from(upstream.body).pipe(decoder);
    }
    // Implicit headers: they leave with the first body bytes, and a body that comes out whole
    // (a masked JSON answer) leaves in one write with its Content-Length.
    res.statusCode = upstream.statusCode;
    for (const [name, value] of Object.entries(this.responseHeaders(upstream.headers, masker !== null))) res.setHeader(name, value!);
    let bytesOut = 0;
    const send = async (chunk: Uint8Array): Promise<void> => {
      if (chunk.length === 0) return;
      bytesOut += chunk.length;
      f.onBody?.(chunk);
      if (!res.write(chunk)) await drained(res);
    };
    try {
      for await (const chunk of source) await send(masker ? masker.write(chunk) : chunk);
      const tail = masker ? masker.end() : EMPTY;
      bytesOut += tail.length;
      if (tail.length > 0) f.onBody?.(tail);
      res.end(tail);
    } catch (err) {
      res.destroy(err as Error);
    }
    return { status: upstream.statusCode, bytesOut, masked: masker?.counts ?? {} };
  }

  private requestHeaders(f: ForwardRequest): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    const connectionListed = listed(f.req.headers.connection);
    const authHeader = this.opts.auth?.header;
    for (const [name, value] of Object.entries(f.req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || NEVER_FORWARDED.has(name) || connectionListed.has(name) || name === authHeader) continue;
      out[name] = value;
    }
    if (f.body !== null) out['content-length'] = String(f.body.length);
    // A masked answer must arrive readable; we decode what comes compressed anyway.
    if (f.mask) out['accept-encoding'] = 'identity';
    if (this.opts.auth) out[this.opts.auth.header] = this.opts.auth.value;
    out['x-mintgate-jti'] = f.token.jti;
    out['x-mintgate-sub'] = f.token.sub;
    out['x-mintgate-job'] = f.token.job_id;
    const client = f.req.socket.remoteAddress;
    if (client) out['x-forwarded-for'] = client;
    return out;
  }

  private responseHeaders(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>, masked: boolean): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    const connectionListed = listed(headers.connection);
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined || HOP_BY_HOP.has(name) || connectionListed.has(name)) continue;
      // A masked body has another length, and is sent decoded.
      if (masked && (name === 'content-length' || name === 'content-encoding' || name === 'etag' || name === 'content-md5')) continue;
      out[name] = value;
    }
    return out;
  }
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function listed(connection: string | string[] | undefined): Set<string> {
  const text = Array.isArray(connection) ? connection.join(',') : (connection ?? '');
  return new Set(text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
}

/**
 * The request body as undici reads it, each chunk also shown to `onChunk`. A second 'data'
 * listener instead would start the stream flowing before undici reads it, and lose bytes.
 */
async function* tap(req: IncomingMessage, onChunk: ((chunk: Buffer) => void) | undefined): AsyncGenerator<Buffer> {
  for await (const chunk of req as AsyncIterable<Buffer>) {
    onChunk?.(chunk);
    yield chunk;
  }
}

/** Whether the request carries a body (a length above 0, or chunked). */
export function requestHasBody(req: IncomingMessage): boolean {
  return req.headers['content-length'] !== undefined ? req.headers['content-length'] !== '0' : req.headers['transfer-encoding'] !== undefined;
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}
