import { requestAPI } from './request';

/** A sweep as the server shows it: its counts by status and its progress. */
export interface ISweep {
  id: string;
  script: string;
  owner: string;
  size: number;
  status: string;
  counts: Record<string, number>;
  progress: { done: number; total: number; fraction: number };
  created: string;
  started: string | null;
  finished: string | null;
  tags?: string[];
}

/**
 * The results table: a row per job (`index`, `job`, its parameters, `status`,
 * `time_sec`, the result columns and `error`), each row a list in column order.
 */
export interface ISweepTable {
  columns: string[];
  rows: unknown[][];
  total: number;
}

export interface ISweepCreate {
  script: string;
  grid?: Record<string, unknown[]>;
  kwargs?: Record<string, unknown>;
  datafiles?: string[];
  run?: boolean;
}

function post(body: unknown): RequestInit {
  return { method: 'POST', body: JSON.stringify(body) };
}

function path(id: string, tail = ''): string {
  return `sweeps/${encodeURIComponent(id)}${tail}`;
}

/** Typed calls of the sweeps part of the REST API. */
export const sweepAPI = {
  list: (limit = 20): Promise<{ sweeps: ISweep[]; total: number }> =>
    requestAPI('sweeps', {}, { query: { limit } }),

  get: (id: string): Promise<ISweep> => requestAPI(path(id)),

  create: (body: ISweepCreate): Promise<ISweep> =>
    requestAPI('sweeps', post(body)),

  cancel: (id: string): Promise<ISweep> =>
    requestAPI(path(id, '/cancel'), post({})),

  /** Run the failed jobs again, in their places. */
  rerunFailed: (id: string): Promise<ISweep> =>
    requestAPI(path(id, '/rerun'), post({ statuses: ['failed'] })),

  results: (id: string): Promise<ISweepTable> =>
    requestAPI(path(id, '/results')),

  /** The endpoint of the sweep's `progress` events. */
  events: (id: string): string => path(id, '/events')
};
