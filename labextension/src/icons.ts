import { LabIcon } from '@jupyterlab/ui-components';

/** A stack of disks: the data folder. */
export const datafilesIcon = new LabIcon({
  name: 'jupyter-jobserver:datafiles',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 2C7.6 2 4 3.3 4 5v14c0 1.7 3.6 3 8 3s8-1.3 8-3V5c0-1.7-3.6-3-8-3zm0 2c3.9 0 6 1.1 6 1s-2.1 1-6 1-6-.9-6-1 2.1-1 6-1zM6 7.4C7.5 8.1 9.6 8.5 12 8.5s4.5-.4 6-1.1V11c0 .4-2.1 1.5-6 1.5S6 11.4 6 11V7.4zm0 6C7.5 14.1 9.6 14.5 12 14.5s4.5-.4 6-1.1V19c0 .4-2.1 1-6 1s-6-.6-6-1v-5.6z"/>
  </g>
</svg>`
});

/** A list with a play mark: jobs. */
export const jobsIcon = new LabIcon({
  name: 'jupyter-jobserver:jobs',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M3 5h12v2H3zM3 10h12v2H3zM3 15h8v2H3zM14 14v8l7-4z"/>
  </g>
</svg>`
});
