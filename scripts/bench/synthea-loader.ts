import type { Resource } from '@medplum/fhirtypes';
import type { Repository } from '../../server/storage/repository';
import type { FhirResource } from './example-resources';
import { newId } from '../../server/core/ids';
import { copyBundleText, replaceOwnIds } from './synthea-copy';
import {
  type BundleJson,
  conditionalReferenceTargets,
  readBundleText,
  resolveBundle,
  type ResolveCounts,
  syntheaFiles,
} from './synthea-bundles';

export interface LoadFigures {
  resources: number;
  failed: number;
  seconds: number;
  perSecond: number;
  unresolvedReferences: number;
  /** The first few failures, as "Type/id: message". */
  errors: string[];
}

export interface LoadOptions {
  /** Which copies of the 120 patient bundles to write (0 = the originals). */
  copies: number[];
  /** Also write the hospital and practitioner bundles (once, before the patients). */
  information: boolean;
  /** Writes in flight. */
  concurrency: number;
  /**
   * `server`: each patient bundle's resources get new time-ordered ids as they are read,
   * as a transaction load stores them (`npm run load`: the server names POST entries);
   * `bundle`: the ids Synthea wrote (random uuids, as a client doing PUT would keep them).
   */
  ids: 'server' | 'bundle';
  log: (line: string) => void;
  shouldStop: () => boolean;
}

const PROGRESS_EVERY_MS = 15000;

/**
 * Writes Synthea resources through the server's one write path, in-process:
 * `Repository.update` (PUT with the given ids, i.e. update-as-create; see LoadOptions.ids), which
 * validates, versions and indexes each resource exactly as `PUT /fhir/Type/id` does.
 * Resources go out `concurrency` at a time, in bundle order.
 */
export class SyntheaLoader {
  private readonly files = syntheaFiles();
  private readonly informationBundles: BundleJson[];
  private readonly conditional: Map<string, string>;

  constructor(private readonly repo: Repository) {
    this.informationBundles = this.files.information.map((file) => JSON.parse(readBundleText(file)) as BundleJson);
    this.conditional = conditionalReferenceTargets(this.informationBundles);
  }

  get patientBundleCount(): number {
    return this.files.patients.length;
  }

  async load(options: LoadOptions): Promise<LoadFigures> {
    const counts: ResolveCounts = { unresolved: 0 };
    const stream = this.resources(options, counts);
    const errors: string[] = [];
    let written = 0;
    let failed = 0;
    const started = performance.now();
    let lastReport = started;
    let lastWritten = 0;
    const worker = async (): Promise<void> => {
      // A sync generator shared by the workers: each next() hands out one resource.
      for (let next = stream.next(); !next.done && !options.shouldStop(); next = stream.next()) {
        const resource = next.value;
        try {
          await this.repo.update(resource as Resource & { id: string });
          written++;
        } catch (err) {
          failed++;
          if (errors.length < 5) {
            errors.push(`${resource.resourceType}/${resource.id}: ${err instanceof Error ? err.message : String(err)}`);
          }
        }
        const now = performance.now();
        if (now - lastReport >= PROGRESS_EVERY_MS) {
          const rate = ((written - lastWritten) * 1000) / (now - lastReport);
          options.log(`  … ${written} written, ${failed} failed, ${((now - started) / 1000).toFixed(0)} s, now ${rate.toFixed(0)} resources/s`);
          lastReport = now;
          lastWritten = written;
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, () => worker()));
    const seconds = (performance.now() - started) / 1000;
    return { resources: written, failed, seconds, perSecond: written / seconds, unresolvedReferences: counts.unresolved, errors };
  }

  private *resources(options: LoadOptions, counts: ResolveCounts): Generator<FhirResource> {
    if (options.information) {
      for (const bundle of this.informationBundles) {
        yield* resolveBundle(structuredClone(bundle), this.conditional, counts);
      }
    }
    for (const copy of options.copies) {
      for (const file of this.files.patients) {
        const text = copyBundleText(readBundleText(file), copy);
        const bundle = JSON.parse(options.ids === 'server' ? replaceOwnIds(text, () => newId()) : text) as BundleJson;
        yield* resolveBundle(bundle, this.conditional, counts);
      }
    }
  }
}
