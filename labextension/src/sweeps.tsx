import {
  LabIcon,
  ReactWidget,
  refreshIcon,
  runIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import { Signal } from '@lumino/signaling';
import * as React from 'react';

import { FINISHED, STATUSES } from './api';
import {
  ErrorBox,
  formatDuration,
  formatTime,
  ProgressBar,
  StatusBadge
} from './components';
import { streamEvents } from './events';
import { IJobChange, JobServerModel } from './model';
import { ISweep, ISweepTable, sweepAPI } from './sweepapi';

/** A grid of squares: many jobs of one script. */
export const sweepsIcon = new LabIcon({
  name: 'jupyter-jobserver:sweeps',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 3h5v5H3zM10 3h5v5h-5zM17 3h4v5h-4zM3 10h5v5H3zM10 10h5v5h-5zM3 17h5v4H3z"/>
    <path d="M14 14v8l7-4z"/>
  </g>
</svg>`
});

export interface ISweepsPanelOptions {
  model: JobServerModel;
  openSweep: (id: string) => void;
  openSweepDialog: () => void;
}

/**
 * The user's sweeps, newest first: each with its counts by status and a
 * progress bar that follows the sweep's event stream, cancel and rerun-failed
 * buttons, and its results table.
 */
export class SweepsPanel extends ReactWidget {
  constructor(private _options: ISweepsPanelOptions) {
    super();
    this.id = 'jobserver-sweeps';
    this.addClass('jp-JobServer-sweeps');
    this.title.caption = 'Job server sweeps';
  }

  /** Read the list again (a sweep was just made here). */
  refresh(): void {
    this._refresh.emit();
  }

  protected render(): JSX.Element {
    return <SweepsView {...this._options} refresh={this._refresh} />;
  }

  private _refresh = new Signal<this, void>(this);
}

function SweepsView(
  props: ISweepsPanelOptions & { refresh: Signal<SweepsPanel, void> }
): JSX.Element {
  const { model } = props;
  const [sweeps, setSweeps] = React.useState<ISweep[]>([]);
  const [total, setTotal] = React.useState(0);
  const [error, setError] = React.useState<string | null>(null);
  const shown = React.useRef<Set<string>>(new Set());

  const load = React.useCallback(async () => {
    try {
      const answer = await sweepAPI.list(model.settings.pageSize);
      setSweeps(answer.sweeps);
      setTotal(answer.total);
      shown.current = new Set(answer.sweeps.map(s => s.id));
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [model]);

  React.useEffect(() => {
    void load();
    let pending: number | null = null;
    const reload = () => {
      // a sweep's first jobs arrive as a burst of changes: one request for them
      if (pending === null) {
        pending = window.setTimeout(() => {
          pending = null;
          void load();
        }, 200);
      }
    };
    // a sweep made elsewhere (a notebook, another tab) shows up with the first change
    // of one of its jobs; the progress of shown sweeps comes from each sweep's stream
    const queued = (_: unknown, change: IJobChange) => {
      if (change.sweep && !shown.current.has(change.sweep)) {
        shown.current.add(change.sweep); // one reload for the burst
        reload();
      }
    };
    const refresh = () => void load();
    model.jobChanged.connect(queued);
    model.reconnected.connect(refresh);
    props.refresh.connect(refresh);
    return () => {
      model.jobChanged.disconnect(queued);
      model.reconnected.disconnect(refresh);
      props.refresh.disconnect(refresh);
      if (pending !== null) {
        window.clearTimeout(pending);
      }
    };
  }, [model, load]);

  return (
    <div className="jp-JobServer-panel">
      <div className="jp-JobServer-header">
        <h2>Sweeps</h2>
        <div className="jp-JobServer-toolbar">
          <ToolbarButtonComponent
            icon={runIcon}
            tooltip="Start a sweep…"
            onClick={props.openSweepDialog}
          />
          <ToolbarButtonComponent
            icon={refreshIcon}
            tooltip="Refresh the list"
            onClick={() => void load()}
          />
        </div>
      </div>
      <ErrorBox message={error} />
      <div className="jp-JobServer-scroll">
        {!sweeps.length && !error ? (
          <div className="jp-JobServer-empty">No sweeps yet.</div>
        ) : null}
        <ul className="jp-JobServer-sweep-list" aria-label="Sweeps">
          {sweeps.map(sweep => (
            <SweepItem
              key={sweep.id}
              initial={sweep}
              openSweep={props.openSweep}
              removed={() => void load()}
            />
          ))}
        </ul>
        {total > sweeps.length ? (
          <div className="jp-JobServer-muted">
            The newest {sweeps.length} of {total} sweeps.
          </div>
        ) : null}
      </div>
    </div>
  );
}

/** One sweep, kept current by its `progress` events while any job of it is active. */
function SweepItem(props: {
  initial: ISweep;
  openSweep: (id: string) => void;
  removed: () => void;
}): JSX.Element {
  const [sweep, setSweep] = React.useState(props.initial);
  const [busy, setBusy] = React.useState(false);
  const [streamError, setStreamError] = React.useState<string | null>(null);
  const id = sweep.id;
  const active = !FINISHED.has(sweep.status) && sweep.status !== 'created';

  React.useEffect(() => setSweep(props.initial), [props.initial]);

  React.useEffect(() => {
    if (!active) {
      return;
    }
    const abort = new AbortController();
    streamEvents(sweepAPI.events(id), {
      signal: abort.signal,
      onEvent: event => {
        if (event.data?.sweep) {
          setSweep(event.data.sweep as ISweep);
        } else if (event.event === 'end') {
          props.removed(); // deleted meanwhile
        }
      }
    })
      .then(() => setStreamError(null))
      .catch((e: Error) => setStreamError(e.message));
    return () => abort.abort();
  }, [id, active]);

  const act = async (what: string, call: () => Promise<ISweep>) => {
    setBusy(true);
    try {
      setSweep(await call());
    } catch (e) {
      JobServerModel.report(e, what);
    } finally {
      setBusy(false);
    }
  };

  const { done, total } = sweep.progress;
  const failed = sweep.counts.failed ?? 0;
  return (
    <li
      className="jp-JobServer-sweep"
      data-sweep-id={id}
      data-status={sweep.status}
    >
      <div className="jp-JobServer-job-line">
        <span className="jp-JobServer-job-script">{sweep.script}</span>
        <StatusBadge status={sweep.status} />
      </div>
      <div className="jp-JobServer-job-line jp-JobServer-muted">
        <span>{formatTime(sweep.created)}</span>
        <span aria-label="Jobs done">
          {done} of {total} done
        </span>
      </div>
      <ProgressBar fraction={sweep.progress.fraction} label="Sweep progress" />
      <Counts sweep={sweep} />
      <div className="jp-JobServer-buttons">
        <button
          className="jp-mod-styled jp-JobServer-button"
          disabled={busy || FINISHED.has(sweep.status)}
          onClick={() =>
            void act('Cancelling the sweep failed', () => sweepAPI.cancel(id))
          }
        >
          Cancel
        </button>
        <button
          className="jp-mod-styled jp-JobServer-button"
          disabled={busy || failed === 0}
          title="Run the failed jobs again, in their places"
          onClick={() =>
            void act('Rerunning the failed jobs failed', () =>
              sweepAPI.rerunFailed(id)
            )
          }
        >
          Rerun failed
        </button>
        <button
          className="jp-mod-styled jp-JobServer-button"
          title="Open the results table, a row per job"
          onClick={() => props.openSweep(id)}
        >
          Results
        </button>
      </div>
      <ErrorBox message={streamError} />
    </li>
  );
}

export interface ISweepDetailOptions {
  id: string;
  model: JobServerModel;
  openJob: (id: string) => void;
}

/** One sweep's page: its counts and progress, and its results table as jobs end. */
export class SweepDetail extends ReactWidget {
  constructor(private _options: ISweepDetailOptions) {
    super();
    this.id = `jobserver-sweep-${_options.id}`;
    this.addClass('jp-JobServer-detail');
    this.title.label = `Sweep ${_options.id.slice(0, 8)}`;
    this.title.closable = true;
  }

  get sweepId(): string {
    return this._options.id;
  }

  protected onCloseRequest(msg: any): void {
    super.onCloseRequest(msg);
    this.dispose();
  }

  protected render(): JSX.Element {
    return (
      <SweepPage
        {...this._options}
        setLabel={label => (this.title.label = label)}
      />
    );
  }
}

function SweepPage(
  props: ISweepDetailOptions & { setLabel: (label: string) => void }
): JSX.Element {
  const { id } = props;
  const [sweep, setSweep] = React.useState<ISweep | null>(null);
  const [gone, setGone] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [round, setRound] = React.useState(0);
  const ended = React.useRef(false);

  React.useEffect(() => {
    // the stream ends with the sweep; a rerun (here, in the panel or from a notebook)
    // changes its jobs again, and a new round of the stream follows them
    const again = (_: unknown, change: IJobChange) => {
      if (change.sweep === id && ended.current) {
        ended.current = false;
        setRound(r => r + 1);
      }
    };
    props.model.jobChanged.connect(again);
    return () => {
      props.model.jobChanged.disconnect(again);
    };
  }, [id]);

  React.useEffect(() => {
    const abort = new AbortController();
    streamEvents(sweepAPI.events(id), {
      signal: abort.signal,
      onEvent: event => {
        if (event.data?.sweep) {
          setSweep(event.data.sweep as ISweep);
          ended.current = event.event === 'end';
        } else if (event.event === 'end') {
          setGone(true);
        }
      }
    }).catch((e: Error) => setError(e.message));
    return () => abort.abort();
  }, [id, round]);

  React.useEffect(() => {
    if (sweep) {
      props.setLabel(`${sweep.script} sweep · ${sweep.status}`);
    }
  }, [sweep?.status, sweep?.script]);

  if (gone) {
    return (
      <div className="jp-JobServer-page">
        <div className="jp-JobServer-empty">This sweep has been deleted.</div>
      </div>
    );
  }
  if (!sweep) {
    return (
      <div className="jp-JobServer-page">
        {error ? (
          <ErrorBox message={error} />
        ) : (
          <div className="jp-JobServer-muted">Loading…</div>
        )}
      </div>
    );
  }
  return (
    <div
      className="jp-JobServer-page jp-JobServer-sweep-detail"
      data-status={sweep.status}
    >
      <div className="jp-JobServer-detail-head">
        <h2>
          {sweep.script} sweep <StatusBadge status={sweep.status} />
        </h2>
        <span className="jp-JobServer-muted" aria-label="Jobs done">
          {sweep.progress.done} of {sweep.progress.total} done
        </span>
      </div>
      <ProgressBar fraction={sweep.progress.fraction} label="Sweep progress" />
      <Counts sweep={sweep} />
      <ErrorBox message={error} />
      <section className="jp-JobServer-section">
        <h3>Results</h3>
        <SweepResults
          id={id}
          // a rerun's jobs may all end before its round's first event: the round counts
          version={`${round}/${sweep.progress.done}/${sweep.status}`}
          openJob={props.openJob}
        />
      </section>
    </div>
  );
}

function Counts(props: { sweep: ISweep }): JSX.Element {
  const { sweep } = props;
  return (
    <div className="jp-JobServer-sweep-counts" aria-label="Counts by status">
      {STATUSES.filter(s => sweep.counts[s]).map(s => (
        <span
          key={s}
          className={`jp-JobServer-count jp-JobServer-status-${s}`}
          data-status={s}
        >
          {s} {sweep.counts[s]}
        </span>
      ))}
    </div>
  );
}

/** The sweep's results table, read again as its jobs end. */
function SweepResults(props: {
  id: string;
  version: string;
  openJob: (id: string) => void;
}): JSX.Element {
  const [table, setTable] = React.useState<ISweepTable | null>(null);
  const [error, setError] = React.useState<string | null>(null);

  React.useEffect(() => {
    let current = true;
    sweepAPI
      .results(props.id)
      .then(answer => {
        if (current) {
          setTable(answer);
          setError(null);
        }
      })
      .catch(e => current && setError((e as Error).message));
    return () => {
      current = false;
    };
  }, [props.id, props.version]);

  if (error) {
    return <ErrorBox message={error} />;
  }
  if (!table) {
    return <div className="jp-JobServer-muted">Loading results…</div>;
  }
  const jobColumn = table.columns.indexOf('job');
  const statusColumn = table.columns.indexOf('status');
  const timeColumn = table.columns.indexOf('time_sec');
  const columns = table.columns.filter(c => c !== 'job');
  return (
    <div className="jp-JobServer-table-wrap jp-JobServer-sweep-results">
      <table className="jp-JobServer-table" aria-label="Sweep results">
        <thead>
          <tr>
            {columns.map(c => (
              <th key={c}>{c}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {table.rows.map((row, r) => {
            const job = String(row[jobColumn] ?? '');
            return (
              <tr
                key={r}
                data-job-id={job}
                data-status={String(row[statusColumn] ?? '')}
              >
                {table.columns.map((column, c) => {
                  if (c === jobColumn) {
                    return null;
                  }
                  const value = row[c];
                  if (c === statusColumn) {
                    return (
                      <td key={c}>
                        <a
                          href="#"
                          className="jp-JobServer-link"
                          title={`Open job ${job}`}
                          onClick={e => {
                            e.preventDefault();
                            props.openJob(job);
                          }}
                        >
                          <StatusBadge status={String(value)} />
                        </a>
                      </td>
                    );
                  }
                  return (
                    <td
                      key={c}
                      className={
                        typeof value === 'number' ? 'jp-JobServer-number' : ''
                      }
                    >
                      {c === timeColumn
                        ? formatDuration(value as number | null)
                        : cell(value)}
                    </td>
                  );
                })}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

/** A cell's text; a table or a long value in short (the job's page shows it whole). */
function cell(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value !== 'object') {
    return String(value);
  }
  const tagged = value as Record<string, any>;
  if (tagged.$type === 'dataframe' && Array.isArray(tagged.data)) {
    return `table, ${tagged.data.length} × ${(tagged.columns ?? []).length}`;
  }
  const text = JSON.stringify(value);
  return text.length > 80 ? text.slice(0, 77) + '…' : text;
}
