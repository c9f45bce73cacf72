import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';

/** What a file's top-level JSON object says about itself, read without parsing the whole file. */
export interface BundlePeek {
  /** Undefined when the file ended (or the object closed) without one. */
  resourceType?: string;
  /** `Bundle.type`. */
  type?: string;
  /** False when the top level is not a JSON object (an array, a number…). */
  isObject: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * A streaming scan of JSON text that keeps only the string values of top-level keys:
 * nested objects and arrays (a Bundle's megabytes of entries) are skipped by counting
 * brackets, never parsed. It does not validate the JSON; the server does that.
 */
class TopLevelStrings {
  readonly values = new Map<string, string>();
  isObject: boolean | undefined;
  closed = false;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private collecting = false;
  private text = '';
  private key: string | undefined;
  private awaitingValue = false;

  push(chunk: string): void {
    for (let i = 0; i < chunk.length && !this.closed; i++) {
      const c = chunk.charCodeAt(i);
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false;
        } else if (c === BACKSLASH) {
          this.escaped = true;
        } else if (c === QUOTE) {
          this.inString = false;
          if (this.collecting) this.stringEnded();
          continue;
        }
        if (this.collecting) this.text += chunk[i];
        continue;
      }
      switch (chunk[i]) {
        case '"':
          this.inString = true;
          this.collecting = this.depth === 1;
          this.text = '';
          break;
        case '{':
        case '[':
          if (this.depth === 0) this.isObject = chunk[i] === '{';
          if (this.depth === 1) this.awaitingValue = false;
          this.depth++;
          break;
        case '}':
        case ']':
          this.depth--;
          if (this.depth <= 0) this.closed = true;
          break;
        case ':':
          if (this.depth === 1) this.awaitingValue = true;
          break;
        case ',':
          if (this.depth === 1) {
            this.key = undefined;
            this.awaitingValue = false;
          }
          break;
        default:
          // Whitespace, numbers and literals: only a top-level value that is not JSON
          // at all (`42`, `true`) matters, and then the top level is not an object.
          if (this.depth === 0 && chunk[i].trim() !== '') {
            this.isObject = false;
          }
      }
    }
  }

  private stringEnded(): void {
    if (this.awaitingValue && this.key !== undefined) {
      this.values.set(this.key, this.text);
      this.awaitingValue = false;
    } else {
      this.key = this.text;
    }
  }

  get done(): boolean {
    return this.closed || this.isObject === false || (this.values.has('resourceType') && this.values.has('type'));
  }
}

/**
 * `resourceType` and `type` of a `.json` or `.json.gz` file, read only as far as needed:
 * Synthea and most writers put both first, so this usually stops after the first chunk.
 */
export async function peekBundle(file: string): Promise<BundlePeek> {
  const scan = new TopLevelStrings();
  const raw = createReadStream(file);
  const stream = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  raw.on('error', (err) => stream.destroy(err));
  stream.setEncoding('utf8');
  try {
    for await (const chunk of stream) {
      scan.push(chunk as string);
      if (scan.done) break;
    }
  } finally {
    raw.destroy();
    stream.destroy();
  }
  return { resourceType: scan.values.get('resourceType'), type: scan.values.get('type'), isObject: scan.isObject ?? false };
}
