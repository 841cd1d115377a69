// No Docker engine runs here, so the Dockerfile, .dockerignore, docker-compose.yml and the
// example broker and proxy configs are checked by parsing: the shapes the contract promises
// (multi-stage, non-root, health checks, Redis with appendonly, a proxy in front of the demo
// model server) and that no secret is baked in or written down.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { buildBrokerConfig } from '../../src/config/broker.js';
import { parseDuration } from '../../src/config/duration.js';
import { compileTrust } from '../../src/exchange/policy.js';
import { DETECTOR_TYPES } from '../../src/proxy/mask/detectors.js';

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const root = (file: string) => fileURLToPath(new URL(`../../${file}`, import.meta.url));
const read = (file: string) => readFileSync(root(file), 'utf8');

const NODE_IMAGE = 'node:20-bookworm-slim';
const CONFIG_IN_CONTAINER = '/etc/mintgate/mintgate.yaml';
const PROXY_CONFIG_IN_CONTAINER = '/etc/mintgate/proxy.yaml';
const SECRET_NAME = /(^|_)(TOKEN|SECRET|KEK|PASSWORD|PASSWD|API_KEY|PRIVATE_KEY|CREDENTIALS?)$/i;
const INTERPOLATION = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[?-][^}]*)?\}$/;
const REQUIRED_INTERPOLATION = /^\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}$/;

// ---- Dockerfile -----------------------------------------------------------------------------

interface Instruction {
  keyword: string; // upper case
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { stages: Stage[]; preamble: Instruction[] } {
  const instructions: Instruction[] = [];
  let buffer = '';
  let start = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (buffer === '' && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (buffer !== '' && trimmed.startsWith('#')) return; // comment inside a continuation
    if (buffer === '') start = i + 1;
    if (trimmed.endsWith('\\')) {
      buffer += `${trimmed.slice(0, -1)} `;
      return;
    }
    buffer += trimmed;
    const m = /^(\S+)\s*(.*)$/s.exec(buffer)!;
    instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start });
    buffer = '';
  });
  assert.equal(buffer, '', 'Dockerfile ends inside a line continuation');
  const stages: Stage[] = [];
  const preamble: Instruction[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      assert.ok(m, `FROM on line ${ins.line} is well-formed`);
      stages.push({ from: m[1]!, name: m[2], instructions: [] });
    } else if (stages.length === 0) {
      preamble.push(ins);
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return { stages, preamble };
}

function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  assert.ok(Array.isArray(parsed) && parsed.every((p) => typeof p === 'string'), `exec form: ${args}`);
  return parsed as string[];
}

describe('Dockerfile', () => {
  const text = read('Dockerfile');
  const { stages, preamble } = parseDockerfile(text);
  const build = stages[0]!;
  const runtime = stages[stages.length - 1]!;
  const all = stages.flatMap((s) => s.instructions);
  const of = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);

  it('is multi-stage on node:20-bookworm-slim', () => {
    assert.deepEqual(preamble.filter((i) => i.keyword !== 'ARG'), [], 'nothing but ARG before the first FROM');
    assert.ok(stages.length >= 2, `at least two stages, got ${stages.length}`);
    for (const s of stages) assert.equal(s.from, NODE_IMAGE);
    assert.ok(build.name, 'the build stage is named');
    const copiesFromBuild = of(runtime, 'COPY').filter((c) => c.args.includes(`--from=${build.name}`));
    assert.ok(copiesFromBuild.length >= 2, 'the runtime stage copies from the build stage');
  });

  it('copies into the build stage every file the build script runs', () => {
    const buildScript = String((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts.build);
    const copied = of(build, 'COPY').map((c) => c.args).join('\n');
    for (const [file] of buildScript.matchAll(/scripts\/[\w.-]+/g)) assert.ok(copied.includes(file), `the build stage copies ${file}`);
  });

  it('builds with npm ci, npm run build and npm prune --omit=dev', () => {
    const runs = of(build, 'RUN').map((r) => r.args).join('\n');
    assert.match(runs, /\bnpm ci\b/);
    assert.match(runs, /\bnpm run build\b/);
    assert.match(runs, /\bnpm prune\b[^\n&;]*--omit=dev/);
    assert.ok(runs.indexOf('npm ci') < runs.indexOf('npm run build'));
    assert.ok(runs.indexOf('npm run build') < runs.indexOf('npm prune'));
  });

  it('ships only dist, node_modules, package.json and openapi.yaml in the runtime stage', () => {
    const sources = of(runtime, 'COPY')
      .flatMap((c) => c.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1))
      .map((s) => s.replace(/^\/app\//, '').replace(/^\.\//, ''));
    for (const need of ['dist', 'node_modules', 'package.json', 'openapi.yaml']) {
      assert.ok(sources.includes(need), `runtime copies ${need} (copies: ${sources.join(', ')})`);
    }
    assert.equal(of(runtime, 'ADD').length, 0, 'no ADD in the runtime stage');
    assert.ok(!sources.includes('.') && !sources.includes('src'), 'no whole-context or source copy');
  });

  it('runs as a non-root user', () => {
    const users = of(runtime, 'USER');
    assert.ok(users.length > 0, 'USER is set in the runtime stage');
    const last = users[users.length - 1]!.args.split(':')[0]!;
    assert.ok(!['root', '0', ''].includes(last), `USER ${last} is not root`);
    assert.equal(last, 'node');
    const lastUserIdx = runtime.instructions.lastIndexOf(users[users.length - 1]!);
    const afterUser = runtime.instructions.slice(lastUserIdx + 1).map((i) => i.keyword);
    assert.ok(!afterUser.includes('USER'));
  });

  it('bakes in no key or secret', () => {
    for (const ins of all.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
      assert.doesNotMatch(ins.args, /\.(pem|key|jwk|jwks)\b|\.env\b|mintgate\.yaml/, `line ${ins.line}: ${ins.keyword} ${ins.args}`);
      const srcs = ins.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1);
      assert.ok(!srcs.some((s) => /^(\.\/)?keys(\/|$)/.test(s)), `line ${ins.line} copies keys/`);
    }
    for (const ins of [...preamble, ...all].filter((i) => i.keyword === 'ENV' || i.keyword === 'ARG')) {
      for (const m of ins.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)(?:=|\s)/g)) {
        assert.ok(!SECRET_NAME.test(m[1]!), `line ${ins.line}: ${ins.keyword} sets secret-like ${m[1]}`);
      }
    }
    assert.doesNotMatch(text, /MINTGATE_ADMIN_TOKEN\s*=|MINTGATE_KEK\s*=/);
    const env = of(runtime, 'ENV').map((e) => e.args).join(' ');
    assert.match(env, /\bNODE_ENV=production\b/);
    assert.match(env, /\bMINTGATE_KEYS_DIR=\/var\/lib\/mintgate\/keys\b/);
  });

  it('exposes 8080, checks /healthz with node, and starts `mintgate serve`', () => {
    assert.deepEqual(of(runtime, 'EXPOSE').map((e) => e.args), ['8080']);
    const health = of(runtime, 'HEALTHCHECK');
    assert.equal(health.length, 1, 'one HEALTHCHECK');
    const m = /\bCMD\s+(\[.*\])$/s.exec(health[0]!.args);
    assert.ok(m, 'HEALTHCHECK uses CMD in exec form');
    const cmd = execForm(m[1]!);
    assert.deepEqual(cmd.slice(0, 2), ['node', '-e']);
    assert.match(cmd[2]!, /http:\/\/127\.0\.0\.1:8080\/healthz/);
    assert.deepEqual(execForm(of(runtime, 'ENTRYPOINT').at(-1)!.args), ['node', 'dist/cli/main.js']);
    assert.deepEqual(execForm(of(runtime, 'CMD').at(-1)!.args), ['serve', '--config', CONFIG_IN_CONTAINER, '--host', '0.0.0.0']);
  });

  it('creates the proxy spool directory for the non-root user (a named volume copies its owner)', () => {
    const runs = of(runtime, 'RUN').map((r) => r.args).join('\n');
    assert.match(runs, /mkdir -p [^&]*\/var\/lib\/mintgate\/spool\b/);
    assert.match(runs, /chown node:node [^&]*\/var\/lib\/mintgate\/spool\b/);
  });

  it('keeps dependencies, output, keys and results out of the build context (.dockerignore)', () => {
    const entries = read('.dockerignore')
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const need of ['node_modules', 'dist', 'keys/*', '.git', 'bench/results']) {
      assert.ok(entries.includes(need), `.dockerignore lists ${need}`);
    }
    assert.ok(!entries.some((e) => e.startsWith('!keys')), 'no key is re-included');
  });
});

// ---- docker-compose.yml ---------------------------------------------------------------------

function environment(service: Json): Record<string, string | null> {
  const env = service.environment;
  if (env === undefined) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((e) => {
        const s = String(e);
        const i = s.indexOf('=');
        return i < 0 ? [s, null] : [s.slice(0, i), s.slice(i + 1)];
      }),
    );
  }
  assert.ok(isObject(env));
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? null : String(v)]));
}

function commandText(cmd: unknown): string {
  return Array.isArray(cmd) ? cmd.map(String).join(' ') : String(cmd ?? '');
}

interface Mount {
  type: string;
  source: string;
  target: string;
  ro: boolean;
}

function mounts(service: Json): Mount[] {
  return ((service.volumes ?? []) as unknown[]).map((v) => {
    if (isObject(v)) return { type: String(v.type ?? 'volume'), source: String(v.source), target: String(v.target), ro: v.read_only === true };
    const [source, target, mode] = String(v).split(':');
    const type = /^[./~]/.test(source!) ? 'bind' : 'volume';
    return { type, source: source!, target: target!, ro: (mode ?? '').split(',').includes('ro') };
  });
}

/** Published ports as `host:container`. */
function published(service: Json): string[] {
  return ((service.ports ?? []) as unknown[]).map((p) => {
    if (isObject(p)) return `${String(p.published)}:${String(p.target)}`;
    const parts = String(p).replace(/\/(tcp|udp)$/, '').split(':');
    return parts.slice(-2).join(':');
  });
}

function healthcheckText(service: Json): string {
  const hc = service.healthcheck;
  assert.ok(isObject(hc), 'has a healthcheck');
  assert.notEqual(hc.disable, true);
  return commandText(hc.test);
}

describe('docker-compose.yml', () => {
  const text = read('docker-compose.yml');
  const compose: unknown = parse(text, { merge: true }); // compose resolves YAML merge keys (<<)
  assert.ok(isObject(compose));
  const services = compose.services as Json;
  const redis = services.redis as Json;
  const brokerNames = ['broker-a', 'broker-b'];
  const brokers = brokerNames.map((n) => services[n] as Json);

  it('follows the compose spec (no version key) and defines redis and two brokers', () => {
    assert.ok(!('version' in compose), 'no obsolete `version:` key');
    assert.ok(isObject(services));
    assert.ok(isObject(redis), 'service redis');
    for (const [i, broker] of brokers.entries()) assert.ok(isObject(broker), `service ${brokerNames[i]}`);
  });

  it('runs redis 7 with appendonly on a named volume and a redis-cli ping healthcheck', () => {
    assert.match(String(redis.image), /^redis:7(\.|-|$)/);
    assert.match(commandText(redis.command), /--appendonly[ =]yes/);
    const volumes = (redis.volumes ?? []) as unknown[];
    const named = volumes.map((v) => (isObject(v) ? String(v.source) : String(v).split(':')[0]!)).filter((s) => /^[A-Za-z0-9][\w.-]*$/.test(s));
    assert.ok(named.length > 0, 'redis data lives on a named volume');
    for (const n of named) assert.ok(isObject(compose.volumes) && n in compose.volumes, `volume ${n} is declared`);
    assert.match(healthcheckText(redis), /redis-cli\s+ping/);
  });

  for (const [index, name] of brokerNames.entries()) {
    const broker = brokers[index]!;
    it(`builds ${name} from the Dockerfile and points it at redis`, () => {
      const build = broker.build;
      const context = isObject(build) ? build.context : build;
      assert.ok(context === '.' || context === './', `build context is the repo (${String(context)})`);
      if (isObject(build) && build.dockerfile !== undefined) assert.equal(build.dockerfile, 'Dockerfile');
      const env = environment(broker);
      assert.equal(env.REDIS_URL, 'redis://redis:6379/0');
      assert.match(String(env.MINTGATE_ADMIN_TOKEN), REQUIRED_INTERPOLATION);
      assert.match(String(env.MINTGATE_KEK), REQUIRED_INTERPOLATION);
      assert.equal(REQUIRED_INTERPOLATION.exec(String(env.MINTGATE_ADMIN_TOKEN))![1], 'MINTGATE_ADMIN_TOKEN');
      assert.equal(REQUIRED_INTERPOLATION.exec(String(env.MINTGATE_KEK))![1], 'MINTGATE_KEK');
      const ports = ((broker.ports ?? []) as unknown[]).map((p) => (isObject(p) ? `${String(p.published)}:${String(p.target)}` : String(p)));
      const published = index === 0 ? '8080' : '8081';
      assert.ok(ports.some((p) => new RegExp(`(^|:)${published}:8080(/tcp)?$`).test(p)), `${published} is published (${ports.join(', ')})`);
    });
    it(`mounts the example config read-only into ${name} (one issuer for both)`, () => {
      const volumes = (broker.volumes ?? []) as unknown[];
      const config = volumes
        .map((v) => {
          if (isObject(v)) return { source: String(v.source), target: String(v.target), ro: v.read_only === true };
          const [source, target, mode] = String(v).split(':');
          return { source: source!, target: target!, ro: (mode ?? '').split(',').includes('ro') };
        })
        .find((v) => v.target === CONFIG_IN_CONTAINER);
      assert.ok(config, `something is mounted at ${CONFIG_IN_CONTAINER}`);
      assert.equal(config.source.replace(/^\.\//, ''), 'examples/compose/mintgate.yaml');
      assert.ok(config.ro, 'the config is mounted read-only');
    });

    it(`starts ${name} after a healthy redis and checks /readyz`, () => {
      const depends = broker.depends_on;
      assert.ok(isObject(depends) && isObject(depends.redis), 'depends_on in long form');
      assert.equal(depends.redis.condition, 'service_healthy');
      assert.match(healthcheckText(broker), /\/readyz/);
    });
  }

  describe('the demo model server and the proxy', () => {
    const model = services.model as Json;
    const proxy = services.proxy as Json;
    const proxyConfig = parse(read('examples/compose/proxy.yaml')) as Json;
    const sameImage = (service: Json) => {
      const build = service.build;
      const context = isObject(build) ? build.context : build;
      assert.ok(context === '.' || context === './', `built from the repository (${String(context)})`);
      if (isObject(build) && build.dockerfile !== undefined) assert.equal(build.dockerfile, 'Dockerfile');
      assert.equal(service.image, (services['broker-a'] as Json).image, 'the brokers\' image');
    };

    it('defines the services model and proxy', () => {
      assert.ok(isObject(model), 'service model');
      assert.ok(isObject(proxy), 'service proxy');
    });

    it('runs the demo model server from the same image, on 9000, checked at /healthz, not published', () => {
      sameImage(model);
      const entry = model.entrypoint;
      assert.deepEqual(entry, ['node', 'dist/dev/demo_model_main.js']);
      assert.ok(existsSync(root('src/dev/demo_model_main.ts')), 'its entry point is built from src/dev/demo_model_main.ts');
      const env = environment(model);
      assert.equal(env.HOST, '0.0.0.0');
      assert.equal(env.PORT, '9000');
      assert.match(healthcheckText(model), /http:\/\/127\.0\.0\.1:9000\/healthz/);
      assert.deepEqual(published(model), [], 'reachable only through the proxy');
    });

    it('runs `mintgate proxy` with the example config, mounted read-only', () => {
      sameImage(proxy);
      assert.equal(proxy.entrypoint, undefined, 'the image\'s entry point: node dist/cli/main.js');
      assert.deepEqual(proxy.command, ['proxy', '--config', PROXY_CONFIG_IN_CONTAINER, '--host', '0.0.0.0', '--port', '8081']);
      const config = mounts(proxy).find((m) => m.target === PROXY_CONFIG_IN_CONTAINER);
      assert.ok(config, `something is mounted at ${PROXY_CONFIG_IN_CONTAINER}`);
      assert.equal(config.type, 'bind');
      assert.equal(config.source.replace(/^\.\//, ''), 'examples/compose/proxy.yaml');
      assert.ok(existsSync(root(config.source)), `${config.source} exists`);
      assert.ok(config.ro, 'the config is mounted read-only');
    });

    it('gives the proxy its broker credential from the brokers\' admin secret', () => {
      const env = environment(proxy);
      const name = String(proxyConfig.credential_env);
      assert.equal(name, 'MINTGATE_PROXY_TOKEN');
      assert.match(String(env[name]), REQUIRED_INTERPOLATION);
      assert.equal(REQUIRED_INTERPOLATION.exec(String(env[name]))![1], 'MINTGATE_ADMIN_TOKEN');
    });

    it('starts the proxy after a healthy broker and a healthy model server, and points it at both', () => {
      const depends = proxy.depends_on;
      assert.ok(isObject(depends), 'depends_on in long form');
      const brokers = Object.keys(depends).filter((n) => brokerNames.includes(n));
      assert.ok(brokers.length >= 1, 'on a broker');
      for (const n of [...brokers, 'model']) assert.equal((depends[n] as Json | undefined)?.condition, 'service_healthy', `${n} healthy`);
      const broker = new URL(String(proxyConfig.broker));
      assert.ok(brokers.includes(broker.hostname), `proxy.yaml's broker (${broker.hostname}) is one it waits for`);
      assert.equal(broker.port, '8080');
      const upstream = new URL(String(proxyConfig.upstream));
      assert.equal(upstream.hostname, 'model');
      assert.equal(upstream.port, environment(model).PORT);
    });

    it('publishes the proxy on 8082 and checks /_mintgate/healthz', () => {
      assert.deepEqual(published(proxy), ['8082:8081']);
      assert.match(healthcheckText(proxy), /http:\/\/127\.0\.0\.1:8081\/_mintgate\/healthz/);
    });

    it('spools the proxy\'s records on a writable named volume at record.spool_dir', () => {
      const spool = String((proxyConfig.record as Json).spool_dir);
      const mount = mounts(proxy).find((m) => m.target === spool);
      assert.ok(mount, `a volume at ${spool}`);
      assert.equal(mount.type, 'volume');
      assert.ok(!mount.ro, 'writable');
      assert.ok(isObject(compose.volumes) && mount.source in compose.volumes, `volume ${mount.source} is declared`);
    });

    it('publishes no host port twice', () => {
      const hostPorts = Object.values(services).flatMap((s) => published(s as Json).map((p) => p.split(':')[0]));
      assert.equal(new Set(hostPorts).size, hostPorts.length, hostPorts.join(', '));
    });
  });

  it('writes no secret literally: only ${...} interpolations', () => {
    for (const [name, service] of Object.entries(services)) {
      assert.ok(isObject(service));
      assert.equal(service.env_file, undefined, `${name}: no env_file`);
      for (const [key, value] of Object.entries(environment(service))) {
        if (SECRET_NAME.test(key) && value !== null) {
          assert.match(value, INTERPOLATION, `${name}.${key} must come from the environment, not be written here`);
        }
        if (value !== null && /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
          assert.doesNotMatch(value, /^[a-z][a-z0-9+.-]*:\/\/[^/@]*:[^/@]*@/i, `${name}.${key} has no password in its URL`);
        }
      }
    }
    // Nothing that looks like 32 random bytes in base64 / base64url, or a JWT, anywhere in the file.
    for (const [candidate] of text.matchAll(/[A-Za-z0-9+/_=-]{40,}/g)) {
      const random = /[A-Z]/.test(candidate) && /[a-z]/.test(candidate) && /[0-9]/.test(candidate);
      assert.ok(!random, `looks like a literal secret: ${candidate.slice(0, 6)}...`);
    }
    assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\./);
    assert.doesNotMatch(text, /\brequirepass\b/);
  });
});

// ---- examples/compose/mintgate.yaml ---------------------------------------------------------

describe('examples/compose/mintgate.yaml', () => {
  const config: unknown = parse(read('examples/compose/mintgate.yaml'));

  it('parses, with the compose issuer and the redis store', () => {
    assert.ok(isObject(config));
    assert.deepEqual(
      Object.keys(config).sort(),
      ['issuer', 'keys', 'limits', 'store', 'tokens', 'trust'].filter((k) => k in config).sort(),
    );
    assert.equal(config.issuer, 'http://localhost:8080');
    assert.deepEqual(config.store, { url: 'redis://redis:6379/0' });
    const compose = parse(read('docker-compose.yml'), { merge: true }) as Json;
    for (const name of ['broker-a', 'broker-b']) {
      const env = environment((compose.services as Json)[name] as Json);
      assert.equal(env.REDIS_URL, (config.store as Json).url, `${name}: REDIS_URL and store.url agree`);
    }
  });

  it('is a config the broker accepts as it stands', () => {
    const loaded = buildBrokerConfig(config, { env: { MINTGATE_KEK: Buffer.alloc(32, 1).toString('base64') }, source: 'examples/compose/mintgate.yaml' });
    assert.equal(loaded.issuer, 'http://localhost:8080');
    assert.equal(loaded.store.url, 'redis://redis:6379/0');
    assert.doesNotThrow(() => compileTrust(loaded.trust));
  });

  it('keeps the contract defaults for tokens and keys', () => {
    assert.ok(isObject(config));
    assert.deepEqual(config.tokens, { default_ttl: '5m', max_ttl: '15m', clock_skew: '30s' });
    const keys = config.keys as Json;
    assert.equal(keys.alg, 'ES256');
    assert.equal(keys.rotate_every, '24h');
    assert.equal(keys.publish_ahead, '5m');
    assert.equal(keys.retain_after, '20m');
    assert.equal(keys.dir, '/var/lib/mintgate/keys', 'keys live in the image volume');
  });

  it('trusts GitHub Actions with the model-release rule', () => {
    assert.ok(isObject(config));
    assert.ok(Array.isArray(config.trust) && config.trust.length === 1);
    const entry = config.trust[0] as Json;
    assert.equal(entry.name, 'github-actions');
    assert.equal(entry.type, 'oidc');
    assert.equal(entry.issuer, 'https://token.actions.githubusercontent.com');
    assert.deepEqual(entry.audiences, ['mintgate']);
    assert.deepEqual(entry.algorithms, ['RS256']);
    assert.ok(Array.isArray(entry.rules) && entry.rules.length === 1);
    assert.deepEqual(entry.rules[0], {
      name: 'model-release',
      match: { repository: 'acme/models', ref: 'refs/heads/*' },
      condition: 'claims.run_attempt == "1"',
      subject: 'claims.repository + "@" + claims.ref',
      job: 'claims.run_id + "-" + claims.run_attempt',
      grant: {
        audiences: ['inference-gateway'],
        scopes: ['inference:invoke', 'model:llama-3-8b'],
        max_ttl: '10m',
      },
    });
  });

  it('holds no secret', () => {
    const text = read('examples/compose/mintgate.yaml');
    assert.doesNotMatch(text, /^[^#\n]*\b[\w.-]*(admin_token|kek|secret|password)[\w.-]*\s*:/im, 'no secret-like key');
    assert.doesNotMatch(text, /BEGIN [A-Z ]*PRIVATE KEY/);
  });
});

// ---- examples/compose/proxy.yaml and examples/dev/proxy.yaml -------------------------------
// The shape of CONTRACT section 7. (The proxy's own config loader is not on this branch yet;
// once it is, both files should also be loaded with it here.)

const PROXY_KEYS = ['broker', 'audience', 'credential_env', 'upstream', 'upstream_auth', 'public_url', 'record', 'feed', 'block_requests', 'routes'];
const ROUTE_KEYS = ['name', 'method', 'path', 'scopes', 'model_scope', 'mask', 'mask_fields', 'approval', 'block'];

for (const [file, where] of [
  ['examples/compose/proxy.yaml', { broker: 'http://broker-a:8080', upstream: 'http://model:9000', spool_dir: '/var/lib/mintgate/spool' }],
  ['examples/dev/proxy.yaml', { broker: 'http://127.0.0.1:8080', upstream: 'http://127.0.0.1:9000', spool_dir: 'spool' }],
] as const) {
  describe(file, () => {
    const config: unknown = parse(read(file));

    it('has only the contract\'s keys, and this deployment\'s broker, upstream and spool', () => {
      assert.ok(isObject(config));
      for (const key of Object.keys(config)) assert.ok(PROXY_KEYS.includes(key), `known key ${key}`);
      assert.equal(config.broker, where.broker);
      assert.equal(config.upstream, where.upstream);
      assert.equal(config.audience, 'inference-gateway');
      assert.equal(config.credential_env, 'MINTGATE_PROXY_TOKEN');
      const record = config.record as Json;
      assert.equal(record.spool_dir, where.spool_dir);
      assert.equal(record.bodies, true);
      assert.equal(typeof record.max_bytes, 'number');
      assert.ok(parseDuration(String((config.feed as Json).max_staleness)) > 0);
      for (const rule of config.block_requests as Json[]) {
        assert.match(String(rule.where), /^(path|body|header:.+)$/);
        assert.equal(typeof rule.pattern, 'string');
      }
    });

    it('routes chat (masking all ten types), models, export (approval) and secrets (blocked)', () => {
      assert.ok(isObject(config));
      const routes = config.routes as Json[];
      assert.deepEqual(routes.map((r) => r.name), ['chat', 'models', 'export', 'secrets']);
      for (const r of routes) for (const key of Object.keys(r)) assert.ok(ROUTE_KEYS.includes(key), `route ${String(r.name)}: known key ${key}`);
      const [chat, models, exp, secrets] = routes as [Json, Json, Json, Json];
      assert.deepEqual({ method: chat.method, path: chat.path, scopes: chat.scopes, model_scope: chat.model_scope }, { method: 'POST', path: '/v1/chat/completions', scopes: ['inference:invoke'], model_scope: 'body.model' });
      assert.deepEqual([...(chat.mask as string[])].sort(), [...DETECTOR_TYPES].sort(), 'every mask type');
      assert.deepEqual(chat.mask_fields, ['password', 'api_key', 'secret', 'token']);
      assert.deepEqual(models, { name: 'models', method: 'GET', path: '/v1/models', scopes: ['inference:invoke'] });
      assert.deepEqual({ method: exp.method, path: exp.path, scopes: exp.scopes }, { method: 'POST', path: '/v1/models/*/export', scopes: ['model:export'] });
      assert.equal(parseDuration(String((exp.approval as Json).wait)), 60);
      assert.deepEqual(secrets, { name: 'secrets', path: '/secrets/**', block: true });
    });

    it('holds no secret', () => {
      const text = read(file);
      assert.doesNotMatch(text, /^[^#\n]*\b[\w.-]*(admin_token|kek|secret|password)[\w.-]*\s*:/im, 'no secret-like key');
      assert.doesNotMatch(text, /BEGIN [A-Z ]*PRIVATE KEY|eyJ[A-Za-z0-9_-]+\./);
    });
  });
}

describe('the two proxy examples', () => {
  it('is examples/compose/proxy.yaml with local addresses', () => {
    const dev = parse(read('examples/dev/proxy.yaml')) as Json;
    const compose = parse(read('examples/compose/proxy.yaml')) as Json;
    const local = { ...compose, broker: dev.broker, upstream: dev.upstream, record: { ...(compose.record as Json), spool_dir: (dev.record as Json).spool_dir } };
    assert.deepEqual(dev, local);
  });
});
