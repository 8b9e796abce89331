import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { unstable_cache } from "next/cache";

/** One signed guestbook entry, as the page shows it. */
export interface Entry {
  id: string; // formq's submission id
  name: string;
  message: string;
  receivedAt: string;
}

// The entries live in a JSON file next to the app, data/entries.json:
// enough for one instance. With several instances, keep them in a
// database instead; nothing else changes.
const file = () => path.join(process.cwd(), "data", "entries.json");

async function readAll(): Promise<Entry[]> {
  try {
    return JSON.parse(await readFile(file(), "utf8")) as Entry[];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/** The cache tag of the entries; formq's actions file names it in `revalidate`. */
export const ENTRIES_TAG = "guestbook";

/**
 * The entries, newest first, from Next.js's data cache: read once, then
 * served from the cache until formq's revalidation event expires the tag.
 */
export const getEntries = unstable_cache(async () => (await readAll()).reverse(), ["guestbook-entries"], {
  tags: [ENTRIES_TAG],
});

/** One entry, read from the file itself (not the cache): the entry page shows it at once. */
export async function getEntry(id: string): Promise<Entry | undefined> {
  return (await readAll()).find((e) => e.id === id);
}

/** Words the guestbook does not take. */
const BANNED = ["spam", "casino"];

/** Field errors, as formq shows them beside the fields. */
export type FieldErrors = Record<string, string[]>;

/**
 * Why the guestbook refuses an entry: a word it does not take, or the same
 * name and message as an entry of another submission (a repeat of the same
 * submission is not a duplicate). Undefined when it takes the entry.
 */
function refusal(e: Entry, all: Entry[]): FieldErrors | undefined {
  for (const field of ["name", "message"] as const) {
    const word = BANNED.find((w) => new RegExp(`\\b${w}\\b`, "i").test(e[field]));
    if (word) return { [field]: [`Please leave out “${word}”: the guestbook does not take it.`] };
  }
  if (all.some((x) => x.id !== e.id && x.name === e.name && x.message === e.message)) {
    return { message: ["This message is already in the guestbook."] };
  }
  return undefined;
}

let queue: Promise<unknown> = Promise.resolve();

/**
 * Adds an entry unless the guestbook refuses it (then the field errors are
 * returned) or one with its id is stored (formq retries a webhook it could
 * not confirm, with the same submission). Writes are serialised and atomic
 * (write, then rename).
 */
export function addEntry(e: Entry): Promise<{ added: boolean; errors?: FieldErrors }> {
  const run = queue.then(async () => {
    const all = await readAll();
    const errors = refusal(e, all);
    if (errors) return { added: false, errors };
    if (all.some((x) => x.id === e.id)) return { added: false };
    all.push(e);
    await mkdir(path.dirname(file()), { recursive: true });
    const tmp = file() + ".tmp";
    await writeFile(tmp, JSON.stringify(all, null, 1));
    await rename(tmp, file());
    return { added: true };
  });
  queue = run.catch(() => undefined);
  return run;
}
