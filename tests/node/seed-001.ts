// Seed 001 ("Messaging Events and Retrieving Notifications"), run unchanged against Herald.
//
// Copied verbatim from seed 001 ("Setting Up the
// WebSocket Connection" and "Retrieving a Notification by ID"). Only the two lines that tell
// the reader to fill in their own values are left out:
//   const tenantId = 'your-tenant-id';
//   const apiBaseUrl = 'https://messaging.agglestone.com';
// client.ts provides those, with `accessToken` and `displayNotification`, as globals.

// Install: npm install @microsoft/signalr@^10.0.0
import * as signalR from '@microsoft/signalr';

// Generate a unique client ID for this browser tab/window
const clientId = crypto.randomUUID();

// Create SignalR connection
const connection = new signalR.HubConnectionBuilder()
  .withUrl(`${apiBaseUrl}/tenant/${tenantId}/v1/hub?clientId=${encodeURIComponent(clientId)}`, {
    accessTokenFactory: () => accessToken // JWT token from authentication service
  })
  .withAutomaticReconnect()
  .build();

// Listen for notification events
connection.on("MessagingEvent", async (event) => {
  // IMPORTANT: The WebSocket event only contains lightweight information
  // You must fetch the full notification details using the REST API
  
  if (event.type === 'Message') {
    const notificationId = event.id;
    
    // Fetch the full notification details
    const notification = await getNotification(notificationId);
    
    // Display the notification in your UI
    displayNotification(notification);
  }
});

// Start the connection
try {
  await connection.start();
  console.log('Connected to SignalR hub');
} catch (error) {
  console.error('Connection error:', error);
}

async function getNotification(notificationId: string) {
  const response = await fetch(
    `${apiBaseUrl}/tenant/${tenantId}/v1/Notifications/${notificationId}`,
    {
      headers: {
        'Authorization': `Bearer ${accessToken}`
      }
    }
  );

  if (!response.ok) {
    throw new Error(`Failed to fetch notification: ${response.statusText}`);
  }

  return await response.json();
}
