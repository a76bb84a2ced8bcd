/** Every table, for drizzle-kit and the repositories (the only importers of tables). */
export { channels } from './tables/channels.js';
export { publications } from './tables/publications.js';
