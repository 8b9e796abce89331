import { getEntries } from "@/lib/entries";
import { GuestbookForm } from "./guestbook-form";

// The page is static: rendered at build, then served from Next.js's cache
// until formq's revalidation event (app/api/revalidate) expires the
// "guestbook" tag and the "/" path; the next request renders it again.

export default async function Home() {
  const entries = await getEntries();
  // NEXT_PUBLIC_FORMQ_URL is read when the app is built.
  const formq = process.env.NEXT_PUBLIC_FORMQ_URL ?? "http://127.0.0.1:8080";
  return (
    <main>
      <h1>Guestbook</h1>
      <GuestbookForm formqUrl={formq} />
      <h2>{entries.length === 1 ? "1 entry" : `${entries.length} entries`}</h2>
      <ol data-entries>
        {entries.map((e) => (
          <li key={e.id} data-entry={e.id}>
            <strong>{e.name}</strong> <time dateTime={e.receivedAt}>{new Date(e.receivedAt).toUTCString()}</time>
            <p>{e.message}</p>
          </li>
        ))}
      </ol>
    </main>
  );
}
