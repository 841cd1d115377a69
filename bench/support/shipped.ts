/**
 * The product's modules as they ship: the tsc output in dist/ that `mintgate` runs, not src/
 * compiled on the fly by tsx as the bench itself is (tsx's esbuild wraps functions to keep
 * their names, a cost on hot paths that no user pays). Typed from src/, loaded from dist/;
 * bench/run.ts builds dist/ before any row runs (MINTGATE_SKIP_BUILD=1 skips that).
 *
 *   const { startProxy } = await shipped<typeof import('../../src/proxy/proxy.js')>('proxy/proxy.js');
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export async function shipped<T>(module: string): Promise<T> {
  const url = new URL(`../../dist/${module}`, import.meta.url);
  if (!existsSync(fileURLToPath(url))) throw new Error(`dist/${module} is missing: run \`npm run build\` (bench/run.ts does, unless MINTGATE_SKIP_BUILD=1)`);
  return (await import(url.href)) as T;
}
