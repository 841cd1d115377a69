/**
 * One table per detector: strings it must find (with the exact span) and strings it must leave
 * alone. Our own examples; the peers' examples are in the corpus test.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DETECTORS,
  DETECTOR_BY_TYPE,
  DETECTOR_TYPES,
  ibanValid,
  jwtValid,
  luhnValid,
  ssnValid,
  type DetectorType,
} from '../../../src/proxy/mask/detectors.js';
import { maskText, SPECIFICITY } from '../../../src/proxy/mask/mask_text.js';

const b64u = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
const JWT_OK = `${b64u({ alg: 'ES256', typ: 'JWT' })}.${b64u({ sub: 'alice', exp: 1 })}.c2lnbmF0dXJlX2J5dGVz`;
const JWT_NO_ALG = `${b64u({ typ: 'JWT', kid: 'k1' })}.${b64u({ sub: 'alice' })}.sig`.replace(
  b64u({ sub: 'alice' }),
  'eyJub3QganNvbg',
);

interface Table {
  /** [text, the exact substring expected to be found] */
  hits: Array<[string, string]>;
  misses: string[];
}

const TABLES: Record<DetectorType, Table> = {
  email: {
    hits: [
      ['mail bob.smith+tag@mail.example.co.uk now', 'bob.smith+tag@mail.example.co.uk'],
      ['<ops@xn--bcher-kva.example>', 'ops@xn--bcher-kva.example'],
    ],
    misses: ['user@localhost', 'bob@example.', '@example.com', 'a@b', 'foo at example dot com'],
  },
  credit_card: {
    hits: [
      ['card 4111 1111 1111 1111 exp', '4111 1111 1111 1111'],
      ['amex 3782-822463-10005', '3782-822463-10005'],
      ['5500005555555559', '5500005555555559'],
    ],
    misses: [
      '4111 1111 1111 1112', // Luhn fails
      '1700000000008', // 13 digits starting with 1: an epoch-ms timestamp
      'order 4111111111111111234567', // too long
      'GB82 WEST 1234 5698 7654 32', // inside an IBAN shape
      '0000000000000000', // one repeated digit
    ],
  },
  us_ssn: {
    hits: [
      ['ssn 536-22-8410.', '536-22-8410'],
      ['536 22 8410', '536 22 8410'],
      ['536228410', '536228410'],
    ],
    misses: ['000-22-8410', '666-22-8410', '912-22-8410', '536-00-8410', '536-22-0000', '536-22.8410', '078-05-1120', '1536-22-8410'],
  },
  iban: {
    hits: [
      ['pay to GB82 WEST 1234 5698 7654 32 today', 'GB82 WEST 1234 5698 7654 32'],
      ['DE89370400440532013000', 'DE89370400440532013000'],
      ['NO93 8601 1117 947 and more', 'NO93 8601 1117 947'],
    ],
    misses: ['GB82 WEST 1234 5698 7654 33', 'GB82WEST12345698765432999', 'XX82 WEST 1234 5698 7654 32', 'gb82 west 1234 5698 7654 32'],
  },
  phone: {
    hits: [
      ['call +1 (415) 555-0100 now', '+1 (415) 555-0100'],
      ['office (212) 555-0199', '(212) 555-0199'],
      ['Paris +33 1 23 45 67 89', '+33 1 23 45 67 89'],
      ['Ankara 0312 555 12 34', '0312 555 12 34'],
    ],
    misses: ['version 1.2.3.4', 'id 0780511201', 'v2024-01-15', 'pi 3.14159265358', 'call 555-0100'],
  },
  aws_access_key: {
    hits: [['key=AKIA2EQARF3B244CKZQW end', 'AKIA2EQARF3B244CKZQW']],
    misses: ['AKIAIOSFODNN7EXAMPLE', 'AKIAXXXXXXXXXXXXXXXX', 'XAKIAQ2EAF3B244CRKZQW', 'AKIA1234'],
  },
  private_key: {
    hits: [
      [
        'x\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oo5rzOhu5WSaoAoGCCqGSM49\n-----END EC PRIVATE KEY-----\ny',
        '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oo5rzOhu5WSaoAoGCCqGSM49\n-----END EC PRIVATE KEY-----',
      ],
    ],
    misses: [
      '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8xOUetsCa8EfOlDEBAfREhJqspDo\n-----END PUBLIC KEY-----',
      '-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----',
    ],
  },
  jwt: {
    hits: [
      [`token ${JWT_OK} end`, JWT_OK],
      [`${JWT_NO_ALG.split('.')[0]}.${b64u({ sub: 'x' })}.`, `${JWT_NO_ALG.split('.')[0]}.${b64u({ sub: 'x' })}.`],
    ],
    misses: [JWT_NO_ALG, 'eyJhbGciOi.not-a-token', 'eyJzdWIiOiJ4In0', `${b64u({ alg: 'none' })}`],
  },
  bearer_token: {
    hits: [
      ['Authorization: Bearer tok_9f8e7d6c5b4a', 'tok_9f8e7d6c5b4a'],
      ["-H 'authorization: basic dXNlcjpwYXNzd29yZA=='", 'dXNlcjpwYXNzd29yZA=='],
      ['"Authorization": "a1b2c3d4e5f6a7b8"', 'a1b2c3d4e5f6a7b8'],
    ],
    misses: ['Authorization: Bearer $TOKEN', 'Authorization: Bearer <your token>', 'Authorization: Bearer xxxxxxxxxxxx', 'bearer of bad news'],
  },
  api_key: {
    hits: [
      ['GITHUB=ghp_Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5', 'ghp_Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF3hJ5'],
      ['sk_live_4eC39HqLyjWDarjtT1zdp7dc', 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'],
      ['API_KEY="q8Zr2LmX9vT4kP1w"', 'q8Zr2LmX9vT4kP1w'],
      ['clientSecret: 7c1d9e0a-55b2-4c3e-9f10-2d4b6a8c0e1f', '7c1d9e0a-55b2-4c3e-9f10-2d4b6a8c0e1f'],
      ['-H "Authorization: Token 0123abcd4567ef89"', '0123abcd4567ef89'],
    ],
    misses: [
      'ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
      'api_key_length = 32',
      'publicToken = "a8b7c6d5e4f3g2h1"',
      'io.jsonwebtoken:jjwt-api-0.11.5',
      'password = hunter',
      'SECRET_NAME = "PROD-API-KEY"',
      'token = "$API_TOKEN"',
    ],
  },
};

describe('detectors', () => {
  it('covers every contract type exactly once', () => {
    assert.deepEqual(DETECTORS.map((d) => d.type).sort(), [...DETECTOR_TYPES].sort());
    assert.deepEqual([...SPECIFICITY].sort(), [...DETECTOR_TYPES].sort());
  });

  for (const type of DETECTOR_TYPES) {
    describe(type, () => {
      const detector = DETECTOR_BY_TYPE[type];
      for (const [text, expected] of TABLES[type].hits) {
        it(`finds ${JSON.stringify(expected.slice(0, 40))}`, () => {
          const found = detector.find(text).map((s) => text.slice(s.start, s.end));
          assert.ok(found.includes(expected), `found ${JSON.stringify(found)}`);
          assert.ok(expected.length <= detector.window);
        });
      }
      for (const text of TABLES[type].misses) {
        it(`ignores ${JSON.stringify(text.slice(0, 40))}`, () => {
          assert.deepEqual(detector.find(text), []);
        });
      }
    });
  }
});

describe('validators', () => {
  it('Luhn', () => {
    assert.equal(luhnValid('79927398713'), true);
    assert.equal(luhnValid('79927398710'), false);
  });
  it('SSN rules', () => {
    assert.equal(ssnValid('536228410'), true);
    for (const bad of ['000228410', '666228410', '900228410', '536008410', '536220000', '078051120']) {
      assert.equal(ssnValid(bad), false, bad);
    }
  });
  it('IBAN mod 97 and length', () => {
    assert.equal(ibanValid('GB82WEST12345698765432'), true);
    assert.equal(ibanValid('GB82WEST1234569876543'), false);
    assert.equal(ibanValid('GB83WEST12345698765432'), false);
  });
  it('JWT header', () => {
    assert.equal(jwtValid(JWT_OK), true);
    assert.equal(jwtValid(JWT_NO_ALG), false);
  });
});

describe('maskText', () => {
  it('labels, counts and leaves the rest alone', () => {
    const r = maskText('mail a@example.com, call +1 415 555 0100, card 4111111111111111.', DETECTOR_TYPES);
    assert.equal(r.text, 'mail [MASKED:email], call [MASKED:phone], card [MASKED:credit_card].');
    assert.equal(r.counts.email, 1);
    assert.equal(r.counts.phone, 1);
    assert.equal(r.counts.credit_card, 1);
    assert.equal(r.counts.iban, 0);
  });
  it('masks only the requested types', () => {
    const r = maskText('a@example.com 4111111111111111', ['credit_card']);
    assert.equal(r.text, 'a@example.com [MASKED:credit_card]');
  });
  it('the most specific type wins where matches overlap, masked once', () => {
    const r = maskText(`Authorization: Bearer ${JWT_OK}`, DETECTOR_TYPES);
    assert.equal(r.text, 'Authorization: Bearer [MASKED:jwt]');
    assert.equal(r.counts.jwt, 1);
    assert.equal(r.counts.bearer_token, 0);
  });
  it('passes text without matches through unchanged', () => {
    const text = 'nothing to see here: version 1.2.3, 42 apples';
    assert.equal(maskText(text, DETECTOR_TYPES).text, text);
  });
  it('rejects an unknown type (a programming mistake)', () => {
    assert.throws(() => maskText('x', ['nope' as DetectorType]), TypeError);
  });
});

describe('private_key without an END marker (truncated)', () => {
  it('masks the base64 lines that follow BEGIN, and stops at prose', () => {
    const text =
      '-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi3nl8Rk2pqO8rLoNb1sQ8\nAbCdEfGhIjKlMnOpQrStUvWxYz0123456789\nthat was a key.';
    const out = maskText(text, ['private_key']).text;
    assert.equal(out, '[MASKED:private_key]\nthat was a key.');
  });
});
