import { defineConfig } from "vite";

// Nothing Stagecraft-specific is needed: Vite's HMR client connects back to the
// page's own host (https://app.quickstart.localhost), and the dev proxy passes
// the WebSocket upgrade through to this server.
export default defineConfig({});
