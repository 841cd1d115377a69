/**
 * The audit spool on its own: records land in files first, ship in batches, survive a receiver
 * outage and a proxy restart (files left behind are shipped), skip a torn last line, and set a
 * refused file aside instead of looping on it. The receiver here is a small HTTP server standing
 * in for the broker's POST /admin/audit/events (the end-to-end path is in proxy_outage.test.ts).
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Agent } from 'undici';
import { AuditSpool, type CallRecord } from '../../src/proxy/audit_spool.js';
import { waitFor } from '../support/proxy_rig.js';

interface Receiver {
  url: string;
  batches: Array<{ auth: string | undefined; events: CallRecord[] }>;
  answer: number;
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const r = { batches: [], answer: 200 } as unknown as Receiver;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (r.answer === 200) r.batches.push({ auth: req.headers.authorization, events: (JSON.parse(Buffer.concat(chunks).toString()) as { events: CallRecord[] }).events });
      res.writeHead(r.answer, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  r.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  r.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return r;
}

const record = (n: number): CallRecord => ({ id: `ev-${n}`, type: 'proxy.call', ts: new Date().toISOString(), jti: `jti-${n}`, details: { n } });

describe('audit spool', () => {
  let receiver: Receiver;
  let dir: string;
  const agent = new Agent();
  const log = pino({ level: 'silent' });
  before(async () => {
    receiver = await startReceiver();
    dir = await mkdtemp(join(tmpdir(), 'mintgate-spool-test-'));
  });
  after(async () => {
    await receiver.close();
    await agent.close();
    await rm(dir, { recursive: true, force: true });
  });

  const spool = (batchSize = 500) => new AuditSpool({ dir, broker: receiver.url, credential: 'cred', dispatcher: agent, log, intervalMs: 50, batchSize });
  const shipped = () => receiver.batches.flatMap((b) => b.events.map((e) => e.id));

  it('writes first, ships in batches with the proxy credential, deletes shipped files', async () => {
    const s = spool(3);
    await s.start();
    for (let i = 0; i < 7; i++) s.append(record(i));
    assert.equal(s.backlog, 7);
    await waitFor(() => s.backlog === 0, 5_000, 'shipping');
    assert.deepEqual(shipped(), ['ev-0', 'ev-1', 'ev-2', 'ev-3', 'ev-4', 'ev-5', 'ev-6']);
    assert.ok(receiver.batches.every((b) => b.events.length <= 3 && b.auth === 'Bearer cred'));
    await s.stop();
    assert.deepEqual((await readdir(dir)).filter((f) => f.endsWith('.jsonl')), []);
  });

  it('keeps each batch under the byte cap (records with bodies are large)', async () => {
    receiver.batches.length = 0;
    const s = new AuditSpool({ dir, broker: receiver.url, credential: 'cred', dispatcher: agent, log, intervalMs: 50, batchBytes: 400 });
    await s.start();
    for (let i = 40; i < 45; i++) s.append({ ...record(i), details: { body: 'x'.repeat(150) } });
    await s.shipNow(true);
    assert.equal(s.backlog, 0);
    assert.deepEqual(shipped(), ['ev-40', 'ev-41', 'ev-42', 'ev-43', 'ev-44']);
    assert.ok(receiver.batches.every((b) => JSON.stringify(b.events).length <= 400 + 10), 'every batch within the cap');
    assert.ok(receiver.batches.length >= 3);
    await s.stop();
  });

  it('keeps everything through a receiver outage and ships it, in order, once back', async () => {
    receiver.batches.length = 0;
    receiver.answer = 503;
    const s = spool();
    await s.start();
    for (let i = 10; i < 15; i++) s.append(record(i));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(s.backlog, 5);
    assert.ok((await readdir(dir)).some((f) => f.endsWith('.jsonl')));
    receiver.answer = 200;
    await s.shipNow(true);
    await waitFor(() => s.backlog === 0, 5_000, 'shipping after the outage');
    assert.deepEqual(shipped(), ['ev-10', 'ev-11', 'ev-12', 'ev-13', 'ev-14']);
    await s.stop();
  });

  it('ships what a crashed proxy left behind, skipping a torn last line', async () => {
    receiver.batches.length = 0;
    const lines = [record(20), record(21)].map((r) => JSON.stringify(r)).join('\n');
    // A damaged line that still parses (not an object) is skipped like a torn one.
    await writeFile(join(dir, 'calls-0000000000001-000001.jsonl'), `${lines}\n"damaged"\n{"id":"ev-torn","ty`);
    const s = spool();
    await s.start();
    assert.equal(s.backlog, 2, 'counted before shipping (the torn and damaged lines are not events)');
    await s.shipNow(true);
    assert.deepEqual(shipped(), ['ev-20', 'ev-21']);
    assert.equal(s.backlog, 0);
    await s.stop();
  });

  it('sets a refused file aside (no endless retry) and goes on with the next', async () => {
    receiver.batches.length = 0;
    receiver.answer = 400;
    const s = spool();
    await s.start();
    s.append(record(30));
    await s.shipNow(true);
    assert.ok((await readdir(dir)).some((f) => f.endsWith('.jsonl.rejected')));
    receiver.answer = 200;
    s.append(record(31));
    await s.shipNow(true);
    assert.deepEqual(shipped(), ['ev-31']);
    assert.equal(s.backlog, 0);
    await s.stop();
  });
});
