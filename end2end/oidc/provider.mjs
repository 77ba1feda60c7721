// A real OpenID Connect provider (npm `oidc-provider` v9) for the end-to-end
// tests. Listens on 127.0.0.1 only, plain http.
//
// Environment:
//   OIDC_PORT           (required) port to listen on; issuer is http://127.0.0.1:$OIDC_PORT
//   OIDC_REDIRECT_URIS  (required) comma-separated redirect URIs of the client
//   OIDC_CLIENT_ID      (default "strata")
//   OIDC_CLIENT_SECRET  (default "strata-test-secret")
//
// Login uses the provider's built-in development form (devInteractions):
// any login name with any password. There is no consent screen: the grant
// for the requested scopes/claims is created automatically (loadExistingGrant).
//
// Claims, all placed in the id_token (conformIdTokenClaims: false):
//   sub, name, preferred_username = login name
//   email = <login>@example.test, email_verified = true
//   groups = ["strata-admins"] if login starts with "admin",
//            ["strata-editors"] if it starts with "editor", else ["staff"]
//
// Prints "OIDC provider ready at http://127.0.0.1:PORT" once listening.

import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

function fail(message) {
  console.error(`oidc provider: ${message}`);
  process.exit(2);
}

const port = Number.parseInt(process.env.OIDC_PORT ?? '', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  fail('OIDC_PORT must be set to a port number');
}
const redirectUris = (process.env.OIDC_REDIRECT_URIS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
if (redirectUris.length === 0) {
  fail('OIDC_REDIRECT_URIS must list at least one redirect URI');
}
const clientId = process.env.OIDC_CLIENT_ID || 'strata';
const clientSecret = process.env.OIDC_CLIENT_SECRET || 'strata-test-secret';

const issuer = `http://127.0.0.1:${port}`;

function groupsFor(login) {
  if (login.startsWith('admin')) return ['strata-admins'];
  if (login.startsWith('editor')) return ['strata-editors'];
  return ['staff'];
}

// A fresh RS256 signing key per run (saves the "generated dev key" warning).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'strata-e2e', alg: 'RS256', use: 'sig' };

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris,
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
  ],
  // v9 treats client_secret_basic and client_secret_post as interchangeable
  // for a client registered with either, as long as both are enabled here.
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  jwks: { keys: [signingJwk] },
  cookies: {
    keys: ['strata-e2e-cookie-key-not-secret'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // Put scope-requested claims into the id_token too, not only /me.
  conformIdTokenClaims: false,
  pkce: {
    // S256 is the only method v9 supports; only require it for public clients
    // (the default), our confidential client may send it and it is verified.
    required: () => false,
  },
  features: {
    devInteractions: { enabled: true },
    userinfo: { enabled: true },
  },
  async findAccount(ctx, sub) {
    const login = String(sub);
    return {
      accountId: login,
      async claims() {
        return {
          sub: login,
          name: login,
          preferred_username: login,
          email: `${login}@example.test`,
          email_verified: true,
          groups: groupsFor(login),
        };
      },
    };
  },
  // No consent screen: grant whatever (supported) scopes and claims were
  // requested, extending any grant already held by this session.
  async loadExistingGrant(ctx) {
    const { provider, client, session } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    let grant = grantId ? await provider.Grant.find(grantId) : undefined;
    if (!grant) {
      grant = new provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    }
    const scopes = [...ctx.oidc.requestParamOIDCScopes];
    if (scopes.length) grant.addOIDCScope(scopes.join(' '));
    const claims = [...ctx.oidc.requestParamClaims];
    if (claims.length) grant.addOIDCClaims(claims);
    await grant.save();
    return grant;
  },
  ttl: {
    Session: 3600,
    Interaction: 600,
    Grant: 3600,
    AccessToken: 600,
    AuthorizationCode: 60,
    IdToken: 600,
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;

// Surface server-side errors on stderr to ease debugging failed flows.
provider.on('server_error', (ctx, err) => console.error('oidc server_error:', err));
for (const ev of ['authorization.error', 'grant.error', 'userinfo.error']) {
  provider.on(ev, (ctx, err) => console.error(`oidc ${ev}: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`));
}

const server = createServer(provider.callback());
server.listen(port, '127.0.0.1', () => {
  console.log(`OIDC provider ready at ${issuer}`);
});
server.on('error', (err) => {
  console.error(`oidc provider: ${err.message}`);
  process.exit(1);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
