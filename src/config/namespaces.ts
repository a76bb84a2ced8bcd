/**
 * Channel namespaces: a channel `ns:name` takes its options from namespace `ns`; a channel
 * without ':' from the default namespace. Options come from the JSON file named by
 * TIDINGS_CONFIG (validated once at boot, like the environment), each with a default that
 * works without any file.
 *
 * File shape (every key optional):
 * {
 *   "default":    { …options… },
 *   "namespaces": { "chat": { …options… }, "feed": { … } }
 * }
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from './errors.js';

const optionsSchema = z
  .object({
    /** Publications kept per channel in the Redis history cache. */
    history_size: z.number().int().min(0).max(1_000_000),
    /** Seconds an idle channel's Redis cache lives. */
    history_ttl_s: z.number().int().min(1),
    /** Whether a resubscribing client may recover what it missed. */
    recovery: z.boolean(),
    /** Largest gap answered in full on resubscribe. */
    recovery_max: z.number().int().min(0),
    /** Whether clients may read history. */
    allow_history: z.boolean(),
    /** Who may publish from a client connection: anyone allowed to subscribe, subscribers only, or nobody (API only). */
    publish: z.enum(['any', 'subscribers', 'none']),
    /** Presence (who is subscribed) readable by subscribers and the API. */
    presence: z.boolean(),
    /** join / leave pushes for subscribers that ask for them. */
    join_leave: z.boolean(),
    /** Connections without a user (token without `sub`) may subscribe. */
    allow_anonymous: z.boolean(),
    /** Subscribing needs a subscription token (channels starting with '$' always do). */
    private: z.boolean(),
    /** Days PostgreSQL keeps publications; null keeps them forever. */
    retention_days: z.number().int().min(1).nullable(),
    /** Subscriptions without a token are decided by the subscribe proxy (TIDINGS_PROXY_SUBSCRIBE_URL). */
    proxy_subscribe: z.boolean(),
    /** Client publishes are checked, and their data may be replaced, by the publish proxy first. */
    proxy_publish: z.boolean(),
    /** Expiring subscriptions are renewed by the sub_refresh proxy, not by the client. */
    proxy_sub_refresh: z.boolean(),
    /** Who may edit or delete a publication from a client (`tidings.edit` / `tidings.delete`): nobody, its author, or anyone who may publish. */
    client_edits: z.enum(['none', 'own', 'any']),
    /** Committed publications become `publication` webhook events (with `publication` in TIDINGS_WEBHOOK_EVENTS). */
    webhook_publications: z.boolean(),
  })
  .strict();

export type NamespaceOptions = z.output<typeof optionsSchema> & { name: string };

const fileSchema = z
  .object({
    default: optionsSchema.partial().optional(),
    namespaces: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'namespace names are 1-64 letters, digits, _ . -' }), optionsSchema.partial())
      .optional(),
  })
  .strict();

export type NamespaceFile = z.input<typeof fileSchema>;

export interface NamespaceDefaults {
  historySize: number;
  historyTtlS: number;
  recoveryMax: number;
}

function builtInDefaults(d: NamespaceDefaults): z.output<typeof optionsSchema> {
  return {
    history_size: d.historySize,
    history_ttl_s: d.historyTtlS,
    recovery: true,
    recovery_max: d.recoveryMax,
    allow_history: true,
    publish: 'any',
    presence: true,
    join_leave: true,
    allow_anonymous: false,
    private: false,
    retention_days: null,
    proxy_subscribe: false,
    proxy_publish: false,
    proxy_sub_refresh: false,
    client_edits: 'none',
    webhook_publications: false,
  };
}

export class Namespaces {
  readonly default: NamespaceOptions;
  private readonly byName: Map<string, NamespaceOptions>;

  constructor(file: NamespaceFile, defaults: NamespaceDefaults) {
    const parsed = fileSchema.safeParse(file);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ConfigError('TIDINGS_CONFIG', `${issue?.path.join('.') || 'file'}: ${issue?.message ?? 'invalid'}`);
    }
    const base = { ...builtInDefaults(defaults), ...parsed.data.default };
    this.default = { ...base, name: '' };
    this.byName = new Map(
      Object.entries(parsed.data.namespaces ?? {}).map(([name, opts]) => [name, { ...base, ...opts, name }]),
    );
  }

  /** The namespace of a channel, or undefined for an unknown one (error 102). */
  of(channel: string): NamespaceOptions | undefined {
    const bare = channel.startsWith('$') ? channel.slice(1) : channel;
    const colon = bare.indexOf(':');
    if (colon < 0) return this.default;
    return this.byName.get(bare.slice(0, colon));
  }

  all(): NamespaceOptions[] {
    return [this.default, ...this.byName.values()];
  }
}

/**
 * What `tidings dev` runs with when TIDINGS_CONFIG is unset: authors may edit and delete
 * their own messages, so the demo page's edit works on a laptop from the first minute.
 * Every other role's built-in default stays `none`.
 */
const DEV_NAMESPACES: NamespaceFile = { default: { client_edits: 'own' } };

export function loadNamespaces(file: string | undefined, defaults: NamespaceDefaults, dev = false): Namespaces {
  if (!file) return new Namespaces(dev ? DEV_NAMESPACES : {}, defaults);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError('TIDINGS_CONFIG', `cannot read ${file}: ${(err as Error).message.split('\n')[0]}`);
  }
  return new Namespaces(json as NamespaceFile, defaults);
}

/** Channel rules that do not depend on configuration. */
export const channelRules = {
  /** `$name` channels always need a subscription token. */
  isPrivate: (channel: string, ns: NamespaceOptions) => ns.private || channel.startsWith('$'),
  /**
   * `name#42,43`: only users 42 and 43 may subscribe (Centrifugo's user-limited channels).
   * Returns undefined when the channel is not user-limited.
   */
  allowedUsers(channel: string): string[] | undefined {
    const hash = channel.lastIndexOf('#');
    if (hash < 0) return undefined;
    return channel
      .slice(hash + 1)
      .split(',')
      .filter((u) => u !== '');
  },
};
