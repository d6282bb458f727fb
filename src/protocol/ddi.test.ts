import { describe, expect, it } from 'vitest';
import { actionIdOf, parseConfigData, parseFeedback, pollingSleep, pollSleepSec } from './ddi.js';

describe('DDI messages', () => {
  it('writes the polling interval as HH:MM:SS, at least one second', () => {
    expect(pollingSleep(300)).toBe('00:05:00');
    expect(pollingSleep(3_661)).toBe('01:01:01');
    expect(pollingSleep(0)).toBe('00:00:01');
  });

  it("sleeps the device's interval, or less while a hold ends sooner", () => {
    expect(pollSleepSec(3600, null)).toBe(3600); // an hourly connectivity class, nothing held
    expect(pollSleepSec(3600, 1200)).toBe(1200); // its window opens in 20 min
    expect(pollSleepSec(300, 1200)).toBe(300); // the server's 5 min come first
    expect(pollSleepSec(3600, 0)).toBe(1);
  });

  it('gives every update id a stable positive int32 action id', () => {
    const id = actionIdOf('upd_0196a1b2c3d4e5ab12cd34ef');
    expect(id).toBe(actionIdOf('upd_0196a1b2c3d4e5ab12cd34ef'));
    expect(id).toBeGreaterThan(0);
    expect(id).toBeLessThanOrEqual(2_147_483_647);
    expect(actionIdOf('upd_0196a1b2c3d4e5ab12cd34f0')).not.toBe(id);
  });

  it('reads a feedback as SWUpdate sends it', () => {
    const body =
      '{ "id": 42, "time": "20261204T135927", "status": { "result": { "progress": { "cnt" : 1, "of" : 1 }, "finished": "none" }, "execution": "proceeding", "details" : [ "All Chunks Installed." ] } }';
    expect(parseFeedback(body)).toEqual({
      execution: 'proceeding',
      finished: 'none',
      details: ['All Chunks Installed.'],
    });
  });

  it('reads a feedback whose details are not valid JSON (SWUpdate does not escape them)', () => {
    const body =
      '{ "id": 42, "time": "x", "status": { "result": { "finished": "failure" }, "execution": "closed", "details" : [ "bad "quote" here","No suitable .swu image found" ] } }';
    const feedback = parseFeedback(body);
    expect(feedback.execution).toBe('closed');
    expect(feedback.finished).toBe('failure');
    expect(feedback.details).toContain('No suitable .swu image found');
  });

  it('reads configData, valid JSON or not', () => {
    expect(
      parseConfigData(
        '{ "id": "", "time": "20261204T135924", "status": { "result": { "finished": "success" }, "execution": "closed", "details" : [ "" ] }, "data" : {  "serial": "SN-0001","board": "fleetd-board" } }',
      ),
    ).toEqual({ serial: 'SN-0001', board: 'fleetd-board' });
    expect(parseConfigData('{ "data" : { "a\\b": "x\ty", "serial": "SN-2" } }').serial).toBe('SN-2');
    expect(parseConfigData('nothing here')).toEqual({});
  });
});
