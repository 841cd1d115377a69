/**
 * The upstream of the proxy rows, in its own process: the demo model server
 * (src/dev/demo_model.ts, `node:http` alone, OpenAI-style), keeping no request log. Its
 * `POST /v1/chat/completions` answer (non-stream) is about 1.1 KB of JSON whose reply text
 * plants one fake secret of each of the ten mask types, so a masking proxy has work to do.
 */
import { serveChild } from '../support/child.js';
import { shipped } from '../support/shipped.js';

const { startDemoModelServer } = await shipped<typeof import('../../src/dev/demo_model.js')>('dev/demo_model.js');

await serveChild(async () => {
  const server = await startDemoModelServer({ host: '127.0.0.1', port: 0, keepRequests: 0 });
  return { info: { url: server.url }, close: () => server.close() };
});
