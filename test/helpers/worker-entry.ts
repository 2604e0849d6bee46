/** A worker of listen.workers for in-process tests: the primary (buildApp in the test process) forks this file, which runs what `serve` runs in a worker. */
import { runWorker } from '../../src/workers/worker.js'

process.exit(await runWorker())
