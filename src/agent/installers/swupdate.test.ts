import { describe, expect, it } from 'vitest';
import { installedDespiteExitCode } from './swupdate.js';

// the tails of Debian's SWUpdate 2022.12 output, as `swupdate -k CERT -H BOARD -i FILE` prints them
const banner =
  'SWUpdate v\n\nLicensed under GPLv2. See source distribution for detailed copyright notices.\n\n';
const installed = `${banner}[INFO ] : SWUPDATE started :  Software Update started !
[INFO ] : SWUPDATE running :  Installation in progress
[INFO ] : SWUPDATE successful ! SWUPDATE successful !
[INFO ] : No SWUPDATE running :  Waiting for requests...
`;
const otherHardware = `${banner}[INFO ] : SWUPDATE started :  Software Update started !
[ERROR] : SWUPDATE failed [0] ERROR : SW not compatible with hardware
[ERROR] : SWUPDATE failed [1] Image invalid or corrupted. Not installing ...
[INFO ] : No SWUPDATE running :  Waiting for requests...
[ERROR] : SWUPDATE failed [0] ERROR : SWUpdate *failed* !
`;

describe('installedDespiteExitCode', () => {
  it('takes an install SWUpdate announced as done although its exit raced to 1', () => {
    expect(installedDespiteExitCode({ kind: 'exit', code: 1, output: installed })).toBe(true);
  });

  it('leaves a refusal, an error after the announcement, other codes and other endings failed', () => {
    expect(installedDespiteExitCode({ kind: 'exit', code: 1, output: otherHardware })).toBe(false);
    const postUpdateFailed = `${installed}[ERROR] : SWUPDATE failed [0] ERROR : Post-update command execution failed.\n`;
    expect(installedDespiteExitCode({ kind: 'exit', code: 1, output: postUpdateFailed })).toBe(false);
    expect(installedDespiteExitCode({ kind: 'exit', code: 2, output: installed })).toBe(false);
    expect(installedDespiteExitCode({ kind: 'signal', signal: 'SIGKILL', output: installed })).toBe(false);
    expect(installedDespiteExitCode({ kind: 'timeout', output: installed })).toBe(false);
    // the announcement must begin a line: an echoed file name cannot forge it
    const echoed = `${banner}[TRACE] : file [INFO ] : SWUPDATE successful ! \n`;
    expect(installedDespiteExitCode({ kind: 'exit', code: 1, output: echoed })).toBe(false);
  });
});
