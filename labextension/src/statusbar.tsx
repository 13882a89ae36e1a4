import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { JobServerModel } from './model';

/** The status bar's count of running and queued jobs; a click opens the jobs. */
export class JobsStatus extends ReactWidget {
  constructor(
    private _model: JobServerModel,
    private _open: () => void
  ) {
    super();
    this.addClass('jp-JobServer-statusbar');
    _model.countsChanged.connect(this.update, this);
  }

  dispose(): void {
    this._model.countsChanged.disconnect(this.update, this);
    super.dispose();
  }

  protected render(): JSX.Element {
    const { running, queued, connected } = this._model;
    const text = `Jobs: ${running} running, ${queued} queued`;
    return (
      <span
        className="jp-JobServer-statusbar-text"
        title={
          connected
            ? `${text} (click to show the jobs)`
            : 'The job server cannot be reached'
        }
        onClick={this._open}
        data-running={running}
        data-queued={queued}
      >
        {connected ? text : 'Jobs: offline'}
      </span>
    );
  }
}
