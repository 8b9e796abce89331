// formq-altcha.js: the ALTCHA widget (npm altcha, the version pinned in
// formq's conformance lockfile, served by formq beside this file, no CDN)
// set up for formq's challenges: its stylesheet and its SHA-256 worker.
// A page of its own loads it as a module from formq and puts the widget
// in its form, before any file input:
//   <script type="module" src="https://FORMQ/altcha/formq-altcha.js"></script>
//   <altcha-widget challenge="https://FORMQ/actions/NAME/challenge"></altcha-widget>
// The widget puts its solution in the field altcha.
import "./altcha.js";

const here = new URL(".", import.meta.url);

if (!document.querySelector("link[data-formq-altcha]")) {
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = new URL("altcha.css", here).href;
  css.dataset.formqAltcha = "";
  document.head.append(css);
}

// A worker must come from the page's own origin: on a page elsewhere the
// worker's script is fetched from formq and started from a blob: URL.
const sha = new URL("sha.js", here);
let blob;
globalThis.$altcha.algorithms.set("SHA-256", async () => {
  if (sha.origin == location.origin) return new Worker(sha);
  blob ||= fetch(sha)
    .then((r) => r.text())
    .then((t) => URL.createObjectURL(new Blob([t], { type: "text/javascript" })));
  return new Worker(await blob);
});
