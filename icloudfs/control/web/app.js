// icloudfs control page: plain JavaScript, no framework, no build step.
// Every piece of data comes from the control plane's API through api(). A remote visitor's
// token is kept in sessionStorage only (see icloudfs/control/routes/web.py).
"use strict";

const TOKEN_KEY = "icloudfs-token";
const REFRESH_MS = 3000;
const TRUST_WARNING_DAYS = 7;
const CONSENT_MESSAGE =
  "Advanced Data Protection is on: Apple asked your trusted devices to allow this sign-in. " +
  "Tap Allow on one of them; the mount goes on by itself.";
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
// A hint from the server, so a remote visitor is asked for a token before any call is made.
const REMOTE = document.documentElement.dataset.caller === "remote";

const STATES = {
  signed_out: ["Signed out", ""],
  needs_password: ["Password needed", "warn"],
  needs_2fa: ["Code needed", "warn"],
  needs_consent: ["Waiting for Allow", "warn"],
  web_access_off: ["Web access off", "error"],
  signed_in: ["Signed in", "ok"],
  session_expired: ["Session expired", "warn"],
  locked: ["Locked", "error"],
  throttled: ["Throttled", "warn"],
};

const $ = (id) => document.getElementById(id);

let timer = null;
let epoch = 0; // only the newest status request may draw
let moved = false; // the server moved to another port: stop polling here
let authView = undefined; // the account state the forms were last laid out for
let settings = null;
let tokens = [];

class ApiError extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

// ---- plumbing -------------------------------------------------------------------------------

async function api(method, path, body) {
  const headers = { Accept: "application/json", "X-Icloudfs-Client": "page" };
  const bearer = sessionStorage.getItem(TOKEN_KEY);
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "The control plane cannot be reached.");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (response.ok) return data;
  const reason = data && typeof data.reason === "string" ? data.reason : `HTTP ${response.status}`;
  if (response.status === 401) {
    askForToken(bearer ? "That token was not accepted: it is unknown or was revoked." : "");
  }
  throw new ApiError(response.status, reason);
}

function say(id, text, kind = "error") {
  const element = $(id);
  element.textContent = text;
  element.className = `message ${text ? kind : ""}`;
}

function setBadge(id, text, kind) {
  const element = $(id);
  element.textContent = text;
  element.className = `${id === "connection" ? "pill" : "badge"} ${kind}`;
}

async function busy(button, work) {
  button.disabled = true;
  try {
    await work();
  } finally {
    button.disabled = false;
  }
}

function bytes(count) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit && value < 10 ? 1 : 0)} ${units[unit]}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- views ----------------------------------------------------------------------------------

function askForToken(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(timer);
  epoch += 1;
  $("dashboard").hidden = true;
  $("forget-token").hidden = true;
  $("token-gate").hidden = false;
  setBadge("connection", "Token needed", "warn");
  say("token-message", message);
  $("token-input").focus();
}

function showDashboard() {
  $("token-gate").hidden = true;
  $("dashboard").hidden = false;
  $("forget-token").hidden = !sessionStorage.getItem(TOKEN_KEY);
  $("settings-card").hidden = REMOTE;
  $("local-only").hidden = !REMOTE;
}

// ---- status ---------------------------------------------------------------------------------

async function refresh() {
  clearTimeout(timer);
  const mine = ++epoch;
  try {
    const status = await api("GET", "/status");
    if (mine !== epoch) return;
    renderStatus(status);
    $("status-error").hidden = true;
    setBadge("connection", "Live", "ok");
  } catch (error) {
    if (mine !== epoch || error.status === 401) return;
    $("status-error").hidden = false;
    $("status-error").textContent = `Status unavailable: ${error.message}`;
    setBadge("connection", error.status === 0 ? "Offline" : "Error", "error");
    if (authView === undefined && error.status > 0) layoutAccount("signed_out"); // signing in may help
  }
  if (!moved) timer = setTimeout(refresh, REFRESH_MS);
}

function renderStatus(status) {
  const mount = status.mount;
  if (mount.mounted) {
    setBadge("mount-badge", mount.read_only ? "Mounted read-only" : "Mounted", "ok");
  } else {
    setBadge("mount-badge", "Not mounted", "");
  }
  $("mount-folder").textContent = mount.mounted ? mount.folder || "/" : "—";
  $("mount-point").textContent = mount.mounted ? mount.mountpoint : "—";

  const cache = status.cache && status.cache.content;
  const percent = cache && cache.bytes_limit ? Math.min(100, (100 * cache.bytes_used) / cache.bytes_limit) : 0;
  $("cache-fill").style.width = `${percent}%`;
  $("cache-bar").setAttribute("aria-valuenow", String(Math.round(percent)));
  $("cache-bar").classList.toggle("full", percent >= 90);
  $("cache-text").textContent = cache
    ? `${bytes(cache.bytes_used)} of ${bytes(cache.bytes_limit)} (${percent.toFixed(percent < 10 ? 1 : 0)}%)`
    : "—";

  const uploads = status.uploads;
  $("uploads-queued").textContent = uploads ? uploads.queued : "—";
  $("uploads-progress").textContent = uploads ? uploads.in_progress : "—";
  $("uploads-failed").textContent = uploads ? uploads.failed : "—";
  $("uploads-failed").classList.toggle("failed", Boolean(uploads && uploads.failed));
  $("uploads-changes-row").hidden = !(uploads && uploads.changes);
  $("uploads-changes").textContent = uploads ? uploads.changes : 0;
  $("last-error").textContent = status.last_error || (uploads && uploads.last_error) || "None";
  $("uploads-paused-row").hidden = !(uploads && uploads.paused);
  $("uploads-paused").textContent = (uploads && uploads.paused) || "";

  renderAccount(status.account);
  $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

// ---- account --------------------------------------------------------------------------------

function renderAccount(account) {
  if (!account) {
    setBadge("account-badge", "None", "");
    $("account-summary").textContent = "No account attached";
    layoutAccount(null);
    return;
  }
  let [label, kind] = STATES[account.auth_state] || [account.auth_state, ""];
  if (account.unreachable_since && account.auth_state === "signed_in") {
    const since = new Date(account.unreachable_since).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    [label, kind] = [`iCloud unreachable since ${since}`, "warn"];
    $("account-badge").title = account.unreachable_cause || "";
  }
  setBadge("account-badge", label, kind);
  $("account-summary").textContent = account.apple_id ? `${account.apple_id} (${label.toLowerCase()})` : label;
  $("signed-in-as").textContent = account.apple_id;
  if (account.apple_id && !$("apple-id").value) $("apple-id").value = account.apple_id;

  const days = account.trust_days_left;
  $("trust-days").textContent = typeof days === "number" ? `${days} day${days === 1 ? "" : "s"} left` : "—";
  $("password-stored").textContent = account.password_stored ? "Yes, in the keyring" : "No";
  const backend = String(account.keyring_backend || "").split(".").pop() || "—";
  $("keyring").textContent = account.keyring_plaintext ? `${backend} (a plain-text file)` : backend;
  $("keyring").classList.toggle("warn-text", Boolean(account.keyring_plaintext));
  const warn = account.auth_state === "signed_in" && typeof days === "number" && days <= TRUST_WARNING_DAYS;
  $("trust-warning").hidden = !warn;
  if (warn) {
    const when = days === 0 ? "today" : `in ${days} day${days === 1 ? "" : "s"}`;
    $("trust-warning").textContent =
      `The trusted session ends ${when}. Sign in again with a two-factor code before then, ` +
      "or the mount stops working.";
  }
  if (account.auth_state !== authView) layoutAccount(account.auth_state);
}

// Show the form that fits the state; only on a change, so typing is never interrupted.
function layoutAccount(state) {
  authView = state;
  $("signed-in").hidden = state !== "signed_in";
  $("code-form").hidden = state !== "needs_2fa";
  $("login-form").hidden = state === null || state === "signed_in" || state === "needs_2fa";
  if (state === null) say("account-message", "No iCloud account is attached to this control plane.", "");
  if (state === "needs_consent") say("account-message", CONSENT_MESSAGE, "");
}

// After a password or a code: signed in, or (Advanced Data Protection) waiting for a device.
function saySignedIn(state) {
  if (state === "needs_consent") say("account-message", CONSENT_MESSAGE, "");
  else say("account-message", "Signed in.", "ok");
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const appleId = $("apple-id").value.trim();
  const password = $("password").value;
  if (!appleId || !password) {
    say("account-message", "Enter your Apple ID and password.");
    return;
  }
  await busy($("login-button"), async () => {
    say("account-message", "Signing in…", "");
    try {
      const result = await api("POST", "/credentials/login", {
        apple_id: appleId,
        password,
        remember: $("remember").checked,
      });
      $("password").value = "";
      layoutAccount(result.auth_state);
      if (result.auth_state === "needs_2fa") {
        say("account-message", "Apple sent a code to your trusted devices.", "ok");
        $("code").focus();
      } else {
        saySignedIn(result.auth_state);
      }
    } catch (error) {
      say("account-message", error.message);
    }
    refresh();
  });
});

$("code-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const code = $("code").value.trim();
  if (!/^[0-9]{6}$/.test(code)) {
    say("account-message", "The code is 6 digits.");
    return;
  }
  await busy($("code-button"), async () => {
    try {
      const result = await api("POST", "/credentials/2fa", { code });
      $("code").value = "";
      layoutAccount(result.auth_state);
      saySignedIn(result.auth_state);
    } catch (error) {
      say("account-message", error.message);
    }
    refresh();
  });
});

$("send-sms").addEventListener("click", async () => {
  await busy($("send-sms"), async () => {
    try {
      await api("POST", "/credentials/2fa/sms");
      say("account-message", "A code was sent by SMS to your trusted phone number.", "ok");
      $("code").focus();
    } catch (error) {
      say("account-message", error.message);
    }
  });
});

$("sign-out").addEventListener("click", async () => {
  await busy($("sign-out"), async () => {
    try {
      const result = await api("POST", "/credentials/logout", {});
      layoutAccount(result.auth_state);
      say("account-message", "Signed out.", "ok");
    } catch (error) {
      say("account-message", error.message);
    }
    refresh();
  });
});

// Back to the password step (a signed-in user renewing trust, or a code step gone wrong).
for (const id of ["sign-in-again", "start-over"]) {
  $(id).addEventListener("click", () => {
    $("signed-in").hidden = true;
    $("code-form").hidden = true;
    $("login-form").hidden = false;
    say("account-message", "");
    $("password").focus();
  });
}

// ---- settings and tokens (local callers only) -----------------------------------------------

async function loadSettings() {
  try {
    settings = await api("GET", "/settings");
  } catch (error) {
    if (error.status === 403) {
      $("settings-card").hidden = true;
      $("local-only").hidden = false;
    } else {
      say("settings-message", error.message);
    }
    return;
  }
  $("port").value = settings.port;
  $("allow-remote").checked = settings.allow_remote;
  $("save-settings").disabled = false; // saving compares with what is loaded
  $("listening").textContent = settings.socket ? `unix:${settings.socket}` : `${settings.host}:${settings.port}`;
  await loadTokens();
}

async function loadTokens() {
  try {
    tokens = await api("GET", "/tokens");
  } catch (error) {
    say("settings-message", error.message);
    return;
  }
  const rows = $("token-rows");
  rows.replaceChildren();
  for (const token of tokens) {
    const row = document.createElement("tr");
    const description = document.createElement("td");
    description.textContent = token.description;
    const created = document.createElement("td");
    created.textContent = new Date(token.created_at).toLocaleString(undefined, {
      dateStyle: "medium",
      timeStyle: "short",
    });
    const actions = document.createElement("td");
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.className = "danger";
    revoke.textContent = "Revoke";
    revoke.setAttribute("aria-label", `Revoke token ${token.description}`);
    revoke.addEventListener("click", () => revokeToken(token, revoke));
    actions.append(revoke);
    row.append(description, created, actions);
    rows.append(row);
  }
  renderTokenPanel();
}

function renderTokenPanel() {
  const remote = $("allow-remote").checked;
  $("token-panel").hidden = !remote;
  $("no-tokens-warning").hidden = !(remote && tokens.length === 0);
  $("no-tokens").hidden = tokens.length > 0;
}

async function revokeToken(token, button) {
  const question = `Revoke token '${token.description}'? Clients using this token will stop working.`;
  if (!window.confirm(question)) return;
  await busy(button, async () => {
    try {
      await api("DELETE", `/tokens/${encodeURIComponent(token.id)}`);
      say("settings-message", `Token '${token.description}' revoked.`, "ok");
    } catch (error) {
      say("settings-message", error.message);
    }
  });
  await loadTokens();
}

$("allow-remote").addEventListener("change", renderTokenPanel);

$("add-token").addEventListener("click", () => {
  $("add-token-form").reset();
  say("add-token-message", "");
  $("add-token-dialog").showModal();
  $("token-description").focus();
});

$("add-token-cancel").addEventListener("click", () => $("add-token-dialog").close());

$("add-token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const description = $("token-description").value.trim();
  if (!description) {
    say("add-token-message", "Describe who will use the token, e.g. “laptop”.");
    return;
  }
  try {
    const created = await api("POST", "/tokens", { description });
    $("add-token-dialog").close();
    showNewToken(created);
  } catch (error) {
    say("add-token-message", error.message);
  }
});

function showNewToken(created) {
  $("new-token-description").textContent = created.description;
  $("new-token-value").value = created.token;
  say("copy-message", "");
  $("new-token-dialog").showModal();
  $("copy-token").focus();
}

// The token cannot be shown again: the dialog closes only through "Done".
$("new-token-dialog").addEventListener("cancel", (event) => event.preventDefault());

$("copy-token").addEventListener("click", async () => {
  const field = $("new-token-value");
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    field.select(); // no async clipboard (e.g. plain http from another machine)
    if (!document.execCommand("copy")) {
      say("copy-message", "Copying failed: the token is selected, copy it with Ctrl+C.", "error");
      return;
    }
  }
  say("copy-message", "Copied to the clipboard.", "ok");
});

$("new-token-done").addEventListener("click", async () => {
  $("new-token-value").value = "";
  $("new-token-dialog").close();
  $("add-token").focus();
  await loadTokens();
});

$("settings-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const port = Number($("port").value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    say("settings-message", "The port must be a whole number from 1 to 65535.");
    return;
  }
  const allowRemote = $("allow-remote").checked;
  const before = settings;
  if (before && before.port === port && before.allow_remote === allowRemote) {
    say("settings-message", "Nothing changed.", "");
    return;
  }
  await busy($("save-settings"), async () => {
    try {
      settings = await api("PUT", "/settings", { port, allow_remote: allowRemote });
    } catch (error) {
      say("settings-message", error.message);
      return;
    }
    if (before && settings.port !== before.port) {
      serverMoved(settings.port);
      return;
    }
    say("settings-message", "Saved. The server is restarting…", "");
    await sleep(700);
    for (let tries = 0; tries < 40; tries += 1) {
      try {
        await api("GET", "/health");
        break;
      } catch {
        await sleep(250);
      }
    }
    await loadSettings();
    const remote = settings.allow_remote ? "on" : "off";
    say("settings-message", `Saved and restarted: remote connections are ${remote}.`, "ok");
  });
});

function serverMoved(port) {
  moved = true;
  clearTimeout(timer);
  epoch += 1;
  const url = new URL("/", window.location.href);
  url.port = String(port);
  const notice = $("restart-notice");
  const link = document.createElement("a");
  link.href = url.href;
  link.id = "new-address";
  link.textContent = url.href;
  notice.replaceChildren("The server restarted on port ", String(port), ". Continue at ", link, ".");
  notice.hidden = false;
  setBadge("connection", "Moved", "warn");
  $("listening").textContent = `${settings.host}:${port}`;
  $("save-settings").hidden = true; // this page's origin is gone: continue at the new one
  say("settings-message", `Saved. The control plane now listens at ${url.href}`, "ok");
  link.focus();
}

// ---- remote visitors ------------------------------------------------------------------------

$("token-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const value = $("token-input").value.trim();
  if (!TOKEN_SHAPE.test(value)) {
    say("token-message", "A token is 43 characters: letters, digits, “-” and “_”.");
    return;
  }
  $("token-input").value = "";
  sessionStorage.setItem(TOKEN_KEY, value);
  try {
    const status = await api("GET", "/status");
    showDashboard();
    renderStatus(status);
    refresh();
  } catch (error) {
    if (error.status !== 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      say("token-message", error.message);
    }
  }
});

$("forget-token").addEventListener("click", () => askForToken("The token was removed from this tab."));

// ---- start ----------------------------------------------------------------------------------

async function start() {
  api("GET", "/health")
    .then((health) => {
      $("version").textContent = `v${health.version}`;
    })
    .catch(() => {});
  if (REMOTE && !sessionStorage.getItem(TOKEN_KEY)) {
    askForToken("");
    return;
  }
  showDashboard();
  await refresh();
  if (!REMOTE) await loadSettings();
}

start();
