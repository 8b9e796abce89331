"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useEffect, useRef, useState } from "react";

// The parts of formq.js (served by formq at /formq.js) this form uses;
// the full declarations are formq's client/formq.d.ts.
interface Status {
  id: string;
  status: "queued" | "processing" | "completed" | "failed" | "rejected";
  /** What the action's named steps answered: data.save.id is the entry's id. */
  data?: Record<string, Record<string, string>>;
}
interface FormqClient {
  enhance(form: HTMLFormElement): void;
}

/**
 * The guestbook's form. It posts to formq, natively when formq.js is not
 * loaded; with it, formq.js checks the fields against the action's
 * declaration, shows errors in place (formq's, and the entries route's
 * refusals) and the submission's status live. When the status is
 * completed, formq has stored the entry (its webhook step, whose answer
 * carries the entry's id) and revalidated this page (its revalidation
 * event), so router.refresh() shows the new entry without a reload, and
 * the form links to the entry's page.
 */
export function GuestbookForm({ formqUrl }: { formqUrl: string }) {
  const form = useRef<HTMLFormElement>(null);
  const router = useRouter();
  const [entry, setEntry] = useState("");

  useEffect(() => {
    const el = form.current;
    if (!el) return;
    let live = true;
    // Loaded from formq at run time, not bundled: it always matches the
    // formq that answers the form.
    import(/* webpackIgnore: true */ `${formqUrl}/formq.js`).then(
      (formq: FormqClient) => live && formq.enhance(el),
      () => {}, // without formq.js the form still posts natively
    );
    const onSubmit = () => setEntry("");
    const onStatus = (e: Event) => {
      const s = (e as CustomEvent<Status>).detail;
      if (s.status !== "completed") return;
      setEntry(s.data?.save?.id ?? "");
      router.refresh();
    };
    el.addEventListener("formq:submit", onSubmit);
    el.addEventListener("formq:status", onStatus);
    return () => {
      live = false;
      el.removeEventListener("formq:submit", onSubmit);
      el.removeEventListener("formq:status", onStatus);
    };
  }, [formqUrl, router]);

  return (
    <>
      <form ref={form} method="post" encType="multipart/form-data" action={`${formqUrl}/actions/guestbook`} data-formq-status="">
        <label htmlFor="name">Name</label>
        <input id="name" name="name" required maxLength={80} autoComplete="name" />
        <label htmlFor="message">Message</label>
        <textarea id="message" name="message" required maxLength={500} rows={3} />
        <button data-pending-label="Signing…">Sign the guestbook</button>
        <p data-formq-message="" role="status" />
        <p data-formq-status-text="" role="status" />
      </form>
      {/* Outside the form, whose nodes formq.js adds to. */}
      {entry && (
        <p>
          <Link href={`/entries/${entry}`} data-entry-link="">
            See your entry
          </Link>
        </p>
      )}
    </>
  );
}
