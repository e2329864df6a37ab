// One device's address book as the page holds it: the full list once, then the changes
// `?since=` the revision it has, with If-None-Match so an unchanged answer costs a 304.

import { ApiError } from "./api.js";

export class AddressBook {
  constructor(deviceId, fetchJson) {
    this.deviceId = deviceId;
    this.fetchJson = fetchJson; // (path, headers) -> {status, headers, body}
    this.revision = null;
    this.contacts = new Map();
    this.smart = {};
    this.etag = null;
    this.etagPath = null;
  }

  path(since) {
    const base = `/v1/devices/${encodeURIComponent(this.deviceId)}/contacts`;
    return since === null ? base : `${base}?since=${encodeURIComponent(since)}`;
  }

  async get(since) {
    const path = this.path(since);
    const headers = {};
    // The ETag belongs to one query: the full book and each `since` have their own.
    if (this.etag && this.etagPath === path) {
      headers["If-None-Match"] = this.etag;
    }
    const answer = await this.fetchJson(path, headers);
    if (answer.status === 304) {
      return null;
    }
    this.etag = answer.headers.get("ETag");
    this.etagPath = this.etag ? path : null;
    return answer.body;
  }

  // Full read; true when something changed.
  async load() {
    const body = await this.get(null);
    if (body === null) return false;
    this.contacts = new Map(body.contacts.map((contact) => [contact.contactId, contact]));
    this.smart = body.smart || {};
    this.revision = body.revision;
    return true;
  }

  // Changes since the revision held; a revision the service no longer keeps (410) means a
  // full read. True when something changed.
  async update() {
    if (this.revision === null) return this.load();
    let body;
    try {
      body = await this.get(this.revision);
    } catch (error) {
      if (error instanceof ApiError && error.status === 410) {
        this.etag = null;
        return this.load();
      }
      throw error;
    }
    if (body === null) return false;
    for (const contact of body.contacts) {
      this.contacts.set(contact.contactId, contact);
    }
    for (const contactId of body.deleted || []) {
      this.contacts.delete(contactId);
    }
    this.smart = body.smart || {};
    this.revision = body.revision;
    return true;
  }
}

const NAME_PARTS = ["namePrefix", "fname", "mname", "lname", "nameSuffix"];

export function displayName(contact) {
  const text = (value) => (typeof value === "string" ? value.trim() : "");
  if (text(contact.displayName)) return text(contact.displayName);
  const parts = NAME_PARTS.map((key) => text(contact[key])).filter(Boolean);
  if (parts.length) return parts.join(" ");
  for (const key of ["nick", "company"]) {
    if (text(contact[key])) return text(contact[key]);
  }
  const entry = entriesOf(contact).find((e) => text(e.uri));
  return entry ? text(entry.uri) : String(contact.contactId);
}

export function entriesOf(contact) {
  return Array.isArray(contact.contactEntries)
    ? contact.contactEntries.filter((entry) => entry && typeof entry === "object")
    : [];
}

const digitsOnly = (value) => String(value).replace(/\D+/g, "");

// Matches a free-text query against the names (case- and accent-insensitively) and, when the
// query has digits, against the digits of every number ("555 123" finds "+1 (555) 123-0002").
export function matcher(query) {
  const fold = (value) =>
    String(value).normalize("NFKD").replace(/\p{M}+/gu, "").toLocaleLowerCase();
  const words = fold(query).trim().split(/\s+/).filter(Boolean);
  const digits = digitsOnly(query);
  const numeric = digits.length > 0 && /^[\d\s()+\-./]+$/.test(query.trim());
  if (!words.length) return () => true;
  return (contact) => {
    if (numeric) {
      if (entriesOf(contact).some((e) => e.type === "tel" && digitsOnly(e.uri).includes(digits))) {
        return true;
      }
    }
    const haystack = fold(
      [displayName(contact), ...["fname", "lname", "nick", "company"].map((k) => contact[k] ?? "")]
        .concat(entriesOf(contact).map((e) => e.uri ?? ""))
        .join(" "),
    );
    return words.every((word) => haystack.includes(word));
  };
}
