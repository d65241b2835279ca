/*
 * The workload modules against a stub adapter (no network): arguments, requests, records.
 * Run from caliper/ with `node --test test/` (needs caliper/node_modules: npm ci).
 *
 * The stub answers as the contracts would and, like Caliper's peer-gateway connector, returns a
 * TxStatus per request and finds identities of organisations other than the first only with
 * their invokerMspId. When caliper/baseline/node_modules is installed, every index entry a
 * workload writes is also checked with the baseline's copy of the contract's field rules.
 */

'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {test} = require('node:test');

const {TxStatus, ConfigUtil} = require('@hyperledger/caliper-core');
const {recordsFile} = require('../workloads/lib/recorder');

const WORKLOADS = path.join(__dirname, '..', 'workloads');
const load = (name) => require(path.join(WORKLOADS, `${name}.js`)).createWorkloadModule();

let checkEntry = null; // the baseline contract's entry rules, when its packages are installed
try {
    checkEntry = require('../baseline/lib/emr-index').parseEntry;
} catch (error) {
    checkEntry = null;
}

const ORGANISATIONS = {
    HospitalAMSP: ['Admin@hospital-a', 'doctor@hospital-a', 'researcher@hospital-a'],
    HospitalBMSP: ['Admin@hospital-b', 'doctor@hospital-b', 'researcher@hospital-b'],
};

/** The parts of Caliper's ConnectorConfiguration the workloads use. */
const connectorConfiguration = {
    getOrganizations: () => Object.keys(ORGANISATIONS),
    getAliasNameForOrganizationAndIdentityName: (mspId, name) => (mspId === 'HospitalAMSP' ? name : `_${mspId}_${name}`),
    getAliasNamesForOrganization: async (mspId) => ORGANISATIONS[mspId]
        .map((name) => connectorConfiguration.getAliasNameForOrganizationAndIdentityName(mspId, name)),
};

class StubAdapter {
    constructor({fail = () => null, decision = 'allow'} = {}) {
        this.connectorConfiguration = connectorConfiguration;
        this.requests = [];
        this.fail = fail; // request -> null, 'status' (a failed TxStatus) or 'throw'
        this.decision = decision;
        this.records = new Map();
    }

    async sendRequests(request) {
        this.requests.push(request);
        const mspId = request.invokerMspId || 'HospitalAMSP';
        if (!connectorConfiguration.getOrganizations().includes(mspId)
            || !ORGANISATIONS[mspId].includes(request.invokerIdentity)) {
            throw new Error(`No contracts for invokerIdentity ${request.invokerIdentity} found`);
        }
        const failure = this.fail(request);
        if (failure === 'throw') {
            throw new Error('the gateway is unreachable\nDetails: none');
        }
        const status = new TxStatus('tx');
        status.SetTimeCreate(Date.now());
        await new Promise((resolve) => setImmediate(resolve));
        if (failure === 'status') {
            status.SetStatusFail();
            status.SetResult('');
            return status;
        }
        status.SetResult(Buffer.from(this.answer(request, mspId)));
        status.SetStatusSuccess();
        return status;
    }

    answer(request, mspId) {
        const [first] = request.contractArguments;
        switch (request.contractFunction) {
            case 'emr_index:PutRecord': {
                const entry = JSON.parse(first);
                this.records.set(entry.record_id, entry);
                return JSON.stringify({...entry, owner_msp: mspId});
            }
            case 'emr_index:GetRecord':
                return JSON.stringify(this.records.get(first));
            case 'consent:GrantAccess':
                return JSON.stringify({grant_id: 'g'.repeat(64), ...JSON.parse(first)});
            case 'consent:ListGrants':
                return JSON.stringify([{grantee_msp: 'HospitalBMSP'}]);
            case 'consent:CheckAccess':
                return JSON.stringify({decision: this.decision, reason: this.decision === 'allow' ? 'grant g' : 'no grant'});
            case 'access_log:LogAccess':
                return JSON.stringify({log_id: 'tx', ...JSON.parse(first)});
            default:
                throw new Error(`unexpected ${request.contractFunction}`);
        }
    }
}

/** A temporary records directory as MEDFABRIC_BENCH_RECORDS for the duration of `body`. */
async function withRecords(body) {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'medfabric-records-'));
    const before = process.env.MEDFABRIC_BENCH_RECORDS;
    process.env.MEDFABRIC_BENCH_RECORDS = directory;
    try {
        return await body(directory);
    } finally {
        if (before === undefined) {
            delete process.env.MEDFABRIC_BENCH_RECORDS;
        } else {
            process.env.MEDFABRIC_BENCH_RECORDS = before;
        }
        fs.rmSync(directory, {recursive: true, force: true});
    }
}

const readLines = (file) => fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));

/** Initialises a workload as Caliper does, runs `count` transactions, cleans up. */
async function run(name, args, {count = 5, adapter = new StubAdapter(), round = 0, worker = 0} = {}) {
    const workload = load(name);
    await workload.initializeWorkloadModule(worker, 1, round, args, adapter, {});
    const setupRequests = adapter.requests.length;
    for (let index = 0; index < count; index++) {
        await workload.submitTransaction();
    }
    await workload.cleanupWorkloadModule();
    return {workload, adapter, setup: adapter.requests.slice(0, setupRequests), round: adapter.requests.slice(setupRequests)};
}

const LOCAL = {channel: 'hospital-a-local', contractId: 'medfabric', invoker: 'doctor@hospital-a'};
const GRANTED = {channel: 'public', contractId: 'medfabric', owner: 'doctor@hospital-a', reader: 'doctor@hospital-b', records: 3};

test('index-write puts valid, distinct entries of the invoker\'s domain and records each', async () => {
    await withRecords(async (directory) => {
        const {round} = await run('index-write', {...LOCAL, contractId: 'medfabric-node'}, {count: 6, round: 2, worker: 1});
        assert.equal(round.length, 6);
        const ids = new Set();
        for (const request of round) {
            assert.equal(request.channel, 'hospital-a-local');
            assert.equal(request.contractId, 'medfabric-node');
            assert.equal(request.contractFunction, 'emr_index:PutRecord');
            assert.equal(request.invokerIdentity, 'doctor@hospital-a');
            assert.equal(request.invokerMspId, 'HospitalAMSP');
            assert.equal(request.readOnly, false);
            const entry = JSON.parse(request.contractArguments[0]);
            assert.equal(entry.domain, 'hospital-a');
            assert.match(entry.record_id, /^cal-[a-z0-9]+-r2-w1-\d+$/);
            ids.add(entry.record_id);
            if (checkEntry) {
                checkEntry(request.contractArguments[0]); // throws on an entry the contract would refuse
            }
        }
        assert.equal(ids.size, 6);
        const lines = readLines(path.join(directory, 'round-2-worker-1.jsonl'));
        assert.equal(lines.length, 6);
        for (const line of lines) {
            assert.deepEqual(Object.keys(line), ['start_ms', 'end_ms', 'ok']);
            assert.ok(line.ok && line.start_ms <= line.end_ms && line.start_ms > 1.6e12);
        }
    });
});

test('identities of another organisation get their MSP; mspIds overrides the lookup', async () => {
    const {round} = await run('index-write', {...LOCAL, channel: 'public', invoker: 'researcher@hospital-b'}, {count: 1});
    assert.equal(round[0].invokerMspId, 'HospitalBMSP');
    assert.equal(JSON.parse(round[0].contractArguments[0]).domain, 'hospital-b');
    const adapter = new StubAdapter();
    adapter.connectorConfiguration = undefined; // a connector without organisations
    const given = await run('index-write', {...LOCAL, mspIds: {'doctor@hospital-a': 'HospitalAMSP'}}, {count: 1, adapter});
    assert.equal(given.round[0].invokerMspId, 'HospitalAMSP');
});

test('ids differ between rounds and workers', async () => {
    const first = await run('index-write', LOCAL, {count: 2, round: 0, worker: 0});
    const second = await run('index-write', LOCAL, {count: 2, round: 1, worker: 0});
    const third = await run('index-write', LOCAL, {count: 2, round: 0, worker: 1});
    const ids = [first, second, third].flatMap(({round}) => round.map((r) => JSON.parse(r.contractArguments[0]).record_id));
    assert.equal(new Set(ids).size, 6);
});

test('index-read writes its records first, then reads them round-robin, read-only', async () => {
    await withRecords(async (directory) => {
        const {setup, round} = await run('index-read', {...LOCAL, records: 3}, {count: 7});
        assert.deepEqual(setup.map((r) => r.contractFunction), Array(3).fill('emr_index:PutRecord'));
        const written = setup.map((r) => JSON.parse(r.contractArguments[0]).record_id);
        assert.deepEqual(round.map((r) => r.contractArguments[0]), [...written, ...written, written[0]]);
        assert.ok(round.every((r) => r.contractFunction === 'emr_index:GetRecord' && r.readOnly === true));
        assert.equal(readLines(path.join(directory, 'round-0-worker-0.jsonl')).length, 7); // setup not recorded
    });
});

test('index-read by another identity waits until the reader sees the last record', async () => {
    const {setup} = await run('index-read', {...LOCAL, channel: 'public', invoker: 'doctor@hospital-b', writer: 'doctor@hospital-a',
        records: 2}, {count: 1});
    assert.deepEqual(setup.map((r) => [r.contractFunction, r.invokerIdentity, r.readOnly]), [
        ['emr_index:PutRecord', 'doctor@hospital-a', false],
        ['emr_index:PutRecord', 'doctor@hospital-a', false],
        ['emr_index:GetRecord', 'doctor@hospital-b', true],
    ]);
});

test('access-log-write logs a request entry per transaction', async () => {
    const {round} = await run('access-log-write', LOCAL, {count: 3});
    const entries = round.map((r) => JSON.parse(r.contractArguments[0]));
    assert.ok(round.every((r) => r.contractFunction === 'access_log:LogAccess'));
    assert.ok(entries.every((e) => e.action === 'request' && e.outcome === 'success' && e.reason));
    assert.equal(new Set(entries.map((e) => e.record_id)).size, 3);
});

test('grant-check writes and grants as the owner, then checks as the reader of another MSP', async () => {
    await withRecords(async (directory) => {
        const {setup, round} = await run('grant-check', GRANTED, {count: 4});
        assert.deepEqual(setup.map((r) => r.contractFunction), [
            ...Array(3).fill('emr_index:PutRecord'), ...Array(3).fill('consent:GrantAccess'), 'consent:ListGrants']);
        const grant = JSON.parse(setup[3].contractArguments[0]);
        assert.equal(grant.grantee_msp, 'HospitalBMSP');
        assert.equal(grant.domain, 'hospital-a');
        assert.equal(grant.purpose, 'treatment');
        assert.ok(setup.slice(0, 6).every((r) => r.invokerIdentity === 'doctor@hospital-a' && r.channel === 'public'));
        assert.ok(round.every((r) => r.invokerIdentity === 'doctor@hospital-b' && r.invokerMspId === 'HospitalBMSP'));
        assert.deepEqual(round[0].contractArguments.slice(1), ['read', 'treatment']);
        assert.equal(round[0].contractFunction, 'consent:CheckAccess');
        assert.ok(readLines(path.join(directory, 'round-0-worker-0.jsonl')).every((line) => line.ok));
    });
});

test('a denied access counts as failed in the records', async () => {
    await withRecords(async (directory) => {
        await run('grant-check', GRANTED, {count: 2, adapter: new StubAdapter({decision: 'deny'})});
        const lines = readLines(path.join(directory, 'round-0-worker-0.jsonl'));
        assert.deepEqual(lines.map((line) => [line.ok, line.error]), Array(2).fill([false, 'decision deny: no grant']));
    });
});

test('cross-domain-request logs the request, then checks access; lookup reads the entry first', async () => {
    const plain = await run('cross-domain-request', GRANTED, {count: 2});
    assert.deepEqual(plain.round.map((r) => r.contractFunction), [
        'access_log:LogAccess', 'consent:CheckAccess', 'access_log:LogAccess', 'consent:CheckAccess']);
    assert.equal(JSON.parse(plain.round[0].contractArguments[0]).reason, 'request to hospital-a for treatment');
    const lookup = await run('cross-domain-request', {...GRANTED, lookup: true, purpose: 'research'}, {count: 1});
    assert.deepEqual(lookup.round.map((r) => [r.contractFunction, r.readOnly]), [
        ['emr_index:GetRecord', true], ['access_log:LogAccess', false], ['consent:CheckAccess', false]]);
    assert.equal(lookup.round[2].contractArguments[2], 'research');
});

test('failed and thrown requests are recorded as failed; a thrown error ends the transaction', async () => {
    await withRecords(async (directory) => {
        let calls = 0;
        const adapter = new StubAdapter({fail: () => (++calls === 2 ? 'status' : calls === 3 ? 'throw' : null)});
        const workload = load('index-write');
        await workload.initializeWorkloadModule(0, 1, 0, LOCAL, adapter, {});
        await workload.submitTransaction();
        await workload.submitTransaction();
        await assert.rejects(workload.submitTransaction(), /unreachable/);
        await workload.cleanupWorkloadModule();
        const lines = readLines(path.join(directory, 'round-0-worker-0.jsonl'));
        assert.deepEqual(lines.map((line) => [line.ok, line.error]), [
            [true, undefined], [false, 'transaction failed'], [false, 'the gateway is unreachable Details: none']]);
    });
});

test('a cross-domain request stops at its first failed step', async () => {
    const adapter = new StubAdapter({fail: (r) => (r.contractFunction === 'access_log:LogAccess' ? 'status' : null)});
    const {round} = await run('cross-domain-request', GRANTED, {count: 2, adapter});
    assert.deepEqual(round.map((r) => r.contractFunction), ['access_log:LogAccess', 'access_log:LogAccess']);
});

test('a failed setup transaction fails initialisation with one line', async () => {
    const adapter = new StubAdapter({fail: (r) => (r.contractFunction === 'consent:GrantAccess' ? 'status' : null)});
    await assert.rejects(load('grant-check').initializeWorkloadModule(0, 1, 0, GRANTED, adapter, {}),
        (error) => /^grant-check initialize: consent:GrantAccess as doctor@hospital-a on public \(medfabric\) failed/.test(error.message)
            && !error.message.includes('\n'));
});

test('missing or invalid arguments fail with one line naming the argument', async () => {
    const cases = [
        ['index-write', {contractId: 'medfabric', invoker: 'doctor@hospital-a'}, /^index-write: round argument 'channel' is required/],
        ['index-write', {channel: 'public', invoker: 'doctor@hospital-a'}, /'contractId' is required/],
        ['index-write', {channel: 'public', contractId: 'medfabric'}, /'invoker' is required/],
        ['index-write', {...LOCAL, invoker: 'doctor'}, /'invoker' must be an identity named <user>@<domain>/],
        ['index-write', {...LOCAL, invoker: 'nurse@hospital-a'}, /identity nurse@hospital-a is in no organisation/],
        ['index-write', {...LOCAL, resourceType: 'Bundle'}, /'resourceType' must be one of/],
        ['index-write', {...LOCAL, idPrefix: 'has space'}, /'idPrefix' must be 1-32 characters/],
        ['index-read', {...LOCAL, records: 0}, /'records' must be an integer from 1 to 1000, not 0/],
        ['grant-check', {...GRANTED, reader: undefined}, /^grant-check: round argument 'reader' is required/],
        ['grant-check', {...GRANTED, purpose: 'fun'}, /'purpose' must be one of treatment, research/],
        ['cross-domain-request', {...GRANTED, lookup: 'yes'}, /'lookup' must be true or false/],
        ['access-log-write', ['not', 'a', 'mapping'], /arguments must be a mapping/],
    ];
    for (const [name, args, expected] of cases) {
        await assert.rejects(load(name).initializeWorkloadModule(0, 1, 0, args, new StubAdapter(), {}), (error) => {
            assert.match(error.message, expected);
            assert.ok(!error.message.includes('\n'), error.message);
            return true;
        }, `${name} ${JSON.stringify(args)}`);
    }
});

test('without MEDFABRIC_BENCH_RECORDS nothing is written', async () => {
    assert.equal(recordsFile(0, 0, 'x', {}), null);
    const {workload} = await run('index-write', LOCAL, {count: 1});
    assert.equal(workload.recorder.enabled, false);
});

test('the records file is named after the round label of the benchmark file', async () => {
    const benchmark = path.join(__dirname, '..', 'benchmarks', 'default.yaml');
    ConfigUtil.set(ConfigUtil.keys.BenchConfig, benchmark);
    try {
        assert.equal(recordsFile(1, 0, undefined, {MEDFABRIC_BENCH_RECORDS: '/r'}), '/r/round-1-index-write-local-worker-0.jsonl');
        assert.equal(recordsFile(99, 0, undefined, {MEDFABRIC_BENCH_RECORDS: '/r'}), '/r/round-99-worker-0.jsonl');
    } finally {
        ConfigUtil.set(ConfigUtil.keys.BenchConfig, undefined);
    }
    assert.equal(recordsFile(3, 2, 'fixed load: 32/s', {MEDFABRIC_BENCH_RECORDS: '/r'}), '/r/round-3-fixed_load_32_s-worker-2.jsonl');
});

test('every benchmark round names an existing workload with the arguments it needs', async () => {
    const {CaliperUtils} = require('@hyperledger/caliper-core');
    const directory = path.join(__dirname, '..', 'benchmarks');
    for (const file of fs.readdirSync(directory).filter((name) => name.endsWith('.yaml'))) {
        const benchmark = CaliperUtils.parseYaml(path.join(directory, file));
        assert.equal(benchmark.test.workers.number, 1, file);
        for (const [index, round] of benchmark.test.rounds.entries()) {
            const where = `${file} round ${index} (${round.label})`;
            assert.ok(round.label, where);
            assert.ok(['fixed-rate', 'fixed-load'].includes(round.rateControl.type), where);
            const opts = round.rateControl.opts;
            assert.ok(round.rateControl.type === 'fixed-rate' ? opts.tps > 0 : opts.startTps > 0 && opts.transactionLoad > 0, where);
            assert.ok(round.txDuration > 0 || round.txNumber > 0, where);
            const args = round.workload.arguments;
            assert.ok(['hospital-a-local', 'public'].includes(args.channel), where);
            assert.ok(['medfabric', 'medfabric-node'].includes(args.contractId), where);
            const name = path.basename(round.workload.module, '.js');
            await run(name, args, {count: 2}); // initialises and runs against the stub
        }
    }
});
