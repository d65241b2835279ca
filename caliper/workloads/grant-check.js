/*
 * grant-check: consent:CheckAccess(record_id, "read", purpose) by a reader for records another
 * domain granted to the reader's MSP.
 *
 * While initialising, the owner writes the records (emr_index:PutRecord) and grants each to the
 * reader's MSP for the purpose (consent:GrantAccess), then waits until the reader's peer has the
 * last grant. Each transaction of the round is a CheckAccess as the reader, round-robin over the
 * records; it counts as failed unless the decision is "allow".
 *
 * Round arguments:
 *   channel, contractId  (required) grants live on the public channel: channel public, contractId medfabric
 *   owner                (required) <user>@<domain> who writes and grants, e.g. doctor@hospital-a
 *   reader               (required) <user>@<domain> of another domain, e.g. doctor@hospital-b
 *   purpose              (optional) treatment (default), research, payment, operations, public-health
 *   records              (optional) how many granted records, default 10 (1-1000)
 *   setupConcurrency, visibilityTimeout, domain, resourceType, size, idPrefix, mspIds (optional)
 *                        as for index-read (domain: the owner's)
 */

'use strict';

const {MedfabricWorkload, PURPOSES, entryOptions, expectAllow, writeRecords} = require('./lib/common');

/** Reads the arguments of a workload that reads granted records, and writes and grants them. */
async function grantedRecords(workload, args) {
    workload.owner = args.identity('owner');
    workload.reader = args.identity('reader');
    workload.purpose = args.choice('purpose', PURPOSES, 'treatment');
    const count = args.integer('records', {fallback: 10, min: 1, max: 1000});
    const concurrency = args.integer('setupConcurrency', {fallback: 5, min: 1, max: 100});
    const timeout = args.integer('visibilityTimeout', {fallback: 30, min: 1});
    workload.entry = entryOptions(args, workload.owner);
    await workload.useIdentity(workload.owner);
    const readerMsp = await workload.useIdentity(workload.reader);
    if (!readerMsp) {
        args.fail(`the MSP of reader ${workload.reader} is needed for the grant: give it in the round argument mspIds`);
    }
    workload.recordIds = await writeRecords(workload, {
        owner: workload.owner, reader: workload.reader, count, concurrency, entry: workload.entry,
        grantTo: readerMsp, purpose: workload.purpose, timeout,
    });
    workload.next = 0;
}

class GrantCheck extends MedfabricWorkload {
    get name() {
        return 'grant-check';
    }

    async configure(args) {
        await grantedRecords(this, args);
    }

    async submitTransaction() {
        const recordId = this.recordIds[this.next++ % this.recordIds.length];
        await this.send(this.reader, 'consent:CheckAccess', [recordId, 'read', this.purpose], {check: expectAllow});
    }
}

module.exports.GrantCheck = GrantCheck;
module.exports.grantedRecords = grantedRecords;
module.exports.createWorkloadModule = () => new GrantCheck();
