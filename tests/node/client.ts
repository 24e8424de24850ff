// The end-to-end tests' SignalR client: runs a seed's client code (seed-001.ts or seed-000.ts,
// unchanged) with the real @microsoft/signalr package, and reports what happens as JSON lines on
// stdout for tests/src/signalr.rs to read. Run with `node --import tsx node/client.ts`: seed 001
// is TypeScript (`getNotification(notificationId: string)`), and Node 20 cannot strip types.
//
// Environment:
//   HERALD_SEED           which seed's code runs: `001` (default; notifications) or `000`
//                         (chat: its handler fetches `Chat/{parentId}/messages/{id}`)
//   HERALD_URL            the seed's `apiBaseUrl` (a herald-api or herald-hub base URL)
//   HERALD_TENANT_ID      the seed's `tenantId`
//   HERALD_TOKEN          the seed's `accessToken` (a user token from token exchange)
//   HERALD_NEXT_TOKEN     optional: the token `accessToken` holds once the client starts
//                         reconnecting, as an app's token factory would fetch a fresh one
//   HERALD_LAST_EVENT_AT  optional: connect with ?lastEventAt= (catch up from that time)
//   HERALD_CATCH_UP=1     optional: reconnect with ?lastEventAt=<createdAt of the newest event
//                         received>, as the README recommends
//
// Lines on stdout, one JSON object each:
//   {"kind":"started"}                       connection.start() resolved
//   {"kind":"startFailed","statusCode":403,"message":"…"}
//   {"kind":"event","event":{…}}             every MessagingEvent, in arrival order
//   {"kind":"notification","notification":{…}}  the seed's displayNotification(…)
//   {"kind":"fetched","url":"…","status":200,"body":{…}|null}  every fetch of a Herald URL
//                                            (body: the parsed JSON, null when not JSON)
//   {"kind":"reconnecting","error":"…"|null} / {"kind":"reconnected"} / {"kind":"closed","error":…}
import * as signalR from '@microsoft/signalr';

function emit(line: object): void {
  process.stdout.write(JSON.stringify(line) + '\n');
}

// stdout carries only the lines above: the seed's console.log and SignalR's own logging
// (console.info / console.log) go to stderr with the errors.
console.log = console.info = console.debug = (...args: unknown[]) => console.error(...args);

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is required`);
  }
  return value;
}

// The free variables of the seed's code. `accessToken` is read at every use (the seed's
// accessTokenFactory returns it), so switching it to HERALD_NEXT_TOKEN on reconnect is what a
// factory fetching a fresh token does.
Object.assign(globalThis, {
  apiBaseUrl: required('HERALD_URL'),
  tenantId: required('HERALD_TENANT_ID'),
  displayNotification: (notification: unknown) => emit({ kind: 'notification', notification }),
});
let currentToken = required('HERALD_TOKEN');
const nextToken = process.env.HERALD_NEXT_TOKEN || undefined;
Object.defineProperty(globalThis, 'accessToken', { get: () => currentToken, configurable: true });

// Seed 000 fetches without credentials, leaving them to the app's HTTP layer: this is that layer.
// For Herald URLs it adds the user's bearer token (unless the caller set one) and reports the
// response; the seed reads a clone, so reporting takes nothing from it. The SignalR client's own
// requests (negotiate, under …/hub) pass through untouched.
const { apiBaseUrl, tenantId } = globalThis as any;
const hubUrl = `${apiBaseUrl}/tenant/${tenantId}/v1/hub`;
const originalFetch = globalThis.fetch;
globalThis.fetch = async (input: any, init?: any) => {
  const url: string =
    typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  if (!url.startsWith(`${apiBaseUrl}/`) || url.startsWith(hubUrl)) {
    return originalFetch(input, init);
  }
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  if (!headers.has('Authorization')) {
    headers.set('Authorization', `Bearer ${currentToken}`);
  }
  const response = await originalFetch(input, { ...init, headers });
  const text = await response.clone().text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  emit({ kind: 'fetched', url, status: response.status, body });
  return response;
};

let lastEventAt: string | undefined = process.env.HERALD_LAST_EVENT_AT || undefined;
const catchUp = process.env.HERALD_CATCH_UP === '1';

// Observes the connection the seed builds, without changing the seed: an observer registered
// before the seed's own handler sees every event in arrival order (the seed's handler awaits a
// fetch per event, so its output may be reordered), and lifecycle callbacks report reconnects.
const build = signalR.HubConnectionBuilder.prototype.build;
signalR.HubConnectionBuilder.prototype.build = function (this: signalR.HubConnectionBuilder) {
  const connection = build.call(this);
  const hubUrl = connection.baseUrl;
  const resumeUrl = () =>
    lastEventAt ? `${hubUrl}&lastEventAt=${encodeURIComponent(lastEventAt)}` : hubUrl;
  connection.baseUrl = resumeUrl();

  connection.on('MessagingEvent', (event: { createdAt: string }) => {
    if (!lastEventAt || event.createdAt > lastEventAt) {
      lastEventAt = event.createdAt;
    }
    emit({ kind: 'event', event });
  });
  connection.onreconnecting((error?: Error) => {
    if (nextToken) {
      currentToken = nextToken;
    }
    if (catchUp) {
      connection.baseUrl = resumeUrl();
    }
    emit({ kind: 'reconnecting', error: error?.message ?? null });
  });
  connection.onreconnected(() => emit({ kind: 'reconnected' }));
  connection.onclose((error?: Error) => emit({ kind: 'closed', error: error?.message ?? null }));

  const start = connection.start.bind(connection);
  connection.start = async () => {
    try {
      await start();
      emit({ kind: 'started' });
    } catch (error: any) {
      // A failed negotiate rejects with the HTTP status in the message only:
      // "Failed to complete negotiation with the server: …: Status code '403'".
      const message = String(error?.message ?? error);
      const status = error?.statusCode ?? message.match(/Status code '(\d+)'/)?.[1];
      emit({ kind: 'startFailed', statusCode: status ? Number(status) : null, message });
      throw error;
    }
  };
  return connection;
};

const seed = process.env.HERALD_SEED || '001';
if (seed !== '000' && seed !== '001') {
  throw new Error(`HERALD_SEED must be 000 or 001, not ${seed}`);
}
try {
  await import(`./seed-${seed}.ts`);
} catch (error) {
  // Seed 000 awaits connection.start() without catching; the failure is already reported as a
  // startFailed line.
  console.error('The seed failed:', error);
  process.exitCode = 1;
}
