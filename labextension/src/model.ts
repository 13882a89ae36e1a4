import { Notification } from '@jupyterlab/apputils';
import { ISignal, Signal } from '@lumino/signaling';

import { ACTIVE, api, FINISHED, IDatafile, IJob, IScript } from './api';
import { streamEvents } from './events';
import { JobServerError } from './request';

/** A status change of one job, as the server's event stream says it. */
export interface IJobChange {
  event: 'status' | 'deleted';
  job_id: string;
  status: string;
  script: string | null;
  owner?: string | null;
  /** The sweep the job belongs to, if any. */
  sweep?: string | null;
}

export interface IModelSettings {
  pageSize: number;
  notifyOnFinish: boolean;
  previewRows: number;
}

/** How many recently ended jobs are remembered (for jobs that end before their answer). */
const ENDED_KEPT = 500;

export const DEFAULT_SETTINGS: IModelSettings = {
  pageSize: 25,
  notifyOnFinish: true,
  previewRows: 20
};

/**
 * What the panels share: the live feed of job changes (one `jobs/events`
 * stream for the whole page), the counts of queued and running jobs, the
 * scripts, the datafiles, and the jobs started from this page, which announce
 * their end.
 */
export class JobServerModel {
  constructor(options: { openJob: (id: string) => void }) {
    this._openJob = options.openJob;
  }

  settings: IModelSettings = { ...DEFAULT_SETTINGS };

  /** Each status change or deletion of a job the user may see. */
  get jobChanged(): ISignal<this, IJobChange> {
    return this._jobChanged;
  }

  /** The feed (re)connected: anything shown may be out of date. */
  get reconnected(): ISignal<this, void> {
    return this._reconnected;
  }

  /** The counts of queued and running jobs changed. */
  get countsChanged(): ISignal<this, void> {
    return this._countsChanged;
  }

  /** Datafiles were added or removed from this page. */
  get datafilesChanged(): ISignal<this, void> {
    return this._datafilesChanged;
  }

  get settingsChanged(): ISignal<this, void> {
    return this._settingsChanged;
  }

  get running(): number {
    return [...this._active.values()].filter(s => s === 'running').length;
  }

  get queued(): number {
    return [...this._active.values()].filter(s => s === 'queued').length;
  }

  /** Whether the live feed is connected. */
  get connected(): boolean {
    return this._connected;
  }

  updateSettings(settings: Partial<IModelSettings>): void {
    this.settings = { ...this.settings, ...settings };
    this._settingsChanged.emit();
  }

  /** Start following the server; call once. */
  start(): void {
    if (this._abort) {
      return;
    }
    this._abort = new AbortController();
    void this._follow(this._abort.signal);
  }

  dispose(): void {
    this._abort?.abort();
    Signal.clearData(this);
  }

  async scripts(refresh = false): Promise<IScript[]> {
    if (refresh || !this._scripts) {
      this._scripts = api.scripts();
      this._scripts.catch(() => (this._scripts = null));
    }
    return this._scripts;
  }

  /** The extensions a datafile may have (as the server says), lower case. */
  async datafileExtensions(): Promise<string[]> {
    if (!this._extensions) {
      this._extensions = api.datafileListing().then(listing => {
        this._knownExtensions = listing.extensions.map(e => e.toLowerCase());
        return this._knownExtensions;
      });
      this._extensions.catch(() => (this._extensions = null));
    }
    return this._extensions;
  }

  /** The extensions, if they are known already (for synchronous checks). */
  get knownExtensions(): string[] | null {
    return this._knownExtensions;
  }

  async datafiles(): Promise<IDatafile[]> {
    const listing = await api.datafileListing();
    this._knownExtensions = listing.extensions.map(e => e.toLowerCase());
    return listing.datafiles;
  }

  notifyDatafilesChanged(): void {
    this._datafilesChanged.emit();
  }

  /**
   * A job started from this page: its end is announced (when the setting
   * says so) with a button that opens it.
   */
  track(job: IJob): void {
    this._tracked.set(job.id, job.script ?? job.process);
    // a quick job may have ended, and its event arrived, before the answer that made it
    const ended = this._ended.get(job.id);
    const status = ended ?? job.status;
    if (!ended) {
      this._setActive(job.id, status);
    }
    if (FINISHED.has(status)) {
      this._announce(job.id, status);
    }
  }

  /** Show a failed request as a notification a person can read. */
  static report(error: unknown, what: string): void {
    Notification.error(describeError(error, what), { autoClose: 8000 });
  }

  private async _follow(signal: AbortSignal): Promise<void> {
    let delay = 1000;
    while (!signal.aborted) {
      let opened = false;
      try {
        await streamEvents('jobs/events', {
          signal,
          onEvent: event => {
            if (event.event === 'open') {
              opened = true;
              delay = 1000;
              void this._opened();
            } else if (event.event === 'status' || event.event === 'deleted') {
              this._change(event.data as IJobChange);
            }
          }
        });
      } catch (error) {
        if (!opened && !this._warned) {
          this._warned = true;
          const message =
            error instanceof JobServerError && !error.unreachable
              ? `The job server's live updates are not available: ${error.message}`
              : 'The job server cannot be reached; job statuses are not live until it is back.';
          Notification.warning(message, { autoClose: 8000 });
        }
      }
      this._setConnected(false);
      if (signal.aborted) {
        break;
      }
      // the stream ended (a restart, a network change): connect again, slower each time
      await new Promise(resolve => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30000);
    }
  }

  private async _opened(): Promise<void> {
    this._setConnected(true);
    if (this._warned) {
      this._warned = false;
      Notification.info('The job server is reachable again.', {
        autoClose: 4000
      });
    }
    // the counts from the server, then kept up to date by the events
    try {
      const { jobs } = await api.jobs({
        status: ['queued', 'running'],
        limit: 1000,
        sort: '-created'
      });
      this._active.clear();
      for (const job of jobs) {
        this._active.set(job.id, job.status);
      }
      this._countsChanged.emit();
      // jobs started here that ended while the stream was down
      for (const [id] of this._tracked) {
        if (!this._active.has(id)) {
          try {
            const job = await api.job(id);
            if (FINISHED.has(job.status)) {
              this._announce(id, job.status);
            }
          } catch {
            this._tracked.delete(id);
          }
        }
      }
    } catch {
      // counts stay as they were; the next event corrects them
    }
    this._reconnected.emit();
  }

  private _change(change: IJobChange): void {
    if (change.event === 'deleted') {
      this._active.delete(change.job_id);
      this._tracked.delete(change.job_id);
      this._countsChanged.emit();
    } else {
      this._setActive(change.job_id, change.status);
      if (FINISHED.has(change.status)) {
        this._ended.set(change.job_id, change.status);
        if (this._ended.size > ENDED_KEPT) {
          this._ended.delete(this._ended.keys().next().value as string);
        }
        this._announce(change.job_id, change.status);
      }
    }
    this._jobChanged.emit(change);
  }

  private _setActive(id: string, status: string): void {
    const before = this._active.get(id);
    if (ACTIVE.has(status)) {
      this._active.set(id, status);
    } else {
      this._active.delete(id);
    }
    if (before !== this._active.get(id)) {
      this._countsChanged.emit();
    }
  }

  private _announce(id: string, status: string): void {
    const script = this._tracked.get(id);
    if (script === undefined) {
      return;
    }
    this._tracked.delete(id);
    if (!this.settings.notifyOnFinish) {
      return;
    }
    const actions = [
      {
        label: 'Open',
        caption: 'Open the job',
        callback: () => this._openJob(id)
      }
    ];
    const message = `Job ${script} ${status}`;
    const options = { autoClose: 10000, actions };
    if (status === 'succeeded') {
      Notification.success(message, options);
    } else if (status === 'failed') {
      Notification.error(message, options);
    } else {
      Notification.warning(message, options);
    }
  }

  private _setConnected(connected: boolean): void {
    if (this._connected !== connected) {
      this._connected = connected;
      this._countsChanged.emit();
    }
  }

  private _openJob: (id: string) => void;
  private _abort: AbortController | null = null;
  private _connected = false;
  private _warned = false;
  private _active = new Map<string, string>();
  private _tracked = new Map<string, string>();
  private _ended = new Map<string, string>();
  private _scripts: Promise<IScript[]> | null = null;
  private _extensions: Promise<string[]> | null = null;
  private _knownExtensions: string[] | null = null;
  private _jobChanged = new Signal<this, IJobChange>(this);
  private _reconnected = new Signal<this, void>(this);
  private _countsChanged = new Signal<this, void>(this);
  private _datafilesChanged = new Signal<this, void>(this);
  private _settingsChanged = new Signal<this, void>(this);
}

/** A sentence for a person about a failed request. */
export function describeError(error: unknown, what: string): string {
  if (error instanceof JobServerError) {
    if (error.status === 403) {
      return `${what}: not allowed. ${error.message}`;
    }
    if (error.status === 413) {
      return `${what}: too large. ${error.message}`;
    }
    return `${what}: ${error.message}`;
  }
  return `${what}: ${(error as Error)?.message ?? String(error)}`;
}
