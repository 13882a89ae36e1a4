import { apiURL, requestAPI } from './request';

/** Job statuses, in the order a job goes through them. */
export const STATUSES = [
  'created',
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled'
] as const;
export type Status = (typeof STATUSES)[number];
export const FINISHED: ReadonlySet<string> = new Set([
  'succeeded',
  'failed',
  'cancelled'
]);
export const ACTIVE: ReadonlySet<string> = new Set(['queued', 'running']);

/** The kinds of data a job can read. */
export type BindingType = 'datafile' | 'mongodb' | 'raw_data';

export type DataBinding =
  | { type: 'datafile'; name: string }
  | { type: 'mongodb'; id: string }
  | { type: 'raw_data'; data: unknown; datatype?: string };

export interface IScript {
  name: string;
  process: string;
  description: string;
  version: string;
  /** The parameters as JSON Schema (an object schema). */
  parameters: IJSONSchema;
  /** The bindings the script accepts; empty when it reads no data. */
  data: BindingType[];
  data_parameter: { kind: string; required: boolean } | null;
  cores: number;
}

export interface IJSONSchema {
  type?: string | string[];
  properties?: Record<string, IJSONSchema>;
  required?: string[];
  [key: string]: any;
}

export interface IProgress {
  fraction: number | null;
  message?: string | null;
}

export interface IJobError {
  type: string;
  message: string;
  detail?: string;
}

export interface IJob {
  id: string;
  script: string | null;
  process: string;
  status: Status;
  owner: string;
  public: boolean;
  tags: string[];
  args: unknown[];
  kwargs: Record<string, unknown>;
  data: DataBinding | null;
  created: string;
  edited: string | null;
  queued: string | null;
  started: string | null;
  finished: string | null;
  time_sec: number | null;
  error: IJobError | null;
  exit_code: number | null;
  progress: IProgress | null;
  provenance: Record<string, any> | null;
  rerun_of?: string | null;
  result?: unknown;
}

/** A file a job wrote in its working folder (`sha256` once the job has ended). */
export interface IJobFile {
  path: string;
  size: number;
  sha256: string | null;
}

export interface IDatafile {
  name: string;
  size: number;
  modified: string;
  extension: string;
  sha256: string;
  shared?: boolean;
}

export interface IDataDocument {
  id: string;
  name: string;
  datatype: string;
  owner: string;
  created: string;
  edited: string | null;
  description?: string | null;
  public?: boolean;
}

export interface IJobQuery {
  status?: string[];
  script?: string[];
  tag?: string[];
  sort?: string;
  limit?: number;
  offset?: number;
}

export interface IJobCreate {
  script: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  data?: DataBinding | null;
  run?: boolean;
  public?: boolean;
  timeout?: number;
  tags?: string[];
}

function post(body: unknown): RequestInit {
  return { method: 'POST', body: JSON.stringify(body) };
}

function segment(name: string): string {
  return encodeURIComponent(name);
}

/** Typed calls of the job server's REST API. */
export const api = {
  scripts: async (): Promise<IScript[]> =>
    (await requestAPI<{ scripts: IScript[] }>('scripts')).scripts,

  jobs: (query: IJobQuery = {}): Promise<{ jobs: IJob[]; total: number }> =>
    requestAPI('jobs', {}, { query: { ...query } as any }),

  job: (id: string): Promise<IJob> => requestAPI(`jobs/${segment(id)}`),

  createJob: (body: IJobCreate): Promise<IJob> =>
    requestAPI('jobs', post(body)),

  cancel: (id: string): Promise<IJob> =>
    requestAPI(`jobs/${segment(id)}/cancel`, post({})),

  rerun: (id: string): Promise<IJob> =>
    requestAPI(`jobs/${segment(id)}/rerun`, post({})),

  deleteJob: (id: string): Promise<void> =>
    requestAPI(`jobs/${segment(id)}`, { method: 'DELETE' }),

  /** The files a job wrote, with size and checksum. */
  jobFiles: async (id: string): Promise<IJobFile[]> =>
    (await requestAPI<{ files: IJobFile[] }>(`jobs/${segment(id)}/files`))
      .files,

  /** One job file that is JSON (an executed notebook), decoded. */
  jobFileJSON: (id: string, path: string): Promise<any> =>
    requestAPI(
      `jobs/${segment(id)}/files/${path.split('/').map(segment).join('/')}`
    ),

  /** The URL of one job file (`download`: the browser saves it). */
  jobFileURL: (id: string, path: string, download = false): string =>
    apiURL(
      `jobs/${segment(id)}/files/${path.split('/').map(segment).join('/')}`,
      download ? { download: '1' } : undefined
    ),

  /** The datafiles, and the extensions a datafile may have. */
  datafileListing: (): Promise<{
    datafiles: IDatafile[];
    extensions: string[];
  }> => requestAPI('datafiles'),

  /** A tabular datafile's content as records (`?format=json`). */
  datafileRows: (name: string): Promise<unknown> =>
    requestAPI(`datafiles/${segment(name)}`, {}, { query: { format: 'json' } }),

  deleteDatafile: (name: string): Promise<void> =>
    requestAPI(`datafiles/${segment(name)}`, { method: 'DELETE' }),

  /** Copy a file under the Jupyter root into the data folder, on the server. */
  copyToData: (
    path: string,
    options: { name?: string; overwrite?: boolean } = {}
  ): Promise<IDatafile> => requestAPI('datafiles', post({ path, ...options })),

  documents: async (): Promise<IDataDocument[]> =>
    (
      await requestAPI<{ data: IDataDocument[] }>(
        'data',
        {},
        { query: { limit: 1000, sort: 'name' } }
      )
    ).data
};
