import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  ICommandPalette,
  MainAreaWidget,
  Notification,
  showDialog,
  WidgetTracker
} from '@jupyterlab/apputils';
import { PathExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Token } from '@lumino/coreutils';

import { api, IJob } from './api';
import { confirmReplace, DatafilePreview, DatafilesPanel } from './datafiles';
import { datafilesIcon, jobsIcon } from './icons';
import { JobDetail, JobsPanel } from './jobs';
import { DEFAULT_SETTINGS, IModelSettings, JobServerModel } from './model';
import { JobServerError } from './request';
import { IRunRequest, openRunDialog } from './rundialog';
import { JobsStatus } from './statusbar';
import { ISweep } from './sweepapi';
import { ISweepRequest, openSweepDialog } from './sweepdialog';
import { SweepDetail, SweepsPanel, sweepsIcon } from './sweeps';

const PLUGIN_ID = 'jupyter-jobserver:plugin';
const CATEGORY = 'Job Server';

export namespace CommandIDs {
  export const openDatafiles = 'jobserver:open-datafiles';
  export const openJobs = 'jobserver:open-jobs';
  export const run = 'jobserver:run';
  export const openJob = 'jobserver:open-job';
  export const preview = 'jobserver:preview-datafile';
  export const addToData = 'jobserver:add-to-data';
  export const runOnFile = 'jobserver:run-on-file';
  export const useInNotebook = 'jobserver:use-in-notebook';
  export const openJobNotebook = 'jobserver:open-job-notebook';
  export const openSweeps = 'jobserver:open-sweeps';
  export const sweep = 'jobserver:sweep';
  export const sweepOnFiles = 'jobserver:sweep-on-files';
}

/** What the job server's plugins share. */
export interface IJobServer {
  readonly model: JobServerModel;
  openJob(id: string): void;
  openRunDialog(request?: IRunRequest): Promise<IJob | null>;
  openSweepDialog(request?: ISweepRequest): Promise<ISweep | null>;
}

export const IJobServer = new Token<IJobServer>(
  'jupyter-jobserver:IJobServer',
  'The job server panels: the shared model and the openers of jobs and the run dialog.'
);

/** The model, the panels, the run dialog, the commands and the settings. */
const plugin: JupyterFrontEndPlugin<IJobServer> = {
  id: PLUGIN_ID,
  description: 'Datafiles and jobs of the job server, live, with a run dialog.',
  autoStart: true,
  provides: IJobServer,
  optional: [
    ISettingRegistry,
    ICommandPalette,
    ILayoutRestorer,
    INotebookTracker
  ],
  activate: (
    app: JupyterFrontEnd,
    settingRegistry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    notebooks: INotebookTracker | null
  ): IJobServer => {
    const { commands, shell } = app;
    const details = new WidgetTracker<MainAreaWidget<JobDetail>>({
      namespace: 'jobserver-job'
    });
    const previews = new WidgetTracker<MainAreaWidget<DatafilePreview>>({
      namespace: 'jobserver-preview'
    });

    const openJob = (id: string) => {
      const open = details.find(w => w.content.jobId === id);
      if (open) {
        shell.activateById(open.id);
        return;
      }
      const content = new JobDetail({
        id,
        model,
        openJob,
        useInNotebook: job =>
          void commands.execute(CommandIDs.useInNotebook, { id: job.id }),
        openNotebook: (jobId, path) =>
          void commands.execute(CommandIDs.openJobNotebook, { id: jobId, path })
      });
      const widget = new MainAreaWidget({ content });
      widget.id = `jobserver-job-${id}`;
      widget.title.label = content.title.label;
      widget.title.icon = jobsIcon;
      widget.title.closable = true;
      content.title.changed.connect(
        () => (widget.title.label = content.title.label)
      );
      void details.add(widget);
      shell.add(widget, 'main');
      shell.activateById(widget.id);
    };

    const model = new JobServerModel({ openJob });

    const run = async (request: IRunRequest = {}) => {
      const job = await openRunDialog(model, request);
      if (job) {
        shell.activateById(jobs.id);
        openJob(job.id);
      }
      return job;
    };

    const datafiles = new DatafilesPanel({
      model,
      run: name => void run({ datafile: name }),
      preview: name => void commands.execute(CommandIDs.preview, { name })
    });
    datafiles.title.icon = datafilesIcon;
    shell.add(datafiles, 'left', { rank: 150 });

    const jobs = new JobsPanel({
      model,
      openJob,
      openRunDialog: () => void run()
    });
    jobs.title.icon = jobsIcon;
    shell.add(jobs, 'left', { rank: 151 });

    const sweepPages = new WidgetTracker<MainAreaWidget<SweepDetail>>({
      namespace: 'jobserver-sweep'
    });
    const openSweep = (id: string) => {
      const open = sweepPages.find(w => w.content.sweepId === id);
      if (open) {
        shell.activateById(open.id);
        return;
      }
      const content = new SweepDetail({ id, model, openJob });
      const widget = new MainAreaWidget({ content });
      widget.id = `jobserver-sweep-${id}`;
      widget.title.label = content.title.label;
      widget.title.icon = sweepsIcon;
      widget.title.closable = true;
      content.title.changed.connect(
        () => (widget.title.label = content.title.label)
      );
      void sweepPages.add(widget);
      shell.add(widget, 'main');
      shell.activateById(widget.id);
    };
    const sweeps = new SweepsPanel({
      model,
      openSweep,
      openSweepDialog: () => void startSweep()
    });
    sweeps.title.icon = sweepsIcon;
    shell.add(sweeps, 'left', { rank: 152 });
    const startSweep = async (request: ISweepRequest = {}) => {
      const sweep = await openSweepDialog(model, request);
      if (sweep) {
        sweeps.refresh();
        shell.activateById(sweeps.id);
      }
      return sweep;
    };

    if (restorer) {
      restorer.add(datafiles, datafiles.id);
      restorer.add(jobs, jobs.id);
      restorer.add(sweeps, sweeps.id);
    }

    commands.addCommand(CommandIDs.openDatafiles, {
      label: 'Show Job Server Datafiles',
      caption: 'The datafiles jobs can read',
      icon: args => (args.isPalette ? undefined : datafilesIcon),
      execute: () => shell.activateById(datafiles.id)
    });
    commands.addCommand(CommandIDs.openJobs, {
      label: 'Show Job Server Jobs',
      caption: 'Your jobs, live',
      icon: args => (args.isPalette ? undefined : jobsIcon),
      execute: () => shell.activateById(jobs.id)
    });
    commands.addCommand(CommandIDs.run, {
      label: 'Run a Job Server Script…',
      caption:
        'Choose a script, fill in its parameters and data, and run it as a job',
      execute: args =>
        run({
          script: (args.script as string) || undefined,
          datafile: (args.datafile as string) || undefined
        })
    });
    commands.addCommand(CommandIDs.openSweeps, {
      label: 'Show Job Server Sweeps',
      caption: 'Your sweeps: counts, progress and results',
      icon: args => (args.isPalette ? undefined : sweepsIcon),
      execute: () => shell.activateById(sweeps.id)
    });
    commands.addCommand(CommandIDs.sweep, {
      label: 'Start a Job Server Sweep…',
      caption:
        'Run a script over several values of its parameters or several datafiles',
      execute: args =>
        startSweep({ script: (args.script as string) || undefined })
    });
    commands.addCommand(CommandIDs.openJob, {
      label: args =>
        args.id ? `Open Job ${String(args.id).slice(0, 8)}` : 'Open Job',
      execute: args => openJob(String(args.id))
    });
    commands.addCommand(CommandIDs.preview, {
      label: args => (args.name ? `Preview ${args.name}` : 'Preview Datafile'),
      execute: args => {
        const name = String(args.name);
        const open = previews.find(w => w.content.name === name);
        if (open) {
          shell.activateById(open.id);
          return;
        }
        const content = new DatafilePreview(name, model.settings.previewRows);
        const widget = new MainAreaWidget({ content });
        widget.id = `jobserver-preview-${encodeURIComponent(name)}`;
        widget.title.label = content.title.label;
        widget.title.icon = datafilesIcon;
        widget.title.closable = true;
        void previews.add(widget);
        shell.add(widget, 'main');
        shell.activateById(widget.id);
      }
    });
    commands.addCommand(CommandIDs.openJobNotebook, {
      label: 'Open the Notebook a Job Wrote',
      caption:
        'Save a copy of a notebook among the job files under the Jupyter root and open it',
      execute: async args => {
        const id = String(args.id);
        const path = String(args.path);
        try {
          const content = await api.jobFileJSON(id, path);
          const stem = PathExt.basename(path, '.ipynb');
          const target = `${stem}-job-${id.slice(0, 8)}.ipynb`;
          await app.serviceManager.contents.save(target, {
            type: 'notebook',
            format: 'json',
            content
          });
          await commands.execute('docmanager:open', { path: target });
        } catch (reason) {
          JobServerModel.report(reason, 'Opening the job notebook failed');
        }
      }
    });
    commands.addCommand(CommandIDs.useInNotebook, {
      label: 'Use Job in a Notebook',
      caption: 'Insert a cell that fetches the job with the Python client',
      execute: args => {
        const id = String(args.id);
        const panel = notebooks?.currentWidget;
        if (!panel) {
          Notification.warning(
            'Open a notebook first: the cell that fetches the job goes into the current notebook.',
            { autoClose: 6000 }
          );
          return;
        }
        const code = [
          'from jupyter_jobserver.client import JobServerClient',
          '',
          `job = JobServerClient().get_job(${JSON.stringify(id)})`,
          'job.result'
        ].join('\n');
        NotebookActions.insertBelow(panel.content);
        panel.content.activeCell?.model.sharedModel.setSource(code);
        shell.activateById(panel.id);
      }
    });

    if (palette) {
      for (const command of [
        CommandIDs.openDatafiles,
        CommandIDs.openJobs,
        CommandIDs.run,
        CommandIDs.openSweeps,
        CommandIDs.sweep
      ]) {
        palette.addItem({ command, category: CATEGORY });
      }
    }

    const apply = (values: Partial<IModelSettings>) =>
      model.updateSettings({ ...DEFAULT_SETTINGS, ...values });
    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          apply(settings.composite as Partial<IModelSettings>);
          settings.changed.connect(() =>
            apply(settings.composite as Partial<IModelSettings>)
          );
        })
        .catch(reason =>
          console.error('jupyter-jobserver: settings not loaded', reason)
        );
    }

    model.start();
    return {
      model,
      openJob,
      openRunDialog: run,
      openSweepDialog: startSweep
    };
  }
};

/** "Add to job server data" and "Run a script on this file" in the file browser. */
const fileBrowserPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-jobserver:file-browser',
  description:
    'File browser commands that copy files into the data folder and run scripts on them.',
  autoStart: true,
  requires: [IJobServer, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    jobserver: IJobServer,
    browser: IDefaultFileBrowser
  ) => {
    const { commands, serviceManager } = app;
    const { model } = jobserver;
    void model.datafileExtensions().catch(() => undefined);

    const selected = () =>
      Array.from(browser.selectedItems()).filter(
        item => item.type !== 'directory'
      );
    const isDatafile = (path: string) => {
      const extensions = model.knownExtensions ?? [];
      const extension = PathExt.extname(path).slice(1).toLowerCase();
      return !!extension && extensions.includes(extension);
    };
    const visible = () => {
      const items = selected();
      return items.length > 0 && items.every(item => isDatafile(item.path));
    };

    /** Copy a file into the data folder; `null` when the user cancels. */
    const add = async (
      path: string,
      askToUse: boolean
    ): Promise<string | null> => {
      const local = serviceManager.contents.localPath(path);
      const name = PathExt.basename(local);
      try {
        await api.copyToData(local);
        return name;
      } catch (error) {
        if (!(error instanceof JobServerError) || error.status !== 409) {
          JobServerModel.report(
            error,
            `Adding ${name} to the job server data failed`
          );
          return null;
        }
      }
      let replace: boolean;
      if (askToUse) {
        const answer = await showDialog({
          title: 'Replace datafile?',
          body: `A datafile named "${name}" exists already. Replace it with ${local}, or run on the datafile as it is?`,
          buttons: [
            Dialog.cancelButton(),
            Dialog.okButton({ label: 'Use Existing' }),
            Dialog.warnButton({ label: 'Replace' })
          ]
        });
        if (!answer.button.accept) {
          return null;
        }
        replace = answer.button.label === 'Replace';
      } else {
        replace = await confirmReplace(name);
      }
      if (!replace) {
        return askToUse ? name : null;
      }
      try {
        await api.copyToData(local, { overwrite: true });
        return name;
      } catch (error) {
        JobServerModel.report(error, `Replacing ${name} failed`);
        return null;
      }
    };

    commands.addCommand(CommandIDs.addToData, {
      label: 'Add to Job Server Data',
      caption: 'Copy the file into the data folder, on the server',
      icon: datafilesIcon,
      isVisible: visible,
      execute: async () => {
        const added: string[] = [];
        for (const item of selected()) {
          const name = await add(item.path, false);
          if (name) {
            added.push(name);
          }
        }
        if (added.length) {
          model.notifyDatafilesChanged();
          Notification.success(
            `Added ${added.join(', ')} to the job server data`,
            {
              autoClose: 5000,
              actions: [
                {
                  label: 'Show',
                  callback: () =>
                    void commands.execute(CommandIDs.openDatafiles)
                }
              ]
            }
          );
        }
      }
    });
    commands.addCommand(CommandIDs.runOnFile, {
      label: 'Run a Script on This File…',
      caption: 'Add the file to the job server data and run a script on it',
      icon: jobsIcon,
      isVisible: () => visible() && selected().length === 1,
      execute: async () => {
        const item = selected()[0];
        if (!item) {
          return;
        }
        const name = await add(item.path, true);
        if (name) {
          model.notifyDatafilesChanged();
          await jobserver.openRunDialog({ datafile: name });
        }
      }
    });
    commands.addCommand(CommandIDs.sweepOnFiles, {
      label: 'Run a Sweep on These Files…',
      caption:
        'Add the files to the job server data and run a script on each of them',
      icon: sweepsIcon,
      isVisible: () => visible() && selected().length > 1,
      execute: async () => {
        const names: string[] = [];
        for (const item of selected()) {
          const name = await add(item.path, true);
          if (name) {
            names.push(name);
          }
        }
        if (names.length) {
          model.notifyDatafilesChanged();
          await jobserver.openSweepDialog({ datafiles: names });
        }
      }
    });
    const selector = '.jp-DirListing-item[data-isdir="false"]';
    app.contextMenu.addItem({
      command: CommandIDs.addToData,
      selector,
      rank: 60
    });
    app.contextMenu.addItem({
      command: CommandIDs.runOnFile,
      selector,
      rank: 61
    });
    app.contextMenu.addItem({
      command: CommandIDs.sweepOnFiles,
      selector,
      rank: 62
    });
  }
};

/** The status bar's count of running and queued jobs. */
const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-jobserver:status',
  description: 'How many jobs run and wait, in the status bar.',
  autoStart: true,
  requires: [IJobServer, IStatusBar],
  activate: (
    app: JupyterFrontEnd,
    jobserver: IJobServer,
    statusBar: IStatusBar
  ) => {
    const item = new JobsStatus(
      jobserver.model,
      () => void app.commands.execute(CommandIDs.openJobs)
    );
    statusBar.registerStatusItem('jupyter-jobserver:status', {
      item,
      align: 'left',
      rank: 4
    });
  }
};

export default [plugin, fileBrowserPlugin, statusPlugin];
