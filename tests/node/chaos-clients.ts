// The fault suite's hub clients (scripts/chaos): many users' connections in one Node process,
// each built with the README's reconnect code (withAutomaticReconnect, lastEventAt catch-up on
// every reconnect) and the official @microsoft/signalr client. Run with
// `node --import tsx node/chaos-clients.ts`.
//
// Environment:
//   HERALD_URL          the hub node's base URL (the README's `apiBaseUrl`)
//   HERALD_TENANT_ID    the tenant
//   HERALD_CLIENTS      path of a JSON file: [{"userId": "…", "token": "…"}, …]
//
// stdout, one JSON object a line:
//   {"kind":"ready","started":N,"failed":M}   every connection.start() settled
//   on a line `report` on stdin, one {"kind":"user","userId":…,"ids":[…],"events":N,
//   "reconnecting":N,"reconnected":N,"closed":N} per user, then {"kind":"reported"}
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import * as signalR from '@microsoft/signalr';

console.log = console.info = console.debug = (...args: unknown[]) => console.error(...args);

function emit(line: object): void {
  process.stdout.write(JSON.stringify(line) + '\n');
}

const apiBaseUrl = process.env.HERALD_URL!;
const tenantId = process.env.HERALD_TENANT_ID!;
const clients: { userId: string; token: string }[] = JSON.parse(
  readFileSync(process.env.HERALD_CLIENTS!, 'utf8'),
);

type Seen = { ids: Set<string>; events: number; reconnecting: number; reconnected: number; closed: number };
const seen = new Map<string, Seen>();

// The README's "Real-time hub" code, once per user; only the bookkeeping lines are added.
async function connectLikeTheReadme(userId: string, accessToken: string, record: Seen) {
  const clientId = crypto.randomUUID();
  const hubUrl = `${apiBaseUrl}/tenant/${tenantId}/v1/hub?clientId=${encodeURIComponent(clientId)}`;
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(hubUrl, { accessTokenFactory: () => accessToken })
    .withAutomaticReconnect()
    .configureLogging(signalR.LogLevel.None)
    .build();

  let lastEventAt: string | null = null;
  const handled = new Map<string, number>();
  connection.on('MessagingEvent', async (event) => {
    record.events += 1;
    record.ids.add(event.id);
    if (event.type === 'Message' || event.type === 'ChatMessage') {
      if (handled.has(event.id)) return;
      const now = Date.now();
      handled.set(event.id, now);
      for (const [id, at] of handled) { if (at > now - 60_000) break; handled.delete(id); }
    }
    if (!lastEventAt || event.createdAt > lastEventAt) lastEventAt = event.createdAt;
  });
  connection.onreconnecting(() => {
    record.reconnecting += 1;
    if (lastEventAt) connection.baseUrl = `${hubUrl}&lastEventAt=${encodeURIComponent(lastEventAt)}`;
  });
  connection.onreconnected(() => {
    record.reconnected += 1;
  });
  connection.onclose(() => {
    record.closed += 1;
  });
  await connection.start();
}

let started = 0;
let failed = 0;
await Promise.all(
  clients.map(async ({ userId, token }) => {
    const record: Seen = { ids: new Set(), events: 0, reconnecting: 0, reconnected: 0, closed: 0 };
    seen.set(userId, record);
    try {
      await connectLikeTheReadme(userId, token, record);
      started += 1;
    } catch (error) {
      console.error(`${userId}: start failed:`, error);
      failed += 1;
    }
  }),
);
emit({ kind: 'ready', started, failed });

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === 'report') {
    for (const [userId, record] of seen) {
      emit({
        kind: 'user',
        userId,
        ids: [...record.ids],
        events: record.events,
        reconnecting: record.reconnecting,
        reconnected: record.reconnected,
        closed: record.closed,
      });
    }
    emit({ kind: 'reported' });
  }
}
