// The OAuth side of the SPA: sign-in by token exchange, silent refresh, sign-out, and fetch with the bearer token.
//
// Where the secrets live:
// - the access token: only in a private field of this object, never in localStorage, sessionStorage, a cookie
//   or the DOM, so that it is gone when the tab closes and a script injected later cannot find it in storage;
// - the refresh token: never in this page at all. The token service sets it as the cookie __Host-refresh_token
//   (HttpOnly; Secure; SameSite=Strict; Path=/) on its own origin, and the browser sends it back on our
//   credentialed requests to the token endpoint. This page cannot read it (HttpOnly) and pages of other sites
//   cannot make the browser send it (SameSite=Strict); pages of other origins of this site are refused by the
//   token service, which answers spa clients only from their registered origins.
// - with DPoP (RFC 9449, `dpop` in config.json, on by default): both are bound to a key pair whose private key
//   cannot be exported from this browser (js/dpop.js). Every token request and API call carries a proof signed
//   with it, so a copied access token or refresh cookie is refused anywhere else.

import { asksForNonce, DpopKey } from "./dpop.js";

const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token";

/**
 * The session is over (refresh answered invalid_grant, or the cookie is gone): the user must sign in again.
 * `reason` says which answer it was, so that the page can say what happened rather than one message for all:
 * - "ended": the session was ended (sign-out elsewhere, "End all other sessions", an administrator, an IdP event);
 * - "expired": its idle or absolute deadline passed, or its refresh token expired;
 * - "reused": a refresh token was presented twice (another tab racing, or a copy), so the session was revoked;
 * - "invalid": the token service does not know the token (for example restarted with in-memory sessions);
 * - "no-cookie": the browser sent no refresh cookie at all ("refresh_token is required").
 */
export class SessionEndedError extends Error {
  constructor(description, reason = "ended") {
    super(description || "The session has ended.");
    this.name = "SessionEndedError";
    this.reason = reason;
  }
}

/** Which of the token service's refresh answers (TokenEndpoint, SessionService) this is; see SessionEndedError. */
export function sessionEndReason(error, description) {
  if (error === "invalid_request") {
    return "no-cookie";
  }

  const text = String(description ?? "");
  if (/already been used/i.test(text)) {
    return "reused";
  }

  if (/expired/i.test(text)) {
    return "expired";
  }

  if (/has ended/i.test(text)) {
    return "ended";
  }

  return "invalid";
}

// Set while this browser may hold a session (from sign-in until sign-out or the session's end), so that a page
// load asks the token service only then: a signed-out load would otherwise send a renewal without a cookie, which
// the token service rightly answers 400, and the browser logs that in red in the console. Not a credential: it
// only says "try to resume".
const MAY_HAVE_SESSION = "spa.may-have-session";

/** An OAuth error answer (RFC 6749 §5.2) other than a session end. */
export class OAuthError extends Error {
  constructor(status, error, description) {
    super(description || error || `HTTP ${status}`);
    this.name = "OAuthError";
    this.status = status;
    this.error = error;
  }
}

/**
 * Events: "change" (signed in, renewed or signed out), "session-ended" (detail: the SessionEndedError, whose
 * `reason` says which answer ended it),
 * "refresh-failed" (detail: the error; the token service could not be reached, renewal is retried).
 */
export class TokenClient extends EventTarget {
  #config;
  #accessToken = null;
  #tokenType = "Bearer";
  #dpop = null;
  #clockWasOff = false;
  #expiresAt = 0; // ms since the epoch, by this browser's clock
  #renewAt = 0;
  #timer = 0;
  #refreshing = null;
  #user = null;
  // Tokens for other audiences of the same session (the token service's issuer, for the sessions routes): the
  // token service never puts the issuer and an API into one token, so a refresh asks for it alone (RFC 8707).
  #audienceTokens = new Map();

  constructor(config) {
    super();
    this.#config = config;
    this.#dpop = config.dpop ? new DpopKey(`${config.tokenService} ${config.clientId}`) : null;
    // Background tabs throttle timers: on return, renew at once when the token is due.
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.#accessToken !== null && Date.now() >= this.#renewAt) {
        this.refresh().catch(() => {});
      }
    });
  }

  get signedIn() { return this.#accessToken !== null; }
  get user() { return this.#user; }
  get expiresAt() { return new Date(this.#expiresAt); }
  get renewAt() { return new Date(this.#renewAt); }

  /** Signs in as `subject` at the development IdP, then exchanges its ID token for our tokens (RFC 8693). */
  async signIn(subject) {
    const idp = await fetch(`${this.#config.devIdp}/id-token`, {
      method: "POST",
      body: new URLSearchParams({ sub: subject }),
      cache: "no-store",
    });
    // The development IdP is the token service itself: its Date dates the exchange's DPoP proof on the server's
    // clock, so that a browser whose clock is off is not refused once first (a page no longer asks the token service
    // anything at a signed-out load, which used to teach it the server's time).
    if (new URL(this.#config.devIdp).origin === new URL(this.#config.tokenService).origin) {
      this.#dpop?.adjustClock(idp);
    }

    const minted = await idp.json().catch(() => ({}));
    if (!idp.ok || typeof minted.id_token !== "string") {
      throw new OAuthError(idp.status, minted.error, minted.error_description || "The development IdP refused the sign-in.");
    }

    const form = new URLSearchParams({
      grant_type: TOKEN_EXCHANGE,
      subject_token: minted.id_token,
      subject_token_type: ID_TOKEN_TYPE,
      client_id: this.#config.clientId,
    });
    if (this.#config.scope) {
      form.set("scope", this.#config.scope);
    }

    for (const audience of this.#config.audiences) {
      form.append("audience", audience);
    }

    await this.#tokenRequest(form);
    // The ID token is meant for this client: its subject names the user on screen. The name is kept for this
    // tab only (sessionStorage) so that a reload, which renews through the cookie, can show it again; it is not
    // a credential.
    this.#user = idTokenSubject(minted.id_token) ?? subject;
    sessionStorage.setItem("spa.user", this.#user);
    localStorage.setItem(MAY_HAVE_SESSION, "1");
    this.#changed();
  }

  /**
   * After a reload the access token is gone (memory only) but the cookie may still hold a live session: renew
   * through it. Returns false, quietly, when there is no session to resume.
   */
  async resume() {
    if (localStorage.getItem(MAY_HAVE_SESSION) === null) {
      return false;
    }

    try {
      await this.refresh();
      return true;
    } catch (error) {
      // No cookie: never signed in here. An ended session was announced by the "session-ended" event.
      if (error instanceof SessionEndedError) {
        return false;
      }

      throw error;
    }
  }

  /**
   * Renews the access token with the refresh-token cookie (RFC 6749 §6; the token service rotates the cookie).
   * Concurrent calls share one request, and tabs of this origin take turns (Web Locks): two renewals racing with
   * the same cookie would look like refresh-token reuse, which ends the session.
   */
  refresh() {
    this.#refreshing ??= this.#withLock(() => this.#tokenRequest(new URLSearchParams({
      grant_type: "refresh_token",
      client_id: this.#config.clientId,
    }))).finally(() => { this.#refreshing = null; });
    return this.#refreshing;
  }

  /** Ends the session at the token service (RFC 7009; the cookie is the token) and forgets the access token. */
  async signOut() {
    try {
      // RFC 7009 has no DPoP rule; the token service ends the session the cookie names.
      await fetch(`${this.#config.tokenService}/oauth2/revoke`, {
        method: "POST",
        body: new URLSearchParams({ client_id: this.#config.clientId }),
        credentials: "include",
        cache: "no-store",
      });
    } finally {
      this.#clear();
      localStorage.removeItem(MAY_HAVE_SESSION);
      // The next session gets a new key.
      await this.#dpop?.forget().catch(() => {});
      this.#changed();
    }
  }

  /**
   * fetch() with the access token as a bearer token. A 401 means the token expired or was revoked: renew once
   * and retry. Throws SessionEndedError when the session is over.
   */
  async fetch(url, init = {}, { audience = null } = {}) {
    if (this.#accessToken === null) {
      throw new SessionEndedError("Not signed in.");
    }

    if (audience !== null) {
      return this.#fetchFor(audience, url, init);
    }

    if (Date.now() >= this.#expiresAt) {
      await this.refresh();
    }

    let response = await this.#send(url, init, this.#accessToken, this.#tokenType);
    if (response.status === 401) {
      await this.refresh();
      response = await this.#send(url, init, this.#accessToken, this.#tokenType);
    }

    return response;
  }

  // fetch() with a token for `audience` alone, obtained by a refresh that asks for it (and cached until expiry).
  async #fetchFor(audience, url, init) {
    let entry = this.#audienceTokens.get(audience);
    if (!entry || Date.now() >= entry.expiresAt) {
      entry = await this.#renewFor(audience);
    }

    let response = await this.#send(url, init, entry.token, entry.tokenType);
    if (response.status === 401) {
      entry = await this.#renewFor(audience);
      response = await this.#send(url, init, entry.token, entry.tokenType);
    }

    return response;
  }

  async #renewFor(audience) {
    const body = await this.#withLock(() => this.#tokenRequest(new URLSearchParams({
      grant_type: "refresh_token",
      client_id: this.#config.clientId,
      audience,
    }), { keep: false }));
    const entry = { token: body.access_token, tokenType: body.token_type, expiresAt: Date.now() + Math.max(1, Number(body.expires_in) || 0) * 1000 };
    this.#audienceTokens.set(audience, entry);
    return entry;
  }

  // One API call with the access token: `Authorization: Bearer`, or for a DPoP-bound token `Authorization: DPoP`
  // with a proof whose `ath` is the token's hash (RFC 9449 §7.1), again once when the API asks for a nonce (§9).
  async #send(url, init, token, tokenType) {
    const method = init.method ?? "GET";
    const bound = this.#dpop !== null && String(tokenType).toLowerCase() === "dpop";
    const request = async () => {
      const headers = new Headers(init.headers);
      headers.set("Authorization", `${bound ? "DPoP" : "Bearer"} ${token}`);
      if (bound) {
        headers.set("DPoP", await this.#dpop.proof(method, url, token));
      }

      // No cookies to APIs: the token (and its proof) is the credential.
      const response = await fetch(url, { ...init, headers, credentials: "omit", cache: "no-store" });
      if (bound) {
        this.#dpop.remember(url, response);
      }

      return response;
    };

    const response = await request();
    return bound && await asksForNonce(response) ? request() : response;
  }

  async #withLock(work) {
    return navigator.locks
      ? navigator.locks.request(`token-service-refresh:${this.#config.clientId}`, work)
      : work();
  }

  // keep: false when the answer is a token for another audience (kept by the caller), not the page's own token.
  async #tokenRequest(form, { keep = true } = {}) {
    let response;
    try {
      // credentials: "include" lets the browser store the Set-Cookie of this cross-origin answer and send the
      // cookie on renewal; the token service answers CORS with credentials for our origin only.
      response = await this.#postToken(form);
      // Once more with a nonce the server asked for, or when the proof was refused and this browser's clock turned out
      // to be off (its iat outside the server's window).
      if (this.#dpop !== null && (await asksForNonce(response) || (this.#clockWasOff && await refusedProof(response)))) {
        response = await this.#postToken(form);
      }
    } catch (networkError) {
      this.#retryLater(networkError);
      throw networkError;
    }

    const body = await response.json().catch(() => ({}));
    if (response.ok && typeof body.access_token === "string") {
      if (keep) {
        this.#accept(body);
      }

      return body;
    }

    const renewing = form.get("grant_type") === "refresh_token";
    if (renewing && (body.error === "invalid_grant" || (body.error === "invalid_request" && response.status === 400))) {
      // invalid_grant: the session was ended (sign-out elsewhere, "end all other sessions", an administrator, an
      // IdP event), expired, or a rotated token was reused. invalid_request: no cookie at all, which after a
      // sign-in means the browser did not keep or send it (the page and the token service are not same-site).
      const wasSignedIn = this.#accessToken !== null;
      this.#clear();
      localStorage.removeItem(MAY_HAVE_SESSION);
      const ended = new SessionEndedError(body.error_description, sessionEndReason(body.error, body.error_description));
      ended.noCookie = body.error === "invalid_request";
      if (wasSignedIn || body.error === "invalid_grant") {
        this.dispatchEvent(new CustomEvent("session-ended", { detail: ended }));
        this.#changed();
      }

      throw ended;
    }

    const failure = new OAuthError(response.status, body.error, body.error_description);
    if (renewing && (response.status >= 500 || response.status === 429)) {
      this.#retryLater(failure);
    }

    throw failure;
  }

  async #postToken(form) {
    const url = `${this.#config.tokenService}/oauth2/token`;
    const headers = new Headers();
    if (this.#dpop !== null) {
      // RFC 9449 §5: the proof binds the tokens, and the session's refresh cookie, to this browser's key.
      headers.set("DPoP", await this.#dpop.proof("POST", url));
    }

    const response = await fetch(url, { method: "POST", body: form, headers, credentials: "include", cache: "no-store" });
    this.#dpop?.remember(url, response);
    this.#clockWasOff = this.#dpop?.adjustClock(response) ?? false;
    return response;
  }

  #accept(body) {
    const lifetime = Math.max(1, Number(body.expires_in) || 0);
    const now = Date.now();
    this.#accessToken = body.access_token;
    this.#tokenType = body.token_type ?? "Bearer";
    this.#expiresAt = now + lifetime * 1000;
    // Shortly before expiry: the configured leeway, but never earlier than half the lifetime.
    const renewIn = Math.max(lifetime - this.#config.refreshLeewaySeconds, lifetime / 2);
    this.#renewAt = now + renewIn * 1000;
    this.#user ??= sessionStorage.getItem("spa.user");
    this.#schedule(renewIn * 1000);
    this.#changed();
  }

  #schedule(delayMs) {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.refresh().catch(() => {}), delayMs);
  }

  // The token service is unreachable or overloaded: keep the current token while it lasts and try again soon.
  #retryLater(error) {
    if (this.#accessToken !== null) {
      this.dispatchEvent(new CustomEvent("refresh-failed", { detail: error }));
      this.#schedule(10_000);
    }
  }

  #clear() {
    clearTimeout(this.#timer);
    this.#accessToken = null;
    this.#tokenType = "Bearer";
    this.#audienceTokens.clear();
    this.#expiresAt = 0;
    this.#renewAt = 0;
    this.#user = null;
    sessionStorage.removeItem("spa.user");
  }

  #changed() {
    this.dispatchEvent(new Event("change"));
  }
}

/** True for the token endpoint's `invalid_dpop_proof` (RFC 9449 §5). */
async function refusedProof(response) {
  if (response.status !== 400) {
    return false;
  }

  const body = await response.clone().json().catch(() => ({}));
  return body.error === "invalid_dpop_proof";
}

/** The claims of a JWT, read without checking it (for display only), or null. */
function claimsOf(jwt) {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(payload), (c) => c.charCodeAt(0))));
  } catch {
    return null;
  }
}

/** The `sub` of an ID token, for display only (the token came straight from the IdP; nothing is decided on it). */
function idTokenSubject(idToken) {
  const sub = claimsOf(idToken)?.sub;
  return typeof sub === "string" ? sub : null;
}
