// Seed 000 ("Real-Time Messaging & Notifications", Quick Start), run unchanged against Herald.
//
// Copied verbatim from seed 000 ("Quick Start"); the seed
// prints the snippet on one line, so its line breaks are restored (and its non-breaking spaces
// become indentation). Only the two lines that tell the reader to fill in their own values are
// left out:
//   const tenantId = 'your-tenant-id'; // Get from https://portal.agglestone.com
//   const apiBaseUrl = 'https://messaging.agglestone.com';
// client.ts provides those, with `accessToken`, as globals. The seed's `fetch` carries no
// credentials (an app's HTTP layer adds them): client.ts wraps `globalThis.fetch` to add the
// user's bearer token for Herald URLs, as such a layer would, and reports each response.

// Install: npm install @microsoft/signalr@^10.0.0
// Connect to SignalR hub for real-time messaging
import * as signalR from '@microsoft/signalr';

const clientId = crypto.randomUUID();

const connection = new signalR.HubConnectionBuilder()
  .withUrl(`${apiBaseUrl}/tenant/${tenantId}/v1/hub?clientId=${clientId}`, {
    accessTokenFactory: () => accessToken // JWT token from authentication service
  })
  .withAutomaticReconnect()
  .build();

// Listen for messaging events
connection.on("MessagingEvent", async (event) => {
  // Fetch full message details from REST API
  const message = await fetch(`${apiBaseUrl}/tenant/${tenantId}/v1/Chat/${event.parentId}/messages/${event.id}`);
});

await connection.start();
