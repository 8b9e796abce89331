// formq-offline.js: the outbox of formq.js. A submission that cannot reach
// formq (the browser is offline, or the server cannot be reached after the
// retries) is kept here, in IndexedDB (database "formq", store "outbox"),
// with its values, its files and its idempotency key, and sent again with
// that key when the connection returns: by the page (on the browser's
// online event and whenever a page with the form loads), or in the
// background by a service worker importing formq-sw.js, where the browser
// has Background Sync. formq.js loads this module beside itself; it touches
// no page, so the service worker imports it too.

const STORE = "outbox";
// Set while the outbox may hold something: pages look at IndexedDB only then.
const MARK = "formq:outbox";

function db() {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open("formq", 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: "key" });
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Runs one request on the outbox in a transaction; resolves with its result once committed. */
async function store(mode, request) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction(STORE, mode);
    const r = request(t.objectStore(STORE));
    t.oncomplete = () => (d.close(), resolve(r.result));
    t.onerror = t.onabort = () => (d.close(), reject(t.error));
  });
}

const mark = (on) => {
  try {
    on ? localStorage.setItem(MARK, "1") : localStorage.removeItem(MARK);
  } catch (_) {} // a service worker has no localStorage
};

/** Whether the outbox may hold something (a page's cheap look before opening it). */
export const marked = () => {
  try {
    return !!localStorage.getItem(MARK);
  } catch (_) {
    return false;
  }
};

/**
 * Keeps (or replaces) a record: {key, url, form, entries, saved, answer?}:
 * key the idempotency key, url the action URL, form the form's id, entries
 * the FormData's [name, value] pairs (files included), answer formq's
 * answer once a service worker got it.
 */
export const put = (rec) => store("readwrite", (s) => s.put(rec)).then(() => mark(true));

/** Removes a record by its key. */
export const drop = (key) => store("readwrite", (s) => s.delete(key));

/** Every record, oldest first. */
export const all = () => store("readonly", (s) => s.getAll()).then((l) => l.sort((a, b) => a.saved - b.saved));

/** A FormData of a record's entries. */
export function formData(entries) {
  const fd = new FormData();
  for (const [k, v] of entries) fd.append(k, v);
  return fd;
}

/**
 * Hands each record that which() picks to send, one sender at a time in
 * this browser (pages and the service worker take the same lock), so a
 * record is sent by one of them only.
 */
export function drain(which, send) {
  const go = async () => {
    const l = await all();
    if (!l.length) mark(false);
    for (const rec of l) if (which(rec)) await send(rec);
  };
  return navigator.locks ? navigator.locks.request("formq-outbox", go) : go();
}

/** Asks for a Background Sync ("formq") where a service worker is registered and the browser has it. */
export async function sync() {
  try {
    const reg = await navigator.serviceWorker.getRegistration();
    await reg.sync.register("formq");
  } catch (_) {}
}

/** Calls f with a record's key when a service worker got formq's answer for it. */
export const answered = (f) => (new BroadcastChannel("formq").onmessage = (e) => f(e.data));

/** Sends a record from a service worker and keeps formq's answer for the page; throws when formq cannot be reached. */
export async function sendInBackground(rec) {
  if (rec.answer) return;
  const r = await fetch(rec.url, { method: "POST", body: formData(rec.entries), credentials: "include", headers: { Accept: "application/json" } });
  rec.answer = { status: r.status, responseText: await r.text(), retryAfter: r.headers.get("Retry-After") };
  await put(rec);
  new BroadcastChannel("formq").postMessage(rec.key);
}
