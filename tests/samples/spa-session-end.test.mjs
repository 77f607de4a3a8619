// The SPA sample's token client (samples/spa/js/token-client.js) tells the token service's refresh answers apart
// a missing cookie is not "signed out elsewhere", an expiry is not a revocation. Each server
// description below is checked to still be in the server's source, so a reworded answer fails here, not silently
// in the browser. Run by scripts/test.sh (node --test tests/samples/).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const { sessionEndReason } = await import("../../samples/spa/js/token-client.js");

const server = await Promise.all(
  [
    "functions/TokenService/Sessions/SessionService.cs",
    "functions/TokenService/Endpoints/TokenEndpoint.cs",
    "functions/TokenService/TokenRequests/TokenRequestValidator.cs",
  ]
    .map((path) => readFile(fileURLToPath(new URL(`../../${path}`, import.meta.url)), "utf8")),
).then((texts) => texts.join("\n"));

const answers = [
  ["invalid_request", "refresh_token is required.", "no-cookie"],
  ["invalid_grant", "The session has ended.", "ended"],
  ["invalid_grant", "The session has expired.", "expired"],
  ["invalid_grant", "The refresh token has expired.", "expired"],
  ["invalid_grant", "The refresh token has already been used; the session has been revoked.", "reused"],
  ["invalid_grant", "The refresh token is invalid.", "invalid"],
  ["invalid_grant", "The refresh token was not issued to this client.", "invalid"],
];

for (const [error, description, reason] of answers) {
  test(`${error} "${description}" is "${reason}"`, () => {
    assert.ok(server.includes(`"${description}"`), `the token service no longer answers "${description}"`);
    assert.equal(sessionEndReason(error, description), reason);
  });
}

test("an answer without a description is an unknown session, not a sign-out elsewhere", () => {
  assert.equal(sessionEndReason("invalid_grant", undefined), "invalid");
});
