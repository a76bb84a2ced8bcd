/**
 * Durable lifecycle webhooks (issue 14): GatewayWorker's onConnect/onClose with guarantees.
 * Gateways queue events (./emitter.ts), workers deliver them in order per user, at least once
 * (./consumer.ts, ./delivery.ts), send the disconnects of gateways that died (./reaper.ts) and
 * keep what they gave up on (./dead-letters.ts). docs/api.md describes the format.
 */
export { NO_WEBHOOKS, WebhookEmitter, type WebhookSink } from './emitter.js';
export { startWebhookConsumer, type WebhookConsumer } from './consumer.js';
export { DeadLetters, DEAD_LETTER_MAX, type DeadLetter } from './dead-letters.js';
export { GATEWAY_GONE } from './reaper.js';
export { SIGNATURE_HEADER, signBody, type WebhookEvent } from './event.js';
