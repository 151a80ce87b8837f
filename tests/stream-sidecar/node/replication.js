// The ActyxOS SDK 0.3.1 on node B of a site: events published on node A (plain HTTP to A's
// event service) show up in B's offsets, queries and subscriptions with A's source, offsets
// and lamports, and B's own next event sorts after them. Exits non-zero on the first failed
// check.
'use strict';
const assert = require('assert');
const http = require('http');
const { Client, EventDraft, Subscription, Ordering } = require('@actyx/os-sdk');

const ax = Client(); // node B (AX_EVENT_SERVICE_URI)
const timeout = setTimeout(() => {
  console.error('FAIL: timed out');
  process.exit(1);
}, 60000);

function publishOnA(events) {
  const body = JSON.stringify({ data: events });
  const url = new URL(`${process.env.A_EVENTS_URI}/v1/events/publish`);
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, res => {
      let text = '';
      res.on('data', c => (text += c));
      res.on('end', () => (res.statusCode === 201 ? resolve(JSON.parse(text).data)
                                                  : reject(new Error(`A: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function query(ordering, upperBound, subscriptions) {
  return new Promise((resolve, reject) => {
    const events = [];
    ax.eventService.query({
      subscriptions: subscriptions || Subscription.everything(),
      ordering,
      upperBound,
      onEvent: e => events.push(e),
      onDone: () => resolve(events),
      onError: reject,
    });
  });
}

async function main() {
  const drafts = [];
  for (let i = 0; i < 6; i++) {
    drafts.push({ semantics: i % 2 ? 'com.example.odd' : 'com.example.even', name: 'machineA',
                  payload: { i } });
  }
  const receipts = await publishOnA(drafts);
  assert.strictEqual(receipts.length, 6);

  // B's offsets (through the SDK) reach A's last offset.
  let offsets = {};
  for (let i = 0; i < 500 && !(offsets.a >= 5); i++) {
    offsets = await ax.eventService.offsetsPromise();
    if (!(offsets.a >= 5)) await new Promise(r => setTimeout(r, 20));
  }
  assert.strictEqual(offsets.a, 5, `offsets on B: ${JSON.stringify(offsets)}`);

  // Queries on B see A's events with A's identity, in each order.
  const lamport = await query(Ordering.Lamport, { a: 5 });
  assert.deepStrictEqual(lamport.map(e => [e.stream.source, e.offset]),
                         [0, 1, 2, 3, 4, 5].map(o => ['a', o]));
  assert.deepStrictEqual(lamport.map(e => e.lamport), receipts.map(r => r.lamport));
  assert.deepStrictEqual(lamport[3].payload, { i: 3 });
  assert.strictEqual(lamport[3].stream.streamSemantics, 'com.example.odd');
  assert.strictEqual(lamport[3].stream.streamName, 'machineA');
  const odd = await query(Ordering.SourceOrdered, { a: 5 }, [Subscription.wildcard('com.example.odd')]);
  assert.deepStrictEqual(odd.map(e => e.offset), [1, 3, 5]);

  // B's own event sorts after everything it has seen from A.
  await ax.eventService.publishPromise({
    eventDrafts: EventDraft.make('com.example.b', 'machineB', { from: 'b' }),
  });
  const both = await ax.eventService.offsetsPromise();
  assert.strictEqual(both.b, 0);
  const ordered = await query(Ordering.Lamport, both);
  assert.strictEqual(ordered.length, 7);
  assert.strictEqual(ordered[6].stream.source, 'b');
  assert.ok(ordered[6].lamport > receipts[5].lamport);

  // A subscription on B delivers A's events, then a live one from A.
  const got = [];
  await new Promise((resolve, reject) => {
    let published = false;
    const stop = ax.eventService.subscribe({
      subscriptions: Subscription.distributed('com.example.even', 'machineA'),
      onEvent: e => {
        got.push([e.stream.source, e.offset]);
        if (got.length === 3 && !published) {
          published = true;
          publishOnA([{ semantics: 'com.example.even', name: 'machineA', payload: { live: true } }])
            .catch(reject);
        }
        if (got.length === 4) {
          stop();
          resolve();
        }
      },
      onError: err => (got.length < 4 ? reject(err) : undefined),
    });
  });
  assert.deepStrictEqual(got, [['a', 0], ['a', 2], ['a', 4], ['a', 6]]);

  clearTimeout(timeout);
  console.log('node SDK replication test: all checks passed');
}

main().catch(err => {
  console.error('FAIL:', err);
  process.exit(1);
});
