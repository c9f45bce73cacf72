import { startEmbeddedPostgres } from '../../server/storage/embedded-postgres';

/**
 * `node --import tsx test/support/embedded-postgres-child.ts <dataDir> <database>`: starts
 * the embedded PostgreSQL as the server does (the library is an ES module, which jest
 * cannot load in-process), prints `LOG <message>` for each of its messages and
 * `READY <url>` once it is up; SIGTERM stops it and exits.
 */
const [dataDir, database] = process.argv.slice(2);
startEmbeddedPostgres(dataDir, database, (message) => console.log(`LOG ${message}`)).then(
  (db) => {
    console.log(`READY ${db.url}`);
    process.once('SIGTERM', () => void db.stop().then(() => process.exit(0)));
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  }
);
