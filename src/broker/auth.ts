/**
 * Authentication for `/admin` and `/oauth2/introspect` with passport (CONTRACT section 4):
 * the bootstrap `MINTGATE_ADMIN_TOKEN` (compared in constant time), or a live mintgate token
 * whose `aud` is the broker's own issuer and whose scope names the permission.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import passport from 'passport';
import { Strategy as CustomStrategy } from 'passport-custom';
import { OwnTokenInvalid } from '../exchange/assertions/mintgate.js';
import { InsufficientScope, InvalidToken, MissingCredentials, TemporarilyUnavailable } from '../http/errors.js';
import { StoreUnavailable } from '../store/store.js';
import type { BrokerContext } from './context.js';

export const PERMISSIONS = ['mintgate:admin', 'mintgate:introspect', 'mintgate:proxy', 'audit:read'] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Who called: the bootstrap secret, or a mintgate token's subject and jti. */
export interface Principal {
  kind: 'admin_secret' | 'token';
  sub: string;
  jti: string | undefined;
  scopes: ReadonlySet<string>;
  /** NumericDate seconds when the credential expires (tokens only). */
  exp?: number;
}

const STRATEGY = 'mintgate-bearer';

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Builds a passport instance with the bearer strategy bound to this broker. */
export function createAuthenticator(ctx: BrokerContext): passport.PassportStatic {
  const authenticator = new passport.Passport() as unknown as passport.PassportStatic;
  const adminDigest = ctx.config.adminToken ? digest(ctx.config.adminToken) : undefined;
  authenticator.use(
    STRATEGY,
    new CustomStrategy((req, done) => {
      const header = req.headers.authorization ?? '';
      const match = /^Bearer ([\x21-\x7E]+)$/i.exec(header);
      if (!header) return done(new MissingCredentials());
      if (!match) return done(new InvalidToken('authorization header is not a bearer token'));
      const presented = match[1]!;
      // Digests first, so the comparison takes the same time whatever the lengths.
      if (adminDigest && timingSafeEqual(digest(presented), adminDigest)) {
        const admin: Principal = { kind: 'admin_secret', sub: 'admin', jti: undefined, scopes: new Set(PERMISSIONS) };
        return done(null, admin);
      }
      ctx.ownTokens
        .verify(presented, { audience: ctx.config.issuer })
        .then((claims) => {
          const principal: Principal = { kind: 'token', sub: claims.sub, jti: claims.jti, scopes: new Set(claims.scope.split(' ')), exp: claims.exp };
          done(null, principal);
        })
        .catch((err: unknown) => {
          if (err instanceof OwnTokenInvalid) return done(new InvalidToken(`admin credential: ${err.message}`));
          if (err instanceof StoreUnavailable) return done(new TemporarilyUnavailable(err.message));
          return done(err);
        });
    }),
  );
  return authenticator;
}

/** Middleware: authenticate, then require `permission` (`mintgate:admin` implies all). */
export function requirePermission(authenticator: passport.PassportStatic, permission: Permission): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    authenticator.authenticate(STRATEGY, { session: false }, (err: unknown, principal: Principal | false) => {
      if (err) return next(err);
      if (!principal) return next(new InvalidToken());
      if (!principal.scopes.has(permission) && !principal.scopes.has('mintgate:admin')) return next(new InsufficientScope(permission));
      (req as Request & { principal: Principal }).principal = principal;
      next();
    })(req, res, next);
  };
}

export function principalOf(req: Request): Principal {
  return (req as Request & { principal: Principal }).principal;
}
