import { KeepAliveClient } from './keep-alive-http';
import { type BundleJson, readBundleText, syntheaFiles } from './synthea-bundles';

/** One Synthea bundle as the server stored it. */
export interface LoadedBundle {
  file: string;
  /** The bundle as read from the file (ids and references as Synthea wrote them). */
  bundle: BundleJson;
  /** Each entry's `fullUrl` → the `Type/id` the server gave it (from `response.location`). */
  stored: Map<string, string>;
}

export interface LoadedSynthea {
  /** The hospital and practitioner bundles (type batch), in loading order. */
  information: LoadedBundle[];
  /** The 120 patient bundles (type transaction), in file order. */
  patients: LoadedBundle[];
  seconds: number;
}

/**
 * Loads the Synthea set over HTTP as a client would: `POST /fhir` with each bundle as
 * written, first the two information bundles (batch), then the patient bundles
 * (transaction), `concurrency` at a time, with `Prefer: return=minimal`. Throws on the
 * first bundle or batch entry the server refuses.
 */
export async function loadSyntheaOverHttp(baseUrl: string, concurrency: number, files = syntheaFiles()): Promise<LoadedSynthea> {
  const client = new KeepAliveClient(baseUrl, concurrency);
  const path = `${new URL(baseUrl).pathname.replace(/\/$/, '')}`;
  const started = performance.now();
  const post = async (file: string): Promise<LoadedBundle> => {
    const text = readBundleText(file);
    const res = await client.request('POST', path, text, { prefer: 'return=minimal' });
    if (res.status !== 200) throw new Error(`POST ${file} → ${res.status}: ${res.body.slice(0, 500)}`);
    const bundle = JSON.parse(text) as BundleJson;
    const response = JSON.parse(res.body) as { entry?: { response?: { status?: string; location?: string } }[] };
    const stored = new Map<string, string>();
    (bundle.entry ?? []).forEach((entry, i) => {
      const answer = response.entry?.[i]?.response;
      if (!answer?.status?.startsWith('2')) throw new Error(`${file} entry ${i}: ${JSON.stringify(response.entry?.[i])}`);
      const location = answer.location?.replace(/^.*?\/?([A-Z][A-Za-z]+\/[^/]+)\/_history\/.*$/, '$1');
      if (entry.fullUrl && location) stored.set(entry.fullUrl, location);
    });
    return { file, bundle, stored };
  };
  try {
    const information: LoadedBundle[] = [];
    for (const file of files.information) information.push(await post(file));
    const patients: LoadedBundle[] = new Array(files.patients.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < files.patients.length) {
        const i = next++;
        patients[i] = await post(files.patients[i]);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, () => worker()));
    return { information, patients, seconds: (performance.now() - started) / 1000 };
  } finally {
    client.close();
  }
}
