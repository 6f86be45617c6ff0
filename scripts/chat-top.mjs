// A one-screen view of a running chat server, from its Prometheus endpoint (chat-server
// --metrics-port): `npm run top -- [URL] [--once] [--interval SECONDS]`.
// URL defaults to http://127.0.0.1:9464/metrics. Rates are per second over the interval.

const args = process.argv.slice(2);
const once = args.includes('--once');
const intervalAt = args.indexOf('--interval');
const intervalSec = intervalAt >= 0 ? Number(args[intervalAt + 1]) : 2;
const url = args.find((arg, i) => arg.startsWith('http') && args[i - 1] !== '--interval') ?? 'http://127.0.0.1:9464/metrics';
if (!(intervalSec > 0)) {
  console.error('usage: npm run top -- [URL] [--once] [--interval SECONDS]');
  process.exit(2);
}

/** Prometheus text → Map of `name{labels}` → value. */
function parse(text) {
  const values = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    values.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return values;
}

/** Sum of every series of `name` (all label values). */
function total(values, name) {
  let sum = 0;
  for (const [series, value] of values) {
    if (series === name || series.startsWith(`${name}{`)) sum += value;
  }
  return sum;
}

function labelled(values, name, label) {
  const out = [];
  for (const [series, value] of values) {
    const m = series.match(new RegExp(`^${name}\\{${label}="([^"]*)"\\}$`));
    if (m && value !== 0) out.push(`${m[1]} ${value}`);
  }
  return out.join(', ') || '-';
}

const mean = (values, name) => {
  const count = values.get(`${name}_count`) ?? 0;
  return count === 0 ? 0 : (values.get(`${name}_sum`) ?? 0) / count;
};

async function scrape() {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status}`);
  return parse(await response.text());
}

function render(now, before, seconds) {
  const rate = (name) => (before === null ? '-' : ((total(now, name) - total(before, name)) / seconds).toFixed(1));
  const redis = now.get('chat_redis_up');
  return [
    `chat-server ${url}  ${new Date().toISOString()}`,
    '',
    `connections  ${labelled(now, 'chat_connections', 'codec')}   opened ${total(now, 'chat_connections_opened_total')}`,
    `closed       ${labelled(now, 'chat_connections_closed_total', 'reason')}`,
    `logins       ${labelled(now, 'chat_logins_total', 'result')}   registered ${total(now, 'chat_registrations_total')}`,
    `messages/s   accepted ${rate('chat_messages_accepted_total')}  committed ${rate('chat_messages_committed_total')}  delivered ${rate('chat_messages_delivered_total')}`,
    `messages     accepted ${total(now, 'chat_messages_accepted_total')}  committed ${total(now, 'chat_messages_committed_total')}  delivered ${total(now, 'chat_messages_delivered_total')}`,
    `commits      mean batch ${mean(now, 'chat_commit_batch_size').toFixed(1)}  mean ${(mean(now, 'chat_commit_latency_seconds') * 1000).toFixed(2)} ms   ack wait mean ${(mean(now, 'chat_ack_latency_seconds') * 1000).toFixed(2)} ms`,
    `refused      throttled ${labelled(now, 'chat_throttled_requests_total', 'reason')}   errors ${labelled(now, 'chat_error_replies_total', 'errno')}`,
    `trouble      slow readers cut ${total(now, 'chat_slow_reader_disconnects_total')}  store errors ${total(now, 'chat_store_errors_total')}  redis ${redis === 1 ? 'up' : redis === 0 ? 'DOWN' : 'not used'}`,
    `process      event-loop lag ${((now.get('nodejs_eventloop_lag_seconds') ?? 0) * 1000).toFixed(1)} ms  rss ${((now.get('process_resident_memory_bytes') ?? 0) / 2 ** 20).toFixed(0)} MiB`,
  ].join('\n');
}

let before = null;
try {
  for (;;) {
    const now = await scrape();
    const screen = render(now, before, intervalSec);
    if (once) {
      console.log(screen);
      break;
    }
    process.stdout.write(`\x1b[2J\x1b[H${screen}\n`);
    before = now;
    await new Promise((resolve) => setTimeout(resolve, intervalSec * 1000));
  }
} catch (error) {
  console.error(`chat-top: ${error instanceof Error ? error.message : error}`);
  process.exit(1);
}
