/**
 * The chat server's Prometheus metrics: one registry, every instrument named and typed here, so
 * the code that counts calls a one-liner (`metrics.slowReaderCuts.inc()`). Served as text on
 * `/metrics` by metricsEndpoint.ts (`chat-server --metrics-port`). Names follow Prometheus
 * conventions: `chat_` prefix, `_total` counters, base units (seconds).
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { CodecKind } from '../service/ChatSession.js';

/** Why a request was refused for going too fast. Other limits add their reason here. */
export type ThrottleReason = 'chat_rate' | (string & {});

export type LoginResult = 'ok' | 'bad_credentials' | 'already_online' | 'error';

export interface ChatMetricsOptions {
  /** Whether Redis is connected (cluster presence); absent: the server runs without Redis. */
  redisConnected?: () => boolean;
  /** Whether the gateway's ZooKeeper session is connected; absent: no ZooKeeper. */
  zookeeperConnected?: () => boolean;
  /** Providers known per service kind (gateway); absent: in-process services. */
  providers?: () => Record<string, number>;
  /** Node's standard process metrics. Default true. */
  defaultMetrics?: boolean;
}

export class ChatMetrics {
  readonly registry = new Registry();

  /** Open connections by codec (`pending`: nothing received yet, so no codec chosen). */
  readonly connections = new Gauge<'codec'>({
    name: 'chat_connections',
    help: 'Open client connections by codec (pending = no byte received yet)',
    labelNames: ['codec'],
    registers: [this.registry],
  });
  readonly connectionsOpened = new Counter({
    name: 'chat_connections_opened_total',
    help: 'Client connections accepted',
    registers: [this.registry],
  });
  readonly connectionsClosed = new Counter<'reason'>({
    name: 'chat_connections_closed_total',
    help: 'Client connections closed, by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly logins = new Counter<'result'>({
    name: 'chat_logins_total',
    help: 'LOGIN requests by result',
    labelNames: ['result'],
    registers: [this.registry],
  });
  readonly registrations = new Counter({
    name: 'chat_registrations_total',
    help: 'Accounts registered',
    registers: [this.registry],
  });
  readonly messagesAccepted = new Counter({
    name: 'chat_messages_accepted_total',
    help: 'Chat messages accepted for storing (passed validation and rate limit)',
    registers: [this.registry],
  });
  readonly messagesCommitted = new Counter({
    name: 'chat_messages_committed_total',
    help: 'Chat messages durably stored (one per message, not per recipient)',
    registers: [this.registry],
  });
  readonly messagesDelivered = new Counter({
    name: 'chat_messages_delivered_total',
    help: 'Inbox entries delivered: acknowledged by framed clients, written out to classic clients',
    registers: [this.registry],
  });
  readonly commitBatchSize = new Histogram({
    name: 'chat_commit_batch_size',
    help: 'Chat messages per store transaction (group commit)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  });
  readonly commitLatency = new Histogram({
    name: 'chat_commit_latency_seconds',
    help: 'Time of one group-commit transaction, start to commit',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly ackLatency = new Histogram({
    name: 'chat_ack_latency_seconds',
    help: 'Chat message accepted to its ACK (11/12) sent, i.e. the wait for durability',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly slowReaderCuts = new Counter({
    name: 'chat_slow_reader_disconnects_total',
    help: 'Connections closed because their pending output reached the high-water mark',
    registers: [this.registry],
  });
  readonly throttled = new Counter<'reason'>({
    name: 'chat_throttled_requests_total',
    help: 'Requests refused for going too fast (errno 8), by limit',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly errorReplies = new Counter<'errno'>({
    name: 'chat_error_replies_total',
    help: 'Replies with a non-zero errno, by errno',
    labelNames: ['errno'],
    registers: [this.registry],
  });
  readonly storeErrors = new Counter<'operation'>({
    name: 'chat_store_errors_total',
    help: 'Store (database) failures, by operation',
    labelNames: ['operation'],
    registers: [this.registry],
  });
  /** 1 while connected; collected at scrape time from `redisConnected` (absent without Redis). */
  readonly redisUp: Gauge;
  /** 1 while the gateway's ZooKeeper session is connected; -1 for a server without one. */
  readonly zookeeperUp: Gauge;
  /** Providers a gateway can call, per service (collected from `providers`; none in chat-server). */
  readonly serviceProviders: Gauge<'service'>;

  constructor(options: ChatMetricsOptions = {}) {
    const { redisConnected, zookeeperConnected, providers } = options;
    this.redisUp = this.upGauge(
      'chat_redis_up',
      'Whether the connection to Redis (cluster presence and routing) is up; -1 without Redis',
      redisConnected,
    );
    this.zookeeperUp = this.upGauge(
      'chat_zookeeper_up',
      "Whether the gateway's ZooKeeper session (registry, liveness) is connected; -1 without ZooKeeper",
      zookeeperConnected,
    );
    this.serviceProviders = new Gauge<'service'>({
      name: 'chat_service_providers',
      help: 'Service nodes the gateway knows and can call, per service (0: that business is down)',
      labelNames: ['service'],
      registers: [this.registry],
      collect() {
        if (providers === undefined) return;
        for (const [service, count] of Object.entries(providers())) this.set({ service }, count);
      },
    });
    for (const codec of ['pending', 'legacy', 'json', 'protobuf'] as const)
      this.connections.set({ codec }, 0);
    // Process CPU, memory, GC, and event-loop lag (nodejs_eventloop_lag_*), Node's standard set.
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** A connection's state, read at scrape time: 1 up, 0 down, -1 when there is no `connected`. */
  private upGauge(name: string, help: string, connected: (() => boolean) | undefined): Gauge {
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(connected === undefined ? -1 : connected() ? 1 : 0);
      },
    });
  }

  /** The Prometheus text exposition of every metric. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  connectionOpened(): void {
    this.connectionsOpened.inc();
    this.connections.inc({ codec: 'pending' });
  }

  /** A connection's codec became known (its first byte arrived). */
  codecChosen(codec: CodecKind): void {
    this.connections.dec({ codec: 'pending' });
    this.connections.inc({ codec });
  }

  connectionClosed(codec: CodecKind | 'pending', reason: string): void {
    this.connections.dec({ codec });
    this.connectionsClosed.inc({ reason });
  }
}
