/**
 * The Store contract on the embedded MemoryStore, on a fake clock: expiry cases move the clock
 * instead of sleeping. Run twice: with lazy expiry only (entries dropped as they are read), and
 * with the periodic sweep run after every clock move, so both paths keep the contract.
 */
import { MemoryStore } from '../../src/store/memory.js';
import { storeSuite } from './store_suite.js';

storeSuite('memory', async (now) => {
  const store = new MemoryStore({ now, sweepEveryMs: 0 });
  return { store, cleanup: () => store.close() };
});

storeSuite('memory, swept on every clock move', async (now) => {
  const store = new MemoryStore({ now, sweepEveryMs: 0 });
  return {
    store,
    advance: async () => store.sweep(),
    cleanup: () => store.close(),
  };
});
