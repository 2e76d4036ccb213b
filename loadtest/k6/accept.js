// accept.js: how fast asyncgw accepts writes.
//
// POSTs a small JSON body to one route at a constant arrival rate and checks
// that every answer is 202 with a job ID. Each request carries its own
// Idempotency-Key, so every one runs the whole accept path (key, task and
// record stored in one step) and none is answered from the idempotency
// store. It measures the gateway's answer time only; the jobs run later.
//
//   k6 run loadtest/k6/accept.js
//   k6 run -e BASE_URL=https://gw.example.com -e API_KEY=agw_... \
//          -e RATE=500 -e DURATION=1m -e P99_MS=200 loadtest/k6/accept.js
//
// Environment (all optional):
//   BASE_URL   the gateway (http://127.0.0.1:8080)
//   API_KEY    sent as Authorization: Bearer <API_KEY> when set
//   ROUTE      the route's path (/v1/work)
//   RATE       requests per second (1000)
//   DURATION   how long to keep that rate (20s)
//   P99_MS     threshold on the 99th percentile answer time, in ms (50)
//   BODY_BYTES rough size of the JSON body (64)
//   VUS        pre-allocated virtual users (200); MAX_VUS at most (1000)
//   MAX_DROPPED_PCT  share of iterations k6 may fail to start in time,
//              in percent (1): more means the gateway fell behind
//
// k6 exits non-zero when a threshold fails.

import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';

import { BASE_URL, ROUTE, num, runID, seconds, writeHeaders } from './lib.js';

const RATE = num('RATE', 1000);
const DURATION = __ENV.DURATION || '20s';
const P99_MS = num('P99_MS', 50);
const BODY_BYTES = num('BODY_BYTES', 64);
const VUS = num('VUS', 200);
const MAX_VUS = num('MAX_VUS', 1000);
const MAX_DROPPED_PCT = num('MAX_DROPPED_PCT', 1);



const expected = RATE * seconds(DURATION);

export const options = {
  scenarios: {
    accept: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: DURATION,
      preAllocatedVUs: VUS,
      maxVUs: MAX_VUS,
    },
  },
  thresholds: {
    http_req_duration: [`p(99)<${P99_MS}`],
    http_req_failed: ['rate<0.01'],
    checks: ['rate>0.99'],
    dropped_iterations: [`count<=${Math.floor((expected * MAX_DROPPED_PCT) / 100)}`],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

// setup picks a prefix for this run's idempotency keys, so that a second
// run against the same gateway does not replay the first one's answers.
export function setup() {
  return { run: runID() };
}

const padding = 'x'.repeat(Math.max(0, BODY_BYTES - 60));

export default function (data) {
  const n = exec.scenario.iterationInTest;
  const headers = writeHeaders(`k6-accept-${data.run}-${n}`);
  const body = JSON.stringify({ n, vu: exec.vu.idInTest, at: Date.now(), pad: padding });

  const res = http.post(`${BASE_URL}${ROUTE}`, body, { headers, tags: { name: `POST ${ROUTE}` } });
  check(res, {
    'status is 202': (r) => r.status === 202,
    'body has a job id': (r) => {
      try {
        const id = r.json('id');
        return typeof id === 'string' && id.length > 0;
      } catch (e) {
        return false;
      }
    },
    'not an idempotent replay': (r) => r.headers['Idempotent-Replayed'] === undefined,
  });
}
