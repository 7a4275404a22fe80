// A real OpenID Connect provider for Bedside's single sign-on tests: panva's certified
// oidc-provider, with one client (Bedside), PKCE required, RS256 ID tokens, a login page of
// its own that checks a password, and people whose `groups` claim the tests can change.
//
//   node tests/oidc_provider/server.mjs --port 0 --redirect-uri URL [--redirect-uri URL ...]
//
// It prints `listening on <port>` when ready. Test-only routes (loopback only, never in a
// real provider): PUT /test/accounts/<login>/groups with a JSON list sets that person's
// groups (read at their next sign-in); POST /test/sign with a JSON claims object returns a
// JWT signed with the provider's own key (for expired or otherwise wrong ID tokens).
import crypto from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import { SignJWT, importJWK } from 'jose';
import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'redirect-uri': { type: 'string', multiple: true, default: [] },
    'post-logout-uri': { type: 'string', multiple: true, default: [] },
    'client-id': { type: 'string', default: 'bedside' },
    'client-secret': { type: 'string', default: 'bedside-test-secret' },
  },
});

// The people of the test hospital: login -> password, claims. Groups change at run time.
const PEOPLE = {
  'dr.ward': { password: 'ward-pass-1', name: 'Dr Alex Ward', groups: ['ed-physicians'] },
  'aud.smith': { password: 'smith-pass-1', name: 'Sam Smith', groups: ['compliance'] },
  'nurse.jones': { password: 'jones-pass-1', name: 'Pat Jones', groups: ['ward-7-nurses'] },
};
const subjectOf = (login) => `sub-${crypto.createHash('sha256').update(login).digest('hex').slice(0, 16)}`;
const loginOf = new Map(Object.keys(PEOPLE).map((login) => [subjectOf(login), login]));

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-1', use: 'sig', alg: 'RS256' };

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${title}</title></head>
<body><main><h1>${title}</h1>${body}</main></body></html>`;
}

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const listen = (server, port) => new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const server = http.createServer();
await listen(server, Number(args.port));
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    redirect_uris: args['redirect-uri'],
    post_logout_redirect_uris: args['post-logout-uri'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  pkce: { required: () => true },
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  scopes: ['openid', 'profile', 'email', 'groups'],
  // As Entra ID and Keycloak do: the groups in the ID token itself, not only from userinfo.
  conformIdTokenClaims: false,
  findAccount: async (ctx, sub) => {
    const login = loginOf.get(sub);
    if (!login) return undefined;
    return {
      accountId: sub,
      claims: async () => ({
        sub,
        preferred_username: login,
        name: PEOPLE[login].name,
        email: `${login}@hospital.test`,
        groups: [...PEOPLE[login].groups],
      }),
    };
  },
  // Bedside is the hospital's own application: no consent screen, every scope granted.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email groups');
    grant.addOIDCClaims(['preferred_username', 'name', 'email', 'groups']);
    await grant.save();
    return grant;
  },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = page('Sign out of the hospital sign-in', `${form}
<button autofocus type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>`);
      },
      postLogoutSuccessSource: async (ctx) => {
        ctx.body = page('Signed out of the hospital sign-in', '<p>You are signed out.</p>');
      },
    },
  },
  ttl: { IdToken: 600, AccessToken: 600, Session: 3600, Grant: 3600, Interaction: 600 },
});

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.on('data', (chunk) => { data += chunk; });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.end(body);
}

function loginForm(uid, message = '') {
  return page('Hospital sign-in', `${message ? `<p role="alert">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${uid}/login">
<label>Username <input name="login" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form>`);
}

const callback = provider.callback();

server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    let match = url.pathname.match(/^\/interaction\/([^/]+)$/);
    if (match && req.method === 'GET') {
      const details = await provider.interactionDetails(req, res);
      return send(res, 200, loginForm(details.uid));
    }
    match = url.pathname.match(/^\/interaction\/([^/]+)\/login$/);
    if (match && req.method === 'POST') {
      const details = await provider.interactionDetails(req, res);
      const form = new URLSearchParams(await readBody(req));
      const login = form.get('login') || '';
      const person = PEOPLE[login];
      if (!person || person.password !== form.get('password')) {
        return send(res, 200, loginForm(details.uid, 'Wrong username or password.'));
      }
      return provider.interactionFinished(
        req, res, { login: { accountId: subjectOf(login) } }, { mergeWithLastSubmission: false },
      );
    }
    match = url.pathname.match(/^\/test\/accounts\/([^/]+)\/groups$/);
    if (match && req.method === 'PUT') {
      const login = decodeURIComponent(match[1]);
      if (!PEOPLE[login]) return send(res, 404, 'no such person', 'text/plain');
      const groups = JSON.parse(await readBody(req));
      if (!Array.isArray(groups)) return send(res, 400, 'a JSON list', 'text/plain');
      PEOPLE[login].groups = groups.map(String);
      return send(res, 204, '');
    }
    if (url.pathname === '/test/sign' && req.method === 'POST') {
      const claims = JSON.parse(await readBody(req));
      const key = await importJWK(signingKey, 'RS256');
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: signingKey.kid, typ: 'JWT' })
        .sign(key);
      return send(res, 200, JSON.stringify({ token, subjects: Object.fromEntries(
        Object.keys(PEOPLE).map((login) => [login, subjectOf(login)]),
      ) }), 'application/json');
    }
    return callback(req, res);
  } catch (err) {
    return send(res, 500, `error: ${escapeHtml(err.message)}`, 'text/plain');
  }
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
console.log(`listening on ${port}`);
