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

let queue: Promise<unknown> = Promise.resolve();

/**
 * Adds an entry unless one with its id is stored (formq retries a webhook
 * it could not confirm, with the same submission). Writes are serialised
 * and atomic (write, then rename).
 */
export function addEntry(e: Entry): Promise<boolean> {
  const run = queue.then(async () => {
    const all = await readAll();
    if (all.some((x) => x.id === e.id)) return false;
    all.push(e);
    await mkdir(path.dirname(file()), { recursive: true });
    const tmp = file() + ".tmp";
    await writeFile(tmp, JSON.stringify(all, null, 1));
    await rename(tmp, file());
    return true;
  });
  queue = run.catch(() => undefined);
  return run;
}
