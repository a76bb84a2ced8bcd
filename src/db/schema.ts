/** Every table, for drizzle-kit and the repositories (the only importers of tables). */
export { channels } from './tables/channels.js';
export { channelPeriods } from './tables/channel-periods.js';
export { publications } from './tables/publications.js';
export { ingestStreams } from './tables/ingest-streams.js';
export { removedPublications } from './tables/removed-publications.js';
export { readCursors } from './tables/read-cursors.js';
export { outbox, tidingsSchema } from './tables/outbox.js';
