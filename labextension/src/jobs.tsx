import { Dialog, showDialog } from '@jupyterlab/apputils';
import {
  HTMLSelect,
  ReactWidget,
  refreshIcon,
  runIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { api, FINISHED, IJob, IJobFile, IScript, STATUSES } from './api';
import {
  asTable,
  formatDuration,
  formatSize,
  formatTime,
  JSONTree,
  ProgressBar,
  StatusBadge,
  Table
} from './components';
import { streamEvents } from './events';
import { IJobChange, JobServerModel } from './model';

export interface IJobsPanelOptions {
  model: JobServerModel;
  openJob: (id: string) => void;
  openRunDialog: () => void;
}

/**
 * The user's jobs, newest first, with filters by status, script and tag and
 * paging. Statuses change as the server's event stream says, not by polling.
 */
export class JobsPanel extends ReactWidget {
  constructor(private _options: IJobsPanelOptions) {
    super();
    this.id = 'jobserver-jobs';
    this.addClass('jp-JobServer-jobs');
    this.title.caption = 'Job server jobs';
  }

  protected render(): JSX.Element {
    return <JobsView {...this._options} />;
  }
}

function JobsView(props: IJobsPanelOptions): JSX.Element {
  const { model } = props;
  const [jobs, setJobs] = React.useState<IJob[]>([]);
  const [total, setTotal] = React.useState(0);
  const [page, setPage] = React.useState(0);
  const [status, setStatus] = React.useState('');
  const [script, setScript] = React.useState('');
  const [tag, setTag] = React.useState('');
  const [scripts, setScripts] = React.useState<IScript[]>([]);
  const [error, setError] = React.useState<string | null>(null);
  const [pageSize, setPageSize] = React.useState(model.settings.pageSize);
  const query = React.useRef({ status, script, tag, page, pageSize });
  query.current = { status, script, tag, page, pageSize };
  const shown = React.useRef<IJob[]>([]);
  shown.current = jobs;

  const load = React.useCallback(async () => {
    const q = query.current;
    try {
      const answer = await api.jobs({
        status: q.status ? [q.status] : undefined,
        script: q.script ? [q.script] : undefined,
        tag: q.tag.trim() ? [q.tag.trim()] : undefined,
        sort: '-created',
        limit: q.pageSize,
        offset: q.page * q.pageSize
      });
      setJobs(answer.jobs);
      setTotal(answer.total);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, []);

  React.useEffect(() => {
    void load();
  }, [status, script, tag, page, pageSize, load]);

  React.useEffect(() => {
    model
      .scripts()
      .then(setScripts)
      .catch(() => undefined);
    let pending: number | null = null;
    const reload = () => {
      // several changes at once (a burst of jobs) are one request
      if (pending === null) {
        pending = window.setTimeout(() => {
          pending = null;
          void load();
        }, 100);
      }
    };
    const changed = (_: unknown, change: IJobChange) => {
      const known = shown.current.find(j => j.id === change.job_id);
      const q = query.current;
      if (change.event === 'deleted') {
        if (known) {
          reload();
        }
        return;
      }
      if (known) {
        if (q.status && q.status !== change.status) {
          reload(); // it no longer matches the filter
        } else if (FINISHED.has(change.status)) {
          reload(); // times and results to show
        } else {
          setJobs(list =>
            list.map(j =>
              j.id === change.job_id
                ? { ...j, status: change.status as any }
                : j
            )
          );
        }
      } else if (q.page === 0) {
        reload(); // a new job, at the top
      }
      // on later pages a new job only shifts the pages: they are read when visited
    };
    const settings = () => setPageSize(model.settings.pageSize);
    model.jobChanged.connect(changed);
    model.reconnected.connect(reload);
    model.settingsChanged.connect(settings);
    return () => {
      model.jobChanged.disconnect(changed);
      model.reconnected.disconnect(reload);
      model.settingsChanged.disconnect(settings);
      if (pending !== null) {
        window.clearTimeout(pending);
      }
    };
  }, [model, load]);

  const pages = Math.max(1, Math.ceil(total / pageSize));
  return (
    <div className="jp-JobServer-panel">
      <div className="jp-JobServer-header">
        <h2>Jobs</h2>
        <div className="jp-JobServer-toolbar">
          <ToolbarButtonComponent
            icon={runIcon}
            tooltip="Run a script…"
            onClick={props.openRunDialog}
          />
          <ToolbarButtonComponent
            icon={refreshIcon}
            tooltip="Refresh the list"
            onClick={() => void load()}
          />
        </div>
      </div>
      <div className="jp-JobServer-filters">
        <HTMLSelect
          aria-label="Filter by status"
          value={status}
          onChange={e => {
            setPage(0);
            setStatus(e.currentTarget.value);
          }}
        >
          <option value="">Any status</option>
          {STATUSES.map(s => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </HTMLSelect>
        <HTMLSelect
          aria-label="Filter by script"
          value={script}
          onChange={e => {
            setPage(0);
            setScript(e.currentTarget.value);
          }}
        >
          <option value="">Any script</option>
          {scripts.map(s => (
            <option key={s.name} value={s.name}>
              {s.name}
            </option>
          ))}
        </HTMLSelect>
        <input
          className="jp-mod-styled jp-JobServer-tag-filter"
          type="search"
          placeholder="Tag"
          aria-label="Filter by tag"
          value={tag}
          onChange={e => {
            setPage(0);
            setTag(e.target.value);
          }}
        />
      </div>
      {error ? <div className="jp-JobServer-error">{error}</div> : null}
      <div className="jp-JobServer-scroll">
        {!jobs.length && !error ? (
          <div className="jp-JobServer-empty">
            No jobs{status || script || tag ? ' match' : ' yet'}.
          </div>
        ) : null}
        <ul className="jp-JobServer-job-list" aria-label="Jobs">
          {jobs.map(job => (
            <li
              key={job.id}
              className="jp-JobServer-job"
              data-job-id={job.id}
              data-status={job.status}
              tabIndex={0}
              onClick={() => props.openJob(job.id)}
              onKeyDown={e => {
                if (e.key === 'Enter') {
                  props.openJob(job.id);
                }
              }}
              title={`Open job ${job.id}`}
            >
              <div className="jp-JobServer-job-line">
                <span className="jp-JobServer-job-script">
                  {job.script ?? job.process}
                </span>
                <StatusBadge status={job.status} />
              </div>
              <div className="jp-JobServer-job-line jp-JobServer-muted">
                <span>{formatTime(job.created)}</span>
                <span>{formatDuration(job.time_sec)}</span>
              </div>
              {job.tags.length ? (
                <div className="jp-JobServer-tags">
                  {job.tags.map(t => (
                    <span key={t} className="jp-JobServer-tag">
                      {t}
                    </span>
                  ))}
                </div>
              ) : null}
            </li>
          ))}
        </ul>
      </div>
      <div className="jp-JobServer-pager">
        <button
          className="jp-mod-styled jp-JobServer-button"
          disabled={page === 0}
          onClick={() => setPage(page - 1)}
        >
          Newer
        </button>
        <span className="jp-JobServer-muted" aria-label="Page">
          {total
            ? `${page * pageSize + 1}–${Math.min(total, (page + 1) * pageSize)} of ${total}`
            : ''}
        </span>
        <button
          className="jp-mod-styled jp-JobServer-button"
          disabled={page + 1 >= pages}
          onClick={() => setPage(page + 1)}
        >
          Older
        </button>
      </div>
    </div>
  );
}

export interface IJobDetailOptions {
  id: string;
  model: JobServerModel;
  openJob: (id: string) => void;
  useInNotebook: (job: IJob) => void;
  /** Open a notebook the job wrote (its executed notebook) in JupyterLab. */
  openNotebook?: (id: string, path: string) => void;
}

/**
 * One job: parameters, data, provenance, progress, the output as it is
 * printed (from `jobs/{id}/events`), the result and any error, with cancel,
 * rerun, delete and "Use in a notebook".
 */
export class JobDetail extends ReactWidget {
  constructor(private _options: IJobDetailOptions) {
    super();
    this.id = `jobserver-job-${_options.id}`;
    this.addClass('jp-JobServer-detail');
    this.title.label = `Job ${_options.id.slice(0, 8)}`;
    this.title.closable = true;
  }

  get jobId(): string {
    return this._options.id;
  }

  protected onCloseRequest(msg: any): void {
    super.onCloseRequest(msg);
    this.dispose();
  }

  protected render(): JSX.Element {
    return (
      <JobView
        {...this._options}
        setLabel={label => (this.title.label = label)}
        close={() => this.close()}
      />
    );
  }
}

function JobView(
  props: IJobDetailOptions & {
    setLabel: (l: string) => void;
    close: () => void;
  }
): JSX.Element {
  const { id } = props;
  const [job, setJob] = React.useState<IJob | null>(null);
  const [stdout, setStdout] = React.useState('');
  const [stderr, setStderr] = React.useState('');
  const [ended, setEnded] = React.useState(false);
  const [gone, setGone] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);
  const outputRef = React.useRef<HTMLPreElement>(null);
  const follow = React.useRef(true);

  React.useEffect(() => {
    const abort = new AbortController();
    setStdout('');
    setStderr('');
    streamEvents(`jobs/${encodeURIComponent(id)}/events`, {
      signal: abort.signal,
      onEvent: event => {
        const data = event.data;
        switch (event.event) {
          case 'status':
            setJob(data.job);
            break;
          case 'progress':
            setJob(j => (j ? { ...j, progress: data.progress } : j));
            break;
          case 'output':
            if (data.stream === 'stderr') {
              setStderr(s => s + data.text);
            } else {
              setStdout(s => s + data.text);
            }
            break;
          case 'end':
            if (data.job) {
              setJob(data.job);
            } else {
              setGone(true);
            }
            setEnded(true);
            break;
        }
      }
    }).catch((e: Error) => setError(e.message));
    return () => abort.abort();
  }, [id]);

  React.useEffect(() => {
    if (job) {
      props.setLabel(`${job.script ?? job.process} · ${job.status}`);
    }
  }, [job?.status, job?.script]);

  React.useLayoutEffect(() => {
    const pre = outputRef.current;
    if (pre && follow.current) {
      pre.scrollTop = pre.scrollHeight;
    }
  }, [stdout, stderr]);

  const act = async (what: string, call: () => Promise<unknown>) => {
    setBusy(true);
    try {
      return await call();
    } catch (e) {
      JobServerModel.report(e, what);
    } finally {
      setBusy(false);
    }
  };

  if (gone) {
    return (
      <div className="jp-JobServer-page">
        <div className="jp-JobServer-empty">This job has been deleted.</div>
      </div>
    );
  }
  if (!job) {
    return (
      <div className="jp-JobServer-page">
        {error ? (
          <div className="jp-JobServer-error">{error}</div>
        ) : (
          <div className="jp-JobServer-muted">Loading…</div>
        )}
      </div>
    );
  }
  const active = !FINISHED.has(job.status);
  const parameters = job.provenance?.parameters ?? job.kwargs;
  const table = job.result !== undefined ? asTable(job.result) : null;
  return (
    <div
      className="jp-JobServer-page jp-JobServer-job-detail"
      data-status={job.status}
    >
      <div className="jp-JobServer-detail-head">
        <h2>
          {job.script ?? job.process} <StatusBadge status={job.status} />
        </h2>
        <div className="jp-JobServer-buttons">
          <button
            className="jp-mod-styled jp-JobServer-button"
            disabled={!active || busy}
            onClick={() =>
              void act('Cancelling the job failed', () => api.cancel(id))
            }
          >
            Cancel
          </button>
          <button
            className="jp-mod-styled jp-JobServer-button"
            disabled={busy || job.process === 'eval'}
            onClick={async () => {
              const next = (await act('Rerunning the job failed', () =>
                api.rerun(id)
              )) as IJob | undefined;
              if (next) {
                props.model.track(next);
                props.openJob(next.id);
              }
            }}
          >
            Rerun
          </button>
          <button
            className="jp-mod-styled jp-JobServer-button"
            disabled={busy}
            onClick={async () => {
              const answer = await showDialog({
                title: 'Delete job?',
                body: `Delete this ${job.script ?? job.process} job and its output${active ? ' (it is cancelled first)' : ''}?`,
                buttons: [
                  Dialog.cancelButton(),
                  Dialog.warnButton({ label: 'Delete' })
                ]
              });
              if (answer.button.accept) {
                await act('Deleting the job failed', () => api.deleteJob(id));
              }
            }}
          >
            Delete
          </button>
          <button
            className="jp-mod-styled jp-JobServer-button jp-mod-accept"
            onClick={() => props.useInNotebook(job)}
            title="Insert a cell that fetches this job with the Python client"
          >
            Use in a notebook
          </button>
        </div>
      </div>
      <dl className="jp-JobServer-facts">
        <dt>Job</dt>
        <dd className="jp-JobServer-code">{job.id}</dd>
        <dt>Owner</dt>
        <dd>{job.owner}</dd>
        <dt>Created</dt>
        <dd>{formatTime(job.created)}</dd>
        {job.started ? (
          <>
            <dt>Started</dt>
            <dd>{formatTime(job.started)}</dd>
          </>
        ) : null}
        {job.finished ? (
          <>
            <dt>Finished</dt>
            <dd>
              {formatTime(job.finished)} ({formatDuration(job.time_sec)})
            </dd>
          </>
        ) : null}
        {job.tags.length ? (
          <>
            <dt>Tags</dt>
            <dd>{job.tags.join(', ')}</dd>
          </>
        ) : null}
      </dl>
      {active || job.progress ? (
        <div className="jp-JobServer-section">
          <ProgressBar
            fraction={job.progress?.fraction ?? (active ? null : 1)}
            label="Job progress"
          />
          <div className="jp-JobServer-muted jp-JobServer-progress-message">
            {job.progress?.message ??
              (job.status === 'queued' ? 'waiting for a worker' : '')}
            {typeof job.progress?.fraction === 'number'
              ? ` ${Math.round(job.progress.fraction * 100)} %`
              : ''}
          </div>
        </div>
      ) : null}
      <section className="jp-JobServer-section">
        <h3>Parameters</h3>
        {job.args.length ? <JSONTree name="args" value={job.args} /> : null}
        <JSONTree value={parameters} open />
      </section>
      <section className="jp-JobServer-section">
        <h3>Data</h3>
        {job.data ? (
          <JSONTree value={job.data} open />
        ) : (
          <div className="jp-JobServer-muted">none</div>
        )}
      </section>
      <section className="jp-JobServer-section">
        <h3>Output</h3>
        <pre
          ref={outputRef}
          className="jp-JobServer-output"
          aria-label="Output"
          onScroll={e => {
            const pre = e.currentTarget;
            follow.current =
              pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          }}
        >
          {stdout}
          {stderr ? (
            <span className="jp-JobServer-stderr">{stderr}</span>
          ) : null}
          {!stdout && !stderr ? (
            <span className="jp-JobServer-muted">
              {ended ? 'no output' : 'no output yet'}
            </span>
          ) : null}
        </pre>
      </section>
      {job.error ? (
        <section className="jp-JobServer-section">
          <h3>Error</h3>
          <div className="jp-JobServer-error">
            {job.error.type}: {job.error.message}
          </div>
          {job.error.detail ? (
            <pre className="jp-JobServer-traceback">{job.error.detail}</pre>
          ) : null}
        </section>
      ) : null}
      {ended && job.status === 'succeeded' ? (
        <section className="jp-JobServer-section jp-JobServer-result">
          <h3>Result</h3>
          {table ? (
            <Table table={table} limit={500} />
          ) : (
            <JSONTree value={job.result ?? null} open />
          )}
        </section>
      ) : null}
      <JobFiles id={id} status={job.status} openNotebook={props.openNotebook} />
      {job.provenance ? (
        <section className="jp-JobServer-section">
          <h3>Provenance</h3>
          <JSONTree value={job.provenance} open={false} />
        </section>
      ) : null}
      {error ? <div className="jp-JobServer-error">{error}</div> : null}
    </div>
  );
}

const IMAGE = /\.(png|jpe?g|gif|webp|svg)$/i;

/**
 * The files a job wrote: each a download link with its size and checksum,
 * images shown as well. Read again whenever the job's status changes.
 */
function JobFiles(props: {
  id: string;
  status: string;
  openNotebook?: (id: string, path: string) => void;
}): JSX.Element | null {
  const { id, status, openNotebook } = props;
  const [files, setFiles] = React.useState<IJobFile[] | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => {
    if (status === 'created') {
      return;
    }
    let current = true;
    api
      .jobFiles(id)
      .then(found => current && setFiles(found))
      .catch((e: Error) => current && setError(e.message));
    return () => {
      current = false;
    };
  }, [id, status]);
  if (error) {
    return <div className="jp-JobServer-error">{error}</div>;
  }
  if (!files) {
    return null;
  }
  return (
    <section className="jp-JobServer-section jp-JobServer-files">
      <h3>Files</h3>
      {files.length === 0 ? (
        <div className="jp-JobServer-muted">
          {FINISHED.has(status) ? 'no files' : 'no files yet'}
        </div>
      ) : (
        <table className="jp-JobServer-files-table" aria-label="Job files">
          <tbody>
            {files.map(file => (
              <tr key={file.path}>
                <td>
                  <a
                    href={api.jobFileURL(id, file.path, true)}
                    download={file.path.split('/').pop()}
                  >
                    {file.path}
                  </a>
                  {openNotebook && file.path.endsWith('.ipynb') ? (
                    <button
                      className="jp-mod-styled jp-JobServer-button"
                      title="Open a copy of this notebook in JupyterLab"
                      onClick={() => openNotebook(id, file.path)}
                    >
                      Open
                    </button>
                  ) : null}
                  {IMAGE.test(file.path) ? (
                    <div>
                      <img
                        className="jp-JobServer-file-image"
                        src={api.jobFileURL(id, file.path)}
                        alt={file.path}
                      />
                    </div>
                  ) : null}
                </td>
                <td className="jp-JobServer-muted">{formatSize(file.size)}</td>
                <td
                  className="jp-JobServer-code jp-JobServer-muted"
                  title={file.sha256 ?? 'checksummed when the job ends'}
                >
                  {file.sha256 ? file.sha256.slice(0, 12) : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
