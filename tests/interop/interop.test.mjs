// Independent OAuth (oauth4webapi) and JOSE (jose) libraries, unmodified, against the token service in
// Development: discovery, token exchange, refresh with rotation, reuse detection, introspection, revocation,
// access-token verification from the published JWKS, and DPoP against the sample API.
//
// The target: TOKEN_SERVICE_URL when set (a host already running in Development, its issuer that URL: scripts/test.sh
// points it at the Functions app under a real Functions host), else the standalone host started here on a free port.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import * as oauth from 'oauth4webapi';
import * as jose from 'jose';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const serverDll = path.join(root, 'functions', 'TokenService.Server', 'bin', 'Debug', 'net10.0', 'TokenService.Server.dll');
let server;
let issuer;
let as;
const insecure = { [oauth.allowInsecureRequests]: true };
const web = { client_id: 'dev-confidential' };
const webAuth = oauth.ClientSecretBasic('dev-confidential-secret');
const api = { client_id: 'dev-api' };
const apiAuth = oauth.ClientSecretBasic('dev-api-secret');

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  s.on('error', reject);
});

before(async () => {
  if (process.env.TOKEN_SERVICE_URL) {
    issuer = process.env.TOKEN_SERVICE_URL.replace(/\/+$/, '');
    await waitUntilHealthy(`the token service at ${issuer} (TOKEN_SERVICE_URL) does not answer /healthz`);
  } else {
    issuer = await startStandaloneHost();
  }
  as = await oauth.processDiscoveryResponse(new URL(issuer), await oauth.discoveryRequest(new URL(issuer), { algorithm: 'oidc', ...insecure }));
});

async function waitUntilHealthy(failure) {
  for (let i = 0; i < 150; i++) {
    try { if ((await fetch(`${issuer}/healthz`)).ok) return; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(failure);
}

async function startStandaloneHost() {
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  server = spawn('dotnet', [serverDll, '--urls', issuer, '--contentRoot', path.join(root, 'functions', 'TokenService.Server')], {
    env: { ...process.env, ASPNETCORE_ENVIRONMENT: 'Development', TokenService__Issuer: issuer, Keys__DevelopmentKeyPath: path.join(root, 'tests', 'interop', '.devkeys', `keys-${port}.json`) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitUntilHealthy(`the token service did not start at ${issuer} (is it built? dotnet build functions/TokenService.Server)`);
  return issuer;
}

after(() => server?.kill());

async function idToken(sub) {
  const res = await fetch(`${issuer}/dev-idp/id-token`, { method: 'POST', body: new URLSearchParams({ sub }) });
  return (await res.json()).id_token;
}

async function exchange(sub) {
  const response = await oauth.genericTokenEndpointRequest(as, web, webAuth, 'urn:ietf:params:oauth:grant-type:token-exchange', {
    subject_token: await idToken(sub),
    subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
    scope: 'api.read',
  }, insecure);
  return oauth.processGenericTokenEndpointResponse(as, web, response);
}

test('discovery metadata names our issuer and endpoints', () => {
  assert.equal(as.issuer, issuer);
  assert.equal(as.token_endpoint, `${issuer}/oauth2/token`);
  assert.ok(as.grant_types_supported.includes('refresh_token'));
});

test('token exchange issues an RFC 9068 access token that jose verifies from the JWKS', async () => {
  const tokens = await exchange('interop-alice');
  assert.equal(tokens.token_type.toLowerCase(), 'bearer');
  assert.equal(tokens.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token');
  assert.ok(tokens.refresh_token);

  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, jwks, {
    issuer, audience: 'api://dev', typ: 'at+jwt', algorithms: ['RS256'],
  });
  assert.equal(payload.sub, 'interop-alice');
  assert.equal(payload.client_id, 'dev-confidential');
  assert.equal(payload.scope, 'api.read');
  assert.ok(payload.sid && payload.jti);

  const keys = (await (await fetch(as.jwks_uri)).json()).keys;
  const key = keys.find((k) => k.kid === protectedHeader.kid);
  assert.equal(await jose.calculateJwkThumbprint(key), protectedHeader.kid);

  const [h, p, s] = tokens.access_token.split('.');
  const forged = jose.base64url.encode(JSON.stringify({ ...payload, sub: 'admin' }));
  await assert.rejects(jose.jwtVerify(`${h}.${forged}.${s}`, jwks, { issuer }));
});

test('refresh rotates, reuse of the rotated token is invalid_grant and ends the session', async () => {
  const first = await exchange('interop-bob');
  const refreshed = await oauth.processRefreshTokenResponse(as, web, await oauth.refreshTokenGrantRequest(as, web, webAuth, first.refresh_token, insecure));
  assert.notEqual(refreshed.refresh_token, first.refresh_token);

  await assert.rejects(
    oauth.processRefreshTokenResponse(as, web, await oauth.refreshTokenGrantRequest(as, web, webAuth, first.refresh_token, insecure)),
    (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant');
  await assert.rejects(
    oauth.processRefreshTokenResponse(as, web, await oauth.refreshTokenGrantRequest(as, web, webAuth, refreshed.refresh_token, insecure)),
    (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant');
});

test('introspection and revocation work with the library unmodified', async () => {
  const tokens = await exchange('interop-carol');
  const active = await oauth.processIntrospectionResponse(as, api, await oauth.introspectionRequest(as, api, apiAuth, tokens.access_token, insecure));
  assert.equal(active.active, true);
  assert.equal(active.sub, 'interop-carol');
  assert.equal(active.client_id, 'dev-confidential');

  await oauth.processRevocationResponse(await oauth.revocationRequest(as, web, webAuth, tokens.refresh_token, insecure));
  const inactive = await oauth.processIntrospectionResponse(as, api, await oauth.introspectionRequest(as, api, apiAuth, tokens.access_token, insecure));
  assert.equal(inactive.active, false);
  await assert.rejects(
    oauth.processRefreshTokenResponse(as, web, await oauth.refreshTokenGrantRequest(as, web, webAuth, tokens.refresh_token, insecure)),
    (err) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant');
});

// ---- DPoP (RFC 9449) with oauth4webapi's own DPoP handle ------------------------------------------------------

const sampleApiDll = path.join(root, 'samples', 'SampleApi', 'bin', 'Debug', 'net10.0', 'SampleApi.dll');

async function startSampleApi() {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn('dotnet', [sampleApiDll, '--urls', url], {
    env: {
      ...process.env,
      ASPNETCORE_ENVIRONMENT: 'Development',
      SampleApi__Authority: issuer,
      SampleApi__Audience: 'api://dev',
      SampleApi__ClientId: 'dev-api',
      SampleApi__ClientSecret: 'dev-api-secret',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 150; i++) {
    try { if ((await fetch(`${url}/orders`)).status === 401) return { child, url }; } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill();
  throw new Error(`the sample API did not start at ${url} (is it built? dotnet build samples/SampleApi)`);
}

// One retry when the server asks for a nonce (the handle has learnt it from the DPoP-Nonce header).
async function withNonceRetry(request) {
  try {
    return await request();
  } catch (err) {
    if (oauth.isDPoPNonceError(err)) return request();
    throw err;
  }
}

test('DPoP: oauth4webapi binds exchange, refresh and a sample-API call to its key; a copied token is refused', async () => {
  const keyPair = await oauth.generateKeyPair('ES256');
  const DPoP = oauth.DPoP(web, keyPair);
  const jkt = await jose.calculateJwkThumbprint(await jose.exportJWK(keyPair.publicKey));
  const subjectToken = await idToken('interop-dora');

  const exchanged = await withNonceRetry(async () => oauth.processGenericTokenEndpointResponse(as, web,
    await oauth.genericTokenEndpointRequest(as, web, webAuth, 'urn:ietf:params:oauth:grant-type:token-exchange', {
      subject_token: subjectToken,
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      scope: 'api.read',
    }, { ...insecure, DPoP })));
  assert.equal(exchanged.token_type, 'dpop');
  const claims = jose.decodeJwt(exchanged.access_token);
  assert.equal(claims.cnf?.jkt, jkt);
  assert.ok(as.dpop_signing_alg_values_supported?.includes('ES256'));

  // The refresh token is bound to the key: without a proof it is refused, and nothing changes.
  await assert.rejects(
    oauth.processRefreshTokenResponse(as, web, await oauth.refreshTokenGrantRequest(as, web, webAuth, exchanged.refresh_token, insecure)),
    (err) => err instanceof oauth.ResponseBodyError && ['invalid_grant', 'invalid_dpop_proof'].includes(err.error));
  const refreshed = await withNonceRetry(async () => oauth.processRefreshTokenResponse(as, web,
    await oauth.refreshTokenGrantRequest(as, web, webAuth, exchanged.refresh_token, { ...insecure, DPoP })));
  assert.equal(refreshed.token_type, 'dpop');
  assert.equal(jose.decodeJwt(refreshed.access_token).cnf?.jkt, jkt);

  const sampleApi = await startSampleApi();
  try {
    const orders = new URL(`${sampleApi.url}/orders`);
    // protectedResourceRequest throws a WWWAuthenticateChallengeError on a 401 challenge; a nonce request is retried.
    const call = await withNonceRetry(() => oauth.protectedResourceRequest(refreshed.access_token, 'GET', orders, undefined, undefined, { ...insecure, DPoP }));
    assert.equal(call.status, 200);
    assert.equal((await call.json()).user, 'interop-dora');

    // The same token copied to a plain client: as a bearer token, and as DPoP without a proof.
    const asBearer = await fetch(orders, { headers: { authorization: `Bearer ${refreshed.access_token}` } });
    assert.equal(asBearer.status, 401);
    const noProof = await fetch(orders, { headers: { authorization: `DPoP ${refreshed.access_token}` } });
    assert.equal(noProof.status, 401);
    assert.match(noProof.headers.get('www-authenticate') ?? '', /^DPoP/);
  } finally {
    sampleApi.child.kill();
  }
});
