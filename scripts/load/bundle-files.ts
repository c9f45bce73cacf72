import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { peekBundle } from './bundle-peek';

const gunzipAsync = promisify(gunzip);

/** A file the tool will send, with what its first bytes said. */
export interface BundleFile {
  path: string;
  /** The file's base name, as the progress lines and the summary show it. */
  name: string;
  /** `Bundle.type` when the file states it near the top, e.g. `transaction` or `batch`. */
  type?: string;
}

/** A file that was looked at and not sent, and why. */
export interface SkippedFile {
  path: string;
  name: string;
  reason: string;
}

export interface LoadPlan {
  /** Sent first, one at a time, in name order: what the other bundles refer to. */
  shared: BundleFile[];
  /** Sent after `shared`, several at a time, in name order. */
  rest: BundleFile[];
  /** Files in a folder that are not FHIR Bundles (e.g. Synthea's manifest.json). */
  skipped: SkippedFile[];
  /** Files named on the command line that cannot be sent (not a Bundle, unreadable). */
  invalid: SkippedFile[];
}

const BUNDLE_FILE = /\.json(\.gz)?$/i;
/** Synthea's `hospitalInformation*` and `practitionerInformation*` bundles. */
const SHARED_NAME = /information/i;

/**
 * Paths on the command line → the files to send. A folder contributes its `.json` and
 * `.json.gz` files (not its subfolders), a file is taken whatever its name. The list
 * is sorted by path and has no duplicates.
 */
export async function expandPaths(paths: string[]): Promise<{ files: string[]; fromFolders: Set<string> }> {
  const files = new Set<string>();
  const fromFolders = new Set<string>();
  for (const given of paths) {
    const full = path.resolve(given);
    const info = await stat(full).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`${given}: ${err.code === 'ENOENT' ? 'no such file or folder' : err.message}`);
    });
    if (info.isDirectory()) {
      for (const entry of await readdir(full, { withFileTypes: true })) {
        if (entry.isFile() && BUNDLE_FILE.test(entry.name)) {
          const file = path.join(full, entry.name);
          files.add(file);
          fromFolders.add(file);
        }
      }
    } else {
      files.add(full);
      fromFolders.delete(full);
    }
  }
  return { files: [...files].sort(byPath), fromFolders };
}

function byPath(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The order of loading: Bundles of type batch and files whose names mark them as shared
 * information (Synthea's hospital and practitioner bundles, which every patient bundle
 * references conditionally) first, then the rest. A file whose top level says it is not
 * a Bundle is skipped when it came from a folder and refused when it was named.
 */
export async function planLoad(paths: string[]): Promise<LoadPlan> {
  const { files, fromFolders } = await expandPaths(paths);
  const plan: LoadPlan = { shared: [], rest: [], skipped: [], invalid: [] };
  for (const file of files) {
    const name = path.basename(file);
    let peek;
    try {
      peek = await peekBundle(file);
    } catch (err) {
      plan.invalid.push({ path: file, name, reason: `cannot read: ${(err as Error).message}` });
      continue;
    }
    const notBundle = !peek.isObject
      ? 'not a JSON object'
      : peek.resourceType !== undefined && peek.resourceType !== 'Bundle'
        ? `a ${peek.resourceType}, not a Bundle`
        : peek.resourceType === undefined
          ? 'not a FHIR resource (no resourceType)'
          : undefined;
    if (notBundle) {
      (fromFolders.has(file) ? plan.skipped : plan.invalid).push({ path: file, name, reason: notBundle });
      continue;
    }
    const bundle: BundleFile = { path: file, name, type: peek.type };
    (peek.type === 'batch' || SHARED_NAME.test(name) ? plan.shared : plan.rest).push(bundle);
  }
  return plan;
}

/** The Bundle's JSON text as it is in the file (gunzipped for `.gz`), to be sent unchanged. */
export async function readBundleFile(file: string): Promise<string> {
  const bytes = await readFile(file);
  return (file.endsWith('.gz') ? await gunzipAsync(bytes) : bytes).toString('utf8');
}
