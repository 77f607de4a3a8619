// The SPA's settings, read at start from config.json next to index.html (the static server may generate it).
// Nothing here is secret: a browser app has no secret, it is a public OAuth client bound to its origin.

const required = ["tokenService", "clientId"];

/** Loads and checks config.json; throws with a message naming the missing setting. */
export async function loadConfig() {
  const response = await fetch("config.json", { cache: "no-store" });
  if (!response.ok) {
    throw new Error(`config.json could not be loaded (HTTP ${response.status}).`);
  }

  const raw = await response.json();
  for (const key of required) {
    if (typeof raw[key] !== "string" || raw[key] === "") {
      throw new Error(`config.json: "${key}" is required.`);
    }
  }

  const tokenService = raw.tokenService.replace(/\/+$/, "");
  return Object.freeze({
    tokenService,
    // The development IdP of the token service stands in for the institution's IdP.
    devIdp: (raw.devIdp ?? `${tokenService}/dev-idp`).replace(/\/+$/, ""),
    clientId: raw.clientId,
    // Each becomes an `audience` parameter of the token exchange: the API's audience, and the token service's
    // issuer for the sessions routes (granted to the session; each token is for the API or the issuer alone).
    // Empty: the client's registered audiences.
    audiences: Array.isArray(raw.audiences) ? raw.audiences.filter((a) => typeof a === "string" && a !== "") : [],
    // The audience of the tokens for the sessions routes: the token service's issuer (null: use the API token).
    sessionsAudience: typeof raw.sessionsAudience === "string" && raw.sessionsAudience !== "" ? raw.sessionsAudience : null,
    scope: typeof raw.scope === "string" && raw.scope !== "" ? raw.scope : null,
    api: typeof raw.api === "string" && raw.api !== "" ? raw.api : null,
    // DPoP (RFC 9449): bind the tokens and the refresh cookie to a key this browser cannot export. On unless
    // "dpop": false (a token service without DPoP support answers Bearer tokens and the app uses them as such).
    dpop: raw.dpop !== false,
    // Renew this long before the access token expires (at most half its lifetime before).
    refreshLeewaySeconds: Number.isFinite(raw.refreshLeewaySeconds) ? raw.refreshLeewaySeconds : 60,
  });
}
