// formq-sw.js: Background Sync for formq.js's outbox, in a service worker.
// A service worker must come from the page's own origin: serve a file
// there that imports this one, and register it as a module:
//
//   // https://www.example.com/sw.js
//   import "https://forms.example.com/formq-sw.js";
//
//   <script>navigator.serviceWorker.register("/sw.js", { type: "module" });</script>
//
// When a submission is kept offline, formq.js asks for a sync ("formq");
// the browser fires it once it is back online, even with the page closed,
// and this worker sends each kept submission with its idempotency key. It
// keeps formq's answer for the page, which shows it (or the errors to fix)
// the next time the form is open; an open page shows it at once.

import { drain, sendInBackground } from "./formq-offline.js";

self.addEventListener("sync", (e) => {
  // A failure (formq still unreachable) rejects: the browser tries again later.
  if (e.tag == "formq") e.waitUntil(drain(() => true, sendInBackground));
});
