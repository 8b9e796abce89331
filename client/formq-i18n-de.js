// formq-i18n-de.js: formq.js's words in German. formq.js loads it from
// beside itself for a form inside lang="de" (or de-AT, de-CH…); a page's
// strings() and data-formq-text-* attributes still come first. The keys
// are those of formq.js's EN; {name}s are filled in.
export default {
  summary: "Bitte korrigieren Sie die markierten Angaben.",
  network: "Das Formular hat den Server nicht erreicht. Ihre Angaben sind noch da: Bitte versuchen Sie es erneut.",
  offline: "Sie sind offline. Ihre Angaben sind noch da: Senden Sie das Formular erneut, sobald Sie wieder online sind.",
  saved: "Gespeichert — wird gesendet, sobald Sie wieder online sind.",
  upload: "Der Upload hat den Server nicht erreicht. Ihre Angaben sind noch da: Versuchen Sie es erneut, der Upload macht dort weiter, wo er stehen blieb.",
  retry: "Bitte in {n} Sekunden erneut versuchen.",
  retryOne: "Bitte in 1 Sekunde erneut versuchen.",
  answered: "Der Server antwortete mit {status}.",
  thanks: "Vielen Dank, Ihre Einsendung ist angekommen.",
  kept: "{files} behalten — wählen Sie eine andere Datei, um sie zu ersetzen",
  omitted: "Zu lang, um es zurückzubringen: Bitte geben Sie es erneut ein.",
  queued: "In der Warteschlange",
  processing: "In Bearbeitung",
  completed: "Abgeschlossen",
  failed: "Fehlgeschlagen",
  rejected: "Abgelehnt",
  step: "Schritt {i} von {n}: {name}",
};
