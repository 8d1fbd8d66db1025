// kafkajs_check.js: kafkajs (admin client and producer) against alogd, for
// test_kafkajs.sh. kafkajs's consumer needs the consumer-group APIs, which alogd does not
// have: the records this produces are read back with kcat by the shell script.
//
//   node kafkajs_check.js before-restart BROKER OUTDIR
//     describeCluster, createTopics (and again: "already exists"), listTopics,
//     fetchTopicMetadata, fetchTopicOffsets on the empty topic; the producer sends
//     records (acks -1, one batch gzip-compressed, one with acks 1) to 3 partitions and
//     to an auto-created topic, checking each send's base offsets; fetchTopicOffsets and
//     fetchTopicOffsetsByTimestamp then show the right offsets. Writes
//     OUTDIR/expect.P (P = partition), as kcat -f '%o\t%T\t%k\t%s\t%h\n' prints them,
//     and OUTDIR/state.json.
//   node kafkajs_check.js after-restart BROKER OUTDIR
//     The same metadata and offsets after the server's restart; the producer goes on at
//     the right offsets (OUTDIR/expect.P updated); deleteTopics removes a topic.
//
// Exit status 0 when every check passed; 1 with "FAIL: ..." on stderr otherwise.
'use strict'

const fs = require('fs')
const path = require('path')
const { Kafka, logLevel, CompressionTypes } = require('kafkajs')

const [mode, broker, outdir] = process.argv.slice(2)
if (!mode || !broker || !outdir) {
  console.error('usage: node kafkajs_check.js before-restart|after-restart BROKER OUTDIR')
  process.exit(2)
}
const brokerPort = Number(broker.split(':').pop())

const TOPIC = 'kjs-main'
const AUTO = 'kjs-auto'
const DOOMED = 'kjs-doomed'
const PARTITIONS = 3
const TS_BASE = 1710000000000 // record i of a partition: CreateTime TS_BASE + 1000 * i

function fail(msg) {
  const e = new Error(msg)
  e.isCheck = true
  throw e
}
function eq(got, want, what) {
  const g = JSON.stringify(got)
  const w = JSON.stringify(want)
  if (g !== w) fail(`${what}: got ${g}, expected ${w}`)
}
function log(msg) {
  console.log(`kafkajs: ${msg}`)
}

// Record i of partition p: keys, values and headers depend on (p, i) alone.
function record(p, i) {
  const key = i % 50 === 7 ? null : `p${p}-key-${i}`
  const value = i % 97 === 3 ? null : `p${p}-value-${i} ${'ünïcødé '.repeat(i % 5)}${'x'.repeat(i % 300)}`
  const headers = { src: 'kafkajs', idx: String(i) }
  if (i % 3 === 0) headers.extra = `h-${p}-${i}`
  return { key, value, headers, timestamp: String(TS_BASE + 1000 * i) }
}

// The line kcat -f '%o\t%T\t%k\t%s\t%h\n' prints for record i of partition p at offset o.
function kcatLine(p, i, o) {
  const r = record(p, i)
  const hdrs = Object.entries(r.headers).map(([k, v]) => `${k}=${v}`).join(',')
  return `${o}\t${r.timestamp}\t${r.key ?? ''}\t${r.value ?? ''}\t${hdrs}\n`
}

const kafka = new Kafka({
  clientId: 'alog-interop',
  brokers: [broker],
  logLevel: logLevel.WARN,
  connectionTimeout: 5000,
  requestTimeout: 15000,
  retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
})

// send P FIRST COUNT: records FIRST.. of partition P in sends of `chunk`; each send's
// base offset must be FIRST + (records sent before it).
async function sendRange(producer, p, first, count, opts = {}) {
  const chunk = opts.chunk || 100
  for (let i = first; i < first + count; i += chunk) {
    const n = Math.min(chunk, first + count - i)
    const messages = []
    for (let j = i; j < i + n; j++) messages.push({ partition: p, ...record(p, j) })
    const res = await producer.send({
      topic: TOPIC,
      acks: opts.acks ?? -1,
      compression: opts.compression ?? CompressionTypes.None,
      messages,
    })
    eq(res.length, 1, `send response parts (partition ${p}, records ${i}..)`)
    eq(res[0].topicName, TOPIC, 'send response topic')
    eq(res[0].partition, p, 'send response partition')
    eq(res[0].errorCode, 0, `send response error code (partition ${p}, records ${i}..)`)
    eq(res[0].baseOffset, String(i), `base offset of records ${i}..${i + n - 1} of partition ${p}`)
  }
}

async function checkOffsets(admin, want, what) {
  const offs = await admin.fetchTopicOffsets(TOPIC)
  offs.sort((a, b) => a.partition - b.partition)
  eq(
    offs.map(o => [o.partition, o.low, o.high, o.offset]),
    want.map((h, p) => [p, '0', String(h), String(h)]),
    `fetchTopicOffsets(${TOPIC}) ${what} [partition, low, high, offset]`
  )
}

async function checkMetadata(admin) {
  const cluster = await admin.describeCluster()
  if (cluster.brokers.length !== 1) fail(`describeCluster: ${JSON.stringify(cluster.brokers)} (expected 1 broker)`)
  const b = cluster.brokers[0]
  if (!['127.0.0.1', 'localhost'].includes(b.host) || b.port !== brokerPort)
    fail(`describeCluster: broker ${JSON.stringify(b)}, expected 127.0.0.1:${brokerPort}`)
  eq(cluster.controller, b.nodeId, 'describeCluster controller id')
  const md = await admin.fetchTopicMetadata({ topics: [TOPIC] })
  eq(md.topics.map(t => t.name), [TOPIC], 'fetchTopicMetadata topics')
  const parts = md.topics[0].partitions.slice().sort((x, y) => x.partitionId - y.partitionId)
  eq(
    parts.map(x => [x.partitionErrorCode, x.partitionId, x.leader, x.replicas, x.isr]),
    [...Array(PARTITIONS).keys()].map(p => [0, p, b.nodeId, [b.nodeId], [b.nodeId]]),
    `fetchTopicMetadata(${TOPIC}) partitions [error, id, leader, replicas, isr]`
  )
  return b
}

async function beforeRestart(admin, producer) {
  const b0 = await admin.describeCluster()
  log(`describeCluster: ${JSON.stringify(b0)}`)

  eq(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 1 }] }), true,
    `createTopics(${TOPIC})`)
  eq(await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS, replicationFactor: 1 }] }), false,
    `createTopics(${TOPIC}) again (kafkajs answers false for TOPIC_ALREADY_EXISTS)`)
  eq(await admin.createTopics({ topics: [{ topic: DOOMED, numPartitions: 1, replicationFactor: 1 }] }), true,
    `createTopics(${DOOMED})`)
  const topics = await admin.listTopics()
  for (const t of [TOPIC, DOOMED]) if (!topics.includes(t)) fail(`listTopics: ${JSON.stringify(topics)} lacks ${t}`)
  await checkMetadata(admin)
  await checkOffsets(admin, [0, 0, 0], 'on the new topic')
  log(`createTopics, listTopics, describeCluster, fetchTopicMetadata, fetchTopicOffsets ok`)

  // Partition 0: 1000 records acks -1; partition 1: 600 in one gzip batch of 300 and
  // acks 1 for the rest; partition 2: 7 records one by one.
  await sendRange(producer, 0, 0, 1000)
  await sendRange(producer, 1, 0, 300, { chunk: 300, compression: CompressionTypes.GZIP })
  await sendRange(producer, 1, 300, 300, { acks: 1 })
  await sendRange(producer, 2, 0, 7, { chunk: 1 })
  const counts = [1000, 600, 7]
  log(`produced ${counts.join('+')} records, every base offset as expected`)

  // A topic auto-created by the producer (sendBatch, default partition).
  const res = await producer.sendBatch({
    acks: -1,
    topicMessages: [{ topic: AUTO, messages: [{ key: 'a', value: 'auto-1', partition: 0 }, { key: 'b', value: 'auto-2', partition: 0 }] }],
  })
  eq(res.map(r => [r.topicName, r.partition, r.errorCode, r.baseOffset]), [[AUTO, 0, 0, '0']], `sendBatch to ${AUTO}`)
  const autoOffs = await admin.fetchTopicOffsets(AUTO)
  const a0 = autoOffs.find(o => o.partition === 0)
  eq([a0.low, a0.high], ['0', '2'], `fetchTopicOffsets(${AUTO}) partition 0 [low, high]`)

  await checkOffsets(admin, counts, 'after producing')
  // By timestamp: the first record with CreateTime >= TS is record ceil((TS - TS_BASE) / 1000).
  for (const i of [0, 5, 299, 300, 599]) {
    const ts = TS_BASE + 1000 * i - 500
    const got = await admin.fetchTopicOffsetsByTimestamp(TOPIC, ts)
    got.sort((a, b) => a.partition - b.partition)
    // Past a partition's last record kafkajs answers the high watermark.
    eq(got.map(o => o.offset), counts.map(c => String(Math.min(i, c))),
      `fetchTopicOffsetsByTimestamp(${TOPIC}, TS of record ${i} - 500 ms)`)
  }
  log('fetchTopicOffsets and fetchTopicOffsetsByTimestamp ok after producing')
  return counts
}

async function afterRestart(admin, producer, counts) {
  await checkMetadata(admin)
  const topics = await admin.listTopics()
  for (const t of [TOPIC, AUTO, DOOMED]) if (!topics.includes(t)) fail(`listTopics after restart: ${JSON.stringify(topics)} lacks ${t}`)
  await checkOffsets(admin, counts, 'after the restart')
  log('metadata, topics and offsets unchanged across the restart')

  // Producing goes on at the right offsets.
  await sendRange(producer, 2, counts[2], 50, { chunk: 10, compression: CompressionTypes.GZIP })
  await sendRange(producer, 0, counts[0], 100)
  counts = [counts[0] + 100, counts[1], counts[2] + 50]
  await checkOffsets(admin, counts, 'after producing more')
  log(`produced more after the restart: ${counts.join('+')} records, base offsets as expected`)

  await admin.deleteTopics({ topics: [DOOMED] })
  const after = await admin.listTopics()
  if (after.includes(DOOMED)) fail(`listTopics after deleteTopics: ${JSON.stringify(after)} still has ${DOOMED}`)
  if (!after.includes(TOPIC)) fail(`listTopics after deleteTopics: ${JSON.stringify(after)} lost ${TOPIC}`)
  log(`deleteTopics(${DOOMED}) ok`)
  return counts
}

async function main() {
  const admin = kafka.admin()
  const producer = kafka.producer({ allowAutoTopicCreation: true, idempotent: false })
  await admin.connect()
  await producer.connect()
  const stateFile = path.join(outdir, 'state.json')
  let counts
  try {
    if (mode === 'before-restart') {
      counts = await beforeRestart(admin, producer)
    } else if (mode === 'after-restart') {
      counts = await afterRestart(admin, producer, JSON.parse(fs.readFileSync(stateFile, 'utf8')).counts)
    } else {
      fail(`unknown mode ${mode}`)
    }
  } finally {
    await producer.disconnect()
    await admin.disconnect()
  }
  fs.writeFileSync(stateFile, JSON.stringify({ counts }))
  for (let p = 0; p < PARTITIONS; p++) {
    let text = ''
    for (let i = 0; i < counts[p]; i++) text += kcatLine(p, i, i)
    fs.writeFileSync(path.join(outdir, `expect.${p}`), text)
  }
  log(`${mode}: all checks passed`)
}

main().catch(e => {
  console.error(`FAIL: ${e.isCheck ? e.message : e.stack || e}`)
  process.exit(1)
})
