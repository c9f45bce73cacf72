/**
 * The benchmark's server process: exactly `server/main.ts` (config from env, SIGTERM
 * handling), under a command line of its own, so that a developer's
 * `pkill -f server/main.ts` aimed at their dev server does not end a benchmark run.
 */
import '../../server/main';
