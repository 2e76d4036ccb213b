// spike.js: how asyncgw takes a sudden burst of writes.
//
// Submits writes at LOW_RATE per second, jumps to HIGH_RATE within
// SPIKE_RAMP, holds it for SPIKE_HOLD, drops back to LOW_RATE and holds that
// again (a ramping-arrival-rate scenario). During a spike the gateway may
// push back, as documented: 503 "overloaded" (a queue over its depth limit)
// and 429 (a route's rate limit), both with Retry-After. Those count as
// handled and are tallied apart; anything else that is not a 202 (another
// 5xx, a 503 of another kind, an unexpected 4xx, a connection error or a
// timeout) fails the run.
//
//   k6 run loadtest/k6/spike.js
//   k6 run -e BASE_URL=https://gw.example.com -e API_KEY=agw_... \
//          -e LOW_RATE=50 -e HIGH_RATE=1000 -e SPIKE_HOLD=30s loadtest/k6/spike.js
//
// Metrics of its own:
//   spike_accepted         share of requests answered 202
//   spike_backpressure     share answered 503 overloaded or 429 (handled)
//   spike_overloaded       count of 503 overloaded answers
//   spike_rate_limited     count of 429 answers
//   spike_unexpected       count of every other answer (threshold: 0)
//   spike_server_errors    count of 5xx other than 503 (threshold: 0)
//   spike_accept_duration  answer time of the 202s
//
// Environment (all optional):
//   BASE_URL     the gateway (http://127.0.0.1:8080)
//   API_KEY      sent as Authorization: Bearer <API_KEY> when set
//   ROUTE        the route's path (/v1/work)
//   LOW_RATE     requests per second before and after the spike (200)
//   HIGH_RATE    requests per second at the top of the spike (2000)
//   LOW_DURATION how long the low rate lasts before and after (6s each)
//   SPIKE_RAMP   how long the jump up (and back down) takes (2s)
//   SPIKE_HOLD   how long the high rate lasts (8s)
//   P99_MS       threshold on the 99th percentile answer time of the 202s,
//                in ms (250)
//   MAX_BACKPRESSURE  highest share of handled 503/429 answers (1: any)
//   VUS          pre-allocated virtual users (300); MAX_VUS at most (2000)
//   MAX_DROPPED_PCT  share of iterations k6 may fail to start in time,
//                in percent (2)
//
// k6 exits non-zero when a threshold fails.

import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

import { BASE_URL, ROUTE, num, runID, seconds, writeHeaders } from './lib.js';

const LOW_RATE = num('LOW_RATE', 200);
const HIGH_RATE = num('HIGH_RATE', 2000);
const LOW_DURATION = __ENV.LOW_DURATION || '6s';
const SPIKE_RAMP = __ENV.SPIKE_RAMP || '2s';
const SPIKE_HOLD = __ENV.SPIKE_HOLD || '8s';
const P99_MS = num('P99_MS', 250);
const MAX_BACKPRESSURE = num('MAX_BACKPRESSURE', 1);
const VUS = num('VUS', 300);
const MAX_VUS = num('MAX_VUS', 2000);
const MAX_DROPPED_PCT = num('MAX_DROPPED_PCT', 2);



const stages = [
  { target: LOW_RATE, duration: LOW_DURATION },
  { target: HIGH_RATE, duration: SPIKE_RAMP },
  { target: HIGH_RATE, duration: SPIKE_HOLD },
  { target: LOW_RATE, duration: SPIKE_RAMP },
  { target: LOW_RATE, duration: LOW_DURATION },
];

// The iterations the stages ask for: the area under the rate's ramps.
let expected = 0;
let rate = LOW_RATE;
for (const s of stages) {
  expected += ((rate + s.target) / 2) * seconds(s.duration);
  rate = s.target;
}

const accepted = new Rate('spike_accepted');
const backpressure = new Rate('spike_backpressure');
const overloaded = new Counter('spike_overloaded');
const rateLimited = new Counter('spike_rate_limited');
const unexpected = new Counter('spike_unexpected');
const serverErrors = new Counter('spike_server_errors');
const acceptDuration = new Trend('spike_accept_duration', true);

// 503 and 429 are answers the gateway may give on purpose: keep them out of
// http_req_failed, which then counts only what nobody should see.
http.setResponseCallback(http.expectedStatuses(202, 429, 503));

export const options = {
  scenarios: {
    spike: {
      executor: 'ramping-arrival-rate',
      startRate: LOW_RATE,
      timeUnit: '1s',
      stages,
      preAllocatedVUs: VUS,
      maxVUs: MAX_VUS,
    },
  },
  thresholds: {
    spike_unexpected: ['count==0'],
    spike_server_errors: ['count==0'],
    spike_backpressure: [`rate<=${MAX_BACKPRESSURE}`],
    spike_accept_duration: [`p(99)<${P99_MS}`],
    http_req_failed: ['rate==0'],
    checks: ['rate==1'],
    dropped_iterations: [`count<=${Math.floor((expected * MAX_DROPPED_PCT) / 100)}`],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  return { run: runID() };
}

function problemType(res) {
  try {
    const t = res.json('type');
    return typeof t === 'string' ? t : '';
  } catch (e) {
    return '';
  }
}

export default function (data) {
  const n = exec.scenario.iterationInTest;
  const headers = writeHeaders(`k6-spike-${data.run}-${n}`);
  const res = http.post(`${BASE_URL}${ROUTE}`, JSON.stringify({ n, at: Date.now() }), {
    headers,
    tags: { name: `POST ${ROUTE}` },
  });

  const isAccepted = res.status === 202;
  const isOverloaded = res.status === 503 && /\/overloaded$/.test(problemType(res));
  const isRateLimited = res.status === 429;
  const isBackpressure = isOverloaded || isRateLimited;
  accepted.add(isAccepted);
  backpressure.add(isBackpressure);
  if (isAccepted) acceptDuration.add(res.timings.duration);
  overloaded.add(isOverloaded ? 1 : 0);
  rateLimited.add(isRateLimited ? 1 : 0);
  if (!isAccepted && !isBackpressure) {
    unexpected.add(1, { status: String(res.status) });
    if (res.status >= 500 && res.status !== 503) serverErrors.add(1, { status: String(res.status) });
  }

  check(res, {
    'accepted (202) or pushed back (503 overloaded, 429)': () => isAccepted || isBackpressure,
    'pushback carries Retry-After': (r) => !isBackpressure || r.headers['Retry-After'] !== undefined,
  });
}
