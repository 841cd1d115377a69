import { createServer } from 'node:net';

/**
 * Finds a TCP port on 127.0.0.1 that is free right now.
 *
 * The port is found by listening on port 0 and closing again, so another process may take it
 * before the caller binds it. Prefer listening on port 0 directly when the server is ours
 * (`server.listen(0)` then `server.address()`); use this only for child processes such as
 * `redis-server` that must be told their port up front.
 *
 * @returns a port number in the ephemeral range.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('listening socket has no TCP address'));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
