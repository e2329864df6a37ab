// The service URLs come from config.json next to the page, written by whoever serves it
// (deploy/demo/web_server.py in development), so the same files work for every deployment.

const CONFIG_TIMEOUT_MS = 10000;

function baseUrl(value, name) {
  let url;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`config.json: ${name} is not a URL`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new Error(`config.json: ${name} must be an http(s) URL`);
  }
  return url.href.replace(/\/+$/, "");
}

export async function loadConfig() {
  const response = await fetch("config.json", {
    cache: "no-store",
    signal: AbortSignal.timeout(CONFIG_TIMEOUT_MS),
  });
  if (!response.ok) {
    throw new Error(`config.json answered HTTP ${response.status}`);
  }
  const data = await response.json();
  return {
    ssoUrl: baseUrl(data.ssoUrl, "ssoUrl"),
    contactsUrl: baseUrl(data.contactsUrl, "contactsUrl"),
  };
}
