import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { requestContext } from './request-context.js';

describe('requestContext', () => {
  it('carries a request through its async work while any request is in flight', async () => {
    const seen: (string | undefined)[] = [];
    const work = (id: string) =>
      requestContext.enter({ requestId: id }, async () => {
        await sleep(5);
        seen.push(requestContext.getStore()?.requestId);
      });
    const first = work('a');
    const second = work('b');
    await Promise.all([first, second]);
    expect(seen.sort()).toEqual(['a', 'b']);
    requestContext.leave();
    requestContext.leave();
  });

  it('is off once no request is in flight: work left over from a request no longer sees it', async () => {
    let late: string | undefined = 'unset';
    requestContext.enter({ requestId: 'gone' }, () => {
      setTimeout(() => (late = requestContext.getStore()?.requestId), 5);
    });
    let during: string | undefined;
    requestContext.enter({ requestId: 'still-here' }, () => {
      setTimeout(() => (during = requestContext.getStore()?.requestId), 5);
    });
    requestContext.leave(); // 'gone' is over, 'still-here' is not: the context stays on
    await sleep(20);
    expect(during).toBe('still-here');
    expect(late).toBe('gone');

    requestContext.enter({ requestId: 'last' }, () => {
      setTimeout(() => (late = requestContext.getStore()?.requestId), 5);
    });
    requestContext.leave();
    requestContext.leave(); // none in flight: off
    await sleep(20);
    expect(late).toBeUndefined();
    // A leave too many does not turn it off for the next request.
    requestContext.leave();
    const next = await requestContext.enter({ requestId: 'next' }, async () => {
      await sleep(1);
      return requestContext.getStore()?.requestId;
    });
    requestContext.leave();
    expect(next).toBe('next');
  });

  it('stays on for work a request holds past its response, and only for it', async () => {
    let release: () => void = () => {};
    let late: string | undefined;
    requestContext.enter({ requestId: 'turn' }, () => {
      release = requestContext.hold();
      setTimeout(() => (late = requestContext.getStore()?.requestId), 5);
    });
    requestContext.leave(); // the response is over; the held work goes on
    await sleep(20);
    expect(late).toBe('turn');
    release();
    release(); // twice is once
    requestContext.enter({ requestId: 'after' }, () => {
      setTimeout(() => (late = requestContext.getStore()?.requestId), 5);
    });
    requestContext.leave();
    await sleep(20);
    expect(late).toBeUndefined(); // off again: nothing in flight, nothing held
    // Outside any request there is nothing to hold.
    requestContext.hold()();
  });
});
