// The page: sign-in form, home (API call, renewal), "your sessions" (ASVS V7), messages. Routes are URL
// fragments (#home, #sessions) so that a static server with no rewrite rules can serve the app.

import { loadConfig } from "./config.js";
import { OAuthError, SessionEndedError, TokenClient } from "./token-client.js";

const $ = (id) => document.getElementById(id);
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

// One message per answer of the token service (SessionEndedError.reason): each says what happened, so that a
// missing cookie is not reported as a sign-out elsewhere.
const SESSION_END_MESSAGES = {
  ended: "Your session has ended: you were signed out elsewhere (another browser, \"End all other sessions\", an "
    + "administrator or your identity provider). Please sign in again.",
  expired: "Your session has expired. Please sign in again.",
  reused: "Your session was ended for safety: its renewal token was used twice (two tabs at once, or a copy of it). "
    + "Please sign in again.",
  invalid: "The token service no longer knows your session (it may have been restarted). Please sign in again.",
  "no-cookie": "The token service did not receive its sign-in cookie, so your session cannot be renewed. This page and "
    + "the token service must be the same site (the same host name: localhost for both, not 127.0.0.1 for one), and "
    + "the browser must allow the token service's cookie. Please sign in again.",
};

function sessionEndMessage(error) {
  return SESSION_END_MESSAGES[error?.reason] ?? SESSION_END_MESSAGES.ended;
}

let client;
let config;

function showMessage(text, kind = "info") {
  const box = $("message");
  box.textContent = text;
  box.className = kind === "error" ? "message error" : "message";
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.dataset.kind = kind;
  box.hidden = false;
}

function clearMessage() {
  $("message").hidden = true;
  $("message").textContent = "";
  delete $("message").dataset.kind;
}

function describe(error) {
  if (error instanceof SessionEndedError) {
    return sessionEndMessage(error);
  }

  if (error instanceof OAuthError) {
    return `The token service refused: ${error.message}`;
  }

  return `Something went wrong: ${error.message}. Is the service reachable?`;
}

// `load`: fetch the sessions list when that view shows. Not on token renewal, which would loop when the list
// keeps answering 401 (renew, re-render, fetch, 401, renew, ...).
function route({ load = true } = {}) {
  const view = location.hash === "#sessions" ? "sessions" : "home";
  const signedIn = client?.signedIn ?? false;
  document.body.dataset.state = signedIn ? "signed-in" : "signed-out";
  $("nav").hidden = !signedIn;
  $("signed-out").hidden = signedIn;
  $("home").hidden = !signedIn || view !== "home";
  $("sessions").hidden = !signedIn || view !== "sessions";
  $("nav-home").toggleAttribute("aria-current", view === "home");
  $("nav-sessions").toggleAttribute("aria-current", view === "sessions");
  if (view === "home" && signedIn) {
    $("nav-home").setAttribute("aria-current", "page");
  }

  if (view === "sessions" && signedIn) {
    $("nav-sessions").setAttribute("aria-current", "page");
    if (load) {
      loadSessions();
    }
  }
}

function renderTokenState() {
  if (!client.signedIn) {
    return;
  }

  $("user-name").textContent = client.user ?? "(resumed session)";
  for (const [id, date] of [["token-expiry", client.expiresAt], ["token-renewal", client.renewAt]]) {
    $(id).dateTime = date.toISOString();
    $(id).textContent = dateFormat.format(date);
  }
}

async function busy(button, work) {
  button.disabled = true;
  try {
    await work();
  } catch (error) {
    showMessage(describe(error), "error");
  } finally {
    button.disabled = false;
  }
}

async function callApi() {
  if (!config.api) {
    showMessage("No API is configured (\"api\" in config.json).", "error");
    return;
  }

  const response = await client.fetch(config.api);
  const text = await response.text();
  $("api-result").hidden = false;
  $("api-result").textContent = `${response.status} ${response.statusText}\n${prettyJson(text)}`;
  $("api-result").dataset.status = String(response.status);
}

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

// ---- your sessions ------------------------------------------------------------------------------------------

const sessionsUrl = (path = "") => `${config.tokenService}/sessions${path}`;

async function loadSessions() {
  try {
    const response = await client.fetch(sessionsUrl(), {}, { audience: config.sessionsAudience });
    if (!response.ok) {
      throw new Error(`the sessions list answered HTTP ${response.status}`);
    }

    renderSessions((await response.json()).sessions);
  } catch (error) {
    showMessage(describe(error), "error");
  }
}

// What a person tells sessions apart by (the session lists of large identity providers: application, device and
// browser, when signed in and last active). Older token services send neither client_name, device nor
// idle_expires_at: fall back to what they do send.
const applicationOf = (session) => session.client_name || session.client_id;
const deviceOf = (session) => session.device || "Unknown browser";

function renderSessions(sessions) {
  const rows = sessions
    .toSorted((a, b) => Number(b.current) - Number(a.current) || b.last_activity_at.localeCompare(a.last_activity_at))
    .map((session) => {
      const row = document.createElement("tr");
      row.dataset.sid = session.sid;
      row.dataset.current = String(session.current);
      // Every value goes in as text (textContent), never as HTML: names come from configuration and user agents.
      const app = document.createElement("td");
      app.className = "application";
      app.textContent = applicationOf(session);
      if (session.current) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "this browser";
        app.append(badge);
      }

      const device = document.createElement("td");
      device.className = "device";
      device.textContent = deviceOf(session);
      row.append(app, device, dateCell(session.created_at, "signed-in"), dateCell(session.last_activity_at, "last-used"),
        dateCell(session.idle_expires_at ?? session.expires_at, "idle-expiry"), dateCell(session.absolute_expires_at, "absolute-expiry"));
      const action = document.createElement("td");
      const end = document.createElement("button");
      end.type = "button";
      end.className = "small danger end-session";
      end.textContent = session.current ? "Sign out here" : "End";
      end.addEventListener("click", () => busy(end, () => endSession(session)));
      action.append(end);
      row.append(action);
      return row;
    });
  $("session-rows").replaceChildren(...rows);
  $("revoke-others").disabled = sessions.length < 2;
}

function dateCell(iso, name) {
  const cell = document.createElement("td");
  cell.className = name;
  const time = document.createElement("time");
  time.dateTime = iso;
  time.textContent = dateFormat.format(new Date(iso));
  cell.append(time);
  return cell;
}

async function endSession(session) {
  const response = await client.fetch(sessionsUrl(`/${encodeURIComponent(session.sid)}`), { method: "DELETE" }, { audience: config.sessionsAudience });
  if (session.current && (response.ok || response.status === 404)) {
    await client.signOut();
    showMessage("You signed out of this browser.");
    return;
  }

  if (response.status === 404) {
    showMessage("That session had already ended.");
  } else if (!response.ok) {
    throw new Error(`ending the session answered HTTP ${response.status}`);
  } else {
    showMessage(`The session of ${applicationOf(session)} on ${deviceOf(session)}, signed in ${dateFormat.format(new Date(session.created_at))}, has ended.`);
  }

  await loadSessions();
}

async function revokeOthers() {
  const response = await client.fetch(sessionsUrl("/revoke-others"), { method: "POST" }, { audience: config.sessionsAudience });
  if (!response.ok) {
    throw new Error(`ending the other sessions answered HTTP ${response.status}`);
  }

  const { revoked } = await response.json();
  showMessage(revoked === 1 ? "1 other session has ended." : `${revoked} other sessions have ended.`);
  await loadSessions();
}

// ---- start --------------------------------------------------------------------------------------------------

const isIpAddress = (host) => /^[0-9.]+$/.test(host) || host.startsWith("[");

// The site of a host name as SameSite sees it, approximately: an IP address or a one-label name (localhost) is its
// own site; a domain name is taken as its last two labels. Without the public suffix list "example.co.uk" hosts all
// look alike, so this can miss a cross-site pair, never report a same-site pair as cross-site.
function siteOf(host) {
  if (isIpAddress(host) || !host.includes(".")) {
    return host;
  }

  return host.split(".").slice(-2).join(".");
}

/** Null when this page and the token service are the same site; else this page's address on the token service's host. */
function sameSiteAddress(tokenService) {
  const service = new URL(tokenService);
  if (siteOf(service.hostname) === siteOf(location.hostname)) {
    return null;
  }

  const here = new URL(location.href);
  here.hostname = service.hostname;
  here.hash = "";
  return here.toString();
}

function showWrongSite(url) {
  showMessage("", "error");
  const box = $("message");
  const link = document.createElement("a");
  link.href = url;
  link.id = "same-site-link";
  link.textContent = url;
  box.append(
    `This page is open as ${location.origin}, but the token service is ${new URL(config.tokenService).origin}: `
      + "another site, so the browser would not send its sign-in cookie and you would be signed out at the first "
      + "renewal. Open ",
    link,
    " instead.");
}

async function start() {
  try {
    config = await loadConfig();
  } catch (error) {
    document.body.dataset.state = "error";
    showMessage(error.message, "error");
    return;
  }

  // The refresh cookie is SameSite=Strict: a page of another site than the token service (127.0.0.1 against
  // localhost) signs in, then loses the session at the first renewal. Say so now, before anyone signs in.
  const sameSiteUrl = sameSiteAddress(config.tokenService);
  if (sameSiteUrl !== null) {
    document.body.dataset.state = "wrong-site";
    showWrongSite(sameSiteUrl);
    return;
  }

  client = new TokenClient(config);
  client.addEventListener("change", () => {
    renderTokenState();
    route({ load: false });
  });
  client.addEventListener("session-ended", (event) => showMessage(sessionEndMessage(event.detail), "error"));
  client.addEventListener("refresh-failed", () =>
    showMessage("The token service could not be reached to renew your access; retrying shortly.", "error"));

  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearMessage();
    busy($("sign-in"), async () => {
      await client.signIn($("user").value.trim());
      route();
    });
  });
  $("sign-out").addEventListener("click", () => busy($("sign-out"), async () => {
    await client.signOut();
    history.replaceState(null, "", "#home");
    showMessage("You are signed out.");
  }));
  $("call-api").addEventListener("click", () => busy($("call-api"), callApi));
  $("renew").addEventListener("click", () => busy($("renew"), async () => {
    await client.refresh();
    showMessage("The access token was renewed.");
  }));
  $("revoke-others").addEventListener("click", () => busy($("revoke-others"), revokeOthers));
  $("reload-sessions").addEventListener("click", () => busy($("reload-sessions"), loadSessions));
  window.addEventListener("hashchange", () => {
    clearMessage();
    route();
  });

  // A reload lost the access token (memory only); the cookie may still hold the session.
  try {
    await client.resume();
  } catch (error) {
    showMessage(describe(error), "error");
  }

  route();
}

start();
