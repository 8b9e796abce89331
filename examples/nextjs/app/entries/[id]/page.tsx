import Link from "next/link";
import { notFound } from "next/navigation";
import { getEntry } from "@/lib/entries";

// One entry's page: where formq sends a browser without JavaScript once
// the entry is saved (the action's redirect, /entries/{steps.save.id},
// filled with the id the entries route answered), and where the form's
// link goes with JavaScript. Read from the file on every request, so the
// entry shows the moment it is stored.

export default async function EntryPage({ params }: { params: Promise<{ id: string }> }) {
  const entry = await getEntry((await params).id);
  if (!entry) notFound();
  return (
    <main>
      <h1>Guestbook entry</h1>
      <article data-entry={entry.id}>
        <strong>{entry.name}</strong> <time dateTime={entry.receivedAt}>{new Date(entry.receivedAt).toUTCString()}</time>
        <p>{entry.message}</p>
      </article>
      <p>
        <Link href="/">Back to the guestbook</Link>
      </p>
    </main>
  );
}
