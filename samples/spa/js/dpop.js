// DPoP (RFC 9449) for the SPA: a P-256 key pair made by WebCrypto with a private key that cannot be exported, kept
// in IndexedDB so that a reload (which renews through the refresh cookie) proves the same key, and the proofs
// that go with every token request and API call.
//
// What this protects: a token or the refresh cookie copied out of the browser (a leaking proxy or log, a copied
// cookie jar, an XSS payload that reads memory and sends the token elsewhere) is useless without the key, and the
// key cannot leave the browser. What it does not: a script running in this page can still ask the browser to sign
// proofs while the page is open (see docs/dpop.md).

const DB_NAME = "token-service-dpop";
const STORE = "keys";

/** base64url without padding (RFC 7515 §2). */
export function base64url(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) {
    binary += String.fromCharCode(byte);
  }

  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

const utf8 = (text) => new TextEncoder().encode(text);

function openDatabase() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore(mode, work) {
  const db = await openDatabase();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const request = work(transaction.objectStore(STORE));
      transaction.oncomplete = () => resolve(request?.result);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
  } finally {
    db.close();
  }
}

/**
 * The proof key of one client at one token service. `load` reuses the stored pair (same key after a reload, as
 * the session's refresh token is bound to it) or makes one; `forget` deletes it at sign-out, so the next session
 * gets a new key.
 */
export class DpopKey {
  #name;
  #pair = null;
  #jwk = null;
  // The last DPoP-Nonce each server gave (RFC 9449 §8, §9), by origin.
  #nonces = new Map();
  // How far this browser's clock is behind the token service's (ms), learnt from its Date headers: servers refuse a
  // proof whose iat is outside a short window (RFC 9449 §4.3, §11.1), and the clocks of users' machines drift.
  #skewMs = 0;

  constructor(name) {
    this.#name = name;
  }

  async load() {
    if (this.#pair !== null) {
      return;
    }

    let pair = await withStore("readonly", (store) => store.get(this.#name));
    if (!pair) {
      // extractable: false: exportKey of the private key fails; CryptoKey objects survive IndexedDB as they are
      // (structured clone), still not extractable. The public key is always exportable, as WebCrypto defines.
      pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
      await withStore("readwrite", (store) => store.put(pair, this.#name));
    }

    const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
    this.#jwk = { kty, crv, x, y };
    this.#pair = pair;
  }

  async forget() {
    this.#pair = null;
    this.#jwk = null;
    this.#nonces.clear();
    await withStore("readwrite", (store) => store.delete(this.#name));
  }

  /**
   * Aligns proof times with the server's clock from a response's `Date` header (1 s resolution, so differences
   * under 5 s are left alone). True when the clocks were further apart than that: a refused proof may then be
   * sent again with the corrected time.
   */
  adjustClock(response) {
    const serverTime = Date.parse(response.headers.get("Date") ?? "");
    if (!Number.isFinite(serverTime)) {
      return false;
    }

    const skew = serverTime - Date.now();
    if (Math.abs(skew - this.#skewMs) <= 5_000) {
      return false;
    }

    this.#skewMs = skew;
    return true;
  }

  /** Remembers a `DPoP-Nonce` response header for the response's origin. */
  remember(url, response) {
    const nonce = response.headers.get("DPoP-Nonce");
    if (nonce) {
      this.#nonces.set(new URL(url).origin, nonce);
    }
  }

  /**
   * A DPoP proof JWT (RFC 9449 §4.2) for `method` on `url` (htu: without query and fragment), with `ath` when an
   * access token goes with it (§4.2, §7).
   */
  async proof(method, url, accessToken = null) {
    await this.load();
    const target = new URL(url);
    const htu = `${target.origin}${target.pathname}`;
    const header = { typ: "dpop+jwt", alg: "ES256", jwk: this.#jwk };
    const payload = {
      jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
      htm: method.toUpperCase(),
      htu,
      iat: Math.floor((Date.now() + this.#skewMs) / 1000),
    };
    const nonce = this.#nonces.get(target.origin);
    if (nonce) {
      payload.nonce = nonce;
    }

    if (accessToken !== null) {
      payload.ath = base64url(await crypto.subtle.digest("SHA-256", utf8(accessToken)));
    }

    const input = `${base64url(utf8(JSON.stringify(header)))}.${base64url(utf8(JSON.stringify(payload)))}`;
    // WebCrypto's ECDSA signature is R‖S (IEEE P1363), which is exactly the JWS form for ES256 (RFC 7518 §3.4).
    const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, this.#pair.privateKey, utf8(input));
    return `${input}.${base64url(signature)}`;
  }
}

/**
 * True when the answer asks for a nonce: `use_dpop_nonce` in the token endpoint's error JSON (RFC 9449 §8) or in
 * a resource server's `WWW-Authenticate: DPoP error="use_dpop_nonce"` (§9).
 */
export async function asksForNonce(response) {
  if (!response.headers.get("DPoP-Nonce")) {
    return false;
  }

  if (response.status === 401) {
    return /error="use_dpop_nonce"/.test(response.headers.get("WWW-Authenticate") ?? "");
  }

  if (response.status === 400) {
    const body = await response.clone().json().catch(() => ({}));
    return body.error === "use_dpop_nonce";
  }

  return false;
}
