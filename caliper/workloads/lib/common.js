/*
 * What the MedFabric workloads share: round arguments (checked, with one-line errors), invokers
 * and their MSPs, unique ids, valid index entries, setup transactions, and the base class that
 * wires the recorder in.
 *
 * Invocation, as Caliper 0.6's peer-gateway connector does it
 * (@hyperledger/caliper-fabric/lib/connector-versions/peer-gateway/PeerGateway.js):
 * sendRequests({channel, contractId, contractFunction, contractArguments, invokerIdentity,
 * invokerMspId, readOnly}) looks up the contract `${channel}_${contractId}` made by
 * gateway.getNetwork(channel).getContract(contractId) for the identity, so contractId is the
 * chaincode name of the network configuration ("medfabric", "medfabric-node") and
 * contractFunction goes to the chaincode as it is: "emr_index:PutRecord" is routed by contract
 * name on both the Python and the Node chaincode. readOnly true evaluates, anything else
 * submits and waits for the commit status. An identity of an organisation other than the first
 * one of the network configuration is only found with its invokerMspId (Caliper names it
 * "_<mspid>_<name>" internally): the workloads look the MSP up in the connector's configuration.
 */

'use strict';

const crypto = require('crypto');
const {WorkloadModuleBase} = require('@hyperledger/caliper-core');

const {Recorder} = require('./recorder');

const ID = /^[A-Za-z0-9._:-]{1,128}$/;
const PREFIX = /^[A-Za-z0-9._-]{1,32}$/;
const DOMAIN = /^[a-z0-9-]{1,63}$/;
const IDENTITY = /^[^@\s]+@([a-z0-9-]{1,63})$/;
const RESOURCE_TYPES = [
    'Patient', 'Encounter', 'Observation', 'DiagnosticReport', 'ImagingStudy', 'Condition',
    'MedicationRequest', 'Procedure', 'AllergyIntolerance', 'Immunization', 'DocumentReference',
];
const PURPOSES = ['treatment', 'research', 'payment', 'operations', 'public-health'];
const GRANT_EXPIRES = '2099-12-31T23:59:59Z';

/** This worker process's part of every id: MEDFABRIC_BENCH_RUN, or the time it started (base 36). */
const RUN_ID = (() => {
    const given = process.env.MEDFABRIC_BENCH_RUN;
    if (given !== undefined && given !== '') {
        if (!PREFIX.test(given)) {
            throw new Error(`MEDFABRIC_BENCH_RUN must be 1-32 characters of A-Z a-z 0-9 . _ -, not ${JSON.stringify(given)}`);
        }
        return given;
    }
    return Date.now().toString(36);
})();

class ArgumentError extends Error {}

/** Round arguments of one workload, read with one-line errors naming the workload and the argument. */
class Arguments {
    constructor(workload, values) {
        this.workload = workload;
        if (values !== undefined && (values === null || typeof values !== 'object' || Array.isArray(values))) {
            this.fail('the round\'s workload.arguments must be a mapping');
        }
        this.values = values || {};
    }

    fail(message) {
        throw new ArgumentError(`${this.workload}: ${message}`);
    }

    has(name) {
        return this.values[name] !== undefined && this.values[name] !== null;
    }

    string(name, {fallback, pattern, describe} = {}) {
        if (!this.has(name)) {
            if (fallback === undefined) {
                this.fail(`round argument '${name}' is required (${describe || 'a string'})`);
            }
            return fallback;
        }
        const value = this.values[name];
        if (typeof value !== 'string' || value === '' || (pattern && !pattern.test(value))) {
            this.fail(`round argument '${name}' must be ${describe || 'a non-empty string'}, not ${JSON.stringify(value)}`);
        }
        return value;
    }

    choice(name, choices, fallback) {
        const value = this.string(name, {fallback, describe: `one of ${choices.join(', ')}`});
        if (!choices.includes(value)) {
            this.fail(`round argument '${name}' must be one of ${choices.join(', ')}, not ${JSON.stringify(value)}`);
        }
        return value;
    }

    integer(name, {fallback, min = 0, max = Number.MAX_SAFE_INTEGER} = {}) {
        if (!this.has(name)) {
            if (fallback === undefined) {
                this.fail(`round argument '${name}' is required (an integer from ${min} to ${max})`);
            }
            return fallback;
        }
        const value = this.values[name];
        if (!Number.isInteger(value) || value < min || value > max) {
            this.fail(`round argument '${name}' must be an integer from ${min} to ${max}, not ${JSON.stringify(value)}`);
        }
        return value;
    }

    boolean(name, fallback) {
        if (!this.has(name)) {
            return fallback;
        }
        const value = this.values[name];
        if (typeof value !== 'boolean') {
            this.fail(`round argument '${name}' must be true or false, not ${JSON.stringify(value)}`);
        }
        return value;
    }

    /** An identity of the network configuration, named <user>@<domain> (e.g. doctor@hospital-a). */
    identity(name, fallback) {
        return this.string(name, {fallback, pattern: IDENTITY, describe: 'an identity named <user>@<domain>, e.g. doctor@hospital-a'});
    }

    /** {identity name: MSP id}: MSPs given instead of looked up in the network configuration. */
    mspIds() {
        if (!this.has('mspIds')) {
            return {};
        }
        const value = this.values.mspIds;
        const valid = typeof value === 'object' && !Array.isArray(value)
            && Object.values(value).every((msp) => typeof msp === 'string' && msp !== '');
        if (!valid) {
            this.fail('round argument \'mspIds\' must map identity names to MSP ids');
        }
        return value;
    }

    /** The arguments every workload takes: channel, contractId, idPrefix, mspIds. */
    common() {
        return {
            channel: this.string('channel', {describe: 'a channel name, e.g. hospital-a-local or public'}),
            contractId: this.string('contractId', {describe: 'a chaincode name of the network configuration, e.g. medfabric'}),
            idPrefix: this.string('idPrefix', {fallback: 'cal', pattern: PREFIX, describe: '1-32 characters of A-Z a-z 0-9 . _ -'}),
            mspIds: this.mspIds(),
        };
    }
}

/** The domain in an identity's name: doctor@hospital-a -> hospital-a. */
function domainOf(identity) {
    return IDENTITY.exec(identity)[1];
}

/**
 * The MSP of an identity: from `overrides`, else the one organisation of the connector's
 * configuration that has it. Undefined for a connector without organisations (it then picks).
 */
async function mspIdOf(workload, sutAdapter, identity, overrides) {
    if (overrides[identity]) {
        return overrides[identity];
    }
    const config = sutAdapter && sutAdapter.connectorConfiguration;
    if (!config || typeof config.getOrganizations !== 'function') {
        return undefined;
    }
    const found = [];
    for (const mspId of config.getOrganizations()) {
        const alias = config.getAliasNameForOrganizationAndIdentityName(mspId, identity);
        if ((await config.getAliasNamesForOrganization(mspId)).includes(alias)) {
            found.push(mspId);
        }
    }
    if (found.length !== 1) {
        const where = found.length ? `several organisations (${found.join(', ')})` : 'no organisation';
        throw new ArgumentError(`${workload}: identity ${identity} is in ${where} of the network configuration; `
            + 'give its MSP in the round argument mspIds');
    }
    return found[0];
}

/** A generator of ids unique to this run, round and worker: <prefix>-<run>-r<round>-w<worker>-<n>. */
function idMaker(workload, prefix, roundIndex, workerIndex) {
    const stem = `${prefix}-${RUN_ID}-r${roundIndex}-w${workerIndex}`;
    let counter = 0;
    return (tag = '') => {
        const id = `${stem}${tag}-${counter++}`;
        if (!ID.test(id)) {
            throw new ArgumentError(`${workload}: record id ${id} is not 1-128 characters of A-Z a-z 0-9 . _ : -`);
        }
        return id;
    };
}

const sha256 = (text) => crypto.createHash('sha256').update(text).digest('hex');

/** A valid emr_index entry (contracts/emr_index.py ENTRY_RULES) of `domain`, as put_record indexes one. */
function indexEntry(recordId, domain, {resourceType = 'Observation', size = 2048, patients = 100} = {}) {
    const number = Number(recordId.slice(recordId.lastIndexOf('-') + 1)) || 0;
    return {
        record_id: recordId,
        patient: `${recordId.slice(0, recordId.lastIndexOf('-'))}-p${number % patients}`,
        domain,
        resource_type: resourceType,
        ciphertext_sha256: sha256(`ciphertext:${recordId}`),
        plaintext_sha256: sha256(`plaintext:${recordId}`),
        size,
        location: `medfabric://${domain}/records/${recordId}`,
    };
}

/** The entry options shared by the writing workloads: domain, resourceType, size. */
function entryOptions(args, identity) {
    const domain = args.string('domain', {fallback: domainOf(identity), pattern: DOMAIN, describe: '1-63 characters of a-z 0-9 -'});
    return {
        domain,
        resourceType: args.choice('resourceType', RESOURCE_TYPES, 'Observation'),
        size: args.integer('size', {fallback: 2048, min: 0}),
    };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Base class: round arguments, the recorder of the round, and request helpers. */
class MedfabricWorkload extends WorkloadModuleBase {
    /** The workload's name in error messages, e.g. "index-write". */
    get name() {
        throw new Error('a workload must name itself');
    }

    async initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext) {
        await super.initializeWorkloadModule(workerIndex, totalWorkers, roundIndex, roundArguments, sutAdapter, sutContext);
        const args = new Arguments(this.name, roundArguments);
        this.options = args.common();
        this.newId = idMaker(this.name, this.options.idPrefix, roundIndex, workerIndex);
        this.mspIds = new Map();
        await this.configure(args);
        this.recorder = Recorder.forRound(roundIndex, workerIndex);
    }

    /** Reads the workload's own arguments (and runs its setup transactions). */
    async configure(args) {
        void args;
    }

    async cleanupWorkloadModule() {
        if (this.recorder) {
            this.recorder.close();
        }
    }

    /** Resolves and remembers the MSP of an identity. */
    async useIdentity(identity) {
        if (!this.mspIds.has(identity)) {
            this.mspIds.set(identity, await mspIdOf(this.name, this.sutAdapter, identity, this.options.mspIds));
        }
        return this.mspIds.get(identity);
    }

    request(identity, contractFunction, contractArguments, readOnly = false) {
        const request = {
            channel: this.options.channel,
            contractId: this.options.contractId,
            contractFunction,
            contractArguments,
            invokerIdentity: identity,
            readOnly,
        };
        const mspId = this.mspIds.get(identity);
        if (mspId) {
            request.invokerMspId = mspId;
        }
        return request;
    }

    /** A measured transaction: through the recorder. */
    send(identity, contractFunction, contractArguments, {readOnly = false, check = null} = {}) {
        return this.recorder.send(this.sutAdapter, this.request(identity, contractFunction, contractArguments, readOnly), check);
    }

    /** A setup transaction of initialize: not recorded; a failure ends the round with a one-line error. */
    async setup(identity, contractFunction, contractArguments, readOnly = false) {
        const what = `${contractFunction} as ${identity} on ${this.options.channel} (${this.options.contractId})`;
        let status;
        try {
            status = await this.sutAdapter.sendRequests(this.request(identity, contractFunction, contractArguments, readOnly));
        } catch (error) {
            throw new Error(`${this.name} initialize: ${what} failed: ${String((error && error.message) || error).split('\n')[0]}`);
        }
        if (status.GetStatus() !== 'success') {
            throw new Error(`${this.name} initialize: ${what} failed (${status.GetStatus()}; the Caliper log has the peer's message)`);
        }
        const result = status.GetResult();
        return result === null || result === undefined ? '' : Buffer.from(result).toString('utf8');
    }

    /** Runs `count` setup steps, `concurrency` at a time; returns their results in order. */
    async setupAll(count, concurrency, step) {
        const results = new Array(count);
        for (let start = 0; start < count; start += concurrency) {
            const batch = [];
            for (let index = start; index < Math.min(count, start + concurrency); index++) {
                batch.push(step(index).then((result) => {
                    results[index] = result;
                }));
            }
            await Promise.all(batch);
        }
        return results;
    }

    /** Waits until `probe()` is true (evaluations on another peer may be a block behind). */
    async waitUntil(what, timeoutSeconds, probe) {
        const deadline = Date.now() + timeoutSeconds * 1000;
        let last = '';
        for (;;) {
            try {
                if (await probe()) {
                    return;
                }
                last = '';
            } catch (error) {
                last = String((error && error.message) || error).split('\n')[0]; // not yet, or never: try again
            }
            if (Date.now() > deadline) {
                throw new Error(`${this.name} initialize: ${what} after ${timeoutSeconds} s${last ? ` (last: ${last})` : ''}`);
            }
            await sleep(500);
        }
    }
}

/**
 * Writes `count` index entries as `owner` (and, with `grantTo`, grants each to that MSP for
 * `purpose`), then waits until `reader` sees the last grant (or entry). Returns the record ids.
 */
async function writeRecords(workload, {owner, reader, count, concurrency, entry, grantTo, purpose, timeout}) {
    const ids = Array.from({length: count}, () => workload.newId('-seed'));
    await workload.setupAll(count, concurrency, (index) =>
        workload.setup(owner, 'emr_index:PutRecord', [JSON.stringify(indexEntry(ids[index], entry.domain, entry))]));
    if (grantTo) {
        await workload.setupAll(count, concurrency, (index) => workload.setup(owner, 'consent:GrantAccess', [JSON.stringify({
            record_id: ids[index], domain: entry.domain, grantee_msp: grantTo, purpose, expires: GRANT_EXPIRES,
        })]));
    }
    const last = ids[count - 1];
    if (grantTo) {
        await workload.waitUntil(`the grants are not visible to ${reader} on ${workload.options.channel}`, timeout, async () =>
            JSON.parse(await workload.setup(reader, 'consent:ListGrants', [last], true))
                .some((grant) => grant.grantee_msp === grantTo));
    } else if (reader !== owner) {
        await workload.waitUntil(`record ${last} is not visible to ${reader} on ${workload.options.channel}`, timeout, async () =>
            JSON.parse(await workload.setup(reader, 'emr_index:GetRecord', [last], true)).record_id === last);
    }
    return ids;
}

/** The answer of consent CheckAccess must be an "allow": the reason of anything else. */
function expectAllow(text) {
    try {
        const answer = JSON.parse(text);
        return answer.decision === 'allow' ? null : `decision ${answer.decision}: ${answer.reason}`;
    } catch (error) {
        return `not an access decision: ${text.slice(0, 80)}`;
    }
}

module.exports = {
    Arguments, ArgumentError, MedfabricWorkload, PURPOSES, RUN_ID, domainOf, expectAllow, idMaker, indexEntry, entryOptions,
    mspIdOf, writeRecords,
};
