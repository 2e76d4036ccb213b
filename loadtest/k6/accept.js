// accept.js: how fast asyncgw accepts writes.
//
// POSTs a small JSON body to one route at a constant arrival rate and checks
// that every answer is 202 with a job ID. Each request carries its own
// Idempotency-Key, so every one runs the whole accept path (key claimed,
// job stored, record written) and none is answered from the idempotency
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

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const API_KEY = __ENV.API_KEY || '';
const ROUTE = __ENV.ROUTE || '/v1/work';
const RATE = num('RATE', 1000);
const DURATION = __ENV.DURATION || '20s';
const P99_MS = num('P99_MS', 50);
const BODY_BYTES = num('BODY_BYTES', 64);
const VUS = num('VUS', 200);
const MAX_VUS = num('MAX_VUS', 1000);
const MAX_DROPPED_PCT = num('MAX_DROPPED_PCT', 1);

function num(name, def) {
  const v = __ENV[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name}=${v} is not a number`);
  return n;
}

// seconds turns a k6 duration such as 20s, 1m30s or 500ms into seconds.
function seconds(d) {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let m;
  let matched = '';
  while ((m = re.exec(d)) !== null) {
    total += Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2]];
    matched += m[0];
  }
  if (matched !== d) throw new Error(`DURATION=${d} is not a duration such as 20s or 1m30s`);
  return total;
}

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
  return { run: `${Date.now().toString(36)}${Math.floor(Math.random() * 1e9).toString(36)}` };
}

const padding = 'x'.repeat(Math.max(0, BODY_BYTES - 60));

export default function (data) {
  const n = exec.scenario.iterationInTest;
  const headers = {
    'Content-Type': 'application/json',
    'Idempotency-Key': `"k6-accept-${data.run}-${n}"`,
  };
  if (API_KEY) headers.Authorization = `Bearer ${API_KEY}`;
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
