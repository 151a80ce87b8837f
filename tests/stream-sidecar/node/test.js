// The ActyxOS SDK 0.3.1 against fleetlet-streams: publish, offsets, query in each order,
// subscribe with a lowerBound, console logs. Exits non-zero on the first failed check.
// The service must hold no other events. SDK_EXPECT_SOURCE: the node's source id (else the one
// source the offsets show); SDK_EXPECT_APP: every stored event must carry this sourceApp (the
// app's own listener, docs/services.md).
'use strict';
const assert = require('assert');
const http = require('http');
const { Client, EventDraft, Subscription, Ordering, LogSeverity } = require('@actyx/os-sdk');

const ax = Client();
let source = process.env.SDK_EXPECT_SOURCE;
const timeout = setTimeout(() => {
  console.error('FAIL: timed out');
  process.exit(1);
}, 30000);

function getJsonLines(url) {
  return new Promise((resolve, reject) => {
    http.get(url, res => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', c => (body += c));
      res.on('end', () => resolve(body.split('\n').filter(l => l).map(l => JSON.parse(l))));
    }).on('error', reject);
  });
}

function postJsonLines(url, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'Content-Type': 'application/json' } },
      res => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', c => (text += c));
        res.on('end', () => resolve(text.split('\n').filter(l => l).map(l => JSON.parse(l))));
      });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

function query(ordering, upperBound, lowerBound, subscriptions) {
  return new Promise((resolve, reject) => {
    const events = [];
    ax.eventService.query({
      subscriptions: subscriptions || Subscription.everything(),
      ordering,
      upperBound,
      lowerBound,
      onEvent: e => events.push(e),
      onDone: () => resolve(events),
      onError: reject,
    });
  });
}

async function main() {
  // publish
  const drafts = [];
  for (let i = 0; i < 10; i++) {
    drafts.push(EventDraft.make(i % 2 ? 'com.example.odd' : 'com.example.even', 'machine1', { i }));
  }
  await ax.eventService.publishPromise({ eventDrafts: drafts });
  await ax.eventService.publishPromise({
    eventDrafts: EventDraft.make('com.example.single', 'machine2', { hello: 'world' }),
  });

  // offsets
  const offsets = await ax.eventService.offsetsPromise();
  if (!source) {
    assert.strictEqual(Object.keys(offsets).length, 1, JSON.stringify(offsets));
    source = Object.keys(offsets)[0];
  }
  assert.deepStrictEqual(offsets, { [source]: 10 });

  // query in each order
  const lamport = await query(Ordering.Lamport, offsets);
  assert.deepStrictEqual(lamport.map(e => e.offset), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepStrictEqual(lamport[3].payload, { i: 3 });
  assert.strictEqual(lamport[3].stream.streamSemantics, 'com.example.odd');
  assert.strictEqual(lamport[3].stream.source, source);
  const reverse = await query(Ordering.LamportReverse, offsets, { [source]: 7 });
  assert.deepStrictEqual(reverse.map(e => e.offset), [10, 9, 8]);
  const ordered = await query(Ordering.SourceOrdered, { [source]: 9 }, undefined,
                              [Subscription.wildcard('com.example.odd')]);
  assert.deepStrictEqual(ordered.map(e => e.offset), [1, 3, 5, 7, 9]);
  const streamed = await ax.eventService.queryStream({
    subscriptions: Subscription.distributed('com.example.single', 'machine2'),
    ordering: Ordering.Lamport,
    upperBound: offsets,
  });
  const fromStream = [];
  for await (const e of streamed) fromStream.push(e);
  assert.deepStrictEqual(fromStream.map(e => e.payload), [{ hello: 'world' }]);

  // subscribe with a lowerBound: catch-up, then a live event
  const got = [];
  await new Promise((resolve, reject) => {
    let published = false;
    const stop = ax.eventService.subscribe({
      subscriptions: Subscription.everything(),
      lowerBound: { [source]: 8 },
      onEvent: e => {
        got.push(e.offset);
        if (got.length === 2 && !published) {
          published = true;
          ax.eventService
            .publishPromise({ eventDrafts: EventDraft.make('com.example.live', 'm', { live: true }) })
            .catch(reject);
        }
        if (got.length === 3) {
          stop();
          resolve();
        }
      },
      onError: err => (got.length < 3 ? reject(err) : undefined),
    });
  });
  assert.deepStrictEqual(got, [9, 10, 11]);

  // console logs
  const logger = ax.consoleService.SimpleLogger({
    logName: 'sdkLogger',
    producerName: 'com.example.app1',
    producerVersion: '1.0.0',
  });
  logger.info('this is an INFO message');
  await ax.consoleService.logPromise({
    logName: 'sdkLogger',
    message: 'custom warning',
    severity: LogSeverity.WARN,
    producer: { name: 'com.example.app1', version: '1.0.0' },
    additionalData: { foo: 'bar' },
    labels: { 'com.example.app1.auth.username': 'john.doe' },
  });
  const consoleUri = process.env.AX_CONSOLE_SERVICE_URI.replace(/\/+$/, '');
  let logs = [];
  for (let i = 0; i < 100 && logs.length < 2; i++) {
    logs = await getJsonLines(`${consoleUri}/v1/logs?logName=sdkLogger`);
    if (logs.length < 2) await new Promise(r => setTimeout(r, 20));
  }
  assert.strictEqual(logs.length, 2);
  const warn = logs.find(l => l.severity === 'warn');
  assert.strictEqual(warn.message, 'custom warning');
  assert.strictEqual(warn.producerName, 'com.example.app1');
  assert.deepStrictEqual(warn.additionalData, { foo: 'bar' });
  assert.strictEqual(logs.find(l => l.severity === 'info').message, 'this is an INFO message');

  if (process.env.SDK_EXPECT_APP) {
    const base = process.env.AX_EVENT_SERVICE_URI.replace(/\/+$/, '');
    const raw = await postJsonLines(`${base}/v1/events/query`, {
      subscriptions: [{}], order: 'lamport', upperBound: await ax.eventService.offsetsPromise(),
    });
    assert.strictEqual(raw.length, 12);
    for (const e of raw) assert.strictEqual(e.sourceApp, process.env.SDK_EXPECT_APP, JSON.stringify(e));
  }

  clearTimeout(timeout);
  console.log('node SDK test: all checks passed');
}

main().catch(err => {
  console.error('FAIL:', err);
  process.exit(1);
});
