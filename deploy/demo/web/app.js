// Contact Sync reference web client: log in at the SSO service, pick the master device, show
// its contacts with Smart Contacts, and follow its change stream. Plain ES modules, no build.

import { ApiError, NetworkError, requestJson } from "./api.js";
import { backoffDelay, sleep } from "./backoff.js";
import { AddressBook, displayName, entriesOf, matcher } from "./book.js";
import { loadConfig } from "./config.js";
import { ChangeStream } from "./events.js";
import * as store from "./storage.js";

const MAX_RENDERED = 500;
const VIEWS = ["loading-view", "login-view", "devices-view", "contacts-view"];
const $ = (id) => document.getElementById(id);

// Thrown to unwind whatever was running when a 401 sent the page back to the login screen.
class SessionEnded extends Error {
  constructor() {
    super("session ended");
    this.name = "SessionEnded";
  }
}

const state = {
  config: null,
  session: null,
  devices: [],
  device: null,
  book: null,
  syncer: null,
  // Aborted whenever the page leaves a view: stops its stream, retries and requests.
  view: null,
};

// --- small view helpers ----------------------------------------------------------------------

function show(viewId, { focus = true } = {}) {
  for (const id of VIEWS) {
    $(id).hidden = id !== viewId;
  }
  document.documentElement.dataset.view = viewId;
  $("account-nav").hidden = !state.session || viewId === "login-view";
  if (focus) {
    // Move focus to the new view's heading so keyboard and screen-reader users start there.
    $(viewId).querySelector("h1").focus();
  }
}

function setAlert(message) {
  $("alert").textContent = message || "";
}

function setStatus(message, streamState) {
  $("status").textContent = message || "";
  if (streamState !== undefined) {
    $("status").dataset.state = streamState;
  }
}

function newView() {
  stopView();
  state.view = new AbortController();
  return state.view.signal;
}

function stopView() {
  if (state.view) {
    state.view.abort(new DOMException("The view changed.", "AbortError"));
  }
  state.view = null;
  state.syncer = null;
}

function describe(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error && error.message ? error.message : String(error);
}

// --- session ---------------------------------------------------------------------------------

function endSession(message, { alert = true } = {}) {
  stopView();
  store.clearSession();
  state.session = null;
  state.device = null;
  state.book = null;
  $("password").value = "";
  $("contact-list").replaceChildren();
  setAlert(alert ? message : "");
  setStatus(alert ? "Signed out." : message, "stopped");
  show("login-view");
}

async function contactsApi(path, { method = "GET", body, headers, signal } = {}) {
  if (!state.session) throw new SessionEnded();
  try {
    return await requestJson(state.config.contactsUrl + path, {
      method,
      body,
      headers,
      signal,
      token: state.session.token,
    });
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      endSession("Your session has ended (signed out elsewhere or expired). Sign in again.");
      throw new SessionEnded();
    }
    throw error;
  }
}

function loginErrorMessage(error) {
  if (error instanceof ApiError) {
    switch (error.code) {
      case "invalid_credentials":
        return "Sign-in failed: wrong SIP username or password.";
      case "unknown_cloud":
        return "Sign-in failed: that Cloud ID is not known.";
      case "too_many_attempts":
        return "Sign-in failed: too many attempts. Wait a few minutes and try again.";
      default:
        return `Sign-in failed: ${error.message}`;
    }
  }
  if (error instanceof NetworkError) {
    return (
      `Sign-in failed: the sign-in service at ${new URL(state.config.ssoUrl).origin} could not ` +
      `be reached, or it does not accept requests from this page (${location.origin}).`
    );
  }
  return `Sign-in failed: ${describe(error)}`;
}

async function onLogin(event) {
  event.preventDefault();
  const button = $("login-button");
  button.disabled = true;
  setAlert("");
  setStatus("Signing in…");
  try {
    // A JSON body makes the browser ask the SSO (CORS preflight) before sending credentials
    // at all, so a page on an origin the service does not list never submits them.
    const answer = await requestJson(`${state.config.ssoUrl}/v1/tokens`, {
      method: "POST",
      body: {
        cloud_id: $("cloud-id").value.trim(),
        username: $("username").value,
        password: $("password").value,
      },
    });
    state.session = store.saveSession(answer.body);
    $("password").value = "";
    setStatus("Signed in.");
    await enterAccount();
  } catch (error) {
    if (error instanceof SessionEnded) return;
    setStatus("");
    setAlert(loginErrorMessage(error));
  } finally {
    button.disabled = false;
  }
}

async function onLogout() {
  const token = state.session && state.session.token;
  stopView();
  let message = "You are signed out.";
  if (token) {
    try {
      await requestJson(`${state.config.ssoUrl}/v1/revoke`, { method: "POST", body: { token } });
    } catch (error) {
      message =
        "Signed out in this browser, but the sign-in service could not be told " +
        `(${describe(error)}); the token stays valid until it expires.`;
      endSession(message);
      return;
    }
  }
  endSession(message, { alert: false });
}

// --- devices ---------------------------------------------------------------------------------

async function enterAccount({ choose = false } = {}) {
  const signal = newView();
  const account = state.session.account;
  $("account-name").textContent = `${account.username} · ${account.cloud_id}`;
  setStatus("Loading devices…", "stopped");
  let devices;
  try {
    devices = (await contactsApi("/v1/devices", { signal })).body.devices;
  } catch (error) {
    if (error instanceof SessionEnded || signal.aborted) return;
    state.devices = [];
    renderDevices(null);
    setAlert(`Could not load your devices: ${describe(error)}. Press Reload devices to retry.`);
    setStatus("");
    show("devices-view");
    return;
  }
  state.devices = devices;
  const master = store.loadMasterDevice(account);
  const device = devices.find((d) => d.id === master);
  if (device && !choose) {
    setAlert("");
    await openContacts(device);
    return;
  }
  if (master && !device) {
    store.forgetMasterDevice(account);
    setAlert(`Your master device "${master}" no longer exists. Choose another one.`);
  } else {
    setAlert("");
  }
  renderDevices(device ? device.id : null);
  setStatus(devices.length ? "Choose the master device." : "No devices yet.");
  show("devices-view");
}

function renderDevices(selectedId) {
  const list = $("device-list");
  const devices = state.devices;
  $("no-devices").hidden = devices.length > 0;
  $("device-fieldset").hidden = devices.length === 0;
  $("choose-device").hidden = devices.length === 0;
  $("cancel-devices").hidden = !state.device;
  const checked = selectedId || (devices[0] && devices[0].id);
  list.replaceChildren(
    ...devices.map((device) => {
      const label = document.createElement("label");
      label.className = "device-option";
      const input = document.createElement("input");
      input.type = "radio";
      input.name = "device";
      input.value = device.id;
      input.checked = device.id === checked;
      const name = document.createElement("span");
      name.textContent = device.name || device.id;
      const detail = document.createElement("span");
      detail.className = "detail";
      const parts = [device.id];
      if (device.platform) parts.push(device.platform);
      parts.push(`${device.contact_count} contact${device.contact_count === 1 ? "" : "s"}`);
      detail.textContent = parts.join(" · ");
      label.append(input, name, detail);
      return label;
    }),
  );
}

async function onChooseDevice(event) {
  event.preventDefault();
  const chosen = $("device-list").querySelector('input[name="device"]:checked');
  const device = chosen && state.devices.find((d) => d.id === chosen.value);
  if (!device) {
    setAlert("Choose a device first.");
    return;
  }
  store.saveMasterDevice(state.session.account, device.id);
  setAlert("");
  await openContacts(device);
}

function deviceGone() {
  if (!state.session) return;
  const gone = state.device;
  store.forgetMasterDevice(state.session.account);
  state.device = null;
  enterAccount({ choose: true }).then(() => {
    if (gone) setAlert(`The device "${gone.name || gone.id}" was removed. Choose another one.`);
  });
}

// --- contacts --------------------------------------------------------------------------------

// Runs book.update() whenever asked, one at a time, and again if asked meanwhile; a failed
// update is retried with backoff (a change event may never come again to trigger it).
class Syncer {
  constructor(book, signal, { onChanged, onFirstLoad }) {
    this.book = book;
    this.signal = signal;
    this.onChanged = onChanged;
    this.onFirstLoad = onFirstLoad;
    this.loaded = false;
    this.dirty = false;
    this.running = false;
    this.failures = 0;
  }

  request() {
    this.dirty = true;
    if (!this.running) {
      this.loop().catch(() => {});
    }
  }

  async loop() {
    this.running = true;
    try {
      while (this.dirty && !this.signal.aborted) {
        this.dirty = false;
        try {
          const changed = await this.book.update();
          this.failures = 0;
          if (changed) this.onChanged();
          if (!this.loaded) {
            this.loaded = true;
            this.onFirstLoad();
          }
        } catch (error) {
          if (error instanceof SessionEnded || this.signal.aborted) return;
          if (error instanceof ApiError && error.status === 404) {
            deviceGone();
            return;
          }
          const delay = backoffDelay(this.failures);
          this.failures += 1;
          setStatus(
            `Could not update the contacts: ${describe(error)}. Retrying in ` +
              `${Math.ceil(delay / 1000)} s.`,
          );
          await sleep(delay, this.signal);
          this.dirty = true;
        }
      }
    } finally {
      this.running = false;
    }
  }
}

async function openContacts(device) {
  const signal = newView();
  state.device = device;
  const book = new AddressBook(device.id, (path, headers) =>
    contactsApi(path, { headers, signal }),
  );
  state.book = book;
  $("contacts-heading").textContent = `Contacts of ${device.name || device.id}`;
  $("device-summary").textContent = "";
  $("search").value = "";
  $("contact-list").replaceChildren();
  $("result-count").textContent = "Loading contacts…";
  show("contacts-view");

  const stream = new ChangeStream({
    url: `${state.config.contactsUrl}/v1/devices/${encodeURIComponent(device.id)}/events`,
    getToken: () => state.session.token,
    // The revision the page has applied, not the last id seen: if fetching a change failed,
    // the service sends it again on reconnect.
    getLastEventId: () => book.revision,
    onChange: () => syncer.request(),
    onState: ({ state: streamState, delay, reason }) => {
      if (streamState === "live") setStatus("Live updates on.", "live");
      else if (streamState === "connecting") setStatus("Connecting to live updates…", "connecting");
      else {
        setStatus(
          `Live updates interrupted (${reason}); reconnecting in ${Math.ceil(delay / 1000)} s.`,
          "reconnecting",
        );
      }
    },
    onUnauthorized: () =>
      endSession("Your session has ended (signed out elsewhere or expired). Sign in again."),
    // 404: the device is gone, or this Contacts service has no change stream at all.
    onGone: async () => {
      try {
        await contactsApi(`/v1/devices/${encodeURIComponent(device.id)}`, { signal });
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) deviceGone();
        return;
      }
      setStatus("Live updates are not available from this service: use Refresh.", "unavailable");
    },
    signal,
  });
  const syncer = new Syncer(book, signal, {
    onChanged: renderContacts,
    // The stream opens once the page knows its revision, so it can send Last-Event-ID.
    onFirstLoad: () => stream.start(),
  });
  state.syncer = syncer;
  syncer.request();
}

function renderContacts() {
  const book = state.book;
  if (!book || book.revision === null) return;
  const query = $("search").value;
  const all = [...book.contacts.values()];
  const collator = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });
  const hits = all
    .filter(matcher(query))
    .map((contact) => [displayName(contact), contact])
    .sort((a, b) => collator.compare(a[0], b[0]));
  $("contact-list").replaceChildren(
    ...hits.slice(0, MAX_RENDERED).map(([name, contact]) =>
      contactItem(name, contact, book.smart[contact.contactId]),
    ),
  );
  const total = `${all.length} contact${all.length === 1 ? "" : "s"}`;
  let count = query.trim() ? `${hits.length} of ${total} match “${query.trim()}”.` : `${total}.`;
  if (hits.length > MAX_RENDERED) {
    count += ` Showing the first ${MAX_RENDERED}; refine the search to see others.`;
  }
  $("result-count").textContent = count;
  $("device-summary").textContent = `Device ${state.device.id} · revision ${book.revision}`;
}

function contactItem(name, contact, matches) {
  const item = document.createElement("li");
  item.className = "contact";
  item.dataset.contactId = contact.contactId;
  const head = document.createElement("div");
  head.className = "contact-head";
  const title = document.createElement("span");
  title.className = "contact-name";
  title.textContent = name;
  head.append(title);
  const onNet = new Map();
  for (const match of Array.isArray(matches) ? matches : []) {
    if (match && match.username && !onNet.has(match.username)) {
      onNet.set(match.username, match.sip_uri);
    }
  }
  for (const [username, sipUri] of onNet) {
    const badge = document.createElement("span");
    badge.className = "smart-badge";
    badge.textContent = `On-net: ${username}`;
    if (sipUri) badge.title = sipUri;
    head.append(badge);
  }
  item.append(head);
  const entries = entriesOf(contact).filter((entry) => entry.uri);
  if (entries.length) {
    const list = document.createElement("ul");
    list.className = "contact-entries";
    for (const entry of entries) {
      const li = document.createElement("li");
      if (entry.label || entry.type) {
        const label = document.createElement("span");
        label.className = "entry-label";
        label.textContent = `${entry.label || entry.type}:`;
        li.append(label);
      }
      li.append(document.createTextNode(String(entry.uri)));
      list.append(li);
    }
    item.append(list);
  }
  return item;
}

// --- start -----------------------------------------------------------------------------------

function wire() {
  $("login-form").addEventListener("submit", onLogin);
  $("logout-button").addEventListener("click", onLogout);
  $("settings-button").addEventListener("click", () => enterAccount({ choose: true }));
  $("devices-form").addEventListener("submit", onChooseDevice);
  $("reload-devices").addEventListener("click", () => enterAccount({ choose: true }));
  $("cancel-devices").addEventListener("click", () => {
    if (state.device) openContacts(state.device);
  });
  $("search").addEventListener("input", renderContacts);
  $("refresh-button").addEventListener("click", () => state.syncer && state.syncer.request());
  // Back in a tab that was hidden: check at once (a revoked token shows now, not at the next
  // stream re-check).
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.syncer) state.syncer.request();
  });
}

async function main() {
  wire();
  try {
    state.config = await loadConfig();
  } catch (error) {
    $("loading-heading").textContent = "Contact Sync is not configured";
    setAlert(`This page could not load its configuration (config.json): ${describe(error)}`);
    return;
  }
  state.session = store.loadSession();
  if (!state.session) {
    show("login-view", { focus: false });
    return;
  }
  await enterAccount();
}

main();
