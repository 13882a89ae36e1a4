import { Dialog, showDialog } from '@jupyterlab/apputils';
import {
  closeIcon,
  deleteIcon,
  fileUploadIcon,
  refreshIcon,
  ReactWidget,
  runIcon,
  searchIcon,
  ToolbarButtonComponent
} from '@jupyterlab/ui-components';
import * as React from 'react';

import { api, IDatafile } from './api';
import {
  asTable,
  formatSize,
  formatTime,
  JSONTree,
  ProgressBar,
  Table
} from './components';
import { JobServerModel } from './model';
import { JobServerError } from './request';
import { Upload } from './upload';

type SortKey = 'name' | 'size' | 'modified';

export interface IDatafilesPanelOptions {
  model: JobServerModel;
  /** Open the run dialog with this datafile bound. */
  run: (name: string) => void;
  /** Show the first rows of this datafile. */
  preview: (name: string) => void;
}

/**
 * The left sidebar's datafile panel: the data folder with size, date and
 * checksum; sorting and filtering; uploads by drag and drop or a button,
 * each with its progress and a cancel button; preview, run and delete.
 */
export class DatafilesPanel extends ReactWidget {
  constructor(private _options: IDatafilesPanelOptions) {
    super();
    this.addClass('jp-JobServer-datafiles');
    this.id = 'jobserver-datafiles';
    this.title.caption = 'Job server datafiles';
  }

  /** Upload files as if they had been dropped here (the button and drops use it). */
  upload(files: File[]): Promise<void> {
    return this._uploader.add(files);
  }

  protected render(): JSX.Element {
    return <DatafilesView {...this._options} uploader={this._uploader} />;
  }

  private _uploader = new Uploader(this._options.model);
}

/** The uploads under way, and the questions they ask (replace or not). */
class Uploader {
  constructor(readonly model: JobServerModel) {}

  uploads: Upload[] = [];
  listeners = new Set<() => void>();
  names: Set<string> = new Set();

  async add(files: File[]): Promise<void> {
    await Promise.all(files.map(file => this._one(file)));
  }

  private async _one(file: File): Promise<void> {
    let overwrite = false;
    if (this.names.has(file.name)) {
      overwrite = await confirmReplace(file.name);
      if (!overwrite) {
        return;
      }
    }
    for (;;) {
      const upload = new Upload(file, file.name, overwrite);
      this.uploads = [...this.uploads, upload];
      upload.changed.connect(this._emit, this);
      this._emit();
      try {
        await upload.start();
        this._remove(upload);
        this.model.notifyDatafilesChanged();
        return;
      } catch (error) {
        this._remove(upload);
        const failure = error as JobServerError;
        if (failure.code === 'cancelled') {
          return;
        }
        if (failure.status === 409 && !overwrite) {
          // the name appeared since the list was read: ask, as for a known name
          overwrite = await confirmReplace(file.name);
          if (overwrite) {
            continue;
          }
          return;
        }
        JobServerModel.report(error, `Uploading ${file.name} failed`);
        return;
      }
    }
  }

  private _remove(upload: Upload): void {
    upload.changed.disconnect(this._emit, this);
    this.uploads = this.uploads.filter(u => u !== upload);
    this._emit();
  }

  private _emit(): void {
    for (const listener of this.listeners) {
      listener();
    }
  }
}

export async function confirmReplace(name: string): Promise<boolean> {
  const answer = await showDialog({
    title: 'Replace datafile?',
    body: `A datafile named "${name}" exists already. Replace it?`,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Replace' })]
  });
  return answer.button.accept;
}

function DatafilesView(
  props: IDatafilesPanelOptions & { uploader: Uploader }
): JSX.Element {
  const { model, uploader } = props;
  const [files, setFiles] = React.useState<IDatafile[] | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [filter, setFilter] = React.useState('');
  const [sort, setSort] = React.useState<SortKey>('name');
  const [descending, setDescending] = React.useState(false);
  const [dragging, setDragging] = React.useState(false);
  const [uploads, setUploads] = React.useState<Upload[]>([]);
  const input = React.useRef<HTMLInputElement>(null);
  const depth = React.useRef(0);

  const load = React.useCallback(async () => {
    try {
      const listing = await model.datafiles();
      uploader.names = new Set(listing.map(f => f.name));
      setFiles(listing);
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  }, [model, uploader]);

  React.useEffect(() => {
    void load();
    const changed = () => void load();
    model.datafilesChanged.connect(changed);
    const listener = () => setUploads([...uploader.uploads]);
    uploader.listeners.add(listener);
    return () => {
      model.datafilesChanged.disconnect(changed);
      uploader.listeners.delete(listener);
    };
  }, [model, uploader, load]);

  const remove = async (name: string) => {
    const answer = await showDialog({
      title: 'Delete datafile?',
      body: `Delete "${name}" from the data folder? Jobs that read it keep its checksum, but cannot be rerun on it.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!answer.button.accept) {
      return;
    }
    try {
      await api.deleteDatafile(name);
      model.notifyDatafilesChanged();
    } catch (e) {
      JobServerModel.report(e, `Deleting ${name} failed`);
    }
  };

  const shown = (files ?? [])
    .filter(f => f.name.toLowerCase().includes(filter.toLowerCase()))
    .sort((a, b) => {
      const order =
        sort === 'size'
          ? a.size - b.size
          : sort === 'modified'
            ? a.modified.localeCompare(b.modified)
            : a.name.localeCompare(b.name);
      return descending ? -order : order;
    });

  const sorter = (key: SortKey, label: string) => (
    <button
      className={'jp-JobServer-sort' + (sort === key ? ' jp-mod-active' : '')}
      onClick={() => {
        if (sort === key) {
          setDescending(!descending);
        } else {
          setSort(key);
          setDescending(key !== 'name');
        }
      }}
      aria-pressed={sort === key}
      title={`Sort by ${label.toLowerCase()}`}
    >
      {label}
      {sort === key ? (descending ? ' ↓' : ' ↑') : ''}
    </button>
  );

  const hasFiles = (event: React.DragEvent) =>
    Array.from(event.dataTransfer?.types ?? []).includes('Files');

  return (
    <div
      className={
        'jp-JobServer-panel' + (dragging ? ' jp-JobServer-dragging' : '')
      }
      onDragEnter={event => {
        if (hasFiles(event)) {
          event.preventDefault();
          depth.current++;
          setDragging(true);
        }
      }}
      onDragOver={event => {
        if (hasFiles(event)) {
          event.preventDefault();
          event.dataTransfer.dropEffect = 'copy';
        }
      }}
      onDragLeave={() => {
        depth.current = Math.max(0, depth.current - 1);
        if (!depth.current) {
          setDragging(false);
        }
      }}
      onDrop={event => {
        depth.current = 0;
        setDragging(false);
        const dropped = Array.from(event.dataTransfer?.files ?? []);
        if (dropped.length) {
          event.preventDefault();
          event.stopPropagation();
          void uploader.add(dropped);
        }
      }}
    >
      <div className="jp-JobServer-header">
        <h2>Datafiles</h2>
        <div className="jp-JobServer-toolbar">
          <ToolbarButtonComponent
            icon={fileUploadIcon}
            tooltip="Upload files to the data folder"
            onClick={() => input.current?.click()}
          />
          <ToolbarButtonComponent
            icon={refreshIcon}
            tooltip="Refresh the list"
            onClick={() => void load()}
          />
        </div>
        <input
          ref={input}
          type="file"
          multiple
          hidden
          className="jp-JobServer-file-input"
          onChange={event => {
            const chosen = Array.from(event.target.files ?? []);
            event.target.value = '';
            void uploader.add(chosen);
          }}
        />
      </div>
      <div className="jp-JobServer-filter">
        <searchIcon.react tag="span" className="jp-JobServer-filter-icon" />
        <input
          className="jp-mod-styled"
          type="search"
          placeholder="Filter by name"
          aria-label="Filter datafiles by name"
          value={filter}
          onChange={event => setFilter(event.target.value)}
        />
      </div>
      {uploads.length ? (
        <ul className="jp-JobServer-uploads" aria-label="Uploads">
          {uploads.map((upload, i) => (
            <li key={i} className="jp-JobServer-upload" data-name={upload.name}>
              <div className="jp-JobServer-upload-line">
                <span className="jp-JobServer-upload-name">{upload.name}</span>
                <span className="jp-JobServer-muted">
                  {formatSize(upload.loaded)} of {formatSize(upload.total)}
                </span>
                <ToolbarButtonComponent
                  icon={closeIcon}
                  tooltip={`Cancel the upload of ${upload.name}`}
                  className="jp-JobServer-upload-cancel"
                  onClick={() => upload.cancel()}
                />
              </div>
              <ProgressBar
                fraction={upload.fraction}
                label={`Uploading ${upload.name}`}
              />
            </li>
          ))}
        </ul>
      ) : null}
      {error ? <div className="jp-JobServer-error">{error}</div> : null}
      <div className="jp-JobServer-scroll">
        {files && !files.length ? (
          <div className="jp-JobServer-empty">
            No datafiles yet. Drop files here, or use the upload button.
          </div>
        ) : (
          <>
            <div
              className="jp-JobServer-sorter"
              role="toolbar"
              aria-label="Sort datafiles"
            >
              <span className="jp-JobServer-muted">Sort by</span>
              {sorter('name', 'Name')}
              {sorter('size', 'Size')}
              {sorter('modified', 'Modified')}
            </div>
            <ul className="jp-JobServer-datafile-list" aria-label="Datafiles">
              {shown.map(file => (
                <li
                  key={file.name}
                  className="jp-JobServer-datafile"
                  data-name={file.name}
                  title={`${file.name}\nsha256 ${file.sha256}`}
                >
                  <div className="jp-JobServer-datafile-line">
                    <span className="jp-JobServer-datafile-name">
                      {file.name}
                    </span>
                    <span className="jp-JobServer-actions">
                      <ToolbarButtonComponent
                        icon={searchIcon}
                        tooltip={`Preview ${file.name}`}
                        onClick={() => props.preview(file.name)}
                      />
                      <ToolbarButtonComponent
                        icon={runIcon}
                        tooltip={`Run a script on ${file.name}`}
                        onClick={() => props.run(file.name)}
                      />
                      <ToolbarButtonComponent
                        icon={deleteIcon}
                        tooltip={`Delete ${file.name}`}
                        onClick={() => void remove(file.name)}
                      />
                    </span>
                  </div>
                  <div className="jp-JobServer-datafile-line jp-JobServer-muted">
                    <span className="jp-JobServer-datafile-size">
                      {formatSize(file.size)}
                    </span>
                    <span>{formatTime(file.modified)}</span>
                  </div>
                  <div className="jp-JobServer-checksum">
                    sha256 {file.sha256.slice(0, 16)}…
                  </div>
                </li>
              ))}
            </ul>
            {filter && !shown.length ? (
              <div className="jp-JobServer-empty">
                No datafile matches “{filter}”.
              </div>
            ) : null}
          </>
        )}
      </div>
      <div className="jp-JobServer-dropzone">
        Drop files to upload them to the data folder
      </div>
    </div>
  );
}

/** The first rows of a datafile, in a main-area tab. */
export class DatafilePreview extends ReactWidget {
  constructor(
    readonly name: string,
    private _rows: number
  ) {
    super();
    this.addClass('jp-JobServer-preview');
    this.title.label = `Preview: ${name}`;
    this.title.closable = true;
  }

  protected render(): JSX.Element {
    return <PreviewView name={this.name} rows={this._rows} />;
  }
}

function PreviewView(props: { name: string; rows: number }): JSX.Element {
  const [content, setContent] = React.useState<unknown>(undefined);
  const [error, setError] = React.useState<string | null>(null);
  React.useEffect(() => {
    api
      .datafileRows(props.name)
      .then(setContent)
      .catch((e: Error) => setError(e.message));
  }, [props.name]);
  const table = content === undefined ? null : asTable(content);
  return (
    <div className="jp-JobServer-page">
      <h2>{props.name}</h2>
      {error ? <div className="jp-JobServer-error">{error}</div> : null}
      {content === undefined && !error ? (
        <div className="jp-JobServer-muted">Loading…</div>
      ) : null}
      {table ? <Table table={table} limit={props.rows} /> : null}
      {content !== undefined && !table ? <JSONTree value={content} /> : null}
    </div>
  );
}
