// What the page keeps in the browser.
//
// The token lives in sessionStorage: it survives a reload of this tab but is gone when the tab
// closes, and no other tab or window reads it. localStorage would keep a 90-day bearer token on
// disk for every later visitor of this browser profile. (Script injection could read either;
// the strict CSP is the defence against that.) The master-device choice is not a secret and
// is kept per account in localStorage, so it is remembered across reloads and sessions.

const SESSION_KEY = "contact-sync.session";
const MASTER_PREFIX = "contact-sync.master-device.";

export function loadSession() {
  let session;
  try {
    session = JSON.parse(sessionStorage.getItem(SESSION_KEY));
  } catch {
    session = null;
  }
  if (!session || typeof session.token !== "string" || !session.account) {
    return null;
  }
  if (typeof session.expiresAt === "number" && session.expiresAt <= Date.now()) {
    clearSession();
    return null;
  }
  return session;
}

export function saveSession(login) {
  const session = {
    token: login.token,
    account: login.account,
    expiresAt: Date.now() + Number(login.expires_in || 0) * 1000,
  };
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  return session;
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

function masterKey(account) {
  return MASTER_PREFIX + encodeURIComponent(account.cloud_id) + "/" +
    encodeURIComponent(account.username);
}

export function loadMasterDevice(account) {
  return localStorage.getItem(masterKey(account));
}

export function saveMasterDevice(account, deviceId) {
  localStorage.setItem(masterKey(account), deviceId);
}

export function forgetMasterDevice(account) {
  localStorage.removeItem(masterKey(account));
}
