import type { Task, TaskOutput } from '@medplum/fhirtypes';

/**
 * The Task that shows a reindex's progress to clients (`GET /fhir/Task/<id>`, or
 * `GET /fhir/Task?focus=SearchParameter/<id>`). It is derived from the reindex_job row
 * and written through the write path like any resource; the row is what the job runs on.
 */
export const REINDEX_TASK_SYSTEM = 'urn:fhir-server:task';

export type ReindexStatus = 'pending' | 'running' | 'completed' | 'cancelled';

/** Per resource type: rows indexed, rows to index (counted when the job starts), keyset cursor. */
export interface TypeProgress {
  done: number;
  total: number;
  after?: string;
  finished?: boolean;
}

export interface ReindexJobRow {
  id: string;
  search_parameter_id: string;
  search_parameter_version: number;
  status: ReindexStatus;
  types: string[];
  progress: Record<string, TypeProgress>;
  batches: number;
  created_at: Date;
}

const TASK_STATUS: Record<ReindexStatus, Task['status']> = {
  pending: 'requested',
  running: 'in-progress',
  completed: 'completed',
  cancelled: 'cancelled',
};

export function reindexTask(job: ReindexJobRow): Task {
  const counted = job.types.filter((t) => job.progress[t] !== undefined);
  const done = counted.reduce((n, t) => n + job.progress[t].done, 0);
  const total = counted.reduce((n, t) => n + job.progress[t].total, 0);
  const output: TaskOutput[] = counted.flatMap((type) => [
    { type: { coding: [{ system: REINDEX_TASK_SYSTEM, code: 'indexed' }], text: type }, valueInteger: job.progress[type].done },
    { type: { coding: [{ system: REINDEX_TASK_SYSTEM, code: 'total' }], text: type }, valueInteger: job.progress[type].total },
  ]);
  const task: Task = {
    resourceType: 'Task',
    id: job.id,
    status: TASK_STATUS[job.status],
    intent: 'order',
    code: {
      coding: [{ system: REINDEX_TASK_SYSTEM, code: 'reindex' }],
      text: `Index existing ${job.types.length === 1 ? job.types[0] : 'resources'} for a new search parameter`,
    },
    focus: { reference: `SearchParameter/${job.search_parameter_id}` },
    input: [
      {
        type: { coding: [{ system: REINDEX_TASK_SYSTEM, code: 'search-parameter-version' }] },
        valueReference: { reference: `SearchParameter/${job.search_parameter_id}/_history/${job.search_parameter_version}` },
      },
    ],
    authoredOn: new Date(job.created_at).toISOString(),
    lastModified: new Date().toISOString(),
    businessStatus: { text: counted.length > 0 ? `${done} of ${total} resources indexed` : 'waiting to start' },
  };
  if (output.length > 0) task.output = output;
  return task;
}
